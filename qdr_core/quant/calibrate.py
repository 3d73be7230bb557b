"""Post-training calibration (PTQ): initialise every quantizer's step size from data.

Weight scales come from the weights themselves (per output channel); activation scales from the FP32
activations seen on a few calibration batches. PTQ alone is this step without training; QAT starts
from it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from qdr_core.quant.convert import unique_quantizers
from qdr_core.quant.layers import QuantConv2d


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Calibrate all quantizers of ``model`` on ``batches`` (NCHW inputs, or tuples of a model's
    inputs); returns the batch count."""
    model.eval()
    for module in model.modules():
        if isinstance(module, QuantConv2d):
            module.weight_quant.start_observing()
            module.weight_quant(module.weight)
            module.weight_quant.init_scale()
    weight_quants = {id(m.weight_quant) for m in model.modules() if isinstance(m, QuantConv2d)}
    acts = [q for _, q in unique_quantizers(model) if id(q) not in weight_quants]
    for q in acts:
        q.start_observing()
    count = 0
    for batch in batches:
        model(*batch) if isinstance(batch, (tuple, list)) else model(batch)
        count += 1
    if count == 0:
        raise ValueError("calibration needs at least one batch")
    for q in acts:
        q.init_scale()
    return count
