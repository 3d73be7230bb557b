"""Context pyramid: a receptive field as large as the frame, from INT8-friendly ops only.

Some degradations are global: a hazy frame's airlight is one colour for the whole image and is
best read off its haziest, farthest regions, far outside a 3x3-conv U-Net's ~80-pixel receptive
field. Global pooling would do it, but TensorRT-style explicit quantization here allows only
Conv / ReLU / Add / Mul / Sigmoid / DepthToSpace. So: a few more stride-2 conv levels below the
bottleneck (1/8, 1/16, 1/32 ...), each coming back up by 1x1 conv + PixelShuffle and added to the
level above. At 640x480 the 1/32 level is 20x15 pixels, so a 3x3 conv there sees most of the
frame, and the whole pyramid costs a few percent of the bottleneck's MACs.

Input sizes. A stride-2 level halves its input exactly only when that size is even, so a pyramid
built with ``crop=False`` (the shipped haze models) needs inputs whose sides are multiples of
``2**levels``: frames pad to 4 * 2**levels, 128 px for five levels, and a 640x480 frame runs as
640x512, 7 % more work in every layer. With ``crop=True`` a level of odd size rounds up (its
stride-2 conv's zero padding covers the missing row or column) and each up-projection is cropped
to the level above before the skip Add (a Slice whose bounds are the traced shape, so exported
graphs crop at every size). Only the deep levels may round: inputs still need multiples of
``2**EXACT_LEVELS`` (frames 4 * 8 = 32 px; 640x480 needs no padding). Measured on the ``auto``
model (night, eval photos): an odd size at 1/8 or 1/16 can cost 3 dB, because training crops
never make one; odd sizes at 1/32 and below are within 0.1 dB of padding the frame. On sides that
are multiples of 4 * 2**levels both settings compute the same function, so a model trained on such
crops can switch.
"""

from __future__ import annotations

import torch
from torch import nn

from qdr_core.models.blocks import Add, SharedInput

#: Levels of a cropping pyramid whose sizes must halve exactly (see the module docstring).
EXACT_LEVELS = 3


def input_multiple(levels: int, crop: bool) -> int:
    """What the sides of a pyramid's input must be multiples of."""
    return 2 ** (min(levels, EXACT_LEVELS) if crop else levels)


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
    plain U-Net's behaviour. ``crop``: deep levels may round up (see the module docstring).
    """

    def __init__(self, channels: int, levels: int, crop: bool = False) -> None:
        super().__init__()
        self.crop = crop
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
            up = self.shuffle(self.up[i](y))
            if self.crop:
                up = up[:, :, : feats[i].shape[2], : feats[i].shape[3]]
            y = self.adds[i](feats[i], up)
        return y
