"""Learnable Degradation Gating (LDG).

A light branch predicts where the degradation is (rain streaks, dark regions, haze density) as a
spatial gate ``g = sigmoid(pw(relu(dw(f))))``; the block's residual update is scaled by it. Depthwise
3x3 + pointwise keeps it to ~10*C MACs per pixel, and every op has an INT8 kernel.
"""

from __future__ import annotations

import torch
from torch import nn


class DegradationGate(nn.Module):
    """Predicts a spatial gate in (0, 1) from features.

    Args:
        channels: feature channels C of the input.
        gate_channels: 1 (one map shared by all channels) or C (one map per channel).
    """

    def __init__(self, channels: int, gate_channels: int = 1) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.act = nn.ReLU()
        self.pw = nn.Conv2d(channels, gate_channels, 1)
        self.sigmoid = nn.Sigmoid()
        # Start half-open with a small spread so early training behaves like a plain residual.
        nn.init.zeros_(self.pw.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigmoid(self.pw(self.act(self.dw(x))))
