"""The fake quantizer: symmetric INT8 with a learnable (LSQ) step size.

Forward computes ``s * clamp(round(x / s), qmin, qmax)``, exactly what a TensorRT
QuantizeLinear -> DequantizeLinear pair with zero-point 0 computes. Backward follows LSQ (Esser et
al., 2020): the straight-through estimator passes ``dL/dx`` inside the clipping range and zeroes it
outside; the step size gets the LSQ gradient scaled by ``1 / sqrt(numel * qmax)`` so that it learns
at the pace of the weights.

Scales start from calibration: ``observe`` collects statistics, ``init_scale`` turns them into a step
size by ``max``, ``percentile`` or ``mse`` (the clip that minimises the quantization MSE).
"""

from __future__ import annotations

import math

import torch
from torch import nn

CALIBRATION_METHODS = ("max", "percentile", "mse")
# Observed activation samples kept per batch; enough for a 99.99th percentile and an MSE search.
_SAMPLES_PER_BATCH = 1 << 16
# Candidate clips as fractions of |x|max: geometric, so heavy-tailed activations (clip far below
# the max) and weights (clip near it) are both searched finely.
_MSE_GRID = torch.logspace(-2, 0, 97)
_MAX_SAMPLES = 1 << 20


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity backward. torch.round rounds half to even, as ONNX does."""
    return (torch.round(x) - x).detach() + x


def grad_scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` forward, gradient multiplied by ``factor`` backward."""
    return (x - x * factor).detach() + x * factor


def fake_quantize(
    x: torch.Tensor, scale: torch.Tensor, qmin: int, qmax: int, axis: int | None = None, lsq_grad: float = 1.0
) -> torch.Tensor:
    """Symmetric (zero-point 0) fake quantization with LSQ gradients.

    Args:
        x: tensor to quantize.
        scale: positive step size; one element (per-tensor) or ``x.shape[axis]`` elements.
        qmin / qmax: integer range (-128 / 127 for activations, -127 / 127 for weights).
        axis: channel axis of a per-channel ``scale``.
        lsq_grad: LSQ gradient scale for ``scale``.
    """
    s = grad_scale(scale, lsq_grad)
    if axis is not None:
        shape = [1] * x.dim()
        shape[axis] = -1
        s = s.reshape(shape)
    return round_ste(torch.clamp(x / s, qmin, qmax)) * s


def mse_clip(absmax: torch.Tensor, values: torch.Tensor, qmax: int) -> torch.Tensor:
    """The clip (one per row of ``values``) that minimises the fake-quant MSE, searched over a grid
    of fractions of ``absmax`` (one per row)."""
    best_err = torch.full_like(absmax, float("inf"))
    best = absmax.clone()
    for frac in _MSE_GRID.tolist():
        clip = absmax * frac
        s = (clip / qmax).unsqueeze(-1)
        err = ((torch.clamp(torch.round(values / s), -qmax, qmax) * s - values) ** 2).mean(-1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, clip, best)
    return best


class FakeQuantizer(nn.Module):
    """INT8 symmetric fake quantization with a learnable step size.

    Args:
        channels: number of scales: 1 for per-tensor, C for per-channel.
        axis: channel axis of a per-channel quantizer (0 = output channels of a conv weight);
            None for per-tensor.
        narrow: use [-127, 127] (TensorRT's weight range) instead of [-128, 127].
        method: calibration method for ``init_scale``: max | percentile | mse.
        percentile: the percentile of |x| used by ``percentile``.
    """

    def __init__(
        self,
        channels: int = 1,
        axis: int | None = None,
        narrow: bool = False,
        method: str = "mse",
        percentile: float = 99.99,
    ) -> None:
        super().__init__()
        if method not in CALIBRATION_METHODS:
            raise ValueError(f"unknown calibration method {method!r}; choose one of {CALIBRATION_METHODS}")
        self.axis = axis
        self.qmin, self.qmax = (-127 if narrow else -128), 127
        self.method = method
        self.percentile = percentile
        self.scale = nn.Parameter(torch.ones(channels))
        self.enabled = True
        self._observing = False
        self._absmax: torch.Tensor | None = None
        self._samples: list[torch.Tensor] = []

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    def step_size(self) -> torch.Tensor:
        """The positive step size used in forward and written into exports."""
        return self.scale.abs().clamp_min(1e-8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._observing:
            self._observe(x.detach())
            return x
        if not self.enabled:
            return x
        per_scale = x.numel() / self.scale.numel()
        return fake_quantize(
            x, self.step_size(), self.qmin, self.qmax, self.axis, 1.0 / math.sqrt(per_scale * self.qmax)
        )

    # Calibration -------------------------------------------------------------------------------
    def start_observing(self) -> None:
        self._observing, self._absmax, self._samples = True, None, []

    def _observe(self, x: torch.Tensor) -> None:
        if self.per_channel:
            flat = x.transpose(0, self.axis).reshape(x.shape[self.axis], -1).abs()
            amax = flat.amax(1)
        else:
            flat = x.reshape(-1).abs()
            amax = flat.amax().reshape(1)
            if self.method != "max":
                # A random subset is enough for a percentile and an MSE search, and bounds memory.
                if flat.numel() > _SAMPLES_PER_BATCH:
                    flat = flat[torch.randint(flat.numel(), (_SAMPLES_PER_BATCH,), device=flat.device)]
                self._samples.append(flat.float().cpu())
        self._absmax = amax if self._absmax is None else torch.maximum(self._absmax, amax)
        if self.per_channel and self.method != "max":
            self._samples = [flat.float().cpu()]

    @torch.no_grad()
    def init_scale(self) -> None:
        """Set the step size from what was observed and stop observing."""
        self._observing = False
        if self._absmax is None:
            raise RuntimeError("init_scale called before any observed tensor")
        absmax = self._absmax.float().cpu().clamp_min(1e-8)
        if self.method == "max":
            clip = absmax
        elif self.per_channel:
            # Weights: one exact search per channel over the full tensor (it is small).
            clip = (
                mse_clip(absmax, self._samples[0], self.qmax)
                if self.method == "mse"
                else torch.quantile(self._samples[0], self.percentile / 100.0, dim=1).clamp_min(1e-8)
            )
        else:
            samples = torch.cat(self._samples)
            if samples.numel() > _MAX_SAMPLES:
                samples = samples[torch.randperm(samples.numel())[:_MAX_SAMPLES]]
            if self.method == "percentile":
                clip = torch.quantile(samples, self.percentile / 100.0).reshape(1).clamp_min(1e-8)
            else:
                clip = mse_clip(absmax, samples.unsqueeze(0), self.qmax)
        self.scale.copy_((clip / self.qmax).to(self.scale))
        self._absmax, self._samples = None, []

    def extra_repr(self) -> str:
        kind = f"per-channel(axis={self.axis})" if self.per_channel else "per-tensor"
        return f"{kind}, range=[{self.qmin}, {self.qmax}], init={self.method}, enabled={self.enabled}"
