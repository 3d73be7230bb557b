"""Loss balancing between reconstruction and distillation: fixed weights or LMR.

LMR (learnable magnitude reweighting) uses the homoscedastic-uncertainty form (Kendall et al.,
2018): ``L = sum_i exp(-s_i) L_i + s_i`` with one learnable log-magnitude ``s_i`` per loss. At its
optimum ``exp(-s_i) = 1 / L_i``: every loss is rescaled to unit magnitude, so the distillation term
neither drowns the reconstruction gradient when quantization noise inflates it early in QAT nor
vanishes as it shrinks — the "tug-of-war" is settled by the data, not by a hand-tuned weight.
"""

from __future__ import annotations

import torch
from torch import nn

from qdr_core.errors import ConfigError

BALANCE_MODES = ("fixed", "lmr")


class FixedBalancer(nn.Module):
    """``L = sum_i w_i L_i`` with constant weights."""

    def __init__(self, weights: dict[str, float]) -> None:
        super().__init__()
        self.fixed = dict(weights)

    def forward(self, losses: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        total = sum(self.fixed.get(k, 1.0) * v for k, v in losses.items())
        return total, {k: float(self.fixed.get(k, 1.0)) for k in losses}


class LMRBalancer(nn.Module):
    """Learnable magnitude reweighting: ``L = sum_i exp(-s_i) L_i + s_i``.

    Args:
        names: the losses it balances (e.g. ``("rec", "kd")``).
        init: initial log-magnitudes ``s_i`` (0 = weight 1).
    """

    def __init__(self, names: tuple[str, ...], init: dict[str, float] | None = None) -> None:
        super().__init__()
        init = init or {}
        self.log_mag = nn.ParameterDict(
            {n: nn.Parameter(torch.tensor(float(init.get(n, 0.0)))) for n in names}
        )

    def weights(self) -> dict[str, float]:
        return {n: float(torch.exp(-s.detach())) for n, s in self.log_mag.items()}

    def forward(self, losses: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        total = 0.0
        for name, loss in losses.items():
            s = self.log_mag[name]
            total = total + torch.exp(-s) * loss + s
        return total, self.weights()


def build_balancer(mode: str, names: tuple[str, ...], kd_weight: float = 1.0) -> nn.Module:
    if mode == "fixed":
        return FixedBalancer({"rec": 1.0, **{n: kd_weight for n in names if n != "rec"}})
    if mode == "lmr":
        return LMRBalancer(names)
    raise ConfigError(f"unknown --balance {mode!r}; choose one of {', '.join(BALANCE_MODES)}")
