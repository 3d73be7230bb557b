"""Global condition descriptor: one vector per frame that says which condition the frame is in.

An all-conditions model meets a clean frame, a foggy one and a rainy night with one set of weights
and no task label. The context pyramid gives it a frame-wide receptive field; this module adds a
frame-wide *summary*: global average pooling of the bottleneck input, two 1x1 convs, and per block
a per-channel scale ``2 * sigmoid(.)`` in (0, 2) on that block's gated residual update (a
squeeze-and-excitation / FiLM-style modulation of the LDG blocks). It can switch a block's work off
on a clean frame and strengthen it under heavy fog.

Ops: GlobalAveragePool, Conv 1x1, Relu, Sigmoid, Mul: all INT8/TensorRT friendly (the convs get
Q/DQ like every conv; Sigmoid and Mul stay in higher precision like the LDG gate's). The last convs
start at zero, so a new descriptor scales every update by exactly 1 and a model initialised from a
shipped one starts where that model was.
"""

from __future__ import annotations

import torch
from torch import nn

from qdr_core.models.blocks import SharedInput


class ConditionDescriptor(nn.Module):
    """Per-block channel scales in (0, 2) from the frame's pooled features.

    Args:
        channels: feature channels C of the input (and of the modulated blocks).
        blocks: how many blocks to modulate (one ``N x C x 1 x 1`` scale each).
        hidden: channels of the descriptor vector (default C).
    """

    def __init__(self, channels: int, blocks: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU()
        self.heads = nn.ModuleList([nn.Conv2d(hidden, channels, 1) for _ in range(blocks)])
        self.sigmoid = nn.Sigmoid()
        for head in self.heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def shared_inputs(self) -> list[SharedInput]:
        """The descriptor vector feeds every head."""
        return [[(head, 0) for head in self.heads]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        descriptor = self.act(self.embed(self.pool(x)))
        return [2.0 * self.sigmoid(head(descriptor)) for head in self.heads]
