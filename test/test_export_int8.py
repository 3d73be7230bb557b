"""INT8 exports: the TensorRT QDQ graph passes the rule checker (and broken ones fail it), matches
the fake-quant model in onnxruntime; the onnxruntime export runs int8 conv kernels."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn

from qdr_core.cli import main
from qdr_core.errors import ModelFileError
from qdr_core.export.ort_int8 import assert_int8_kernels, export_ort_int8, optimized_op_counts
from qdr_core.export.qdq_tensorrt import export_tensorrt_qdq
from qdr_core.export.trt_rules import assert_trt_rules, check_trt_rules
from qdr_core.models import build_model
from qdr_core.models.checkpoint import save_checkpoint
from qdr_core.quant import calibrate, qat_payload, quantize_model
from qdr_core.runtime import load_runtime

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def qat_model():
    torch.manual_seed(0)
    fp32 = build_model("efm-t")
    nn.init.normal_(fp32.head.weight, std=0.05)
    qat = quantize_model(fp32, act_method="max")
    g = torch.Generator().manual_seed(1)
    calibrate(qat, [torch.rand(2, 3, 32, 32, generator=g)])
    return qat.eval()


@pytest.fixture(scope="module")
def trt_path(qat_model, tmp_path_factory):
    return export_tensorrt_qdq(qat_model, tmp_path_factory.mktemp("trt") / "int8_trt.onnx")


@pytest.fixture(scope="module")
def cpu_path(qat_model, tmp_path_factory):
    rng = np.random.default_rng(0)
    calib = [rng.random((1, 3, 32, 32), dtype=np.float32) for _ in range(2)]
    return export_ort_int8(qat_model, tmp_path_factory.mktemp("cpu") / "int8_cpu.onnx", calib)


def _exact_int8_dot() -> bool:
    """Whether onnxruntime's fused u8s8 conv accumulates exactly on this CPU.

    With VNNI/AMX (or off x86) the int8 products are summed in int32. On AVX2-only x86 CPUs MLAS
    sums pairs of u8*s8 products in int16 (vpmaddubsw), which saturates for full-range inputs and
    weights such as this test's random model; onnxruntime documents it (reduce_range exists for it).
    The shipped models do not hit it: their int8_cpu PSNR is the same on both kinds of machine
    (docs/quantization.md).
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return True
    if not flags or " avx2" not in flags:
        return True
    return any(f" {f}" in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


# Mean abs error of ORT's fused int8 kernels vs the fake-quant model: rare one-step flips where the
# dot products are exact, int16 pair saturation on AVX2-only CPUs.
FUSED_TOL = 1e-3 if _exact_int8_dot() else 0.02


def _run(path, x, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def test_trt_export_follows_the_rules(trt_path):
    model = onnx.load(str(trt_path))
    assert check_trt_rules(model) == []
    ops = {n.op_type for n in model.graph.node}
    assert ops <= {
        "QuantizeLinear",
        "DequantizeLinear",
        "Conv",
        "Relu",
        "Add",
        "Mul",
        "Sigmoid",
        "DepthToSpace",
    }
    assert 17 <= model.opset_import[0].version <= 20
    n_conv = sum(n.op_type == "Conv" for n in model.graph.node)
    n_add = sum(n.op_type == "Add" for n in model.graph.node)
    assert n_conv == 14 and n_add == 5


def test_trt_export_matches_fake_quant(qat_model, trt_path):
    x = torch.rand(1, 3, 36, 52, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = qat_model(x).numpy()
    # Unoptimized, the QDQ graph computes exactly the fake-quant arithmetic.
    exact = _run(trt_path, x.numpy(), ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert np.abs(exact - ref).max() < 1e-5
    # onnxruntime's fused int8 kernels requantize differently (see FUSED_TOL).
    fused = _run(trt_path, x.numpy())
    assert np.abs(fused - ref).mean() < FUSED_TOL


def _mutate(path, fn):
    model = onnx.load(str(path))
    fn(model)
    return model


def _set_init(model, name, value):
    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(value, name))
            return
    raise KeyError(name)


def _first(model, op, pred=lambda n: True):
    return next(n for n in model.graph.node if n.op_type == op and pred(n))


def _nonzero_zero_point(m):
    _set_init(m, "qdq_act0.zero_point", np.array(3, np.int8))


def _uint8_zero_point(m):
    _set_init(m, "qdq_act0.zero_point", np.array(128, np.uint8))


def _unquantized_add_input(m):
    add = _first(m, "Add")
    dq = _first(m, "DequantizeLinear", lambda n: n.output[0] == add.input[1])
    q = _first(m, "QuantizeLinear", lambda n: n.output[0] == dq.input[0])
    add.input[1] = q.input[0]


def _per_tensor_weight(m):
    conv = _first(m, "Conv")
    dq = _first(m, "DequantizeLinear", lambda n: n.output[0] == conv.input[1])
    del dq.attribute[:]
    dq.attribute.append(helper.make_attribute("axis", 1))


def _float_op(m):
    relu = _first(m, "Relu")
    relu.op_type = "Clip"


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (_nonzero_zero_point, "zero-point is not 0"),
        (_uint8_zero_point, "is not int8"),
        (_unquantized_add_input, "residual Add input"),
        (_per_tensor_weight, "per-channel on axis 0"),
        (_float_op, "op Clip not allowed"),
    ],
)
def test_rule_checker_fails_deliberately_wrong_models(trt_path, mutation, message):
    bad = _mutate(trt_path, mutation)
    errors = check_trt_rules(bad)
    assert any(message in e for e in errors), errors
    with pytest.raises(ModelFileError):
        assert_trt_rules(bad)


def test_rule_checker_fails_a_float_model(tmp_path):
    from qdr_core.export.onnx_fp32 import export_onnx

    path = export_onnx(build_model("efm-t"), tmp_path / "fp32.onnx")
    errors = check_trt_rules(onnx.load(str(path)))
    assert any("Conv input" in e for e in errors) and any("Add input" in e for e in errors)


def test_cpu_export_runs_int8_conv_kernels(cpu_path):
    counts = assert_int8_kernels(cpu_path)
    # Every conv but the stem and the 12-channel head (FP32 on purpose, see CPU_FP32_CONVS) is
    # QLinearConv.
    assert counts["QLinearConv"] == 12
    assert counts.get("Conv", 0) + counts.get("FusedConv", 0) == 2
    # Weights stored as INT8 with the learned per-channel scales, activations U8.
    model = onnx.load(str(cpu_path))
    types = {
        numpy_helper.to_array(i).dtype for i in model.graph.initializer if i.name.endswith("weight_quantized")
    }
    assert types == {np.dtype(np.int8)}


def test_cpu_export_fp32_stem_reads_the_float_image(cpu_path):
    model = onnx.load(str(cpu_path))
    stem = next(n for n in model.graph.node if n.op_type == "Conv" and n.input[1] == "stem.weight")
    clip = next(n for n in model.graph.node if stem.input[0] in n.output)
    # The float path keeps the learned input range: Clip(input, 0, 255 * s) of the input quantizer.
    assert clip.op_type == "Clip" and clip.input[0] == "input"
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert float(inits[clip.input[1]]) == 0.0
    assert np.isclose(inits[clip.input[2]], 255 * inits["input_scale"])
    # No Q -> DQ pair is left dangling by the rewiring.
    used = {name for n in model.graph.node for name in n.input} | {o.name for o in model.graph.output}
    assert all(set(n.output) & used for n in model.graph.node)


def test_cpu_export_shuffles_uint8(cpu_path):
    # The up-sampling DepthToSpace gets its input quantized with its output's learned range, so
    # onnxruntime drops the DQ/Q pair around it: no float tensor enters it from a DequantizeLinear.
    model = onnx.load(str(cpu_path))
    producer = {o: n for n in model.graph.node for o in n.output}
    up = next(n for n in model.graph.node if n.op_type == "DepthToSpace" and "up" in n.name)
    dq = producer[up.input[0]]
    q_scale = {
        n.input[1] for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == up.output[0]
    }
    assert dq.op_type == "DequantizeLinear" and q_scale
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert np.array_equal(inits[dq.input[1]], inits[q_scale.pop()])
    optimized = _optimized(cpu_path)
    opt_producer = {o: n for n in optimized.node for o in n.output}
    shuffles = [n for n in optimized.node if n.op_type == "DepthToSpace" and "up" in n.name]
    assert shuffles and all(opt_producer[n.input[0]].op_type != "DequantizeLinear" for n in shuffles)


def _optimized(path) -> onnx.GraphProto:
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.optimized_model_filepath = f"{tmp}/opt.onnx"
        opts.log_severity_level = 3
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return onnx.load(f"{tmp}/opt.onnx").graph


def test_cpu_export_all_int8_when_asked(qat_model, tmp_path):
    rng = np.random.default_rng(0)
    path = export_ort_int8(
        qat_model, tmp_path / "all.onnx", [rng.random((1, 3, 32, 32), dtype=np.float32)], fp32_convs=()
    )
    counts = assert_int8_kernels(path, max_float_convs=0)
    assert counts["QLinearConv"] == 14


def test_cpu_export_keeps_learned_scales(qat_model, cpu_path):
    model = onnx.load(str(cpu_path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    learned = qat_model.down.weight_quant.step_size().detach().numpy()
    assert np.allclose(inits["down.weight_scale"], learned, rtol=1e-6)


def test_cpu_export_is_close_to_fake_quant_through_the_runtime(qat_model, cpu_path, trt_path):
    rng = np.random.default_rng(5)
    image = rng.random((37, 50, 3), dtype=np.float32)
    with torch.no_grad():
        x = torch.from_numpy(
            np.pad(image, ((0, 3), (0, 2), (0, 0)), mode="reflect").transpose(2, 0, 1).copy()
        )
        ref = qat_model(x[None])[0, :, :37, :50].clamp(0, 1).numpy().transpose(1, 2, 0)
    for path, tol in ((cpu_path, 0.02), (trt_path, FUSED_TOL)):
        with load_runtime(path, backend="onnxruntime", num_threads=1) as rt:
            assert np.abs(rt.infer(image) - ref).mean() < tol


def test_float_export_is_not_int8(tmp_path):
    from qdr_core.export.onnx_fp32 import export_onnx

    path = export_onnx(build_model("efm-t"), tmp_path / "fp32.onnx")
    with pytest.raises(ModelFileError):
        assert_int8_kernels(path)
    assert "QLinearConv" not in optimized_op_counts(path)


def test_cli_export_targets(qat_model, tmp_path):
    ckpt = tmp_path / "qat.pt"
    save_checkpoint(ckpt, qat_payload(copy.deepcopy(qat_model), {"task": "noise"}))
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(ckpt),
                "--target",
                "tensorrt",
                "--output",
                str(tmp_path / "t.onnx"),
            ]
        )
        == 0
    )
    assert check_trt_rules(onnx.load(str(tmp_path / "t.onnx"))) == []
    assert (
        main(["export", "--checkpoint", str(ckpt), "--target", "fp32", "--output", str(tmp_path / "f.onnx")])
        == 0
    )
    fp32 = tmp_path / "fp32.pt"
    from qdr_core.models.checkpoint import model_payload

    save_checkpoint(fp32, model_payload(build_model("efm-t"), "fp32", {}))
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(fp32),
                "--target",
                "tensorrt",
                "--output",
                str(tmp_path / "x.onnx"),
            ]
        )
        == 2
    )


