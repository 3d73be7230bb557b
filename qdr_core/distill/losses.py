"""Distillation losses of the QDR ablation: output KD, decoder-feature KD and decoder-free
distillation (DFD) at the bottleneck.

Feature losses are relative: ``mean|f_s - f_t| / mean|f_t|`` (or the MSE analogue). Feature
magnitudes differ by orders of magnitude between tasks and layers; dividing by the teacher's
(detached) magnitude gives every variant the same scale, so one fixed weight means the same thing
for bottleneck and decoder features and LMR starts from comparable losses.
"""

from __future__ import annotations

import torch
from torch import nn

from qdr_core.errors import ConfigError

KD_MODES = ("none", "output", "decoder", "dfd")
FEATURE_OF_MODE = {"dfd": "bottleneck", "decoder": "decoder"}


def _distance(kind: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if kind == "l1":
        return (a - b).abs().mean()
    if kind == "mse":
        return ((a - b) ** 2).mean()
    raise ConfigError(f"unknown distillation distance {kind!r}; use l1 or mse")


class FeatureKD(nn.Module):
    """Distance between a student feature map and the teacher's, relative to the teacher's magnitude.

    Args:
        feature: which named feature of ``EFM.forward(x, return_features=True)`` to match:
            ``bottleneck`` (DFD) or ``decoder`` (the decoder-feature KD baseline).
        distance: l1 | mse.
        adapter: maps the student feature to the teacher's channels (larger-teacher ablation);
            None when both have the same width (self-distillation).
    """

    def __init__(
        self, feature: str = "bottleneck", distance: str = "l1", adapter: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.feature = feature
        self.distance = distance
        self.adapter = adapter

    def forward(self, student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> torch.Tensor:
        s, t = student[self.feature], teacher[self.feature].detach()
        if self.adapter is not None:
            s = self.adapter(s)
        norm = t.abs().mean() if self.distance == "l1" else (t**2).mean()
        return _distance(self.distance, s, t) / norm.clamp_min(1e-8)


class DecoderFreeDistillation(FeatureKD):
    """DFD: quantization error is corrected at the bottleneck only; decoder features and the output
    image are left to the reconstruction loss, so errors are not pulled towards the teacher where the
    decoder would amplify them spatially."""

    def __init__(self, distance: str = "l1", adapter: nn.Module | None = None) -> None:
        super().__init__("bottleneck", distance, adapter)


class OutputKD(nn.Module):
    """Distance between the student's and the teacher's restored images (classic output KD)."""

    def __init__(self, distance: str = "l1") -> None:
        super().__init__()
        self.distance = distance

    def forward(self, student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
        return _distance(self.distance, student_out, teacher_out.detach())


class ProjectionAdapter(nn.Module):
    """1x1 conv from the student's feature width to the teacher's (larger-teacher ablation).

    Only used by the training loss; exports never contain it. Starts as a zero-padded identity when
    the teacher is wider, so the loss at step 0 compares the shared channels directly.
    """

    def __init__(self, student_channels: int, teacher_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(student_channels, teacher_channels, 1, bias=False)
        with torch.no_grad():
            self.proj.weight.zero_()
            n = min(student_channels, teacher_channels)
            self.proj.weight[torch.arange(n), torch.arange(n)] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def check_kd_mode(mode: str) -> str:
    if mode not in KD_MODES:
        raise ConfigError(f"unknown --kd {mode!r}; choose one of {', '.join(KD_MODES)}")
    return mode
