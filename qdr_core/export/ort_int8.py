"""onnxruntime CPU export: an INT8 QDQ model whose convs fuse into QLinearConv (U8 activations,
S8 per-channel weights) and run real int8 kernels (VNNI on x86).

Built from the QAT weights with the QAT-learned ranges carried over: the FP32 graph of the clipped
QAT weights goes through ``onnxruntime.quantization.quantize_static`` with ``TensorQuantOverrides``
that pin every tensor the QAT model quantized to its learned step size, and every weight to its
learned per-channel scale. Tensors the TensorRT-style model keeps in float but onnxruntime needs
quantized for its fusions (conv outputs before the LDG Mul, the gate, the up-sampling) take
calibrated ranges from a few images.

Symmetric INT8 ``[-128 s, 127 s]`` maps onto U8 as zero-point 128 with the same step; a tensor that
is never negative (a ReLU output, the input image) keeps the learned clip ``127 s`` and spends all
256 levels on ``[0, 127 s]`` (zero-point 0), which also lets onnxruntime drop the ReLU into the conv.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx

from qdr_core.errors import ModelFileError
from qdr_core.export.onnx_fp32 import shape_metadata, temporal_metadata
from qdr_core.export.quant_points import export_float_graph, quant_plan
from qdr_core.models.efm import EFM

CPU_OPSET = 17
# Convs left in FP32 on the CPU, where MLAS's int8 conv is slower than its FP32 (NCHWc) conv:
# the 3-channel-input stem and the 12-channel head (efm-s, 640x480, 1 thread, profiled:
# stem 4.3 ms int8 vs 2.0 ms FP32, head 6.3 ms int8 vs 4.7 ms FP32). The head is also where INT8
# would cost most PSNR. An FP32 conv reads the float tensor, not its DequantizeLinear: onnxruntime
# would otherwise quantize the float weight of a DQ -> Conv group itself and run it in int8.
CPU_FP32_CONVS = ("stem.weight", "head.weight")
INT8_KERNELS = ("QLinearConv", "ConvInteger", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "MatMulInteger")


class _Reader:
    """``CalibrationDataReader`` over NCHW float32 batches."""

    def __init__(self, batches: Iterable[np.ndarray]) -> None:
        self._it = iter(
            [b if isinstance(b, dict) else {"input": np.ascontiguousarray(b, np.float32)} for b in batches]
        )

    def get_next(self):
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - quantize_static reads once
        pass


def _streaming_feeds(model: EFM, batches: Iterable[np.ndarray]) -> list[np.ndarray | dict]:
    """Calibration feeds of a streaming model: the batches as consecutive frames of one stream,
    each with the state the float model carried from the previous one (its empty state for the
    first), so the ranges are those of a running stream."""
    import torch

    feeds: list[np.ndarray | dict] = []
    state = None
    with torch.no_grad():
        for batch in batches:
            x = torch.from_numpy(np.ascontiguousarray(batch, np.float32))
            shape = model.state_shape(x.shape[0], x.shape[2], x.shape[3])
            if state is None or tuple(state.shape) != shape:
                state = model.empty_state(x.shape[0], x.shape[2], x.shape[3])
            feeds.append({"input": x.numpy(), "state_in": state.numpy()})
            state = model(x, state)[1]
    return feeds


def tensor_overrides(qat: EFM, graph: onnx.GraphProto) -> dict[str, list[dict]]:
    """onnxruntime ``TensorQuantOverrides`` that carry the QAT ranges onto U8 / S8."""
    from onnxruntime.quantization import QuantType

    plan = quant_plan(qat, graph)
    producer = {out: n for n in graph.node for out in n.output}
    overrides: dict[str, list[dict]] = {}
    for point in plan.activations:
        node = producer.get(point.tensor)
        non_negative = point.tensor == "input" or (node is not None and node.op_type == "Relu")
        if non_negative:
            scale, zero_point = point.scale * 127.0 / 255.0, 0
        else:
            scale, zero_point = point.scale, 128
        overrides[point.tensor] = [
            {
                "quant_type": QuantType.QUInt8,
                "scale": np.array(scale, np.float32),
                "zero_point": np.array(zero_point, np.uint8),
            }
        ]
    # DepthToSpace only permutes elements and Slice (a cropping context pyramid's) only drops some,
    # so quantizing their input with their output's learned range is exact; with equal ranges on
    # both sides onnxruntime drops the DQ -> op -> Q pairs and moves uint8 (efm-s: 5.7 ms of float
    # shuffle + Q/DQ become a 2 ms uint8 shuffle). Backwards, so DepthToSpace -> Slice chains too.
    for node in reversed(graph.node):
        if node.op_type in ("DepthToSpace", "Slice") and node.output[0] in overrides:
            overrides.setdefault(node.input[0], overrides[node.output[0]])
    for w in plan.weights:
        overrides[w.initializer] = [
            {
                "axis": 0,
                "quant_type": QuantType.QInt8,
                "scale": np.array(s, np.float32),
                "zero_point": np.array(0, np.int8),
            }
            for s in w.scales
        ]
    return overrides


def export_ort_int8(
    qat: EFM,
    path: str | os.PathLike,
    calibration: Iterable[np.ndarray],
    metadata: dict[str, str] | None = None,
    opset: int = CPU_OPSET,
    fp32_convs: tuple[str, ...] = CPU_FP32_CONVS,
) -> Path:
    """Write the onnxruntime INT8 model of ``qat`` to ``path``.

    Args:
        qat: the fake-quant model.
        calibration: NCHW float32 batches for the ranges QAT did not learn (a streaming model
            reads them as consecutive frames of one stream).
        metadata: extra ``metadata_props``.
        fp32_convs: weight names of convs kept in FP32 (see ``CPU_FP32_CONVS``); () = all INT8.
    """
    proto, float_model = export_float_graph(qat, opset)
    if qat.cfg.temporal:
        calibration = _streaming_feeds(float_model, calibration)
    overrides = tensor_overrides(qat, proto.graph)
    excluded = [n.name for n in proto.graph.node if n.op_type == "Conv" and n.input[1] in fp32_convs]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The quantization tool warns through the root logger on every call ("consider pre-processing");
    # the graph is already shape-complete, so hush it for this call only.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        _quantize(proto, path, calibration, overrides, excluded)
    finally:
        root.setLevel(level)
    model = onnx.load(str(path))
    _float_inputs_for(model, excluded)
    meta = {
        "precision": "int8",
        "quantization": "qdq-onnxruntime-u8s8",
        "fp32_layers": ",".join(w.rsplit(".", 1)[0] for w in fp32_convs),
        **shape_metadata(qat),
        **temporal_metadata(qat),
        **(metadata or {}),
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(model, str(path))
    return path


def _float_inputs_for(model: onnx.ModelProto, nodes: list[str]) -> None:
    """Let the FP32 ``nodes`` that read a graph input through Q -> DQ read it in float (in place).

    The float path keeps the quantizer's range as a Clip: a model whose learned input range is
    narrow (low-light: [0, 0.48]) must saturate a bright frame as the QAT model and the TensorRT
    export do. Only graph inputs: an FP32 conv after a quantized op (the head) keeps its DQ
    input, which is what lets onnxruntime fuse that op with its output Q (a QLinearAdd, not a
    float Add).
    """
    from onnx import numpy_helper

    graph = model.graph
    producer = {out: n for n in graph.node for out in n.output}
    inits = {i.name: i for i in graph.initializer}
    graph_inputs = {i.name for i in graph.input}
    clipped: dict[str, str] = {}
    for node in list(graph.node):
        if node.name not in nodes:
            continue
        dq = producer.get(node.input[0])
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or q.input[0] not in graph_inputs:
            continue
        if q.input[0] not in clipped:
            scale = float(numpy_helper.to_array(inits[q.input[1]]))
            zero = int(numpy_helper.to_array(inits[q.input[2]]))
            low, high = f"{q.input[0]}_clip_min", f"{q.input[0]}_clip_max"
            graph.initializer.extend(
                [
                    numpy_helper.from_array(np.array((0 - zero) * scale, np.float32), low),
                    numpy_helper.from_array(np.array((255 - zero) * scale, np.float32), high),
                ]
            )
            clipped[q.input[0]] = f"{q.input[0]}_clipped"
            clip = onnx.helper.make_node(
                "Clip", [q.input[0], low, high], [clipped[q.input[0]]], name=f"{q.input[0]}_Clip"
            )
            graph.node.insert(list(graph.node).index(node), clip)
        node.input[0] = clipped[q.input[0]]
    # A Q -> DQ pair nobody reads any more is dead; drop it so the graph stays minimal.
    graph = model.graph
    while True:
        used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
        dead = [
            n
            for n in graph.node
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not used.intersection(n.output)
        ]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)


def _quantize(proto, path: Path, calibration, overrides: dict, excluded: list[str]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(proto, str(fp32))
        quantize_static(
            str(fp32),
            str(path),
            _Reader(calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=excluded,
            extra_options={
                "TensorQuantOverrides": overrides,
                "WeightSymmetric": True,
                "ActivationSymmetric": False,
                # Keep the learned weight scales even where the int32 bias scale is tiny.
                "QDQDisableWeightAdjustForInt32Bias": True,
            },
        )


def optimized_op_counts(path: str | os.PathLike, threads: int = 1) -> dict[str, int]:
    """Op types of the graph onnxruntime actually runs (after its QDQ fusions), with counts."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "optimized.onnx"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(out)
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        graph = onnx.load(str(out)).graph
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def assert_int8_kernels(
    path: str | os.PathLike, max_float_convs: int = len(CPU_FP32_CONVS)
) -> dict[str, int]:
    """Raise unless the optimized graph runs its convs as int8 kernels (QLinearConv), except at most
    ``max_float_convs`` deliberately FP32 ones."""
    counts = optimized_op_counts(path)
    floats = counts.get("Conv", 0) + counts.get("FusedConv", 0)
    if counts.get("QLinearConv", 0) == 0 or floats > max_float_convs:
        raise ModelFileError(f"{path}: onnxruntime does not run the convs in int8 (optimized ops: {counts})")
    return counts
