"""Time-budgeted training and QAT on a device: the cosine follows the clock, a run stops when the
time is up and writes its outputs at the step reached, ``--device cuda`` without a GPU is a config
error, and the CLI takes the flags."""

from __future__ import annotations

import json
import time

import pytest
import torch
from train_helpers import random_images

from qdr_core.cli import build_parser, main
from qdr_core.data.imageio import write_rgb
from qdr_core.errors import ConfigError
from qdr_core.models.checkpoint import read_checkpoint
from qdr_core.tasks import DATA_KINDS
from qdr_core.train.config import TrainConfig
from qdr_core.train.qat import QATConfig, fit_qat
from qdr_core.train.trainer import Budget, cosine_lr, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_cosine_progress_is_the_larger_of_steps_and_time() -> None:
    cfg = TrainConfig(iters=100, warmup=10, min_lr_ratio=0.01)
    # Step progress 0.5 (step 55): time behind it changes nothing, time ahead of it decides.
    assert cosine_lr(55, cfg, 0.2) == pytest.approx(cosine_lr(55, cfg))
    assert cosine_lr(55, cfg, 0.5) == pytest.approx(0.01 + 0.99 * 0.5)
    assert cosine_lr(55, cfg, 0.75) == pytest.approx(cosine_lr(77.5, cfg))
    assert cosine_lr(11, cfg, 1.0) == pytest.approx(0.01)
    assert cosine_lr(11, cfg, 3.0) == pytest.approx(0.01)  # an overrun budget stays at the floor
    assert cosine_lr(0, cfg, 0.9) == pytest.approx(0.1)  # the warm-up is by steps


def test_budget_fraction_and_expiry() -> None:
    none = Budget(0)
    assert none.fraction() == 0.0 and not none.expired()
    short = Budget(0.05)
    assert 0.0 <= short.fraction() < 1.0 and not short.expired()
    time.sleep(0.06)
    assert short.fraction() >= 1.0 and short.expired()


def test_fit_stops_when_the_time_is_up(tmp_path) -> None:
    for i, image in enumerate(random_images()):
        write_rgb(tmp_path / "gt" / f"{i}.png", image)
        write_rgb(tmp_path / "in" / f"{i}.png", image * 0.5)
    cfg = TrainConfig(task="noise", preset="efm-t", out_dir=str(tmp_path / "run"), iters=100_000, batch_size=1,
                      patch=16, warmup=1, min_lr_ratio=0.01, val_every=100_000, val_images=1, val_size=16,
                      save_every=100_000, seed=0, threads=1, time_budget=0.5,
                      input_dir=str(tmp_path / "in"), target_dir=str(tmp_path / "gt"))  # fmt: skip
    result = fit(cfg, progress=False)
    steps = result["steps"]
    assert 1 <= steps < cfg.iters
    run = tmp_path / "run"
    assert {"fp32.pt", "last.pt", "history.json"} <= {p.name for p in run.iterdir()}
    assert read_checkpoint(run / "fp32.pt")["meta"]["step"] == steps
    assert read_checkpoint(run / "last.pt")["meta"]["step"] == steps
    history = json.loads((run / "history.json").read_text())
    assert history[-1]["step"] == steps and "psnr_output" in history[-1]  # validated at the stop
    last_lr = [h["lr"] for h in history if "lr" in h][-1]
    assert last_lr == pytest.approx(cfg.lr * cfg.min_lr_ratio, rel=0.05)


def test_qat_with_a_worker_stops_when_the_time_is_up(teacher_path, tmp_path) -> None:
    cfg = QATConfig(task="noise", teacher=str(teacher_path), out=str(tmp_path / "qat.pt"), iters=100_000,
                    batch_size=1, patch=16, calib_batches=1, act_method="max", val_every=-1, log_every=1000,
                    threads=1, workers=1, time_budget=0.5, device="cpu")  # fmt: skip
    result = fit_qat(cfg, progress=False, train_images=random_images())
    payload = read_checkpoint(tmp_path / "qat.pt")
    steps = payload["meta"]["step"]
    assert 1 <= steps < cfg.iters and payload["meta"]["device"] == "cpu"
    assert result["history"][-1]["step"] == steps
    assert all(t.device.type == "cpu" for t in payload["state_dict"].values())
    from qdr_core.runtime import load_runtime

    with load_runtime(tmp_path / "qat.pt", backend="torch", num_threads=1) as rt:
        assert rt.infer(random_images(1, 20)[0]).shape == (20, 20, 3)


def test_device_cuda_without_a_gpu_is_a_one_line_config_error(teacher_path, tmp_path, capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("torch sees a GPU here")
    cfg = QATConfig(task="noise", teacher=str(teacher_path), out=str(tmp_path / "q.pt"), device="cuda")
    with pytest.raises(ConfigError, match="torch sees no GPU"):
        fit_qat(cfg, progress=False, train_images=random_images())
    argv = ["qat", "--task", "noise", "--teacher", str(teacher_path), "--out", str(tmp_path / "q.pt"),
            "--device", "cuda", "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch sees no GPU" in err
    assert not (tmp_path / "q.pt").exists()


def _choices(command: str, dest: str) -> list[str] | None:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    return next(a for a in sub._actions if a.dest == dest).choices


@pytest.mark.parametrize(
    "argv, dest, value",
    [
        (["train", "--time-budget", "300"], "time_budget", 300.0),
        (["train", "--data", "realistic"], "data", "realistic"),
        (["qat", "--task", "noise", "--teacher", "t.pt", "--device", "cpu"], "device", "cpu"),
        (["qat", "--task", "noise", "--teacher", "t.pt", "--time-budget", "2.5"], "time_budget", 2.5),
        (["qat", "--task", "noise", "--teacher", "t.pt", "--workers", "3"], "workers", 3),
        (["qat", "--task", "noise", "--teacher", "t.pt", "--data", "realistic"], "data", "realistic"),
    ],
)
def test_cli_parses_the_training_flags(argv, dest, value) -> None:
    assert getattr(build_parser().parse_args(argv), dest) == value


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "photos"],
        ["qat", "--task", "noise", "--teacher", "t.pt", "--device", "tpu"],
        ["qat", "--task", "noise", "--teacher", "t.pt", "--data", "photos"],
    ],
)
def test_cli_rejects_unknown_choices(argv) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)


def test_cli_choices_come_from_one_place() -> None:
    assert _choices("train", "data") == list(DATA_KINDS) == _choices("qat", "data")
    assert _choices("qat", "device") == ["auto", "cpu", "cuda"]
