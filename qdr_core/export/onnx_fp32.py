"""FP32 ONNX export with a dynamic spatial size.

Uses the TorchScript exporter: it keeps opset 17 (TensorRT 8.6 / 10 on JetPack 6 read it), takes
~0.1 s for an EFM and emits only Conv / Relu / Add / Mul / Sigmoid / DepthToSpace (and
GlobalAveragePool for a model with a condition descriptor).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper
from torch import nn

from qdr_core.sizes import round_up_size

INPUT_NAME = "input"
OUTPUT_NAME = "output"
#: A streaming model's state, an explicit graph input and output (see ``models.streaming``).
STATE_IN_NAME = "state_in"
STATE_OUT_NAME = "state_out"
DEFAULT_OPSET = 17


def temporal_metadata(model: nn.Module) -> dict[str, str]:
    """Metadata that tells runtimes a model is streaming and how its state is sized: ``temporal``
    and ``state_stride`` (the state of an HxW padded frame is H/stride x W/stride), plus
    ``state_align: flow`` when the state is the previous output (runtimes warp it to the next frame
    by optical flow) and ``state_fill`` (the value of a stream's first state, ``EFM.state_fill``)
    when the state is the previous output; empty for a single-frame model."""
    if not getattr(getattr(model, "cfg", None), "temporal", False):
        return {}
    meta = {"temporal": "1", "state_stride": str(model.state_stride)}
    if model.cfg.aligned_state:
        meta["state_align"] = "flow"
        meta["state_fill"] = repr(float(model.state_fill))
    return meta


def shape_metadata(model: nn.Module) -> dict[str, str]:
    """Metadata that tells runtimes how to size frames for ``model``: ``size_multiple`` (inputs pad
    to it) and, for an EFM, ``context_cell`` (frame pixels per cell of its deepest level, which sets
    how far tiles must overlap; larger than the multiple for a cropping context pyramid)."""
    meta = {}
    multiple = getattr(model, "size_multiple", None)
    if multiple:
        meta["size_multiple"] = str(multiple)
    cell = getattr(model, "context_cell", None)
    if cell:
        meta["context_cell"] = str(cell)
    return meta


def inline_identity_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ``Identity(initializer)`` nodes (the exporter's de-duplication of equal weights) by
    copies of the initializer, so the graph holds only compute ops."""
    inits = {i.name: i for i in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = numpy_helper.from_array(numpy_helper.to_array(inits[node.input[0]]), node.output[0])
            model.graph.initializer.append(copy)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


def constants_to_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ``Constant`` nodes (the exporter's scalars, e.g. the 2 of the condition descriptor's
    ``2 * sigmoid``) by initializers of the same name: the graph then holds only compute ops."""
    keep = []
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            value = numpy_helper.to_array(node.attribute[0].t)
            model.graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    sample_size: tuple[int, int] | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Export ``model`` (RGB [0,1] NCHW in, same out) with dynamic batch, height and width.
    The trace's sample is ``sample_size`` or the smallest square >= 64 the model accepts.

    A streaming model (``cfg.temporal``) gets ``state_in`` / ``state_out`` as a second input and
    output, dynamic like the image, and ``temporal: 1`` metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    multiple = getattr(model, "size_multiple", None)
    if sample_size is None:
        sample_size = round_up_size((64, 64), multiple or 1)
    sample = torch.rand(1, 3, *sample_size)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    args, inputs, outputs = (sample,), [INPUT_NAME], [OUTPUT_NAME]
    axes = {INPUT_NAME: dynamic, OUTPUT_NAME: dynamic}
    temporal = bool(getattr(getattr(model, "cfg", None), "temporal", False))
    if temporal:
        args = (sample, torch.rand(model.state_shape(1, *sample_size)))
        inputs, outputs = [INPUT_NAME, STATE_IN_NAME], [OUTPUT_NAME, STATE_OUT_NAME]
        state_axes = {0: "batch", 2: "state_height", 3: "state_width"}
        axes.update({STATE_IN_NAME: state_axes, STATE_OUT_NAME: state_axes})
        metadata = {**temporal_metadata(model), **(metadata or {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = constants_to_initializers(inline_identity_initializers(onnx.load(str(path))))
    # Runtimes pad H and W to ``multiple`` (an EFM with a context pyramid needs more than 4).
    meta = {**shape_metadata(model), **(metadata or {})}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path
