"""Gradient accumulation (``--accum-steps``) and the resumable time budget: k micro-batches make the
step of one k-times larger batch, a resumed run consumes the same micro-batches in the same order
and reaches the same weights as an uninterrupted one, and the budget's clock continues across a
resume instead of restarting the cosine."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from train_helpers import smooth_images

from qdr_core.data.imageio import write_rgb
from qdr_core.errors import ConfigError
from qdr_core.models import build_model
from qdr_core.models.checkpoint import read_checkpoint
from qdr_core.train.config import TrainConfig
from qdr_core.train.losses import CharbonnierLoss
from qdr_core.train.trainer import Budget, accumulated_step, fit, grouped, train_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("accum")
    rng = np.random.default_rng(0)
    for i, clean in enumerate(smooth_images(3, 48)):
        write_rgb(root / "gt" / f"{i}.png", clean)
        write_rgb(root / "in" / f"{i}.png", np.clip(clean + rng.normal(0, 0.08, clean.shape), 0, 1))
    return str(root / "in"), str(root / "gt")


def config(out, pairs, **kw) -> TrainConfig:
    values = dict(task="noise", preset="efm-t", out_dir=str(out), iters=4, batch_size=2, accum_steps=2, patch=16,
                  lr=2e-3, warmup=1, min_lr_ratio=1.0, val_every=100, val_images=1, val_size=16, save_every=1,
                  seed=0, threads=1, input_dir=pairs[0], target_dir=pairs[1])  # fmt: skip
    values.update(kw)
    return TrainConfig(**values)


def _trained(model: torch.nn.Module) -> torch.nn.Module:
    # An untrained EFM is the identity (zero-initialised output): perturb it so every weight has a gradient.
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_accumulated_micro_batches_make_the_step_of_one_large_batch() -> None:
    torch.manual_seed(0)
    model = _trained(build_model("efm-t"))
    twin = copy.deepcopy(model)
    clean = torch.rand(4, 3, 16, 16)
    degraded = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    opt_a = torch.optim.SGD(model.parameters(), lr=0.5)
    opt_b = torch.optim.SGD(twin.parameters(), lr=0.5)
    micro = [(degraded[:2], clean[:2]), (degraded[2:], clean[2:])]
    logs_a = accumulated_step(model, micro, opt_a, CharbonnierLoss())
    logs_b = train_step(twin, (degraded, clean), opt_b, CharbonnierLoss())
    assert logs_a["loss"] == pytest.approx(logs_b["loss"], rel=1e-5)
    assert logs_a["grad_norm"] == pytest.approx(logs_b["grad_norm"], rel=1e-4)
    changed = 0
    for (name, a), b in zip(model.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
        changed += 1
    assert changed > 10


def test_grouped_drops_a_short_tail() -> None:
    assert list(grouped(range(7), 3)) == [[0, 1, 2], [3, 4, 5]]
    assert list(grouped(range(2), 1)) == [[0], [1]]


def test_resumed_accumulating_run_reaches_the_uninterrupted_weights(tmp_path, pairs) -> None:
    straight = fit(config(tmp_path / "a", pairs), progress=False)
    assert straight["steps"] == 4
    # The same run interrupted after step 2 (iters=2 there; the lr is constant: min_lr_ratio 1), resumed to 4.
    fit(config(tmp_path / "b", pairs, iters=2), progress=False)
    assert read_checkpoint(tmp_path / "b" / "last.pt")["meta"]["step"] == 2
    fit(config(tmp_path / "b", pairs), resume=True, progress=False)
    a = read_checkpoint(tmp_path / "a" / "fp32.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "b" / "fp32.pt")["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    # Resuming from micro-batch 2 instead of 4 (the step, not step x accum_steps) would differ:
    fit(config(tmp_path / "c", pairs, iters=2, accum_steps=1, batch_size=2), progress=False)
    fit(config(tmp_path / "c", pairs, accum_steps=1, batch_size=2), resume=True, progress=False)
    c = read_checkpoint(tmp_path / "c" / "fp32.pt")["state_dict"]
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_resume_continues_the_time_budget_clock(tmp_path, pairs) -> None:
    fit(config(tmp_path / "r", pairs, iters=2, time_budget=600.0), progress=False)
    spent = read_checkpoint(tmp_path / "r" / "last.pt")["meta"]["seconds_spent"]
    assert 0 < spent < 600
    fit(config(tmp_path / "r", pairs, iters=3, time_budget=600.0), resume=True, progress=False)
    assert read_checkpoint(tmp_path / "r" / "last.pt")["meta"]["seconds_spent"] > spent
    budget = Budget(100.0)
    budget.resume_at(75.0)
    assert budget.fraction() == pytest.approx(0.75, abs=0.01) and not budget.expired()
    budget.resume_at(100.0)
    assert budget.expired()
    assert Budget(10.0, spent=5.0).fraction() == pytest.approx(0.5, abs=0.01)


def test_accumulation_is_refused_where_it_does_not_apply(tmp_path, pairs) -> None:
    with pytest.raises(ConfigError, match="--accum-steps must be >= 1"):
        fit(config(tmp_path / "z", pairs, accum_steps=0), progress=False)
    with pytest.raises(ConfigError, match="needs stills"):
        fit(
            config(tmp_path / "s", pairs, preset="efm-t-recur", input_dir=None, target_dir=None),
            progress=False,
        )


def test_checkpoints_record_the_source_commit(tmp_path, pairs) -> None:
    import subprocess

    from qdr_core.paths import git_commit, source_root

    fit(config(tmp_path / "g", pairs, iters=1, accum_steps=1), progress=False)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=source_root()
    )
    expected = head.stdout.strip() or "unknown"
    assert git_commit() == expected
    for name in ("fp32.pt", "last.pt"):
        assert read_checkpoint(tmp_path / "g" / name)["meta"]["git_commit"] == expected
