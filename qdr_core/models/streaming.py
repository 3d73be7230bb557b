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

The first frame of a stream, and every frame after a reset (``node.temporal``), gets a zero state:
training restores the first frame of every clip with a zero state, so that is the still path.
The update conv is zero-initialized, so an untrained streaming EFM computes exactly its
single-frame network. Ops: Conv, Relu, Add, Mul, Sigmoid (the INT8-friendly set of the EFM).
"""

from __future__ import annotations

import torch
from torch import nn

from qdr_core.models.blocks import Add, Mul, SharedInput


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


class OutputFusion(nn.Module):
    """Recursive fusion at full resolution: ``y + g * (p - y) + r`` on the still restoration ``y``,
    the previous frame's output ``p`` (already aligned to this frame by the runtime's motion
    estimate, ``runtime.motion``) and the degraded frame ``x``.

    ``g`` (one channel) says where the aligned past may replace the present. Its logit has two
    parts: ``gate_d(m)``, a function of ``m``, the local mean of ``|p - y|`` (5x5, all channels),
    initialised to a recursive filter's classic rule (trust the past ~80 % where it agrees with the
    present, little where it differs by more than ~8 grey levels: misaligned, occluded, moved, or
    the zero state of a stream's first frame), and ``gate_f(f)``, learned features of ``y``, ``p``
    and ``x`` (zero at init). ``r`` is a small learned correction from the same features (zero at
    init). ``|p - y|`` is ``relu(d) + relu(-d)`` of ``d = p - y`` (1x1 convs, identity and minus
    identity at init), so the op set stays Conv/Relu/Add/Mul/Sigmoid.
    """

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        # d = p - y
        self.diff_p = nn.Conv2d(3, 3, 1, bias=False)
        self.diff_y = nn.Conv2d(3, 3, 1, bias=False)
        self.diff_add = Add()
        # m = local mean |d|
        self.pos_act = nn.ReLU()
        self.negate = nn.Conv2d(3, 3, 1, bias=False)
        self.neg_act = nn.ReLU()
        self.mean_pos = nn.Conv2d(3, 1, 5, padding=2, bias=False)
        self.mean_neg = nn.Conv2d(3, 1, 5, padding=2, bias=False)
        self.mean_add = Add()
        self.gate_d = nn.Conv2d(1, 1, 1)
        # learned features of the present, the past and the input
        self.in_y = nn.Conv2d(3, hidden, 3, padding=1)
        self.in_p = nn.Conv2d(3, hidden, 3, padding=1, bias=False)
        self.in_x = nn.Conv2d(3, hidden, 3, padding=1, bias=False)
        self.in_add1 = Add()
        self.in_add2 = Add()
        self.act1 = nn.ReLU()
        self.mid = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.act2 = nn.ReLU()
        self.gate_f = nn.Conv2d(hidden, 1, 3, padding=1, bias=False)
        self.gate_add = Add()
        self.gate_act = nn.Sigmoid()
        self.correction = nn.Conv2d(hidden, 3, 3, padding=1)
        self.mul = Mul()
        self.blend_add = Add()
        self.out_add = Add()
        eye = torch.eye(3)[:, :, None, None]
        with torch.no_grad():
            self.diff_p.weight.copy_(eye)
            self.diff_y.weight.copy_(-eye)
            self.negate.weight.copy_(-eye)
            self.mean_pos.weight.fill_(1.0 / 75)
            self.mean_neg.weight.fill_(1.0 / 75)
            # sigmoid(1.4 - 76 m): 0.80 at m = 0, 0.29 at m = 0.03 (8 grey levels), ~0 beyond 0.1.
            self.gate_d.weight.fill_(-76.0)
            self.gate_d.bias.fill_(1.4)
        nn.init.zeros_(self.gate_f.weight)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)

    def forward(self, y: torch.Tensor, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        d = self.diff_add(self.diff_p(p), self.diff_y(y))
        m = self.mean_add(self.mean_pos(self.pos_act(d)), self.mean_neg(self.neg_act(self.negate(d))))
        f = self.act1(self.in_add2(self.in_add1(self.in_y(y), self.in_p(p)), self.in_x(x)))
        f = self.act2(self.mid(f))
        g = self.gate_act(self.gate_add(self.gate_d(m), self.gate_f(f)))
        blended = self.blend_add(y, self.mul(g, d))
        return self.out_add(blended, self.correction(f))

    def shared_inputs(self) -> list[SharedInput]:
        """``y`` feeds its input conv, the difference and the blend; ``p`` two convs; ``d`` its
        ReLU (no quantizer) and the negation; ``f`` the gate and the correction."""
        return [
            [(self.in_y, 0), (self.diff_y, 0), (self.blend_add, 0)],
            [(self.in_p, 0), (self.diff_p, 0)],
            [(self.gate_f, 0), (self.correction, 0)],
        ]
