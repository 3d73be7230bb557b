"""The all-conditions ``auto`` model: the efm-s-auto preset (context pyramid + global condition
descriptor) fits the budget, starts as the model it is initialised from, reads the whole frame,
exports to ONNX / both INT8 graphs; ``auto`` trains (and resumes) and QATs on condition pairs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from qdr_core.data.datasets import AUTO_VAL_CONDITIONS, ConditionPairs
from qdr_core.export.onnx_fp32 import export_onnx
from qdr_core.export.ort_int8 import assert_int8_kernels, export_ort_int8
from qdr_core.export.qdq_tensorrt import export_tensorrt_qdq
from qdr_core.export.trt_rules import check_trt_rules
from qdr_core.models import PRESETS, EFMConfig, build_model, preset_config
from qdr_core.models.checkpoint import init_from, model_payload, read_checkpoint, save_checkpoint
from qdr_core.models.complexity import count_macs, count_params
from qdr_core.quant import calibrate, quantize_model
from qdr_core.tasks import AUTO_TASK, MODEL_TASKS, TASKS
from qdr_core.train.config import TrainConfig
from qdr_core.train.qat import QATConfig, fit_qat
from qdr_core.train.trainer import fit, synthetic_pairs, synthetic_validation_pairs, training_split

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: efm-s-auto at test width, one context level (multiple 8): small enough for seconds on a CPU.
TINY_AUTO = EFMConfig.from_dict(dict(PRESETS["efm-s-auto"].to_dict(), width=4, context_levels=1))


def _open(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random head, pyramid up-projections and descriptor heads (all start at zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv, std in [
            (model.head, 0.05),
            *[(c, 0.1) for c in model.context.up],
            *[(c, 0.3) for c in model.condition.heads],
        ]:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * std)
    return model


def _images(n=3, size=72, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    return [
        np.clip(np.stack([np.sin(xx * f + p) * 0.3 + 0.4 * yy + 0.3 for p in rng.uniform(0, 3, 3)], -1), 0, 1)
        .astype(np.float32)
        for f in rng.uniform(2, 8, n)
    ]  # fmt: skip


def test_auto_preset_fits_the_budget_and_extends_the_haze_architecture() -> None:
    auto = build_model("efm-s-auto")
    macs = count_macs(auto, 480, 640)
    assert macs <= 12e9
    ctx5 = build_model("efm-s-ctx5")
    # The descriptor adds parameters but (1x1 convs on one pixel) almost no MACs.
    assert count_params(auto) > count_params(ctx5)
    assert macs - count_macs(ctx5, 480, 640) < 1e5
    assert AUTO_TASK in MODEL_TASKS and AUTO_TASK not in TASKS


def test_descriptor_starts_as_identity_then_reads_the_whole_frame(tmp_path) -> None:
    torch.manual_seed(0)
    plain = build_model(preset_config("efm-t", context_levels=1))
    with torch.no_grad():
        plain.head.weight.normal_(0, 0.1)
    save_checkpoint(tmp_path / "p.pt", model_payload(plain))
    auto = build_model(preset_config("efm-t", context_levels=1, condition=True))
    fresh = init_from(auto, tmp_path / "p.pt")
    assert fresh and all(name.startswith("condition.") for name in fresh)
    x = torch.rand(2, 3, 32, 48)
    assert torch.allclose(auto.eval()(x), plain.eval()(x), atol=1e-6)
    scales = auto.condition(torch.rand(1, 16, 8, 12))
    assert len(scales) == auto.cfg.mid_blocks and all(torch.all(s == 1) for s in scales)

    _open(auto)
    a, b = torch.rand(1, 16, 8, 12), torch.rand(1, 16, 8, 12) * 3
    sa, sb = auto.condition(a)[0], auto.condition(b)[0]
    assert sa.shape == (1, 16, 1, 1) and ((sa > 0) & (sa < 2)).all() and not torch.allclose(sa, sb)
    # A change in one corner reaches the opposite corner through the frame-wide descriptor.
    y = x.clone()
    y[..., :2, :2] = 1.0
    with torch.no_grad():
        auto.context.up[0].weight.zero_()  # leave the descriptor as the only long-range path
        far = (auto(y) - auto(x))[..., 24:, 36:].abs().max()
    assert far > 0


@pytest.mark.parametrize("size", [(40, 56), (24, 8)])
def test_auto_onnx_export_matches_torch(tmp_path, size) -> None:
    from qdr_core.bench.models import onnx_complexity

    model = _open(build_model(TINY_AUTO)).eval()
    path = export_onnx(model, tmp_path / "auto.onnx")
    graph = onnx.load(str(path)).graph
    # The cropping context pyramid adds its crop (Slice with bounds from Shape -> Gather -> Unsqueeze).
    assert {n.op_type for n in graph.node} <= {
        "Conv", "Relu", "Add", "Mul", "Sigmoid", "DepthToSpace", "GlobalAveragePool",
        "Slice", "Shape", "Gather", "Unsqueeze",
    }  # fmt: skip
    assert "GlobalAveragePool" in {n.op_type for n in graph.node}
    x = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    want = model(torch.from_numpy(x)).detach().numpy()
    assert np.abs(got - want).max() < 1e-4
    assert onnx_complexity(path, 48, 64)["macs"] == count_macs(model, 48, 64)


@pytest.fixture(scope="module")
def auto_qat():
    torch.manual_seed(0)
    qat = quantize_model(_open(build_model(TINY_AUTO)), act_method="max")
    calibrate(qat, [torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))])
    return qat.eval()


def test_auto_int8_exports_follow_the_rules_and_match_fake_quant(auto_qat, tmp_path) -> None:
    trt = export_tensorrt_qdq(auto_qat, tmp_path / "int8_trt.onnx")
    assert check_trt_rules(onnx.load(str(trt))) == []
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = auto_qat(x).numpy()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    exact = ort.InferenceSession(str(trt), opts, providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()}
    )
    assert np.abs(exact[0] - ref).max() < 1e-5

    rng = np.random.default_rng(0)
    calib = [rng.random((1, 3, 32, 32), dtype=np.float32) for _ in range(2)]
    cpu = export_ort_int8(auto_qat, tmp_path / "int8_cpu.onnx", calib)
    counts = assert_int8_kernels(cpu)
    assert counts["QLinearConv"] >= sum(isinstance(m, nn.Conv2d) for m in auto_qat.modules()) - 2
    got = ort.InferenceSession(str(cpu), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[
        0
    ]
    assert np.abs(got - ref).mean() < 0.02


def test_auto_training_data_and_validation_cover_the_conditions() -> None:
    assert training_split(AUTO_TASK) == "train_all" and training_split("haze") == "train"
    data = synthetic_pairs(AUTO_TASK, _images(), 32, seed=0)
    assert isinstance(data, ConditionPairs)
    degraded, clean = data.batch(0, 4)
    assert degraded.shape == clean.shape == (4, 3, 32, 32)
    val = synthetic_validation_pairs(AUTO_TASK, 1, 64)
    assert len(val) == len(AUTO_VAL_CONDITIONS)
    assert [name.split("/")[0] for name, _, _ in val] == list(AUTO_VAL_CONDITIONS)
    assert all(not np.array_equal(d, c) for _, d, c in val)


def _auto_config(tmp_path, **kw) -> TrainConfig:
    values = dict(task=AUTO_TASK, preset="efm-t", out_dir=str(tmp_path / "run"), iters=4, batch_size=2, patch=32,
                  lr=5e-3, warmup=1, val_every=4, val_images=1, val_size=32, save_every=2, seed=0, threads=1)  # fmt: skip
    values.update(kw)
    return TrainConfig(**values)


def test_auto_fit_resumes_to_the_same_weights_and_qat_runs(tmp_path) -> None:
    images = _images()
    # A flat schedule after warm-up, so a 2-step run is the first half of the 4-step one.
    straight = fit(_auto_config(tmp_path / "a", min_lr_ratio=1.0), progress=False, train_images=images)
    fit(_auto_config(tmp_path / "b", iters=2, min_lr_ratio=1.0), progress=False, train_images=images)
    # Resume the 2-step run's last.pt to 4 steps: same stream, same weights as the straight run.
    resumed = fit(
        _auto_config(tmp_path / "b", min_lr_ratio=1.0), resume=True, progress=False, train_images=images
    )
    assert read_checkpoint(tmp_path / "b" / "run" / "last.pt")["meta"]["step"] == 4
    a = read_checkpoint(straight["checkpoint"])["state_dict"]
    b = read_checkpoint(resumed["checkpoint"])["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert any("psnr_output" in h for h in straight["history"])

    cfg = QATConfig(task=AUTO_TASK, teacher=straight["checkpoint"], out=str(tmp_path / "qat.pt"), iters=2,
                    batch_size=2, patch=32, calib_batches=1, val_images=1, val_size=32, threads=1)  # fmt: skip
    result = fit_qat(cfg, progress=False, train_images=images)
    payload = read_checkpoint(result["checkpoint"])
    assert payload["kind"] == "qat" and payload["meta"]["task"] == AUTO_TASK
    assert any("psnr_output" in h for h in result["history"])
