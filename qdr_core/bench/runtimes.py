"""The runtime configurations a benchmark can time, and whether each can run on this machine."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RuntimeSpec:
    """One way of running a model.

    Args:
        key: short stable name used in JSON and on the command line (``ort-int8-cpu``).
        label: what a table shows.
        role: which model file it runs (``fp32_pt``, ``fp32_onnx``, ``int8_cpu``, ``int8_trt``).
        backend: ``load_runtime`` backend.
        precision: arithmetic the kernels use (``fp32``, ``fp16``, ``int8``).
        device: ``cpu`` or ``cuda``.
        opts: extra ``load_runtime`` keyword arguments.
        half: torch only: run the module in FP16 (the runtime interface is FP32-only).
    """

    key: str
    label: str
    role: str
    backend: str
    precision: str
    device: str = "cpu"
    opts: dict[str, Any] = field(default_factory=dict)
    half: bool = False


_ORT_CPU = {"providers": ["CPUExecutionProvider"]}
_ORT_CUDA = {"providers": ["CUDAExecutionProvider"]}
_TORCH_CUDA = {"device": "cuda"}

CPU_RUNTIMES = (
    RuntimeSpec("torch-fp32", "torch FP32", "fp32_pt", "torch", "fp32"),
    RuntimeSpec("ort-fp32", "ORT FP32", "fp32_onnx", "onnxruntime", "fp32", opts=_ORT_CPU),
    RuntimeSpec("ort-int8-cpu", "ORT INT8 (int8_cpu)", "int8_cpu", "onnxruntime", "int8", opts=_ORT_CPU),
    RuntimeSpec(
        "ort-int8-trt", "ORT on TRT-style QDQ (int8_trt)", "int8_trt", "onnxruntime", "int8", opts=_ORT_CPU
    ),
)
TENSORRT_RUNTIMES = tuple(
    RuntimeSpec(f"trt-{p}", label, role, "tensorrt", p, "cuda", {"precision": p})
    for p, label, role in (
        ("int8", "TensorRT INT8 (int8_trt)", "int8_trt"),
        ("fp16", "TensorRT FP16", "fp32_onnx"),
        ("fp32", "TensorRT FP32", "fp32_onnx"),
    )
)
#: What a CUDA machine without TensorRT runs instead (benchmarks/gpu.sh).
CUDA_RUNTIMES = (
    RuntimeSpec("ort-cuda-fp32", "ORT CUDA FP32", "fp32_onnx", "onnxruntime", "fp32", "cuda", _ORT_CUDA),
    RuntimeSpec("torch-cuda-fp32", "torch CUDA FP32", "fp32_pt", "torch", "fp32", "cuda", _TORCH_CUDA),
    RuntimeSpec("torch-cuda-fp16", "torch CUDA FP16", "fp32_pt", "torch", "fp16", "cuda", _TORCH_CUDA, True),
)
ALL_RUNTIMES = {s.key: s for s in (*CPU_RUNTIMES, *TENSORRT_RUNTIMES, *CUDA_RUNTIMES)}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def unavailable_reason(spec: RuntimeSpec) -> str | None:
    """None when ``spec`` can run here, else why not (one line a user can act on)."""
    if spec.backend == "tensorrt":
        if not _importable("tensorrt"):
            return "TensorRT Python package not installed (JetPack 6: python3-libnvinfer; x86 CUDA: pip install tensorrt)"
        from qdr_core.runtime.tensorrt_backend import gpu_available

        return (
            None
            if gpu_available()
            else "TensorRT is installed but no CUDA GPU is visible (or cuda-python is missing)"
        )
    if spec.backend not in ("onnxruntime", "torch"):
        return f"unknown backend {spec.backend!r}"
    if not _importable(spec.backend):
        return f"{spec.backend} not installed"
    if spec.device != "cuda":
        return None
    if spec.backend == "onnxruntime":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return "onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)"
        return None
    import torch

    return None if torch.cuda.is_available() else "torch has no CUDA device (CPU build or no GPU)"


def default_runtimes(device: str = "cpu") -> list[RuntimeSpec]:
    """CPU runtimes and TensorRT (timed when available, reported as unavailable otherwise); with
    ``device="cuda"`` also ORT CUDA and torch CUDA FP32 / FP16."""
    return [*CPU_RUNTIMES, *TENSORRT_RUNTIMES, *(CUDA_RUNTIMES if device == "cuda" else ())]