def test_cropping_pyramid_int8_exports(tmp_path):
    """A cropping context pyramid (efm-s-auto) adds Slice and shape ops: the TensorRT export passes
    the rules (which still refuse shape ops over activations), both exports match the fake-quant
    model at a size whose deep levels round up, and onnxruntime crops and shuffles uint8."""
    from qdr_core.models import preset_config

    torch.manual_seed(0)
    fp32 = build_model(preset_config("efm-t", context_levels=5, context_crop=True))
    nn.init.normal_(fp32.head.weight, std=0.05)
    with torch.no_grad():
        for conv in fp32.context.up:
            conv.weight.normal_(0, 0.05)
    qat = quantize_model(fp32, act_method="max")
    calibrate(qat, [torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))])
    qat.eval()
    trt = export_tensorrt_qdq(qat, tmp_path / "trt.onnx")
    rng = np.random.default_rng(0)
    cpu = export_ort_int8(qat, tmp_path / "cpu.onnx", [rng.random((1, 3, 256, 256), dtype=np.float32)])
    assert "Slice" in {n.op_type for n in onnx.load(str(trt)).graph.node}
    x = torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(2))  # 1/64: 1.5 cells
    with torch.no_grad():
        ref = qat(x).numpy()
    # Unoptimized, the QDQ graph is the fake-quant arithmetic up to the odd rounding tie (one flip
    # in a deep level reaches many pixels: mean, not max).
    assert np.abs(_run(trt, x.numpy(), ort.GraphOptimizationLevel.ORT_DISABLE_ALL) - ref).mean() < 1e-4
    assert np.abs(_run(cpu, x.numpy()) - ref).mean() < 0.02
    optimized = _optimized(cpu)
    producer = {o: n for n in optimized.node for o in n.output}
    moved = [n for n in optimized.node if n.op_type in ("Slice", "DepthToSpace") and "context" in n.name]
    assert moved and all(producer[n.input[0]].op_type != "DequantizeLinear" for n in moved)
    # A shape op reading an activation (not a shape) breaks the rules.
    bad = onnx.load(str(trt))
    gather = _first(bad, "Gather")
    conv = _first(bad, "Conv")
    gather.input[0] = conv.output[0]
    assert any("Gather input" in e and "not a shape" in e for e in check_trt_rules(bad))
    bad = onnx.load(str(trt))
    _first(bad, "Slice").input[2] = conv.output[0]
    assert any("Slice bound" in e for e in check_trt_rules(bad))
