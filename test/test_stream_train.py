"""Training and evaluating streaming models: clip batches, `qdr train` / `qdr qat` on clips, the
stream-carrying clip evaluation and its comparison with a single-frame model."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from torch import nn

from qdr_core.cli import main
from qdr_core.data.clips import FAST_PAN, Clip, ClipPairs, camera_motion
from qdr_core.errors import ConfigError, DataError
from qdr_core.evaluate import compare_clip_results, evaluate_clip, evaluate_clips
from qdr_core.models import build_model
from qdr_core.models.checkpoint import model_payload, read_checkpoint, save_checkpoint
from qdr_core.runtime.stateful import StreamSession
from qdr_core.runtime.torch_backend import TorchRuntime
from qdr_core.train.config import TrainConfig
from qdr_core.train.losses import CharbonnierLoss
from qdr_core.train.qat import QATConfig, fit_qat
from qdr_core.train.stream import evaluate_stream_model
from qdr_core.train.trainer import fit, train_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n=3, size=96, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    return [
        np.clip(
            np.stack([np.sin(xx * f + p) * np.cos(yy * f) * 0.4 + 0.5 for p in rng.uniform(0, 3, 3)], -1),
            0,
            1,
        ).astype(np.float32)
        for f in rng.uniform(4, 12, n)
    ]


def _video(n=8, size=80):
    base = _images(1, size + 2 * n)[0]
    return [np.round(base[t : t + size, t : t + size] * 255).astype(np.uint8) for t in range(n)]


def _stream_model(seed=0) -> nn.Module:
    """A tiny streaming EFM whose state changes the output (an untrained one ignores it)."""
    torch.manual_seed(seed)
    model = build_model("efm-t-stream")
    nn.init.normal_(model.head.weight, std=0.05)
    nn.init.constant_(model.fusion.gate.bias, 4.0)
    nn.init.normal_(model.fusion.upd_prev.weight, std=0.3)
    return model.eval()


def test_clip_pairs_are_coherent_reproducible_clips() -> None:
    data = ClipPairs("noise", _images(), [_video()], patch=32, n_frames=4, seed=3, video_prob=0.5)
    degraded, clean = data.batch(0, 6)
    assert degraded.shape == clean.shape == (6, 4, 3, 32, 32) and degraded.dtype == np.float32
    again, _ = data.batch(0, 6)
    assert np.array_equal(degraded, again)
    assert not np.array_equal(data.batch(1, 6)[0], degraded)
    # One crop window through the clip: consecutive clean frames are close, other clips are not.
    step = np.abs(clean[:, 1:] - clean[:, :-1]).mean()
    other = np.abs(clean[1:, 0] - clean[:-1, 0]).mean()
    assert step < 0.5 * other
    # Sensor noise is drawn anew in every frame.
    noise = degraded - clean
    assert not np.allclose(noise[:, 0], noise[:, 1], atol=1e-3)
    with pytest.raises(DataError, match=">= 2 frames"):
        ClipPairs("noise", _images(), patch=32, n_frames=1)


def test_fast_pan_moves_much_more_than_the_default_motion() -> None:
    image = _images(1, 160)[0]
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    slow, fast = camera_motion(image, 6, rng()), camera_motion(image, 6, rng(), FAST_PAN)
    moved = lambda frames: np.mean([np.abs(a - b).mean() for a, b in itertools.pairwise(frames)])  # noqa: E731
    assert moved(fast) > 2 * moved(slow)


def test_train_step_on_clips_trains_the_state_path() -> None:
    model = _stream_model()
    data = ClipPairs("noise", _images(), patch=32, n_frames=3, seed=0)
    degraded, clean = (torch.from_numpy(a) for a in data.batch(0, 2))
    fusion_before = model.fusion.upd_prev.weight.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    logs = train_step(model, (degraded, clean), optimizer, CharbonnierLoss(), grad_clip=1.0)
    assert set(logs) == {"loss", "loss_first", "loss_last"}
    # Gradients reached the module that only sees the previous frame's state.
    assert not torch.equal(model.fusion.upd_prev.weight, fusion_before)


def test_stream_validation_compares_with_the_still_path() -> None:
    frames = camera_motion(_images(1, 96)[0], 4, np.random.default_rng(1))
    noisy = [np.clip(f + np.random.default_rng(t).normal(0, 0.1, f.shape), 0, 1).astype(np.float32)
             for t, f in enumerate(frames)]  # fmt: skip
    untrained = build_model("efm-t-stream").eval()  # update starts at zero: the state changes nothing
    scores = evaluate_stream_model(untrained, [("c", noisy, frames)])
    assert scores["psnr_output"] == pytest.approx(scores["psnr_still"], abs=1e-6)
    scores = evaluate_stream_model(_stream_model(), [("c", noisy, frames)])
    assert abs(scores["psnr_stream_gain"]) > 1e-3


def test_fit_streaming_preset_from_single_frame_weights_and_resume(tmp_path) -> None:
    torch.manual_seed(1)
    single = build_model("efm-t")
    nn.init.normal_(single.head.weight, std=0.02)
    init = tmp_path / "single.pt"
    save_checkpoint(init, model_payload(single.eval(), "fp32", {"task": "noise", "preset": "efm-t"}))
    cfg = dict(task="noise", preset="efm-t-stream", init=str(init), iters=2, batch_size=1, patch=32,
               clip_frames=3, warmup=1, val_every=2, val_images=1, val_size=48, save_every=1, threads=1)  # fmt: skip
    out = tmp_path / "run"
    first = fit(TrainConfig(**cfg, out_dir=str(out)), progress=False)
    val = [h for h in first["history"] if "psnr_output" in h]
    assert val and {"psnr_still", "psnr_stream_gain"} <= set(val[0])
    state = read_checkpoint(out / "fp32.pt")["state_dict"]
    assert "fusion.gate.weight" in state
    # Started from the single-frame weights (two small steps away from them), not a fresh init.
    assert (state["stem.weight"] - single.stem.weight).abs().max() < 0.02
    resumed = fit(TrainConfig(**{**cfg, "iters": 3}, out_dir=str(out)), resume=True, progress=False)
    assert read_checkpoint(out / "last.pt")["meta"]["step"] == 3
    assert [h["step"] for h in resumed["history"] if "psnr_output" in h] == [2, 3]
    with pytest.raises(ConfigError, match="trains on clips"):
        fit(TrainConfig(**cfg, out_dir=str(tmp_path / "x"), input_dir="a", target_dir="b"), progress=False)


@pytest.fixture(scope="module")
def stream_teacher(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "fp32.pt"
    save_checkpoint(path, model_payload(_stream_model(), "fp32", {"task": "noise", "preset": "efm-t-stream"}))
    return path


def test_qat_of_a_streaming_model_trains_on_clips_and_exports(stream_teacher, tmp_path) -> None:
    cfg = QATConfig(task="noise", teacher=str(stream_teacher), out=str(tmp_path / "qat.pt"), iters=2,
                    batch_size=1, patch=32, clip_frames=3, calib_batches=1, val_images=1, val_size=48,
                    log_every=1, threads=1)  # fmt: skip
    result = fit_qat(cfg, progress=False, train_images=_images())
    logs = [h for h in result["history"] if "loss_kd" in h]
    assert logs and np.isfinite(logs[-1]["loss_rec"]) and logs[-1]["loss_kd"] > 0
    assert "psnr_still" in result["history"][-1]
    # The fake-quant state path was calibrated on real states: the state changes the output.
    student = result["model"].eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        _, state = student(x)
        assert not torch.allclose(student(x, state)[0], student(x)[0])
    cpu = tmp_path / "int8_cpu.onnx"
    assert main(["export", "--checkpoint", cfg.out, "--target", "onnxruntime", "--output", str(cpu)]) == 0
    assert (
        main(
            ["export", "--checkpoint", cfg.out, "--target", "tensorrt", "--output", str(tmp_path / "t.onnx")]
        )
        == 0
    )


def _clip(n=4, size=64):
    return Clip("c", camera_motion(_images(1, 96)[0], n, np.random.default_rng(2))[:n])


def test_evaluate_clip_carries_the_state_of_a_streaming_runtime() -> None:
    runtime = TorchRuntime.from_model(_stream_model())
    clip = _clip()
    result = evaluate_clip(runtime, clip, "noise", seed=5)
    from qdr_core.data.clips import ClipDegrader
    from qdr_core.metrics import score

    degrader = ClipDegrader("noise", 5, n_frames=len(clip.frames))
    session = StreamSession(runtime)
    streamed = [session.infer(degrader(t, f)) for t, f in enumerate(clip.frames)]
    expected = [score(c, r).psnr for c, r in zip(clip.frames, streamed)]
    assert [row["psnr_output"] for row in result["frames"]] == pytest.approx(expected)
    stills = [runtime.infer(degrader(t, f)) for t, f in enumerate(clip.frames)]
    assert result["frames"][-1]["psnr_output"] != pytest.approx(score(clip.frames[-1], stills[-1]).psnr)


def test_compare_reports_the_deltas_and_refuses_other_clips() -> None:
    clips = [_clip()]
    stream = evaluate_clips(TorchRuntime.from_model(_stream_model()), clips, "noise", seed=0)
    single = evaluate_clips(TorchRuntime.from_model(build_model("efm-t").eval()), clips, "noise", seed=0)
    assert stream["streaming"] and not single["streaming"]
    delta = compare_clip_results(stream, single)
    assert delta["psnr_delta"] == pytest.approx(stream["psnr_output"] - single["psnr_output"])
    want = 100 * (stream["warp_error_output"] / single["warp_error_output"] - 1)
    assert delta["warp_error_change_pct"] == pytest.approx(want)
    assert delta["flicker_stream"] == stream["flicker_output"]
    other = evaluate_clips(TorchRuntime.from_model(build_model("efm-t").eval()), clips, "noise", seed=1)
    with pytest.raises(DataError, match="same clips"):
        compare_clip_results(stream, other)


def test_cli_eval_compare_on_a_video(stream_teacher, tmp_path) -> None:
    import cv2

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for frame in _video(5, 64):
        writer.write(np.ascontiguousarray(frame[:48, :, ::-1]))
    writer.release()
    single = tmp_path / "single.pt"
    save_checkpoint(
        single, model_payload(build_model("efm-t").eval(), "fp32", {"task": "noise", "preset": "efm-t"})
    )
    out = tmp_path / "cmp.json"
    argv = ["eval", "--model", str(stream_teacher), "--compare", str(single), "--task", "noise", "--video",
            str(video), "--frames", "4", "--backend", "torch", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["model"]["streaming"] and not result["compare"]["streaming"]
    assert result["delta"]["psnr_delta"] == pytest.approx(
        result["model"]["psnr_output"] - result["compare"]["psnr_output"]
    )
