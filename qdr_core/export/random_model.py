"""Random-weight model files: the benchmark's stand-ins for presets that ship no trained model
(speed does not depend on weight values) and the tests' models.

An untrained EFM is the identity (its head is zero-initialised), which would let a test pass even
if a runtime dropped the network entirely; so the head gets non-zero weights here. Imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RandomModelFiles:
    checkpoint: Path
    onnx: Path


def write_random_model(
    directory: str | os.PathLike,
    preset: str = "efm-t",
    seed: int = 0,
    head_std: float = 0.1,
    name: str = "model",
) -> RandomModelFiles:
    """Write ``<name>.pt`` (qdr checkpoint) and ``<name>.onnx`` (FP32 export) of one random EFM."""
    import torch

    from qdr_core.export.onnx_fp32 import export_onnx
    from qdr_core.models import build_model
    from qdr_core.models.checkpoint import model_payload, save_checkpoint

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    model = build_model(preset)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=generator) * head_std)
        model.head.bias.zero_()
    meta = {"task": "random", "preset": preset, "seed": seed}
    files = RandomModelFiles(directory / f"{name}.pt", directory / f"{name}.onnx")
    save_checkpoint(files.checkpoint, model_payload(model, meta=meta))
    export_onnx(model.eval(), files.onnx, metadata={k: str(v) for k, v in meta.items()})
    return files
