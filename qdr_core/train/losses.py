"""Reconstruction losses: Charbonnier (a smooth L1) with an optional SSIM term."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure


class CharbonnierLoss(nn.Module):
    """``mean(sqrt((x - y)^2 + eps^2))``: L1's robustness without its kink at zero."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((pred - target) ** 2 + self.eps**2).mean()


class ReconstructionLoss(nn.Module):
    """Charbonnier or L1, plus ``ssim_weight * (1 - SSIM)`` when ``ssim_weight > 0``."""

    def __init__(self, kind: str = "charbonnier", ssim_weight: float = 0.0) -> None:
        super().__init__()
        if kind not in ("charbonnier", "l1"):
            raise ValueError(f"unknown reconstruction loss {kind!r}; use charbonnier or l1")
        self.pixel = CharbonnierLoss() if kind == "charbonnier" else nn.L1Loss()
        self.ssim_weight = ssim_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.pixel(pred, target)
        if self.ssim_weight > 0:
            ssim = structural_similarity_index_measure(pred.clamp(0, 1), target, data_range=1.0)
            loss = loss + self.ssim_weight * (1.0 - ssim)
        return loss
