"""Shared test fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one torch thread is fastest and keeps the suite quick on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    """A tiny FP32 checkpoint (efm-t, small random head) to distil and quantize from."""
    import torch
    from torch import nn

    from qdr_core.models import build_model
    from qdr_core.models.checkpoint import model_payload, save_checkpoint

    torch.manual_seed(0)
    model = build_model("efm-t")
    nn.init.normal_(model.head.weight, std=0.02)
    path = tmp_path_factory.mktemp("teacher") / "fp32.pt"
    save_checkpoint(path, model_payload(model.eval(), "fp32", {"task": "noise", "preset": "efm-t"}))
    return path
