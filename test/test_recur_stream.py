"""Streaming by recursion on the output (``efm-*-recur``): the fusion of the still restoration with
the previous output, the runtime's motion alignment of that state (``runtime.motion``), its torch
twin for training, the exports, and training only the fusion over frozen single-frame weights."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from qdr_core.errors import ConfigError
from qdr_core.export.ort_int8 import assert_int8_kernels, export_ort_int8
from qdr_core.export.qdq_tensorrt import export_tensorrt_qdq
from qdr_core.export.random_model import write_random_model
from qdr_core.export.trt_rules import check_trt_rules
from qdr_core.models import build_model
from qdr_core.models.complexity import count_macs
from qdr_core.models.streaming import EMPTY_OUTPUT_STATE
from qdr_core.quant import calibrate, quantize_model
from qdr_core.runtime import load_runtime
from qdr_core.runtime.motion import MotionAligner, stream_flow, warp_state
from qdr_core.runtime.stateful import StreamSession
from qdr_core.train import stream

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _scene(h=64, w=80, seed=0) -> np.ndarray:
    """A smooth textured RGB image, a little larger than the frames cut from it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = [
        0.5 + 0.35 * np.sin(xx / rng.uniform(3, 6) + p) * np.cos(yy / rng.uniform(3, 6)) for p in (0, 1, 2)
    ]
    return np.clip(np.stack(planes, -1), 0, 1).astype(np.float32)


def _shifted(dx: int) -> tuple[np.ndarray, np.ndarray]:
    """Two frames of a camera that moved ``dx`` pixels to the right."""
    scene = _scene(48, 100)
    return scene[:, 10:74], scene[:, 10 + dx : 74 + dx]


def test_flow_finds_a_shift_and_the_warp_aligns_the_previous_frame():
    previous, current = _shifted(3)
    flow = stream_flow(previous, current)
    assert flow.shape == (48, 64, 2)
    # current(p) = previous(p + 3): the flow to the previous frame is +3 px in x, 0 in y.
    inner = flow[8:-8, 8:-8]
    assert abs(float(np.median(inner[..., 0])) - 3.0) < 0.5 and abs(float(np.median(inner[..., 1]))) < 0.5
    state = previous.transpose(2, 0, 1)[None]
    aligned = warp_state(state, flow)[0].transpose(1, 2, 0)
    before = np.abs(previous - current)[8:-8, 8:-8].mean()
    after = np.abs(aligned - current)[8:-8, 8:-8].mean()
    assert after < 0.25 * before
    # A still camera: no motion, the state comes back unchanged.
    np.testing.assert_allclose(warp_state(state, stream_flow(previous, previous)), state, atol=1e-2)


def test_flow_works_on_a_dark_noisy_frame():
    """Mean normalisation and half-resolution averaging make a night frame usable."""
    previous, current = _shifted(2)
    rng = np.random.default_rng(1)
    dark = [
        np.clip(0.08 * f + rng.normal(0, 0.01, f.shape), 0, 1).astype(np.float32) for f in (previous, current)
    ]
    inner = stream_flow(*dark)[8:-8, 8:-8]
    assert abs(float(np.median(inner[..., 0])) - 2.0) < 0.75


def test_torch_warp_matches_the_runtime_warp():
    rng = np.random.default_rng(0)
    state = rng.random((1, 3, 24, 32), dtype=np.float32)
    yy, xx = np.mgrid[0:24, 0:32].astype(np.float32)
    flow = np.stack([1.7 * np.sin(yy / 5), -1.2 * np.cos(xx / 7)], -1).astype(np.float32)
    ours = warp_state(state, flow)
    theirs = stream.warp_state(torch.from_numpy(state), torch.from_numpy(flow.transpose(2, 0, 1))[None])
    # cv2.remap's fixed-point maps interpolate in 1/32 px steps, grid_sample in float; on random
    # pixels the bicubic kernel's steep slopes turn that step into up to ~0.02.
    np.testing.assert_allclose(theirs.numpy(), ours, atol=0.03)
    assert np.abs(theirs.numpy() - ours).mean() < 4e-3


def test_warps_keep_fine_detail_at_a_half_pixel_shift():
    """A recursion resamples its output every frame: the warps must not blur it (bilinear loses a
    fifth of a 5-pixel period's amplitude at a half-pixel shift; its error here is 0.12)."""
    x = np.arange(64, dtype=np.float32)
    state = np.broadcast_to(np.sin(2 * np.pi * x / 5), (1, 3, 16, 64)).astype(np.float32)
    flow = np.zeros((16, 64, 2), np.float32)
    flow[..., 0] = 0.5
    truth = np.sin(2 * np.pi * (x + 0.5) / 5)[4:-4]
    ours = warp_state(state, flow)[0, :, :, 4:-4]
    theirs = stream.warp_state(torch.from_numpy(state), torch.from_numpy(flow.transpose(2, 0, 1))[None])
    assert np.abs(ours - truth).mean() < 0.03
    assert np.abs(theirs.numpy()[0, :, :, 4:-4] - truth).mean() < 0.03


