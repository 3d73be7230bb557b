"""Checks a QDQ ONNX against the TensorRT explicit-quantization rules this project targets.

Rules (TensorRT 10 "explicit quantization", restricted to what an EFM needs):

* opset 17..20, and only QuantizeLinear / DequantizeLinear / Conv / Relu / Add / Mul / Sigmoid /
  DepthToSpace / Resize / GlobalAveragePool nodes (the pool: the ``auto`` model's condition
  descriptor, ``models.condition``; TensorRT runs it as a pooling layer), plus the crop of a
  cropping context pyramid (``models.context``): Slice whose bounds are constants or shape
  arithmetic (Shape -> Gather -> Unsqueeze: TensorRT shape tensors, computed at build time per
  optimisation profile), where Shape reads any tensor and Gather / Unsqueeze only shapes;
* every Q/DQ: constant float32 scales > 0, a constant INT8 zero-point that is all zeros (symmetric);
* activations per-tensor (scalar scale); Conv weights per-channel on axis 0 (one scale per output
  channel), from a constant weight;
* every Conv's data input and weight, and both inputs of every Add, come from a DequantizeLinear;
* a QuantizeLinear feeds only DequantizeLinear nodes with the same scale and zero-point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from qdr_core.errors import ModelFileError

ALLOWED_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "Conv",
    "Relu",
    "Add",
    "Mul",
    "Sigmoid",
    "DepthToSpace",
    "Resize",
    "GlobalAveragePool",
    *("Slice", "Shape", "Gather", "Unsqueeze"),
}
#: Ops that may only compute on shapes (their inputs: a Shape's output, their own, or constants).
SHAPE_OPS = ("Shape", "Gather", "Unsqueeze")
OPSET_RANGE = (17, 20)


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


@dataclass
class _Graph:
    """The lookups every rule needs: constant tensors, each tensor's producer and consumers."""

    model: onnx.ModelProto
    inits: dict[str, np.ndarray] = field(init=False)
    producer: dict[str, onnx.NodeProto] = field(init=False)
    consumers: dict[str, list[onnx.NodeProto]] = field(init=False)

    def __post_init__(self) -> None:
        graph = self.model.graph
        self.inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.producer = {out: n for n in graph.node for out in n.output}
        self.consumers = {}
        for n in graph.node:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)

    def dq_source(self, tensor: str) -> onnx.NodeProto | None:
        node = self.producer.get(tensor)
        return node if node is not None and node.op_type == "DequantizeLinear" else None

    def same_constants(self, a: list[str], b: list[str]) -> bool:
        return a == b or all(
            x in self.inits and y in self.inits and np.array_equal(self.inits[x], self.inits[y])
            for x, y in zip(a, b)
        )


def check_trt_rules(model: onnx.ModelProto) -> list[str]:
    """All rule violations of ``model`` (empty = it follows the rules)."""
    g = _Graph(model)
    errors: list[str] = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        errors.append(f"opset {opset} outside {OPSET_RANGE[0]}..{OPSET_RANGE[1]}")
    outputs = {o.name for o in model.graph.output}
    for node in model.graph.node:
        # An Identity that only names a second graph output (a streaming model whose state is its
        # output: ``output`` and ``state_out`` are one tensor) costs TensorRT nothing.
        if node.op_type == "Identity" and set(node.output) <= outputs and node.domain in ("", "ai.onnx"):
            continue
        if node.op_type not in ALLOWED_OPS or node.domain not in ("", "ai.onnx"):
            errors.append(
                f"{node.name}: op {node.domain + '.' if node.domain else ''}{node.op_type} not allowed"
            )
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            errors += _qdq_errors(g, node)
    for node in model.graph.node:
        check = _NODE_RULES.get(node.op_type)
        if check is not None:
            errors += check(g, node)
    return errors


def _qparam_errors(g: _Graph, node: onnx.NodeProto) -> list[str] | None:
    """Scale / zero-point errors of a Q or DQ node; None when they are not constants at all."""
    if len(node.input) < 3 or node.input[1] not in g.inits or node.input[2] not in g.inits:
        return None
    errors = []
    scale, zp = g.inits[node.input[1]], g.inits[node.input[2]]
    if scale.dtype != np.float32 or not np.all(scale > 0) or not np.all(np.isfinite(scale)):
        errors.append(f"{node.name}: scales must be finite float32 > 0")
    if zp.dtype != np.int8:
        errors.append(f"{node.name}: zero-point dtype {zp.dtype} is not int8")
    elif np.any(zp != 0):
        errors.append(f"{node.name}: zero-point is not 0 (TensorRT is symmetric)")
    if zp.shape != scale.shape:
        errors.append(f"{node.name}: zero-point shape {zp.shape} != scale shape {scale.shape}")
    return errors


