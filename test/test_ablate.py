"""``qdr ablate``: the ``auto`` model is scored on realistic conditions with clean frames apart, and
``--reuse`` scores a variant's existing checkpoint only when it was made with the ablation's schedule."""

from __future__ import annotations

import hashlib
import math
import shutil

import numpy as np
import pytest
import torch
from torch import nn
from train_helpers import smooth_images

from qdr_core.ablate import (
    AUTO_ABLATION_CONDITIONS,
    CLEAN,
    VARIANTS,
    AblationConfig,
    _score,
    check_reuse,
    eval_set,
    run_ablation,
    variant_qat_config,
)
from qdr_core.cli import main
from qdr_core.data.degrade.pipeline import Condition
from qdr_core.errors import ConfigError
from qdr_core.models import build_model
from qdr_core.models.checkpoint import model_payload, save_checkpoint
from qdr_core.tasks import AUTO_TASK
from qdr_core.train.qat import fit_qat

pytestmark = pytest.mark.usefixtures("one_torch_thread")
VARIANT = {v.name: v for v in VARIANTS}


def _config(tmp_path, **kw) -> AblationConfig:
    values = dict(task=AUTO_TASK, teacher=str(tmp_path / "teacher" / "fp32.pt"), out_dir=str(tmp_path / "abl"),
                  iters=2, batch_size=2, patch=32, eval_images=1, max_side=48, reuse=True, fake_quant=False)  # fmt: skip
    values.update(kw)
    return AblationConfig(**values)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny auto teacher and the ``qat`` variant already trained with the ablation's schedule."""
    root = tmp_path_factory.mktemp("ablate")
    torch.manual_seed(0)
    model = build_model("efm-t")
    nn.init.normal_(model.head.weight, std=0.02)
    (root / "teacher").mkdir()
    save_checkpoint(
        root / "teacher" / "fp32.pt",
        model_payload(model.eval(), "fp32", {"task": AUTO_TASK, "preset": "efm-t"}),
    )
    fit_qat(
        variant_qat_config(_config(root), VARIANT["qat"]), progress=False, train_images=smooth_images(2, 48)
    )
    return root


def test_auto_eval_set_is_the_conditions_and_clean_frames():
    data = eval_set(AUTO_TASK, count=1, max_side=48)
    names = [Condition.parse(c).name for c in AUTO_ABLATION_CONDITIONS]
    assert list(data.groups) == names and CLEAN in names and len(names) > 3
    for (_, degraded, clean), group, before in zip(data.pairs, data.groups, data.inputs):
        assert max(clean.shape[:2]) <= 48
        assert (group == CLEAN) == np.array_equal(degraded, clean)
        assert math.isinf(before.psnr) == (group == CLEAN)
    # A model that leaves every frame alone: perfect on clean frames, no gain elsewhere; the headline
    # means are over the degraded frames only (an infinite input PSNR would swamp them).
    result = _score(lambda image: image, data)
    by = result["by_condition"]
    assert math.isinf(by[CLEAN]["psnr_output"]) and set(by[CLEAN]) == {"psnr_output", "ssim_output"}
    degraded = [by[g]["psnr_input"] for g in names if g != CLEAN]
    assert result["psnr_input"] == pytest.approx(np.mean(degraded))
    assert result["psnr_output"] == pytest.approx(result["psnr_input"])
    assert result["n_images"] == len(names)


def test_benchmark_tasks_keep_one_group_and_unknown_tasks_are_refused():
    data = eval_set("noise", count=1, max_side=48)
    assert data.groups == ("noise",)
    assert "by_condition" not in _score(lambda image: image, data)
    with pytest.raises(ConfigError, match="unknown task"):
        eval_set("snow", count=1)


def test_auto_ablation_reuses_an_existing_variant_and_trains_the_others(trained, tmp_path):
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    qat_path = tmp_path / "abl" / "qat" / "qat.pt"
    before = (_digest(qat_path), qat_path.stat().st_mtime_ns)
    rows = run_ablation(
        _config(tmp_path, variants="fp32,ptq,qat"), progress=False, train_images=smooth_images(2, 48)
    )
    assert (_digest(qat_path), qat_path.stat().st_mtime_ns) == before  # scored as it was, not trained again
    row = {r["variant"]: r for r in rows}
    assert row["qat"]["reused"] and row["qat"]["checkpoint_config"]["iters"] == 2
    assert row["qat"]["checkpoint_meta"]["step"] == 2
    assert not row["ptq"]["reused"] and (tmp_path / "abl" / "ptq" / "qat.pt").is_file()
    names = [Condition.parse(c).name for c in AUTO_ABLATION_CONDITIONS]
    for r in rows:
        for key in ("cpu", "trt"):
            assert list(r[key]["by_condition"]) == names
            assert math.isfinite(r[key]["psnr_output"]) and math.isfinite(r[f"{key}_recovery"]["psnr_ratio"])
    table = (tmp_path / "abl" / "ablation.md").read_text()
    assert "QAT (reused)" in table and "clean PSNR" in table and "| fog:medium+rain:medium |" in table
    assert "PTQ (calibration only) (reused)" not in table


@pytest.mark.parametrize(
    ("variant", "change", "message"),
    [
        ("qat", {"iters": 3}, r"iters=2 \(ablation: 3\)"),
        ("qat", {"lr": 2e-4}, r"lr=0.0001 \(ablation: 0.0002\)"),
        ("qat_dfd", {}, r"kd='none' \(ablation: 'dfd'\)"),
        ("qdr", {"patch": 48}, r"kd='none'.*balance='fixed' \(ablation: 'lmr'\).*patch=32 \(ablation: 48\)"),
    ],
)
def test_reuse_refuses_a_checkpoint_of_another_schedule(trained, tmp_path, variant, change, message):
    cfg = _config(trained, **change)
    qcfg = variant_qat_config(cfg, VARIANT[variant])
    with pytest.raises(ConfigError, match=message):
        check_reuse(trained / "abl" / "qat" / "qat.pt", qcfg, "efm-t")


def test_reuse_accepts_the_teacher_at_another_path_but_not_another_preset(trained, tmp_path):
    moved = tmp_path / "elsewhere.pt"
    shutil.copy(trained / "teacher" / "fp32.pt", moved)
    qcfg = variant_qat_config(_config(trained, teacher=str(moved)), VARIANT["qat"])
    assert check_reuse(trained / "abl" / "qat" / "qat.pt", qcfg, "efm-t")["step"] == 2
    with pytest.raises(ConfigError, match=r"preset='efm-t' \(ablation's teacher: 'efm-s'\)"):
        check_reuse(trained / "abl" / "qat" / "qat.pt", qcfg, "efm-s")


def test_cli_reuse_mismatch_is_one_line(trained, tmp_path, capsys):
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    argv = ["ablate", "--task", "auto", "--teacher", str(tmp_path / "teacher" / "fp32.pt"), "--out-dir",
            str(tmp_path / "abl"), "--variants", "qat", "--iters", "5", "--batch-size", "2", "--patch", "32",
            "--eval-images", "1", "--max-side", "48", "--reuse", "--no-fake-quant", "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "iters=2 (ablation: 5)" in err and "--reuse" in err