def test_aligner_resets_and_refuses_mismatched_shapes():
    aligner = MotionAligner()
    a, b = _shifted(1)
    assert aligner.observe(a.transpose(2, 0, 1)) is None  # the first frame has no previous one
    assert aligner.observe(b.transpose(2, 0, 1)).shape == (48, 64, 2)
    aligner.reset()
    assert aligner.observe(b.transpose(2, 0, 1)) is None
    with pytest.raises(ValueError, match="does not match"):
        warp_state(np.zeros((1, 3, 10, 10), np.float32), np.zeros((12, 10, 2), np.float32))
    with pytest.raises(ValueError, match="one size"):
        stream_flow(a, b[:40])


def test_untrained_fusion_keeps_the_still_restoration_where_the_past_agrees():
    still, recur = build_model("efm-t"), build_model("efm-t-recur")
    torch.manual_seed(0)
    nn.init.normal_(still.head.weight, std=0.05)
    missing, unexpected = recur.load_state_dict(still.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("output_fusion.") for k in missing)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y = still(x)
        out, state = recur(x, y)  # the past says exactly what the present says
        first, _ = recur(x)  # the empty state: the gate closes, the first frame is the still
        dark = still(x * 0.05)
        first_dark, _ = recur(x * 0.05)  # also where the frame is dark (a zero state would not)
        zero_dark, _ = recur(x * 0.05, torch.zeros_like(x))
    assert torch.equal(out, state)
    torch.testing.assert_close(out, y, atol=1e-6, rtol=0)
    torch.testing.assert_close(first, y, atol=1e-6, rtol=0)
    torch.testing.assert_close(first_dark, dark, atol=1e-3, rtol=0)
    assert (zero_dark - dark).abs().max() > 0.01
    assert recur.state_fill == EMPTY_OUTPUT_STATE < 0 and build_model("efm-t-stream").state_fill == 0.0
    assert recur.state_shape(2, 32, 48) == (2, 3, 32, 48) and recur.state_stride == 1
    # The fusion is cheap: it runs at 1/2 resolution (2 % of the single-frame network's MACs).
    ratio = count_macs(build_model("efm-s-recur"), 480, 640) / count_macs(build_model("efm-s"), 480, 640)
    assert 1.0 < ratio < 1.05


@pytest.fixture(scope="module")
def recur_files(tmp_path_factory):
    return write_random_model(tmp_path_factory.mktemp("recur"), preset="efm-t-recur", seed=4)


def test_runtimes_align_the_previous_output_before_feeding_it(recur_files):
    from qdr_core.models.checkpoint import load_fp32_model

    model, _ = load_fp32_model(recur_files.checkpoint)
    first, second = _shifted(3)
    outs = {}
    for backend, path in (("torch", recur_files.checkpoint), ("onnxruntime", recur_files.onnx)):
        runtime = load_runtime(str(path), backend=backend, num_threads=1)
        assert runtime.streaming and runtime.state_align == "flow" and runtime.state_channels == 3
        np.testing.assert_array_equal(runtime.empty_state(8, 12), np.full((1, 3, 8, 12), EMPTY_OUTPUT_STATE))
        session = StreamSession(runtime)
        outs[backend] = [session.infer(first), session.infer(second)]
        session.reset()
        np.testing.assert_allclose(session.infer(second), runtime.infer(second), atol=1e-5)
    # By hand: the first output, warped by the flow between the two degraded frames, is the state.
    with torch.no_grad():
        x1, x2 = (torch.from_numpy(f.transpose(2, 0, 1).copy())[None] for f in (first, second))
        y1, _ = model(x1)
        state = warp_state(y1.numpy(), stream_flow(first, second))
        y2, _ = model(x2, torch.from_numpy(state))
    expected = np.clip(y2[0].numpy().transpose(1, 2, 0), 0, 1)
    for backend in outs:
        np.testing.assert_allclose(outs[backend][1], expected, atol=2e-4)
    # Unaligned feedback would differ: the alignment is what the session did.
    with torch.no_grad():
        unaligned = np.clip(model(x2, y1)[0][0].numpy().transpose(1, 2, 0), 0, 1)
    assert np.abs(unaligned - expected).max() > 1e-3


