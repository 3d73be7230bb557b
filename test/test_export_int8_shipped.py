"""The shipped INT8 models: every ``models/<task>/qat.pt`` loads (its keys are an API), every
``int8_trt.onnx`` passes the TensorRT rules, every ``int8_cpu.onnx`` runs int8 conv kernels, all
under 5 MB, and the exports restore an image through the onnxruntime runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from qdr_core.export.ort_int8 import assert_int8_kernels
from qdr_core.export.trt_rules import check_trt_rules
from qdr_core.runtime import load_runtime

MODELS = Path(__file__).resolve().parents[1] / "models"
TASKS = sorted(p.parent.name for p in MODELS.glob("*/qat.pt"))
MAX_BYTES = 5 * 2**20

pytestmark = pytest.mark.skipif(not TASKS, reason="no shipped INT8 models under models/")


@pytest.mark.parametrize("task", TASKS)
def test_shipped_qat_checkpoint_loads(task):
    import torch

    from qdr_core.models.checkpoint import read_checkpoint
    from qdr_core.quant.convert import is_quantized
    from qdr_core.quant.qat_model import load_model

    payload = read_checkpoint(MODELS / task / "qat.pt")
    assert payload["kind"] == "qat" and payload["meta"]["task"] == task
    model = load_model(MODELS / task / "qat.pt")
    assert is_quantized(model)
    m = model.size_multiple  # 4, or 32 with a context pyramid (haze)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 4 * m, 5 * m))
    assert out.shape == (1, 3, 4 * m, 5 * m) and torch.isfinite(out).all()


@pytest.mark.parametrize("task", TASKS)
def test_shipped_exports_follow_their_rules(task):
    trt, cpu = MODELS / task / "int8_trt.onnx", MODELS / task / "int8_cpu.onnx"
    assert trt.stat().st_size < MAX_BYTES and cpu.stat().st_size < MAX_BYTES
    assert check_trt_rules(onnx.load(str(trt))) == []
    assert assert_int8_kernels(cpu)["QLinearConv"] >= 20
    image = np.random.default_rng(0).random((37, 45, 3), dtype=np.float32)
    outs = []
    for path in (trt, cpu):
        with load_runtime(path, backend="onnxruntime", num_threads=1) as rt:
            outs.append(rt.infer(image))
    # Two INT8 renderings of one QAT model: close, not identical (different activation grids).
    assert np.abs(outs[0] - outs[1]).mean() < 0.01
