"""Opening the node's runtime: model search roots, backend choice, TensorRT options, warm-up.

``open_runtime`` is what the node's ``configure`` does apart from creating ROS handles. Every
failure is a ConfigError with a one-line message (no multi-line library output, no paths of the
Python environment), and the whole opening can be interrupted: ``cancelled`` is polled between
warm-up frames, and the model load (a TensorRT engine build can take minutes) runs on a helper
thread so that a signal reaches the caller's thread at once.
"""

from __future__ import annotations

import os
import re
import site
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qdr_core.errors import ConfigError, QdrError
from qdr_core.node.params import NodeParams, resolve_model_candidates
from qdr_core.node.temporal import resolve_temporal
from qdr_core.paths import source_root
from qdr_core.runtime import Runtime, auto_backend, load_runtime

PACKAGE = "qdr_ros"
WARMUP_SIZE = (480, 640)
_POLL_S = 0.05


class Cancelled(QdrError):
    """Opening the runtime was given up because the node is shutting down."""


def share_dir() -> str | None:
    """The ROS package share directory, when installed in a sourced ROS workspace."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return get_package_share_directory(PACKAGE)
    except (PackageNotFoundError, LookupError, OSError, ValueError):
        # OSError: no AMENT_PREFIX_PATH at all (a pip install, not a sourced ROS workspace).
        return None


def model_search_roots() -> list[Path]:
    """Where relative model paths are looked up: the package share directory, then the source tree."""
    return [Path(r) for r in (share_dir(), str(source_root())) if r]


def _environment_dirs() -> list[str]:
    dirs = {sys.prefix, sys.base_prefix, *site.getsitepackages()}
    user = site.getusersitepackages()
    if isinstance(user, str):
        dirs.add(user)
    return sorted((d for d in dirs if d and len(d) > 1), key=len, reverse=True)


_WARNING_LINE = re.compile(r"^\S+:\d+: \w*Warning\b|^\s*warnings\.warn\(")


def one_line(text: str) -> str:
    """``text`` as one line for a log: library warning lines dropped, lines joined with "; " and the
    Python environment's directories shortened to ``<env>`` (they say nothing about what to fix)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip() and not _WARNING_LINE.search(ln)]
    joined = "; ".join(lines) or str(text).strip()
    for folder in _environment_dirs():
        joined = joined.replace(folder, "<env>")
    return joined


def describe(exc: BaseException) -> str:
    """One line for an error: a QdrError's own message, else its type and message."""
    message = one_line(str(exc))
    return message if isinstance(exc, QdrError) else f"{type(exc).__name__}: {message}"


def call_interruptibly(fn: Callable[[], Any], cancelled: Callable[[], bool]) -> Any:
    """``fn()`` on a helper thread, waited for in short steps so that the calling thread still takes
    signals (KeyboardInterrupt) and notices ``cancelled``; raises Cancelled then (the helper runs
    on and its result is discarded, closed if it has ``close``)."""
    box: dict[str, Any] = {}
    abandoned = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        if abandoned.is_set() and hasattr(box.get("value"), "close"):
            box["value"].close()

    thread = threading.Thread(target=target, name="qdr-open-runtime", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            if cancelled():
                raise Cancelled("shutting down")
            thread.join(_POLL_S)
    except BaseException:
        abandoned.set()
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass
class OpenedRuntime:
    runtime: Runtime
    model_file: Path
    warmup_s: float
    #: Restore with temporal state (``node.temporal.resolve_temporal``).
    temporal: bool = False


def _load(params: NodeParams, model_file: Path) -> Runtime:
    backend = auto_backend(model_file) if params.backend == "auto" else params.backend
    opts: dict[str, Any] = {}
    if backend == "tensorrt":
        opts = {"precision": params.trt_precision, "dla_core": params.dla_core}
    runtime = load_runtime(
        model_file,
        backend=backend,
        num_threads=params.num_threads,
        engine_cache_dir=params.engine_cache_dir or None,
        **opts,
    )
    if params.parallel_frames > 1 and not runtime.concurrent:
        runtime.close()
        raise ConfigError(
            f"parallel_frames {params.parallel_frames} needs a backend that restores frames "
            f"concurrently (onnxruntime, torch); {runtime.name} runs one at a time: set 1"
        )
    return runtime


def open_runtime(
    params: NodeParams,
    search_roots: list[Path] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> OpenedRuntime:
    """Resolve, load and warm up the model ``params`` name.

    Raises:
        ConfigError: one line saying what to fix (the model path, the backend, a failed warm-up).
        Cancelled: ``cancelled()`` turned true (the runtime is closed).
    """
    roots = model_search_roots() if search_roots is None else search_roots
    try:
        model_file = resolve_model_candidates(params.model_candidates, roots)
        runtime = call_interruptibly(lambda: _load(params, model_file), cancelled)
    except Cancelled:
        raise
    except Exception as exc:  # an unexpected loader error must still say what happened, in one line
        raise ConfigError(describe(exc)) from None
    try:
        temporal = resolve_temporal(params.temporal, runtime.streaming, params.parallel_frames)
    except ConfigError:
        runtime.close()
        raise
    started = time.monotonic()
    try:
        # The 8-bit path camera frames take, so its buffers are warm too.
        blank = np.full((*WARMUP_SIZE, 3), 128, np.uint8)
        for _ in range(params.warmup_frames):
            if cancelled():
                raise Cancelled("shutting down")
            runtime.infer_planes8(blank)
    except Cancelled:
        runtime.close()
        raise
    except BaseException as exc:
        runtime.close()
        if not isinstance(exc, Exception):
            raise
        raise ConfigError(f"warm-up inference raised {describe(exc)}") from None
    return OpenedRuntime(runtime, Path(os.fspath(model_file)), time.monotonic() - started, temporal)
