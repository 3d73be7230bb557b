"""QAT training: loss goes down in a few steps, LMR weights move, PTQ-only runs, the CLI writes a
QAT checkpoint that loads through the torch runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from train_helpers import smooth_images

from qdr_core.cli import main
from qdr_core.distill import build_balancer
from qdr_core.models import build_model
from qdr_core.models.checkpoint import model_payload, read_checkpoint, save_checkpoint
from qdr_core.quant import calibrate, quantize_model
from qdr_core.train.losses import ReconstructionLoss
from qdr_core.train.qat import QATConfig, build_kd_loss, fit_qat, qat_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("kd", ["none", "output", "decoder", "dfd"])
def test_few_qat_steps_lower_the_loss(kd):
    torch.manual_seed(0)
    teacher = build_model("efm-t").eval().requires_grad_(False)
    nn.init.normal_(teacher.head.weight, std=0.02)
    student = quantize_model(teacher, act_method="max")
    calibrate(student, [torch.rand(2, 3, 32, 32)])
    x = torch.rand(4, 3, 32, 32)
    batch = (x, (x * 0.8 + 0.1).clamp(0, 1))  # a learnable target: contrast change
    kd_loss = build_kd_loss(kd, "l1", student, teacher)
    balancer = build_balancer("fixed", ("rec",) if kd_loss is None else ("rec", "kd"), 0.1)
    opt = torch.optim.AdamW(student.parameters(), lr=2e-3)
    logs = [
        qat_step(student, teacher, batch, opt, ReconstructionLoss(), kd_loss, kd, balancer) for _ in range(20)
    ]
    assert logs[-1]["loss_rec"] < 0.8 * logs[0]["loss_rec"]


def test_fit_qat_with_lmr_logs_weights_and_gradient_norms(teacher_path, tmp_path):
    cfg = QATConfig(
        task="noise", teacher=str(teacher_path), out=str(tmp_path / "qat.pt"), kd="dfd", balance="lmr",
        iters=6, batch_size=2, patch=32, lmr_lr=0.1, calib_batches=1, act_method="max", log_every=2,
        val_every=-1, threads=1,
    )  # fmt: skip
    result = fit_qat(cfg, progress=False, train_images=smooth_images())
    rows = [h for h in result["history"] if "w_rec" in h]
    assert len(rows) >= 3
    assert all("gnorm_rec" in r and "gnorm_kd" in r for r in rows)
    assert rows[-1]["w_rec"] != pytest.approx(1.0) and rows[-1]["w_kd"] != pytest.approx(1.0)
    payload = read_checkpoint(tmp_path / "qat.pt")
    assert payload["kind"] == "qat" and payload["meta"]["task"] == "noise"
    assert json.loads(payload["meta"]["config"])["kd"] == "dfd"
    assert (tmp_path / "qat.curves.png").is_file() and (tmp_path / "qat.history.json").is_file()


def test_ptq_only_and_larger_teacher_adapter(teacher_path, tmp_path):
    torch.manual_seed(1)
    big = build_model(build_model("efm-t").cfg.__class__(width=12, enc_blocks=1, mid_blocks=1, dec_blocks=1))
    big_path = tmp_path / "big.pt"
    save_checkpoint(big_path, model_payload(big.eval(), "fp32", {"task": "noise"}))
    ptq = fit_qat(
        QATConfig(task="noise", teacher=str(teacher_path), out=str(tmp_path / "ptq.pt"), ptq=True, batch_size=2,
                  patch=32, calib_batches=1, threads=1),
        progress=False, train_images=smooth_images(),
    )  # fmt: skip
    assert [h["step"] for h in ptq["history"]] == [0]
    result = fit_qat(
        QATConfig(task="noise", teacher=str(big_path), student_init=str(teacher_path), out=str(tmp_path / "q.pt"),
                  kd="dfd", iters=2, batch_size=2, patch=32, calib_batches=1, val_every=-1, threads=1),
        progress=False, train_images=smooth_images(),
    )  # fmt: skip
    assert result["model"].cfg.width == 8


def test_cli_qat_then_torch_runtime(teacher_path, tmp_path):
    from qdr_core.data.sources import photos
    from qdr_core.errors import DataError

    try:
        photos("train")
    except DataError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "cli_qat.pt"
    argv = ["qat", "--task", "noise", "--teacher", str(teacher_path), "--out", str(out), "--iters", "2",
            "--batch-size", "2", "--patch", "32", "--calib-batches", "1", "--val-every", "-1", "--threads", "1",
            "--act-method", "max", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    from qdr_core.runtime import load_runtime

    with load_runtime(out, backend="torch", num_threads=1) as rt:
        restored = rt.infer(np.random.default_rng(0).random((30, 41, 3), dtype=np.float32))
    assert restored.shape == (30, 41, 3) and restored.min() >= 0 and restored.max() <= 1
    with pytest.raises(SystemExit):
        main(["qat", "--task", "noise", "--teacher", str(teacher_path), "--kd", "bogus"])
