"""FP32 training: the step lowers the loss, the loop writes its files, resume continues exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qdr_core.config import from_dict, load_yaml
from qdr_core.data.datasets import SyntheticPairs
from qdr_core.data.imageio import write_rgb
from qdr_core.data.sources import skimage_photo
from qdr_core.errors import ConfigError
from qdr_core.models import build_model
from qdr_core.models.checkpoint import load_fp32_model, read_checkpoint
from qdr_core.train.config import TrainConfig
from qdr_core.train.losses import CharbonnierLoss, ReconstructionLoss
from qdr_core.train.trainer import cosine_lr, fit, train_step


@pytest.fixture(scope="module")
def paired_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    for i, name in enumerate(("astronaut", "coffee")):
        clean = skimage_photo(name, max_side=64)
        noisy = np.clip(clean + np.random.default_rng(i).normal(0, 0.1, clean.shape), 0, 1)
        write_rgb(root / "in" / f"{name}.png", noisy)
        write_rgb(root / "gt" / f"{name}.png", clean)
    return str(root / "in"), str(root / "gt")


def tiny_config(tmp_path, paired_dirs, **kw) -> TrainConfig:
    values = dict(task="noise", preset="efm-t", out_dir=str(tmp_path / "run"), iters=4, batch_size=2, patch=32,
                  lr=5e-3, warmup=1, val_every=2, val_images=1, val_size=32, save_every=2, seed=0, threads=1,
                  input_dir=paired_dirs[0], target_dir=paired_dirs[1])  # fmt: skip
    values.update(kw)
    return TrainConfig(**values)


def test_three_steps_lower_the_loss() -> None:
    torch.manual_seed(0)
    model = build_model("efm-t")
    data = SyntheticPairs("noise", [skimage_photo("astronaut", max_side=96)], patch=32)
    batch = tuple(torch.from_numpy(a) for a in data.batch(0, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    losses = [train_step(model, batch, opt, ReconstructionLoss())["loss"] for _ in range(3)]
    assert losses[2] < losses[0]


def test_losses() -> None:
    x = torch.zeros(1, 3, 16, 16)
    assert CharbonnierLoss(eps=1e-3)(x, x).item() == pytest.approx(1e-3)
    with_ssim = ReconstructionLoss("l1", ssim_weight=0.5)(torch.rand(1, 3, 16, 16), x)
    assert with_ssim > ReconstructionLoss("l1")(torch.rand(1, 3, 16, 16) * 0, x)
    with pytest.raises(ValueError, match="unknown reconstruction loss"):
        ReconstructionLoss("l3")


def test_cosine_schedule_warms_up_and_decays() -> None:
    cfg = TrainConfig(iters=100, warmup=10, min_lr_ratio=0.01)
    assert cosine_lr(0, cfg) == pytest.approx(0.1)
    assert cosine_lr(10, cfg) == pytest.approx(1.0)
    assert cosine_lr(100, cfg) == pytest.approx(0.01)


def test_fit_writes_checkpoint_curves_and_history(tmp_path, paired_dirs) -> None:
    result = fit(tiny_config(tmp_path, paired_dirs), progress=False)
    run = tmp_path / "run"
    assert {"fp32.pt", "last.pt", "history.json", "curves.png"} <= {p.name for p in run.iterdir()}
    model, payload = load_fp32_model(run / "fp32.pt")
    assert not model.training
    assert payload["meta"]["task"] == "noise" and payload["kind"] == "fp32"
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history if "psnr_output" in h] == [2, 4]
    assert result["checkpoint"].endswith("fp32.pt")


def test_resume_continues_to_the_same_weights(tmp_path, paired_dirs) -> None:
    straight = tiny_config(tmp_path / "a", paired_dirs, iters=4, save_every=2)
    fit(straight, progress=False)
    first = tiny_config(tmp_path / "b", paired_dirs, iters=4, save_every=2)
    # Interrupt after step 2 by training a 2-step run into the same folder with the 4-step schedule's state.
    fit(first, progress=False)
    state = read_checkpoint(tmp_path / "b" / "run" / "last.pt")
    assert state["meta"]["step"] == 4
    resumed = fit(
        tiny_config(tmp_path / "b", paired_dirs, iters=6, save_every=2), resume=True, progress=False
    )
    assert read_checkpoint(tmp_path / "b" / "run" / "last.pt")["meta"]["step"] == 6
    assert [h["step"] for h in resumed["history"] if "psnr_output" in h] == [2, 4, 6]
    a = read_checkpoint(tmp_path / "a" / "run" / "fp32.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "b" / "run" / "fp32.pt")["state_dict"]
    assert any(not torch.equal(a[k], b[k]) for k in a)  # two more steps changed the weights


def test_yaml_config_types_and_unknown_keys(tmp_path) -> None:
    (tmp_path / "c.yaml").write_text("task: haze\nlr: 2e-4\niters: '10'\nldg: false\n")
    cfg = load_yaml(TrainConfig, tmp_path / "c.yaml", iters=None)
    assert cfg.lr == pytest.approx(2e-4) and cfg.iters == 10 and cfg.ldg is False
    with pytest.raises(ConfigError, match="unknown TrainConfig keys"):
        from_dict(TrainConfig, {"learning_rate": 1})
    with pytest.raises(ConfigError, match="expected int"):
        from_dict(TrainConfig, {"iters": "many"})


def test_torchrun_ddp_two_processes(tmp_path, paired_dirs) -> None:
    """The same command under torchrun trains with DistributedDataParallel (gloo on CPU)."""
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "qdr_core.cli", "train",
           "--task", "noise", "--preset", "efm-t", "--iters", "3", "--batch-size", "2", "--patch", "32",
           "--val-every", "3", "--val-images", "1", "--val-size", "32", "--threads", "1", "--no-progress",
           "--input-dir", paired_dirs[0], "--target-dir", paired_dirs[1], "--out", str(tmp_path / "ddp")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("checkpoint:") == 1  # rank 0 alone writes and reports
    assert (tmp_path / "ddp" / "fp32.pt").exists()


def test_evaluate_model_pads_to_the_model_size_multiple() -> None:
    from qdr_core.models import build_model, preset_config
    from qdr_core.train.trainer import evaluate_model

    model = build_model(preset_config("efm-t", context_levels=2))  # needs multiples of 16
    rng = np.random.default_rng(0)
    clean = rng.random((36, 52, 3), dtype=np.float32)
    degraded = np.clip(clean + 0.1, 0, 1).astype(np.float32)
    scores = evaluate_model(model, [("a", degraded, clean)])
    # An untrained EFM is the identity: the output scores equal the input's.
    assert scores["psnr_output"] == pytest.approx(scores["psnr_input"], abs=1e-4)


def test_worker_processes_make_the_same_batches_in_order() -> None:
    from qdr_core.train.trainer import batch_stream

    data = SyntheticPairs("haze", [skimage_photo("astronaut", max_side=96)], patch=32, seed=3)
    serial = list(batch_stream(data, 2, 5, 9))
    parallel = list(batch_stream(data, 2, 5, 9, workers=2))
    assert len(serial) == len(parallel) == 4
    for (d0, c0), (d1, c1), step in zip(serial, parallel, range(5, 9)):
        expected = data.batch(step, 2)
        assert torch.equal(d0, d1) and torch.equal(c0, c1)
        assert np.array_equal(d0.numpy(), expected[0])


def test_fit_with_workers_matches_fit_without(tmp_path, paired_dirs) -> None:
    a = fit(tiny_config(tmp_path / "a", paired_dirs, iters=3), progress=False)
    b = fit(tiny_config(tmp_path / "b", paired_dirs, iters=3, workers=1), progress=False)
    wa = read_checkpoint(a["checkpoint"])["state_dict"]
    wb = read_checkpoint(b["checkpoint"])["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
