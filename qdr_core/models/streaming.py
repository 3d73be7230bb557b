"""Temporal fusion: the streaming EFM's use of the previous frame.

A streaming EFM (``EFMConfig(temporal=True)``) carries its 1/4-resolution bottleneck features from
one frame to the next: ``(frame, state_in) -> (restored, state_out)``, ``state_out`` being the
bottleneck after the mid blocks. The previous state enters right before the mid blocks::

    g      = sigmoid(conv1x1(relu(conv3x3(h) + conv3x3(s))))     # where may the past be used
    update = conv1x1(s) + conv1x1(h)                            # what the past says
    fused  = h + g * update

``conv(h) + conv(s)`` is a learned difference: ReLU of its channels can express
``|current - previous|``, so the gate closes where the scene moved (camera motion, moving objects)
and that region falls back to the single-frame path instead of ghosting. Denoising and
flicker-smoothing come from ``update`` (which can learn ``s - h``, i.e. a blend toward the past).

The first frame of a stream, and every frame after a reset (``node.temporal``), gets the empty
state (``EFM.empty_state``: zeros here, ``EMPTY_OUTPUT_STATE`` for ``OutputFusion``): training
restores the first frame of every clip with it, so that is the still path.
The update conv is zero-initialized, so an untrained streaming EFM computes exactly its
single-frame network. Ops: Conv, Relu, Add, Mul, Sigmoid (the INT8-friendly set of the EFM).
"""

from __future__ import annotations

import torch
from torch import nn

from qdr_core.models.blocks import Add, Mul, Scale, SharedInput


class TemporalFusion(nn.Module):
    """``h + g(h, s) * update(h, s)`` on bottleneck features ``h`` and the previous state ``s``.

    Args:
        channels: bottleneck width (state channels).
        gate_hidden: channels of the motion-difference features the gate reads.
    """

    def __init__(self, channels: int, gate_hidden: int | None = None) -> None:
        super().__init__()
        hidden = gate_hidden or channels
        self.diff_cur = nn.Conv2d(channels, hidden, 3, padding=1)
        self.diff_prev = nn.Conv2d(channels, hidden, 3, padding=1, bias=False)
        self.diff_add = Add()
        self.diff_act = nn.ReLU()
        self.gate = nn.Conv2d(hidden, 1, 1)
        self.gate_act = nn.Sigmoid()
        self.upd_prev = nn.Conv2d(channels, channels, 1)
        self.upd_cur = nn.Conv2d(channels, channels, 1, bias=False)
        self.upd_add = Add()
        self.mul = Mul()
        self.add = Add()
        nn.init.zeros_(self.upd_prev.weight)
        nn.init.zeros_(self.upd_prev.bias)
        nn.init.zeros_(self.upd_cur.weight)
        # Start mostly closed: the past must earn its way in during training.
        nn.init.constant_(self.gate.bias, -2.0)

    def forward(self, h: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        g = self.gate_act(self.gate(self.diff_act(self.diff_add(self.diff_cur(h), self.diff_prev(state)))))
        update = self.upd_add(self.upd_prev(state), self.upd_cur(h))
        return self.add(h, self.mul(g, update))

    def shared_inputs(self) -> list[SharedInput]:
        """``h`` feeds two convs and the final Add; the state feeds two convs."""
        return [
            [(self.diff_cur, 0), (self.upd_cur, 0), (self.add, 0)],
            [(self.diff_prev, 0), (self.upd_prev, 0)],
        ]


#: The state of a stream's first frame (and of every frame after a reset) for a model whose state is
#: its previous output: a value no restored frame has, so ``|p - y| >= 0.25`` everywhere, the gate
#: closes and the first frame is the still restoration. (A zero state would look like agreement in
#: the dark parts of a frame, pull them to black and let the recursion carry that on for frames.)
EMPTY_OUTPUT_STATE = -0.25


class OutputFusion(nn.Module):
    """Recursive fusion of the still restoration ``y`` with the previous frame's output ``p``
    (already aligned to this frame by the runtime's motion estimate, ``runtime.motion``):
    ``y + g * (p - y)``, with the gate ``g`` computed at 1/2 resolution, so that full resolution
    sees only element-wise ops (small-channel convs at full resolution cost more time than the
    whole single-frame network's 1/2-resolution layers).

    ``d = p - y`` (full resolution) is folded to 1/2 resolution by a 2x2 stride-2 conv initialised
    to plus and minus space-to-depth, so its ReLU holds ``|d|`` of every pixel. Features ``f`` of
    ``|d|`` and of the decoder's features ``dec`` (1x1 convs) feed a 3x3 conv that gives the gate
    logit of each pixel of a 2x2 cell (then depth-to-space). At init, one feature is the cell's
    mean ``|d|`` and the gate is a recursive filter's classic rule on its 6x6 local mean ``m``,
    ``sigmoid(1.4 - 76 m)``: trust the past ~80 % where it agrees with the present, little where
    it differs by more than ~8 grey levels (misaligned, occluded, moved, or the empty state of a
    stream's first frame, ``EMPTY_OUTPUT_STATE``); the gate starts reading only that feature. Ops:
    Conv / Relu / Add / Mul / Sigmoid / DepthToSpace; ``-y`` is a Mul by a constant.
    """

    def __init__(self, dec_channels: int, hidden: int = 16) -> None:
        super().__init__()
        cells = 2 * 2 * 3  # space-to-depth of a 3-channel frame
        # d = p - y
        self.negate = Scale(-1.0)
        self.diff_add = Add()
        # [s2d(d), -s2d(d)] at 1/2 resolution; its ReLU is |d| of every pixel
        self.fold = nn.Conv2d(3, 2 * cells, 2, stride=2, bias=False)
        self.fold_act = nn.ReLU()
        self.in_d = nn.Conv2d(2 * cells, hidden, 1)
        self.in_dec = nn.Conv2d(dec_channels, hidden, 1, bias=False)
        self.in_add = Add()
        self.act = nn.ReLU()
        self.gate = nn.Conv2d(hidden, 4, 3, padding=1)
        self.gate_act = nn.Sigmoid()
        self.gate_shuffle = nn.PixelShuffle(2)
        self.mul = Mul()
        self.blend_add = Add()
        with torch.no_grad():
            s2d = torch.eye(cells).reshape(cells, 3, 2, 2)  # output c*4 + i*2 + j reads (c, i, j)
            self.fold.weight.copy_(torch.cat([s2d, -s2d]))
            # f[0] = the cell's mean |d| (of its 4 pixels x 3 channels); the other features keep
            # their random init (so they get gradients) but the gate starts reading only f[0] ...
            self.in_d.weight[0].fill_(1.0 / cells)
            self.in_d.bias[0] = 0.0
            self.in_dec.weight[0].zero_()
            # ... and the gate is sigmoid(1.4 - 76 m), m = mean of f[0] over 3x3 cells:
            # 0.80 at m = 0, 0.29 at m = 0.03 (8 grey levels), ~0 beyond 0.1.
            nn.init.zeros_(self.gate.weight)
            self.gate.weight[:, 0].fill_(-76.0 / 9)
            self.gate.bias.fill_(1.4)

    def forward(self, y: torch.Tensor, p: torch.Tensor, dec: torch.Tensor) -> torch.Tensor:
        d = self.diff_add(p, self.negate(y))
        f = self.act(self.in_add(self.in_d(self.fold_act(self.fold(d))), self.in_dec(dec)))
        g = self.gate_shuffle(self.gate_act(self.gate(f)))
        return self.blend_add(y, self.mul(g, d))
