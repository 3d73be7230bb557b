"""FP32 EFM -> QAT EFM by module swap.

The student is a deep copy of the teacher (FP32 self-distillation: same architecture, same weights
at step 0). Every ``nn.Conv2d`` becomes a ``QuantConv2d`` and every residual ``Add`` a ``QuantAdd``;
then quantizers that read the same tensor are tied into one module, because an exported graph has
one Q/DQ pair per tensor (TensorRT shares it between consumers; onnxruntime's quantizer keeps one
scale per tensor).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

from torch import nn

from qdr_core.models.blocks import Add
from qdr_core.models.efm import EFM
from qdr_core.quant.fake_quant import FakeQuantizer
from qdr_core.quant.layers import QuantAdd, QuantConv2d


def _swap(module: nn.Module, act_method: str, weight_method: str) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and not isinstance(child, QuantConv2d):
            setattr(module, name, QuantConv2d.from_float(child, act_method, weight_method))
        elif isinstance(child, Add) and not isinstance(child, QuantAdd):
            setattr(module, name, QuantAdd(act_method))
        else:
            _swap(child, act_method, weight_method)


def _input_quantizer(module: nn.Module, index: int) -> tuple[nn.Module, str]:
    """Where the quantizer of input ``index`` of a swapped layer lives: ``(owner, attribute)``."""
    if isinstance(module, QuantConv2d) and index == 0:
        return module, "input_quant"
    if isinstance(module, QuantAdd) and index in (0, 1):
        return module, ("quant_a", "quant_b")[index]
    raise TypeError(f"input {index} of {type(module).__name__} has no quantizer")


def tie_shared_quantizers(model: EFM) -> None:
    """Make every tensor that feeds several quantized consumers use one quantizer: the first
    consumer's, for each group the model lists in ``shared_inputs()``."""
    for group in model.shared_inputs():
        owner, name = _input_quantizer(*group[0])
        shared = getattr(owner, name)
        for module, index in group[1:]:
            setattr(*_input_quantizer(module, index), shared)


def quantize_model(fp32: EFM, act_method: str = "mse", weight_method: str = "max") -> EFM:
    """A QAT copy of ``fp32`` (the original is left untouched). Scales are uncalibrated (1.0) until
    ``calibrate`` runs or a state dict is loaded."""
    model = copy.deepcopy(fp32)
    _swap(model, act_method, weight_method)
    tie_shared_quantizers(model)
    return model


def unique_quantizers(model: nn.Module) -> Iterator[tuple[str, FakeQuantizer]]:
    """Each distinct quantizer once, with its first name."""
    seen: set[int] = set()
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, FakeQuantizer) and id(module) not in seen:
            seen.add(id(module))
            yield name, module


def set_quantization(model: nn.Module, enabled: bool) -> None:
    """Switch every fake quantizer on or off (off = the FP32 network with the current weights)."""
    for _, q in unique_quantizers(model):
        q.enabled = enabled


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, FakeQuantizer) for m in model.modules())
