"""Quantized layer wrappers, placed where TensorRT's explicit-quantization rules put Q/DQ pairs.

* ``QuantConv2d``: an ``nn.Conv2d`` whose input is fake-quantized per-tensor and whose weight is
  fake-quantized per output channel (axis 0); the bias stays FP32 (TensorRT folds it into the INT32
  accumulator).
* ``QuantAdd``: a residual ``Add`` with both inputs fake-quantized, so TensorRT can run it in INT8
  (or fuse it into the producing conv).

Mul and Sigmoid (the LDG gate) get no quantizers: without Q/DQ around them TensorRT runs them in
higher precision (FP16/FP32), and the gated conv then has an INT8 input and a float output. The
fake-quant model computes exactly that: the gate in FP32, quantization only where a Q/DQ pair is.
Quantizers of one tensor are shared (``tie``), so the export has one Q/DQ pair per tensor.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from qdr_core.models.blocks import Add
from qdr_core.quant.fake_quant import FakeQuantizer


class QuantConv2d(nn.Conv2d):
    """Conv2d with INT8 fake quantization of its input (per-tensor) and weight (per-channel).

    The state-dict keys of the float conv (``weight``, ``bias``) are kept, so an FP32 checkpoint loads
    into it; quantizer scales add ``input_quant.scale`` and ``weight_quant.scale``.
    """

    def __init__(self, *args, act_method: str = "mse", weight_method: str = "max", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.input_quant = FakeQuantizer(method=act_method)
        self.weight_quant = FakeQuantizer(self.out_channels, axis=0, narrow=True, method=weight_method)

    @classmethod
    def from_float(cls, conv: nn.Conv2d, act_method: str = "mse", weight_method: str = "max") -> QuantConv2d:
        q = cls(
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
            dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
            padding_mode=conv.padding_mode, act_method=act_method, weight_method=weight_method,
        )  # fmt: skip
        with torch.no_grad():
            q.weight.copy_(conv.weight)
            if conv.bias is not None:
                q.bias.copy_(conv.bias)
        return q.to(conv.weight.device)

    def quantized_weight(self) -> torch.Tensor:
        return self.weight_quant(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            self.input_quant(x),
            self.quantized_weight(),
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )


class QuantAdd(Add):
    """Residual Add with both inputs fake-quantized per-tensor."""

    def __init__(self, act_method: str = "mse") -> None:
        super().__init__()
        self.quant_a = FakeQuantizer(method=act_method)
        self.quant_b = FakeQuantizer(method=act_method)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.quant_a(a) + self.quant_b(b)