def _qdq_errors(g: _Graph, node: onnx.NodeProto) -> list[str]:
    """Constant symmetric int8 parameters; a Q feeds only DQs that share its scale."""
    errors = _qparam_errors(g, node)
    constant = errors is not None
    if errors is None:
        errors = [f"{node.name}: scale and zero-point must be constant initializers"]
    if node.op_type != "QuantizeLinear":
        return errors
    for user in g.consumers.get(node.output[0], []):
        if user.op_type != "DequantizeLinear":
            errors.append(f"{node.name}: Q output feeds {user.op_type} {user.name}, not a DequantizeLinear")
        elif constant and not g.same_constants(list(user.input[1:3]), list(node.input[1:3])):
            errors.append(f"{node.name}: Q and its DQ {user.name} use different scale / zero-point")
    return errors


def _conv_errors(g: _Graph, node: onnx.NodeProto) -> list[str]:
    """Quantized input; constant weight quantized per output channel (axis 0)."""
    errors = []
    if g.dq_source(node.input[0]) is None:
        errors.append(f"{node.name}: Conv input {node.input[0]} is not quantized (no DequantizeLinear)")
    wdq = g.dq_source(node.input[1])
    if wdq is None:
        return [*errors, f"{node.name}: Conv weight {node.input[1]} is not quantized"]
    q = g.producer.get(wdq.input[0])
    weight_name = q.input[0] if q is not None and q.op_type == "QuantizeLinear" else wdq.input[0]
    if weight_name not in g.inits:
        return [*errors, f"{node.name}: Conv weight is not a constant initializer"]
    out_ch = g.inits[weight_name].shape[0]
    for qnode in (wdq, q) if q is not None else (wdq,):
        scale = g.inits.get(qnode.input[1])
        if scale is None:
            continue
        if _attr(qnode, "axis", 1) != 0 or scale.ndim != 1 or scale.shape[0] != out_ch:
            errors.append(
                f"{qnode.name}: weight of {node.name} must be per-channel on axis 0 "
                f"({out_ch} scales), got axis={_attr(qnode, 'axis', 1)} scale shape {scale.shape}"
            )
    return errors


def _add_errors(g: _Graph, node: onnx.NodeProto) -> list[str]:
    """A residual Add reads quantized tensors only."""
    return [
        f"{node.name}: residual Add input {name} is not quantized"
        for name in node.input
        if g.dq_source(name) is None
    ]


def _dq_scale_errors(g: _Graph, node: onnx.NodeProto) -> list[str]:
    """Activations are quantized per tensor (weights may be per channel)."""
    src = g.producer.get(node.input[0])
    is_weight = src is not None and src.op_type == "QuantizeLinear" and src.input[0] in g.inits
    is_weight = is_weight or node.input[0] in g.inits
    scale = g.inits.get(node.input[1])
    if not is_weight and scale is not None and scale.size != 1:
        return [f"{node.name}: activation scale must be per-tensor, got shape {scale.shape}"]
    return []


def _is_shape_value(g: _Graph, name: str) -> bool:
    """A constant, or a value computed from tensor shapes only."""
    node = g.producer.get(name)
    return name in g.inits or (node is not None and node.op_type in SHAPE_OPS)


def _shape_op_errors(g: _Graph, node: onnx.NodeProto) -> list[str]:
    """Gather / Unsqueeze compute on shapes only, never on activations."""
    return [
        f"{node.name}: {node.op_type} input {name} is not a shape or a constant"
        for name in node.input
        if name and not _is_shape_value(g, name)
    ]


def _slice_errors(g: _Graph, node: onnx.NodeProto) -> list[str]:
    """A crop: its starts / ends / axes / steps are constants or shape arithmetic."""
    return [
        f"{node.name}: Slice bound {name} is not a shape or a constant"
        for name in node.input[1:]
        if name and not _is_shape_value(g, name)
    ]


#: Per-node rules by op type (checked in graph order, after the op and Q/DQ parameter rules).
_NODE_RULES = {
    "Conv": _conv_errors,
    "Add": _add_errors,
    "DequantizeLinear": _dq_scale_errors,
    "Gather": _shape_op_errors,
    "Unsqueeze": _shape_op_errors,
    "Slice": _slice_errors,
}


def assert_trt_rules(model: onnx.ModelProto | str) -> None:
    """Raise ``ModelFileError`` listing the violations, if any."""
    proto = onnx.load(model) if isinstance(model, str) else model
    errors = check_trt_rules(proto)
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise ModelFileError(f"QDQ model breaks {len(errors)} TensorRT rule(s):\n  {shown}{more}")
