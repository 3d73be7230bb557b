"""Runtimes: run an exported or checkpointed restoration model on numpy images.

``load_runtime`` picks and constructs a backend; every backend is a ``Runtime`` with the same
``infer`` / ``infer_uint8`` / ``close``. Backends are imported only when chosen, so importing this
package never imports torch, onnxruntime or TensorRT.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from qdr_core.errors import BackendUnavailableError, ConfigError, ModelFileError
from qdr_core.runtime.base import Runtime, pad_image, to_uint8
from qdr_core.runtime.contract import DEFAULT_CONTRACT, ModelContract, check_runtime
from qdr_core.runtime.tiling import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_PIXELS

BACKENDS = ("onnxruntime", "tensorrt", "torch")
BACKEND_CHOICES = ("auto", *BACKENDS)
_ONNX_SUFFIXES = {".onnx"}
_CHECKPOINT_SUFFIXES = {".pt", ".pth"}
_INSTALL_HINTS = {
    "onnxruntime": "pip install onnxruntime (onnxruntime-gpu on CUDA machines)",
    "tensorrt": "TensorRT >= 10 Python bindings (JetPack 6 / pip install tensorrt) and cuda-python",
    "torch": "pip install torch",
}

__all__ = [
    "BACKENDS",
    "BACKEND_CHOICES",
    "DEFAULT_TILE_OVERLAP",
    "DEFAULT_TILE_PIXELS",
    "ModelContract",
    "Runtime",
    "auto_backend",
    "available_backends",
    "load_runtime",
    "pad_image",
    "to_uint8",
]


def _importable(module: str) -> bool:
    # find_spec locates a package without importing it (importing torch costs seconds and memory).
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _tensorrt_usable() -> bool:
    if not _importable("tensorrt"):
        return False
    from qdr_core.runtime.tensorrt_backend import gpu_available

    return gpu_available()


def available_backends() -> list[str]:
    """Backends whose dependencies are installed here (tensorrt also needs a visible GPU)."""
    found = []
    if _importable("onnxruntime"):
        found.append("onnxruntime")
    if _tensorrt_usable():
        found.append("tensorrt")
    if _importable("torch"):
        found.append("torch")
    return found


def auto_backend(model_path: str | os.PathLike) -> str:
    """The backend ``auto`` picks for a file: ONNX -> tensorrt on a GPU machine, else onnxruntime;
    checkpoints -> torch."""
    suffix = Path(model_path).suffix.lower()
    if suffix in _ONNX_SUFFIXES:
        return "tensorrt" if _tensorrt_usable() else "onnxruntime"
    if suffix in _CHECKPOINT_SUFFIXES:
        return "torch"
    raise ModelFileError(
        f"cannot tell the model type of {model_path!s} from its suffix {suffix!r}: "
        "expected .onnx or .pt, or name a backend explicitly"
    )


def load_runtime(
    model_path: str | os.PathLike,
    backend: str = "auto",
    num_threads: int = 0,
    engine_cache_dir: str | os.PathLike | None = None,
    tile_pixels: float = DEFAULT_TILE_PIXELS,
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
    contract: ModelContract = DEFAULT_CONTRACT,
    **opts: Any,
) -> Runtime:
    """Load ``model_path`` with ``backend`` (``auto``, ``onnxruntime``, ``tensorrt`` or ``torch``)
    and check it against the model contract (``qdr_core.runtime.contract``).

    ``tile_pixels`` / ``tile_overlap``: frames with more pixels than ``tile_pixels`` are restored in
    overlapping tiles, so memory is bounded by the tile, not the frame (``math.inf``: never tile).
    ``opts`` go to the backend's constructor: ``providers`` (onnxruntime), ``device`` (torch),
    ``precision`` / ``dla_core`` / ``opt_size`` / ``max_size`` ... (tensorrt).

    Raises:
        BackendUnavailableError: unknown backend, or its dependency is not installed.
        ModelFileError: the file is missing, corrupt or not what the backend reads.
        ModelContractError: the file loads but cannot restore a camera frame (one line).
        ConfigError: an option the backend does not take, or a bad tile setting.
    """
    if os.path.isdir(model_path):
        raise ModelFileError(f"{model_path} is a directory, not a model file (.onnx or .pt)")
    runtime = _open(model_path, backend, num_threads, engine_cache_dir, **opts)
    try:
        runtime.set_tiling(tile_pixels, tile_overlap)
        check_runtime(runtime, contract)
    except BaseException:
        runtime.close()
        raise
    return runtime


def _open(
    model_path: str | os.PathLike,
    backend: str,
    num_threads: int,
    engine_cache_dir: str | os.PathLike | None,
    **opts: Any,
) -> Runtime:
    backend = str(backend).strip().lower()
    if backend not in BACKEND_CHOICES:
        raise BackendUnavailableError(
            f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}"
        )
    if backend == "auto":
        backend = auto_backend(model_path)
    module = {"onnxruntime": "onnxruntime", "tensorrt": "tensorrt", "torch": "torch"}[backend]
    if not _importable(module):
        raise BackendUnavailableError(f"backend {backend!r} is not installed: {_INSTALL_HINTS[backend]}")
    try:
        if backend == "onnxruntime":
            from qdr_core.runtime.onnxruntime_backend import OnnxRuntime

            return OnnxRuntime(model_path, num_threads=num_threads, **opts)
        if backend == "torch":
            from qdr_core.runtime.torch_backend import TorchRuntime

            return TorchRuntime(model_path, num_threads=num_threads, **opts)
        from qdr_core.runtime.tensorrt_backend import TensorRTRuntime

        return TensorRTRuntime(model_path, num_threads=num_threads, engine_cache_dir=engine_cache_dir, **opts)
    except TypeError as exc:
        # An option the backend does not take (e.g. ``providers`` for torch) is a configuration error.
        if "unexpected keyword argument" in str(exc):
            raise ConfigError(f"backend {backend!r}: {exc}") from exc
        raise
