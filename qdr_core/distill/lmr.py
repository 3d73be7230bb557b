"""Loss balancing between reconstruction and distillation: fixed weights or LMR.

LMR (learnable magnitude reweighting) uses the homoscedastic-uncertainty form (Kendall et al.,
2018): ``L = sum_i exp(-s_i) L_i + s_i`` with one learnable log-magnitude ``s_i`` per loss. At its
optimum ``exp(-s_i) = 1 / L_i``: every loss is rescaled to unit magnitude, so the distillation term
neither drowns the reconstruction gradient when quantization noise inflates it early in QAT nor
vanishes as it shrinks — the "tug-of-war" is settled by the data, not by a hand-tuned weight.

The magnitudes start at that optimum for the first batch (``s_i = log L_i``) rather than at 0.
Adam moves every ``s_i`` at the same rate whatever its gradient, so from ``s = 0`` all weights
climb in lockstep for the first ~``log(1 / L) / lr`` steps (hundreds) and LMR would act as fixed
equal weights for a whole short QAT schedule.
"""

from __future__ import annotations

import torch
from torch import nn

from qdr_core.errors import ConfigError

BALANCE_MODES = ("fixed", "lmr", "gradnorm")


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
        init: initial log-magnitudes ``s_i``; None = ``log L_i`` of the first batch seen.
    """

    def __init__(self, names: tuple[str, ...], init: dict[str, float] | None = None) -> None:
        super().__init__()
        self.log_mag = nn.ParameterDict(
            {n: nn.Parameter(torch.tensor(float((init or {}).get(n, 0.0)))) for n in names}
        )
        self.register_buffer("initialized", torch.tensor(init is not None))

    def weights(self) -> dict[str, float]:
        return {n: float(torch.exp(-s.detach())) for n, s in self.log_mag.items()}

    def forward(self, losses: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        if not bool(self.initialized):
            with torch.no_grad():
                for name, loss in losses.items():
                    self.log_mag[name].fill_(float(torch.log(loss.detach().clamp_min(1e-8))))
                self.initialized.fill_(True)
        total = 0.0
        for name, loss in losses.items():
            s = self.log_mag[name]
            total = total + torch.exp(-s) * loss + s
        return total, self.weights()


class GradNormBalancer(nn.Module):
    """The gradient-magnitude alternative to LMR: ``L = L_rec + w L_kd`` with ``w`` tracking
    ``||grad L_rec|| / ||grad L_kd||`` (an exponential moving average over the measurements the
    training loop feeds to ``update``), so both losses push the weights equally hard.

    Args:
        names: ``("rec", "kd")``; the first is the reference with weight 1.
        momentum: EMA factor of the ratio (0 = last measurement only).
    """

    needs_grad_norms = True

    def __init__(self, names: tuple[str, ...], momentum: float = 0.8) -> None:
        super().__init__()
        self.names = names
        self.momentum = momentum
        self.register_buffer("ratios", torch.ones(len(names)))
        self.register_buffer("initialized", torch.tensor(False))

    def update(self, grad_norms: dict[str, float]) -> None:
        ref = grad_norms[self.names[0]]
        new = torch.tensor([ref / max(grad_norms[n], 1e-12) for n in self.names])
        m = self.momentum if bool(self.initialized) else 0.0
        self.ratios.mul_(m).add_((1 - m) * new)
        self.initialized.fill_(True)

    def weights(self) -> dict[str, float]:
        return {n: float(r) for n, r in zip(self.names, self.ratios)}

    def forward(self, losses: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        w = self.weights()
        return sum(w[k] * v for k, v in losses.items()), w


def build_balancer(mode: str, names: tuple[str, ...], kd_weight: float = 1.0) -> nn.Module:
    if mode == "fixed":
        return FixedBalancer({"rec": 1.0, **{n: kd_weight for n in names if n != "rec"}})
    if mode == "lmr":
        return LMRBalancer(names)
    if mode == "gradnorm":
        return GradNormBalancer(names)
    raise ConfigError(f"unknown --balance {mode!r}; choose one of {', '.join(BALANCE_MODES)}")
