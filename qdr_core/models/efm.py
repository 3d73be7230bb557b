"""EFM: the Edge-Friendly Model.

A convolution-only U-Net with two down-sampling stages (1/2, 1/4), additive skips and a global
residual. Full-resolution work is limited to a strided stem and a PixelShuffle head because
full-resolution layers set the frame rate; the 1/4-resolution bottleneck is the tensor that
decoder-free distillation reads. Every op (Conv, ReLU, Add, Mul, Sigmoid, DepthToSpace) has an INT8
path in TensorRT and onnxruntime.

The graph ends with the global residual Add and is not clamped: runtimes and evaluation clip to
[0, 1], which keeps the exported graph inside the INT8-friendly op set and gradients alive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

from qdr_core.errors import ConfigError
from qdr_core.models.blocks import Add, ResidualBlock, SharedInput
from qdr_core.models.condition import ConditionDescriptor
from qdr_core.models.context import ContextPyramid, input_multiple
from qdr_core.models.streaming import EMPTY_OUTPUT_STATE, OutputFusion, TemporalFusion

#: What a streaming EFM carries to the next frame (``EFMConfig.state``).
STATE_KINDS = ("bottleneck", "output")


@dataclass(frozen=True)
class EFMConfig:
    """Architecture of one EFM.

    Args:
        width: channels at 1/2 resolution; the bottleneck (1/4) has ``2 * width``.
        enc_blocks: residual blocks at 1/2 resolution before down-sampling.
        mid_blocks: residual blocks at the 1/4-resolution bottleneck.
        dec_blocks: residual blocks at 1/2 resolution after up-sampling.
        ldg: learnable degradation gating in encoder and bottleneck blocks.
        gate_channels: channels of each LDG gate map (1 or the block width).
        context_levels: extra stride-2 levels below the bottleneck (1/8, 1/16, ...; see
            ``models.context``) for degradations that need the whole frame (haze). Each level
            doubles the size multiple the input must have (4 * 2**levels) unless
            ``context_crop``.
        context_crop: the context pyramid's deep levels (1/32 and below) round up and are cropped
            on the way back (``models.context``), so inputs need multiples of 32 at most, not
            4 * 2**levels (a 640x480 frame is not padded to 640x512). The same function on sides
            that are multiples of 4 * 2**levels; off in files made before it existed.
        temporal: a streaming model: carries its bottleneck to the next frame
            (``models.streaming``); forward takes ``(frame, state)`` and returns
            ``(restored, state)``.
        state: what a temporal model carries: ``bottleneck`` (its 1/4-resolution features, fused
            before the mid blocks; ``models.streaming.TemporalFusion``) or ``output`` (its restored
            frame at full resolution, which the runtime aligns to the next frame by optical flow
            before feeding it back; ``models.streaming.OutputFusion``).
        condition: a global condition descriptor (``models.condition``) scales each bottleneck
            block's update per channel, from the whole frame's pooled features: one network for
            every condition, without a task label.
    """

    width: int = 32
    enc_blocks: int = 1
    mid_blocks: int = 3
    dec_blocks: int = 1
    ldg: bool = True
    gate_channels: int = 1
    context_levels: int = 0
    context_crop: bool = False
    temporal: bool = False
    condition: bool = False
    state: str = "bottleneck"

    def __post_init__(self) -> None:
        if self.width < 1 or min(self.enc_blocks, self.mid_blocks, self.dec_blocks, self.context_levels) < 0:
            raise ConfigError(f"invalid EFM config: {self}")
        if self.gate_channels < 1:
            raise ConfigError(f"gate_channels must be >= 1, got {self.gate_channels}")
        if self.state not in STATE_KINDS:
            raise ConfigError(f"unknown state {self.state!r}; choose one of {', '.join(STATE_KINDS)}")

    @property
    def aligned_state(self) -> bool:
        """A streaming model whose state is its previous output, which the runtimes align to the
        next frame by optical flow (``state_align: flow`` in its files)."""
        return self.temporal and self.state == "output"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> EFMConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown EFM config keys: {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


# Named presets. MACs at 640x480 are reported by `qdr info --preset P` (see README). Variants are
# their base preset plus the fields that differ.
_EFM_S = EFMConfig(width=32, enc_blocks=1, mid_blocks=3, dec_blocks=1)
_EFM_T = EFMConfig(width=8, enc_blocks=1, mid_blocks=1, dec_blocks=1)
_EFM_S_CTX5 = replace(_EFM_S, context_levels=5, context_crop=True)
PRESETS: dict[str, EFMConfig] = {
    # Tiny: for tests and smoke runs only.
    "efm-t": _EFM_T,
    # Default: fits the ~12 GMAC / 640x480 budget that 30 FPS INT8 on a 2-core CPU allows.
    "efm-s": _EFM_S,
    # Quality preset (and the larger teacher of the capacity-mismatch ablation).
    "efm-m": EFMConfig(width=48, enc_blocks=2, mid_blocks=4, dec_blocks=2),
    # efm-s plus a 3-level context pyramid (down to 1/32): frame-wide receptive field for haze.
    "efm-s-ctx": replace(_EFM_S, context_levels=3, context_crop=True),
    # Five levels (down to 1/128): the deepest 3x3 convs see the whole frame, so frame-wide
    # statistics (haze's airlight and overall density) are in reach; inputs pad to multiples of 32
    # (the levels below 1/32 round up; the shipped haze files predate that and pad to 128).
    "efm-s-ctx5": _EFM_S_CTX5,
    # Streaming variants (same size + temporal fusion at the bottleneck; see models.streaming).
    "efm-t-stream": replace(_EFM_T, temporal=True),
    "efm-s-stream": replace(_EFM_S, temporal=True),
    # Streaming by recursion on the output: efm-s (same weights) plus a full-resolution fusion of
    # its restored frame with the previous output, motion-aligned by the runtime.
    "efm-t-recur": replace(_EFM_T, temporal=True, state="output"),
    "efm-s-recur": replace(_EFM_S, temporal=True, state="output"),
    # The same fusion over the haze model's network (efm-s-ctx5).
    "efm-s-ctx5-recur": replace(_EFM_S_CTX5, temporal=True, state="output"),
    # The all-conditions `auto` model: efm-s-ctx5 plus the global condition descriptor; same
    # weights as efm-s-ctx5 where they overlap, so it can start from the haze model.
    "efm-s-auto": replace(_EFM_S_CTX5, condition=True),
}
DEFAULT_PRESET = "efm-s"


def preset_config(name: str, **overrides) -> EFMConfig:
    """The config of a named preset, with optional field overrides (e.g. ``ldg=False``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return EFMConfig.from_dict({**PRESETS[name].to_dict(), **overrides})


class EFM(nn.Module):
    """Edge-Friendly Model. Input and output: RGB in [0, 1], NCHW, H and W multiples of
    ``size_multiple`` (4, or up to 4 * 2**context_levels with a context pyramid).

    A temporal (streaming) EFM also takes and returns the state (``state_shape``); a missing state
    is the empty state (``empty_state``: the first frame of a stream)."""

    def __init__(self, cfg: EFMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        #: Frame pixels per cell of the deepest level (4 * 2**context_levels; ONNX metadata
        #: ``context_cell``): crops at least two of these across give every level a proper range
        #: (calibration), and tiles of big frames overlap by two of them.
        self.context_cell = 4 * 2**cfg.context_levels
        self.size_multiple = 4 * input_multiple(cfg.context_levels, cfg.context_crop)
        recur = cfg.aligned_state
        #: A bottleneck state has 1/4 of the padded frame's resolution; an output state all of it.
        self.state_stride = 1 if recur else 4
        c, c2 = cfg.width, 2 * cfg.width
        # Stem: a 4x4 stride-2 conv sees each 2x2 cell plus its neighbours (space-to-depth with
        # context) and moves all further work to 1/2 resolution.
        self.stem = nn.Conv2d(3, c, 4, stride=2, padding=1)
        self.stem_act = nn.ReLU()
        self.encoder = nn.Sequential(
            *[ResidualBlock(c, cfg.ldg, cfg.gate_channels) for _ in range(cfg.enc_blocks)]
        )
        self.down = nn.Conv2d(c, c2, 3, stride=2, padding=1)
        self.down_act = nn.ReLU()
        self.context = (
            ContextPyramid(c2, cfg.context_levels, cfg.context_crop) if cfg.context_levels else nn.Identity()
        )
        self.fusion = TemporalFusion(c2) if cfg.temporal and not recur else None
        self.output_fusion = OutputFusion(c) if recur else None
        self.bottleneck = nn.Sequential(
            *[ResidualBlock(c2, cfg.ldg, cfg.gate_channels) for _ in range(cfg.mid_blocks)]
        )
        self.condition = ConditionDescriptor(c2, cfg.mid_blocks) if cfg.condition else None
        # Up-sampling by 1x1 conv + PixelShuffle (DepthToSpace): runs in INT8 where ConvTranspose
        # would stay FP32 in onnxruntime.
        self.up = nn.Conv2d(c2, 4 * c, 1)
        self.up_shuffle = nn.PixelShuffle(2)
        self.skip_add = Add()
        # Decoder blocks are plain residuals: LDG localises degradation where it is encoded.
        self.decoder = nn.Sequential(*[ResidualBlock(c, ldg=False) for _ in range(cfg.dec_blocks)])
        self.head = nn.Conv2d(c, 3 * 4, 3, padding=1)
        self.head_shuffle = nn.PixelShuffle(2)
        self.residual_add = Add()
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def state_fill(self) -> float:
        """The value of every element of the state of a stream's first frame (``empty_state``):
        0 for a bottleneck state, ``EMPTY_OUTPUT_STATE`` for an output state."""
        return EMPTY_OUTPUT_STATE if self.output_fusion is not None else 0.0

    def empty_state(
        self, batch: int, height: int, width: int, like: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The state of the first frame of a stream of ``height x width`` (padded) frames."""
        shape = self.state_shape(batch, height, width)
        if like is None:
            return torch.full(shape, self.state_fill)
        return like.new_full(shape, self.state_fill)

    def state_shape(self, batch: int, height: int, width: int) -> tuple[int, int, int, int]:
        """NCHW shape of the state of a ``height x width`` (padded) frame: the bottleneck's or the
        output's."""
        channels = 3 if self.output_fusion is not None else 2 * self.cfg.width
        return (batch, channels, height // self.state_stride, width // self.state_stride)

    def forward(
        self, x: torch.Tensor, state: torch.Tensor | None = None, return_features: bool = False
    ) -> torch.Tensor | tuple:
        """Single-frame: ``out``; temporal: ``(out, state_out)``. With ``return_features`` both
        return ``(out, features)`` (a temporal model's ``state_out`` is ``features["state"]``: its
        bottleneck, or its output when ``cfg.aligned_state``)."""
        enc = self.encoder(self.stem_act(self.stem(x)))
        h = self.context(self.down_act(self.down(enc)))
        if self.fusion is not None:
            if state is None:
                state = self.empty_state(x.shape[0], x.shape[2], x.shape[3], like=h)
            h = self.fusion(h, state)
        if self.condition is None:
            bottleneck = self.bottleneck(h)
        else:
            bottleneck = h
            for block, scale in zip(self.bottleneck, self.condition(h)):
                bottleneck = block(bottleneck, scale)
        dec = self.decoder(self.skip_add(self.up_shuffle(self.up(bottleneck)), enc))
        out = self.residual_add(x, self.head_shuffle(self.head(dec)))
        if self.output_fusion is not None:
            if state is None:
                state = self.empty_state(x.shape[0], x.shape[2], x.shape[3], like=x)
            out = self.output_fusion(out, state, dec)
        features = {"encoder": enc, "bottleneck": bottleneck, "decoder": dec}
        if self.cfg.temporal:
            features["state"] = out if self.output_fusion is not None else bottleneck
        if return_features:
            return out, features
        return (out, features["state"]) if self.cfg.temporal else out

    def shared_inputs(self) -> list[SharedInput]:
        """Every group of layers that read one tensor: the network input (stem conv and global
        residual Add), the encoder output (down conv and skip Add), and those inside the blocks."""
        groups: list[SharedInput] = []
        for module in self.modules():
            if isinstance(module, (ResidualBlock, ContextPyramid, TemporalFusion, ConditionDescriptor)):
                groups += module.shared_inputs()
        frame = [(self.stem, 0), (self.residual_add, 0)]
        if self.output_fusion is not None:
            groups.append([(self.head, 0), (self.output_fusion.in_dec, 0)])
        return [*groups, [(self.down, 0), (self.skip_add, 1)], frame]

    def gated_blocks(self) -> list[ResidualBlock]:
        return [m for m in self.modules() if isinstance(m, ResidualBlock) and m.gate is not None]


def build_model(cfg: EFMConfig | str = DEFAULT_PRESET) -> EFM:
    """Build an EFM from a config or a preset name."""
    return EFM(preset_config(cfg) if isinstance(cfg, str) else cfg)
