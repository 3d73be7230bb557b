"""Context pyramid: a receptive field as large as the frame, from INT8-friendly ops only.

Some degradations are global: a hazy frame's airlight is one colour for the whole image and is
best read off its haziest, farthest regions, far outside a 3x3-conv U-Net's ~80-pixel receptive
field. Global pooling would do it, but TensorRT-style explicit quantization here allows only
Conv / ReLU / Add / Mul / Sigmoid / DepthToSpace. So: a few more stride-2 conv levels below the
bottleneck (1/8, 1/16, 1/32 ...), each coming back up by 1x1 conv + PixelShuffle and added to the
level above. At 640x480 the 1/32 level is 20x15 pixels, so a 3x3 conv there sees most of the
frame, and the whole pyramid costs a few percent of the bottleneck's MACs.
"""

from __future__ import annotations

import torch
from torch import nn

from qdr_core.models.blocks import Add, SharedInput


class ContextLevel(nn.Module):
    """One level down: 3x3 stride-2 conv -> ReLU -> 3x3 conv -> ReLU (channels kept)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.down_act = nn.ReLU()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.down_act(self.down(x))))


class ContextPyramid(nn.Module):
    """``levels`` levels down from the input, then back up with additive skips; same shape out.

    The up-projections start at zero, so a new pyramid is the identity and training starts from the
    plain U-Net's behaviour.
    """

    def __init__(self, channels: int, levels: int) -> None:
        super().__init__()
        self.levels = nn.ModuleList([ContextLevel(channels) for _ in range(levels)])
        self.up = nn.ModuleList([nn.Conv2d(channels, 4 * channels, 1) for _ in range(levels)])
        self.shuffle = nn.PixelShuffle(2)
        self.adds = nn.ModuleList([Add() for _ in range(levels)])
        for conv in self.up:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def shared_inputs(self) -> list[SharedInput]:
        """Each level's input feeds that level's stride-2 conv and its skip Add."""
        return [[(level.down, 0), (add, 0)] for level, add in zip(self.levels, self.adds)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for level in self.levels:
            feats.append(level(feats[-1]))
        y = feats[-1]
        for i in reversed(range(len(self.levels))):
            y = self.adds[i](feats[i], self.shuffle(self.up[i](y)))
        return y