def test_int8_exports_of_a_recur_model(tmp_path):
    torch.manual_seed(2)
    model = build_model("efm-t-recur")
    nn.init.normal_(model.head.weight, std=0.05)
    with torch.no_grad():  # the learned part of the gate (it starts unread): open it
        model.output_fusion.gate.weight[:, 1:].normal_(0, 0.05)
    qat = quantize_model(model, act_method="max")
    calibrate(qat, [(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))])
    qat.eval()
    x, state = (np.random.default_rng(k).random((1, 3, 32, 32), dtype=np.float32) for k in (0, 1))
    with torch.no_grad():
        t_out, _ = qat(torch.from_numpy(x), torch.from_numpy(state))
    trt = export_tensorrt_qdq(qat, tmp_path / "int8_trt.onnx")
    proto = onnx.load(str(trt))
    assert check_trt_rules(proto) == []
    assert {p.key: p.value for p in proto.metadata_props}["state_align"] == "flow"
    trt_out, trt_state = ort.InferenceSession(str(trt)).run(None, {"input": x, "state_in": state})
    np.testing.assert_array_equal(trt_out, trt_state)
    np.testing.assert_allclose(trt_out, t_out.numpy(), atol=0.05)
    cpu = export_ort_int8(
        qat, tmp_path / "int8_cpu.onnx", [np.random.default_rng(3).random((1, 3, 32, 32), np.float32)] * 2
    )
    assert_int8_kernels(cpu)
    runtime = load_runtime(str(cpu), backend="onnxruntime")
    out, new_state = runtime._run_state(x, state)
    assert runtime.state_align == "flow"
    np.testing.assert_array_equal(out, new_state)
    # The onnxruntime file re-calibrates the ranges QAT did not learn (e.g. the output's).
    assert np.abs(out - t_out.numpy()).mean() < 0.04


def test_identity_is_allowed_only_as_a_second_output_name():
    from onnx import TensorProto, helper

    def graph(identity_feeds_output: bool) -> onnx.ModelProto:
        nodes = [
            helper.make_node("Relu", ["x"], ["r"], name="relu"),
            helper.make_node("Identity", ["r"], ["i"], name="id"),
        ]
        outputs = [helper.make_tensor_value_info("r", TensorProto.FLOAT, None)]
        if identity_feeds_output:
            outputs.append(helper.make_tensor_value_info("i", TensorProto.FLOAT, None))
        else:
            nodes.append(helper.make_node("Relu", ["i"], ["j"], name="relu2"))
            outputs.append(helper.make_tensor_value_info("j", TensorProto.FLOAT, None))
        g = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)], outputs
        )
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    assert check_trt_rules(graph(True)) == []
    assert check_trt_rules(graph(False)) == ["id: op Identity not allowed"]


def test_clip_pairs_give_the_runtime_flows():
    from qdr_core.data.clips import ClipPairs

    data = ClipPairs(
        "noise", [_scene(160, 160, k) for k in range(2)], patch=48, n_frames=3, seed=0, flows=True
    )
    degraded, clean, flows = data.batch(0, 2)
    assert flows.shape == (2, 3, 2, 48, 48) and not flows[:, 0].any()
    again = stream_flow(degraded[1, 1].transpose(1, 2, 0), degraded[1, 2].transpose(1, 2, 0))
    np.testing.assert_array_equal(flows[1, 2], again.transpose(2, 0, 1))
    with pytest.raises(ConfigError, match="needs the clips' flows"):
        stream.clip_losses(
            build_model("efm-t-recur"), *(torch.from_numpy(a) for a in (degraded, clean)), nn.L1Loss()
        )


def test_training_only_the_fusion_leaves_the_still_network_alone(tmp_path):
    from qdr_core.data.clips import ClipPairs
    from qdr_core.train.trainer import freeze_except, train_step

    torch.manual_seed(0)
    model = build_model("efm-t-recur")
    nn.init.normal_(model.head.weight, std=0.05)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = freeze_except(model, "output_fusion")
    assert trainable and all(p.requires_grad for p in trainable)
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    data = ClipPairs(
        "noise", [_scene(160, 160, k) for k in range(2)], patch=32, n_frames=3, seed=1, flows=True
    )
    batch = tuple(torch.from_numpy(a) for a in data.batch(0, 2))
    logs = train_step(model, batch, optimizer, nn.L1Loss(), grad_clip=1.0)
    assert np.isfinite(logs["loss"])
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("output_fusion.") for k in changed)
    # The past (zero at the first frame) reached the fold of p - y through the recursion.
    assert "output_fusion.fold.weight" in changed
    with pytest.raises(ConfigError, match="matches no parameter"):
        freeze_except(build_model("efm-t"), "nothing_here")


