"""Which model files a benchmark runs, and stand-ins for the ones that do not exist.

Speed does not depend on weight values, so until trained models are shipped a random-weight EFM of
the same preset, exported and quantized the same way, times the same. Every entry says where its
file came from (``source``): ``shipped`` (``models/<task>/``), ``shipped-other-task`` (another
task's file: same architecture, same speed) or ``stand-in`` (random weights; speed only, never
quality).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qdr_core.errors import ModelFileError
from qdr_core.sizes import round_up_size
from qdr_core.tasks import TASKS

#: role -> file name in ``models/<task>/``
ROLE_FILES = {
    "fp32_pt": "fp32.pt",
    "fp32_onnx": "fp32.onnx",
    "int8_cpu": "int8_cpu.onnx",
    "int8_trt": "int8_trt.onnx",
}
DEFAULT_CACHE = Path("runs/bench_models")


@dataclass(frozen=True)
class ModelFile:
    role: str
    path: str
    source: str  # shipped | shipped-other-task | stand-in
    note: str = ""


def find_shipped(models_dir: str | os.PathLike, task: str, role: str) -> ModelFile | None:
    """``models/<task>/<file>``, else the same file of another task (same preset, same speed)."""
    name = ROLE_FILES[role]
    own = Path(models_dir) / task / name
    if own.is_file():
        return ModelFile(role, str(own), "shipped", f"trained {task} model")
    for other in TASKS:
        path = Path(models_dir) / other / name
        if other != task and path.is_file():
            return ModelFile(
                role, str(path), "shipped-other-task", f"no {task} file yet: timed the {other} model"
            )
    return None


def standin_files(preset: str, cache_dir: str | os.PathLike) -> dict[str, ModelFile]:
    """Random-weight ``preset`` as all four roles, created once under ``cache_dir/<preset>/`` with the
    project's own exporters (an exporter error propagates: a stand-in made some other way would
    time a different graph)."""
    folder = Path(cache_dir) / preset
    paths = {role: folder / name for role, name in ROLE_FILES.items()}
    if not paths["fp32_pt"].is_file() or not paths["fp32_onnx"].is_file():
        from qdr_core.export.random_model import write_random_model

        write_random_model(folder, preset=preset, name="fp32")
    if not paths["int8_cpu"].is_file() or not paths["int8_trt"].is_file():
        project_exports(paths["fp32_pt"], paths["int8_cpu"], paths["int8_trt"])
    how = "QAT conversion + calibration, export_ort_int8 / export_tensorrt_qdq"
    notes = {
        "fp32_pt": f"random-weight {preset} checkpoint (qdr_core.export.random_model)",
        "fp32_onnx": f"random-weight {preset}, FP32 ONNX export",
        "int8_cpu": f"random-weight {preset}, U8/S8 QDQ for onnxruntime via {how}",
        "int8_trt": f"random-weight {preset}, symmetric S8 TensorRT-style QDQ via {how}",
    }
    return {role: ModelFile(role, str(p), "stand-in", notes[role]) for role, p in paths.items()}


def project_exports(checkpoint: Path, int8_cpu: Path, int8_trt: Path) -> None:
    """INT8 stand-ins made exactly as shipped models are (same graph, same op types), from a
    random-weight checkpoint: QAT copy, calibration on random frames, both exporters."""
    import torch

    from qdr_core.export.ort_int8 import export_ort_int8
    from qdr_core.export.qdq_tensorrt import export_tensorrt_qdq
    from qdr_core.quant.calibrate import calibrate
    from qdr_core.quant.convert import quantize_model
    from qdr_core.quant.qat_model import load_model

    generator = torch.Generator().manual_seed(0)
    qat = quantize_model(load_model(checkpoint).eval())
    size = round_up_size((96, 128), int(qat.size_multiple))
    batches = [torch.rand(1, 3, *size, generator=generator) for _ in range(4)]
    calibrate(qat, batches)
    qat.eval()
    export_ort_int8(qat, int8_cpu, [b.numpy() for b in batches])
    export_tensorrt_qdq(qat, int8_trt)


def resolve_models(task: str, models_dir: str, preset: str, cache_dir: str) -> dict[str, ModelFile]:
    """One file per role: shipped where it exists, else a stand-in of ``preset``."""
    found = {role: find_shipped(models_dir, task, role) for role in ROLE_FILES}
    if all(found.values()):
        return found  # type: ignore[return-value]
    standins = standin_files(preset, cache_dir)
    return {role: found[role] or standins[role] for role in ROLE_FILES}


# -- complexity from the ONNX graph (works for any model, peers included, without torch) -------------


def onnx_complexity(path: str | os.PathLike, height: int = 480, width: int = 640) -> dict[str, Any]:
    """Conv MACs for one ``height x width`` frame, and parameter count, read from an ONNX graph.

    Shapes come from ONNX shape inference with the input fixed to 1x3xHxW; Conv weight shapes from
    the initializers (or the DequantizeLinear in front of them in a QDQ graph). The frame is padded
    up to the model's ``size_multiple`` (ONNX metadata), as the runtimes pad it.
    """
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    height, width = round_up_size((height, width), int(meta.get("size_multiple", "1")))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ModelFileError(f"{path}: expected an NCHW input")
    fixed = {model.graph.input[0].name: (1, 3, height, width)}
    if meta.get("temporal") == "1":  # a streaming model's state input follows the frame's size
        stride = int(meta.get("state_stride", "1"))
        state = next(i for i in model.graph.input if i.name == "state_in")
        channels = state.type.tensor_type.shape.dim[1].dim_value
        fixed["state_in"] = (1, channels, height // stride, width // stride)
    for inp in model.graph.input:
        for dim, value in zip(inp.type.tensor_type.shape.dim, fixed.get(inp.name, ())):
            dim.ClearField("dim_param")
            dim.dim_value = value
    model = shape_inference.infer_shapes(model)
    shapes = {
        info.name: [d.dim_value for d in info.type.tensor_type.shape.dim]
        for info in [*model.graph.value_info, *model.graph.output, *model.graph.input]
    }
    shapes.update({i.name: list(i.dims) for i in model.graph.initializer})
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "QLinearConv", "ConvInteger")]
    unknown = [n.output[0] for n in convs if not shapes.get(n.output[0]) or 0 in shapes[n.output[0]]]
    if unknown:
        shapes.update(_run_shapes(model, fixed, unknown))
    macs = 0
    for node in convs:
        w_name = node.input[3] if node.op_type == "QLinearConv" else node.input[1]
        w_shape, out_shape = shapes.get(w_name), shapes.get(node.output[0])
        if not w_shape or not out_shape or 0 in out_shape:
            raise ModelFileError(f"{path}: cannot infer the shapes of Conv node {node.name!r}")
        macs += int(np.prod(out_shape)) * int(np.prod(w_shape[1:]))
    params = sum(
        int(np.prod(numpy_helper.to_array(i).shape)) for i in model.graph.initializer if i.data_type == 1
    )
    return {"macs": macs, "params_fp32_initializers": params}


def _run_shapes(model, fixed: dict[str, tuple[int, ...]], names: list[str]) -> dict[str, list[int]]:
    """Shapes of the tensors ``names``, found by running ``model`` once on zeros of the ``fixed``
    input shapes: ONNX shape inference stops at a Slice whose bounds are computed from shapes (a
    cropping context pyramid's, ``models.context``)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in known)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {name: np.zeros(shape, np.float32) for name, shape in fixed.items()}
    return {name: list(value.shape) for name, value in zip(names, sess.run(names, feeds))}
