"""Parameter and MAC counts. MACs, not parameters, set the frame rate of a restoration model."""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, height: int = 480, width: int = 640) -> int:
    """Multiply-accumulates of every Conv2d for one ``height x width`` RGB frame, padded up to the
    model's ``size_multiple`` as the runtimes pad it (that padded frame is what they compute)."""
    from qdr_core.sizes import round_up_size

    total = 0
    height, width = round_up_size((height, width), int(getattr(model, "size_multiple", 1)))

    def hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        was_training = model.training
        model.eval()
        model(torch.zeros(1, 3, height, width))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return total