def test_qat_keeps_the_shipped_still_path_and_trains_the_fusion(tmp_path, teacher_path):
    """``base_qat``: the single-frame QAT weights and step sizes come in frozen."""
    from qdr_core.models.checkpoint import load_fp32_model, model_payload, save_checkpoint
    from qdr_core.quant.qat_model import load_model
    from qdr_core.train.qat import QATConfig, fit_qat

    images = [_scene(160, 160, k) for k in range(3)]
    base = tmp_path / "base_qat.pt"
    fit_qat(QATConfig(task="noise", teacher=str(teacher_path), out=str(base), iters=2, batch_size=2, patch=32,
                      calib_batches=1, val_every=-1, seed=0, device="cpu"), progress=False, train_images=images)  # fmt: skip
    still, _ = load_fp32_model(teacher_path)
    recur = build_model("efm-t-recur")
    recur.load_state_dict(still.state_dict(), strict=False)
    teacher = tmp_path / "recur_fp32.pt"
    save_checkpoint(teacher, model_payload(recur.eval(), "fp32", {"task": "noise", "preset": "efm-t-recur"}))
    out = tmp_path / "recur_qat.pt"
    fit_qat(QATConfig(task="noise", teacher=str(teacher), out=str(out), iters=2, batch_size=2, patch=32,
                      calib_batches=1, val_every=-1, clip_frames=3, kd="output", seed=0, device="cpu",
                      base_qat=str(base), lr=1e-2), progress=False, train_images=images)  # fmt: skip
    base_state, recur_state = load_model(base).state_dict(), load_model(out).state_dict()
    for name, value in base_state.items():
        torch.testing.assert_close(recur_state[name], value, rtol=0, atol=0)
    # The fusion did train (the teacher's fusion is where it started).
    assert not torch.equal(
        recur_state["output_fusion.gate.weight"], recur.state_dict()["output_fusion.gate.weight"]
    )
    with pytest.raises(ConfigError, match="expected a QAT checkpoint"):
        fit_qat(QATConfig(task="noise", teacher=str(teacher), out=str(tmp_path / "x.pt"), iters=1, batch_size=1,
                          patch=32, calib_batches=1, val_every=-1, clip_frames=2, device="cpu",
                          base_qat=str(teacher)), progress=False, train_images=images)  # fmt: skip


@pytest.mark.parametrize(("task", "folder"), [("noise", "stream"), ("lowlight", "stream_optin")])
def test_shipped_stream_files_keep_the_shipped_still_path_and_use_the_past(task, folder):
    """models/<task>/<folder>/int8_cpu.onnx: its first frame (zero state) is the shipped single-frame
    INT8 restoration to within two grey levels (the fusion re-quantizes y; its zero-state gate leaks a little);
    on a still camera the later frames differ from it (the aligned past is used) and change less
    from frame to frame; for noise they are also closer to the clean frame."""
    from qdr_core.data.clips import ClipDegrader
    from qdr_core.paths import source_root

    models = source_root() / "models" / task
    # A bundled frame of vtest.avi (a static camera): the same scene 6 times, fresh noise each.
    bgr = cv2.imread(str(source_root() / "demo" / "images" / "vtest_0060.jpg"))
    clean = cv2.resize(bgr, (192, 144), interpolation=cv2.INTER_AREA)[..., ::-1].astype(np.float32) / 255
    degrader = ClipDegrader(task, 7, n_frames=6)  # one severity for the clip, fresh noise per frame
    frames = [degrader(t, clean) for t in range(6)]
    with (
        load_runtime(
            str(models / folder / "int8_cpu.onnx"), backend="onnxruntime", num_threads=1
        ) as stream_rt,
        load_runtime(str(models / "int8_cpu.onnx"), backend="onnxruntime", num_threads=1) as single,
    ):
        assert stream_rt.streaming and stream_rt.state_align == "flow"
        session = StreamSession(stream_rt)
        streamed = [session.infer(f) for f in frames]
        still = [single.infer(f) for f in frames]
    assert np.abs(streamed[0] - still[0]).mean() < 2 / 255
    assert np.abs(streamed[1] - still[1]).mean() > 1 / 255
    # A static camera: the stream changes less from frame to frame (the warping error, issue #14).
    change = lambda outs: float(np.mean([np.abs(b - a).mean() for a, b in itertools.pairwise(outs)]))  # noqa: E731
    assert change(streamed) < 0.7 * change(still)
    if task == "noise":  # low light gains on some clips and loses on others (docs/streaming.md)
        error = lambda outs: float(np.mean([(a - clean) ** 2 for a in outs[1:]]))  # noqa: E731
        assert error(streamed) < error(still)


@pytest.mark.parametrize("fill", ["abc", "nan", "1e9"])
def test_a_bad_state_fill_is_refused_at_load_in_one_line(recur_files, tmp_path, fill):
    from qdr_core.errors import ModelFileError

    proto = onnx.load(str(recur_files.onnx))
    for prop in proto.metadata_props:
        if prop.key == "state_fill":
            prop.value = fill
    path = tmp_path / "bad_fill.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ModelFileError, match="bad state_fill") as info:
        load_runtime(str(path), backend="onnxruntime")
    assert "\n" not in str(info.value)
