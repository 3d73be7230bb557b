"""TensorRT export: a QDQ ONNX that TensorRT 10 builds an explicitly quantized INT8 engine from.

The FP32 graph of the QAT weights gets one QuantizeLinear -> DequantizeLinear pair per quantizer:
per-tensor INT8 with zero-point 0 on every activation a Conv or a residual Add reads; per-channel
(axis 0) INT8 on every Conv weight (FP32 weight initializer -> Q -> DQ, the pattern TensorRT's ONNX
parser folds into INT8 weights). Scales are constant initializers. Mul and Sigmoid (the LDG gate)
get no Q/DQ, so TensorRT keeps them in higher precision — as the fake-quant model does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from qdr_core.export.onnx_fp32 import shape_metadata, temporal_metadata
from qdr_core.export.quant_points import export_float_graph, quant_plan
from qdr_core.models.efm import EFM

TRT_OPSET = 17


def _const(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def insert_qdq(model: onnx.ModelProto, qat: EFM) -> onnx.ModelProto:
    """Insert TensorRT-style Q/DQ pairs into ``model`` (the FP32 export of ``qat``) in place."""
    graph = model.graph
    plan = quant_plan(qat, graph)
    nodes_by_name = {n.name: n for n in graph.node}
    new_nodes: dict[str, list[onnx.NodeProto]] = {}  # inserted before the node named by the key
    for k, point in enumerate(plan.activations):
        base = f"qdq_act{k}"
        scale = _const(graph, f"{base}.scale", np.array(point.scale, np.float32))
        zp = _const(graph, f"{base}.zero_point", np.array(0, np.int8))
        q_out, dq_out = f"{base}.q", f"{base}.dq"
        pair = [
            helper.make_node("QuantizeLinear", [point.tensor, scale, zp], [q_out], name=f"{base}/Q"),
            helper.make_node("DequantizeLinear", [q_out, scale, zp], [dq_out], name=f"{base}/DQ"),
        ]
        first = min((list(graph.node).index(nodes_by_name[n]) for n, _ in point.consumers))
        new_nodes.setdefault(graph.node[first].name, []).extend(pair)
        for node_name, index in point.consumers:
            nodes_by_name[node_name].input[index] = dq_out
    conv_by_weight = {n.input[1]: n for n in graph.node if n.op_type == "Conv"}
    for point in plan.weights:
        base = point.initializer
        scale = _const(graph, f"{base}.scale", point.scales)
        zp = _const(graph, f"{base}.zero_point", np.zeros(point.scales.shape, np.int8))
        q_out, dq_out = f"{base}.q", f"{base}.dq"
        conv = conv_by_weight[base]
        new_nodes.setdefault(conv.name, []).extend(
            [
                helper.make_node("QuantizeLinear", [base, scale, zp], [q_out], name=f"{base}/Q", axis=0),
                helper.make_node("DequantizeLinear", [q_out, scale, zp], [dq_out], name=f"{base}/DQ", axis=0),
            ]
        )
        conv.input[1] = dq_out
    ordered = []
    for node in graph.node:
        ordered.extend(new_nodes.get(node.name, []))
        ordered.append(node)
    del graph.node[:]
    graph.node.extend(ordered)
    return model


def export_tensorrt_qdq(
    qat: EFM, path: str | os.PathLike, opset: int = TRT_OPSET, metadata: dict[str, str] | None = None
) -> Path:
    """Write the TensorRT QDQ ONNX of ``qat`` to ``path`` and check it against the TensorRT rules."""
    from qdr_core.export.trt_rules import assert_trt_rules

    proto, _ = export_float_graph(qat, opset)
    insert_qdq(proto, qat)
    meta = {
        "precision": "int8",
        "quantization": "qdq-tensorrt",
        **shape_metadata(qat),
        **temporal_metadata(qat),
        **(metadata or {}),
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto, full_check=True)
    assert_trt_rules(proto)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


__all__ = ["TRT_OPSET", "export_tensorrt_qdq", "insert_qdq"]
