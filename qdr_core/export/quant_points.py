"""Where the QAT model's quantizers sit in the exported ONNX graph.

Both INT8 exports start from the same FP32 ONNX of the QAT weights and need, for every distinct
quantizer, the tensor it quantizes and its step size. Convs are found by their weight initializer
name (the exporter keeps state-dict names); residual Adds by execution order, which the exporter
preserves (every Add in an EFM graph comes from an ``Add`` module).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from qdr_core.errors import ModelFileError
from qdr_core.export.onnx_fp32 import export_onnx
from qdr_core.models.efm import EFM
from qdr_core.quant.convert import is_quantized
from qdr_core.quant.fake_quant import FakeQuantizer
from qdr_core.quant.layers import QuantAdd, QuantConv2d


@dataclass
class ActivationPoint:
    """One activation quantizer: the tensor it reads and the (node, input index) edges it feeds."""

    tensor: str
    scale: float
    consumers: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class WeightPoint:
    """One per-channel weight quantizer: the weight initializer and its per-output-channel scales."""

    initializer: str
    scales: np.ndarray


@dataclass
class QuantPlan:
    activations: list[ActivationPoint]
    weights: list[WeightPoint]


def clipped_float_model(qat: EFM) -> EFM:
    """An FP32 EFM with the QAT weights clipped to each channel's INT8 range ``[-127 s, 127 s]``.

    Clipping first makes an exporter's QuantizeLinear (which saturates at -128) and every weight
    quantizer agree with the fake quantizer's narrow range, so the exports compute what QAT trained.
    """
    if not is_quantized(qat):
        raise ModelFileError("expected a QAT (fake-quant) model; got a float model")
    state = {}
    for name, value in qat.state_dict().items():
        if "_quant." in name or ".quant_" in name or name.startswith("quant_"):
            continue
        state[name] = value.detach().clone()
    for name, module in qat.named_modules():
        if isinstance(module, QuantConv2d):
            s = module.weight_quant.step_size().detach().reshape(-1, 1, 1, 1)
            state[f"{name}.weight"] = torch.maximum(torch.minimum(module.weight.detach(), 127 * s), -127 * s)
    model = EFM(qat.cfg)
    model.load_state_dict(state)
    return model.eval()


def _add_order(qat: EFM) -> list[QuantAdd]:
    order: list[QuantAdd] = []
    hooks = [
        m.register_forward_hook(lambda mod, *_: order.append(mod))
        for m in qat.modules()
        if isinstance(m, QuantAdd)
    ]
    try:
        with torch.no_grad():
            side = 2 * int(getattr(qat, "size_multiple", 8))
            qat.eval()(torch.zeros(1, 3, side, side))
    finally:
        for h in hooks:
            h.remove()
    return order


def quant_plan(qat: EFM, graph: onnx.GraphProto) -> QuantPlan:
    """Map every distinct quantizer of ``qat`` onto ``graph`` (the FP32 export of the same model)."""
    conv_by_weight = {n.input[1]: n for n in graph.node if n.op_type == "Conv"}
    adds = [n for n in graph.node if n.op_type == "Add"]
    add_modules = _add_order(qat)
    if len(adds) != len(add_modules):
        raise ModelFileError(
            f"graph has {len(adds)} Add nodes but the model ran {len(add_modules)} Add modules"
        )
    edges: dict[int, tuple[FakeQuantizer, list[tuple[onnx.NodeProto, int]]]] = {}

    def attach(q: FakeQuantizer, node: onnx.NodeProto, index: int) -> None:
        edges.setdefault(id(q), (q, []))[1].append((node, index))

    weights = []
    for name, module in qat.named_modules():
        if isinstance(module, QuantConv2d):
            node = conv_by_weight.get(f"{name}.weight")
            if node is None:
                raise ModelFileError(f"no Conv node reads {name}.weight in the exported graph")
            attach(module.input_quant, node, 0)
            scales = module.weight_quant.step_size().detach().cpu().numpy().astype(np.float32)
            weights.append(WeightPoint(f"{name}.weight", scales))
    for module, node in zip(add_modules, adds):
        attach(module.quant_a, node, 0)
        attach(module.quant_b, node, 1)
    activations = []
    for q, uses in edges.values():
        tensors = {node.input[i] for node, i in uses}
        if len(tensors) != 1:
            raise ModelFileError(
                f"one quantizer reads several tensors {sorted(tensors)}: quantizers are mis-tied"
            )
        activations.append(
            ActivationPoint(tensors.pop(), float(q.step_size().detach()), [(n.name, i) for n, i in uses])
        )
    seen: dict[str, float] = {}
    for point in activations:
        if point.tensor in seen:
            raise ModelFileError(f"tensor {point.tensor} has two quantizers; tie them (see quant.convert)")
        seen[point.tensor] = point.scale
    return QuantPlan(activations, weights)


def export_float_graph(qat: EFM, opset: int = 17) -> tuple[onnx.ModelProto, EFM]:
    """The FP32 ONNX of the clipped QAT weights, and the float model it came from."""
    model = clipped_float_model(qat)
    fd, tmp = tempfile.mkstemp(suffix=".onnx")
    os.close(fd)
    try:
        export_onnx(model, tmp, opset=opset)
        proto = onnx.load(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return proto, model
