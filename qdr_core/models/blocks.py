"""EFM building blocks: the gated residual block and explicit Add / Mul modules.

Add and Mul are modules (not ``+`` / ``*``) so quantization can find every residual Add and wrap
its inputs with quantizers, as TensorRT's explicit-quantization rules ask.
"""

from __future__ import annotations

from typing import TypeAlias

import torch
from torch import nn

from qdr_core.models.ldg import DegradationGate

#: Consumers that read one tensor, each as ``(module, index of that input in its forward)``. An
#: exported graph has one Q/DQ pair per tensor, so quantization gives each group one quantizer.
SharedInput: TypeAlias = list[tuple[nn.Module, int]]


class Add(nn.Module):
    """Element-wise sum; a module so QAT can quantize its inputs."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Mul(nn.Module):
    """Element-wise (broadcasting) product; a module so QAT can see it."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class Scale(nn.Module):
    """Multiplication by a constant (an ONNX Mul with a constant operand)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.register_buffer("value", torch.tensor(value), persistent=False)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return a * self.value


class ResidualBlock(nn.Module):
    """``f + g * F(f)`` with ``F = conv3x3 -> ReLU -> conv3x3`` and ``g`` from LDG (or 1 without).

    Args:
        channels: width C (in = out).
        ldg: gate the residual update with a learned spatial map.
        gate_channels: channels of the gate map (1 or C).
    """

    def __init__(self, channels: int, ldg: bool = True, gate_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.gate = DegradationGate(channels, gate_channels) if ldg else None
        self.mul = Mul() if ldg else None
        self.scale_mul = Mul()
        self.add = Add()
        self.last_gate: torch.Tensor | None = None
        self.keep_gate = False

    def shared_inputs(self) -> list[SharedInput]:
        """The block's input feeds conv1, the gate's depthwise conv and the residual Add."""
        gate = [(self.gate.dw, 0)] if self.gate is not None else []
        return [[(self.conv1, 0), *gate, (self.add, 0)]]

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """``scale``: optional per-channel factors (N x C x 1 x 1) on the update, from a
        ``models.condition.ConditionDescriptor``."""
        update = self.conv2(self.act(self.conv1(x)))
        if self.gate is not None:
            g = self.gate(x)
            if self.keep_gate:
                self.last_gate = g.detach()
            update = self.mul(g, update)
        if scale is not None:
            update = self.scale_mul(scale, update)
        return self.add(x, update)
