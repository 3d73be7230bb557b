"""Random-weight model files: the benchmark's stand-ins for presets that ship no trained model
(speed does not depend on weight values) and the tests' models.

An untrained EFM is the identity (its head is zero-initialised), which would let a test pass even
if a runtime dropped the network entirely; so the head gets non-zero weights here. Imports torch
(`write_random_model`) or onnx (`write_conv_onnx`: one-conv files that break the model contract in
one chosen way) when called.
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


def write_conv_onnx(
    path: str | os.PathLike,
    out_channels: int = 3,
    input_shape: list | None = None,
    metadata: dict[str, str] | None = None,
    weights: bool = True,
    stride: int = 1,
) -> Path:
    """A one-layer ONNX (3x3 conv, or without ``weights`` an Identity) with the given input shape
    (default NCHW with dynamic batch, height and width), output channels, stride and metadata."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = input_shape or ["batch", 3, "height", "width"]
    out_shape = (
        [shape[0], out_channels, shape[2], shape[3]] if stride == 1 else [shape[0], out_channels, "h", "w"]
    )
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)
    if weights:
        kernel = numpy_helper.from_array(np.full((out_channels, 3, 3, 3), 0.05, np.float32), "w")
        conv = helper.make_node(
            "Conv", ["input", "w"], ["output"], pads=[1, 1, 1, 1], strides=[stride, stride]
        )
        nodes, inits = [conv], [kernel]
    else:
        nodes, inits = [helper.make_node("Identity", ["input"], ["output"])], []
    model = helper.make_model(
        helper.make_graph(nodes, "g", [inp], [out], initializer=inits),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
