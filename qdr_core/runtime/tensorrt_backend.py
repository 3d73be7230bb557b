"""TensorRT 10 backend: builds (once) and runs an engine from the FP32 or INT8 QDQ ONNX export.

Engines are specific to the TensorRT version, the GPU and the build flags, and building one takes
minutes on a Jetson; so they are cached on disk under a key of all of those (``engine_cache_key``).
Device memory goes through cuda-python (``cuda.bindings.runtime``, formerly ``cuda.cudart``), which
NVIDIA's own TensorRT 10 samples use; it and ``tensorrt`` are imported only when this backend is
constructed. No torch anywhere: a Jetson node starts without it.

Nothing here can run without an NVIDIA GPU; the pure helpers (cache key, version check, shape
profile) are unit-tested everywhere.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from qdr_core.errors import BackendUnavailableError, ImageFormatError, ModelFileError
from qdr_core.runtime.base import STATE_IN, STATE_OUT, Runtime
from qdr_core.runtime.contract import check_size_multiple
from qdr_core.runtime.onnx_metadata import read_metadata
from qdr_core.sizes import DEFAULT_SIZE_MULTIPLE, round_up_size

LOG = logging.getLogger(__name__)

MIN_TRT_MAJOR = 10
PRECISIONS = ("auto", "int8", "fp16", "fp32")
#: Shapes the optimization profile covers, as (height, width). 640x480 is the common camera; the
#: maximum admits 1080p (1080 and 1920 are multiples of 4).
DEFAULT_OPT_SIZE = (480, 640)
DEFAULT_MAX_SIZE = (1080, 1920)
DEFAULT_WORKSPACE_BYTES = 1 << 30


# --------------------------------------------------------------------------- pure helpers


def parse_trt_version(version: str) -> tuple[int, ...]:
    """``"10.3.0.26"`` -> ``(10, 3, 0, 26)``; non-numeric tails (``"10.0.0b6"``) are dropped."""
    parts = []
    for piece in version.split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
    if not parts:
        raise BackendUnavailableError(f"cannot read the TensorRT version {version!r}")
    return tuple(parts)


def check_trt_version(version: str) -> tuple[int, ...]:
    """Raise BackendUnavailableError unless ``version`` is TensorRT 10 or newer.

    TensorRT 8.x has a different execution API (bindings, ``execute_async_v2``) and no
    STRONGLY_TYPED networks; JetPack 6 ships 10.x.
    """
    parsed = parse_trt_version(version)
    if parsed[0] < MIN_TRT_MAJOR:
        raise BackendUnavailableError(
            f"backend 'tensorrt' needs TensorRT >= {MIN_TRT_MAJOR} (JetPack 6), found {version}; "
            "use backend 'onnxruntime' on this machine"
        )
    return parsed


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def engine_cache_key(
    onnx_sha256: str,
    trt_version: str,
    gpu_name: str,
    precision: str,
    dla_core: int = -1,
    opt_size: tuple[int, int] = DEFAULT_OPT_SIZE,
    max_size: tuple[int, int] = DEFAULT_MAX_SIZE,
) -> str:
    """A stable hex key for one engine. Everything that makes a built engine differ is in it: the
    exact ONNX bytes, the TensorRT version (engines are not portable across versions), the GPU
    (tactics are chosen per device), the precision, the DLA core and the shape profile."""
    fields = [
        f"onnx={onnx_sha256}",
        f"trt={trt_version}",
        f"gpu={gpu_name.strip()}",
        f"precision={precision}",
        f"dla={dla_core}",
        f"opt={opt_size[0]}x{opt_size[1]}",
        f"max={max_size[0]}x{max_size[1]}",
    ]
    return hashlib.sha256("|".join(fields).encode()).hexdigest()


def engine_cache_path(cache_dir: str | os.PathLike, onnx_path: str | os.PathLike, key: str) -> Path:
    """``<cache_dir>/<onnx stem>-<key prefix>.engine``: readable by a person, unique by the key."""
    return Path(cache_dir) / f"{Path(onnx_path).stem}-{key[:24]}.engine"


def profile_shapes(
    opt_size: tuple[int, int], max_size: tuple[int, int], multiple: int = DEFAULT_SIZE_MULTIPLE
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) NCHW shapes of the optimization profile, validated."""
    for label, (h, w) in (("opt_size", opt_size), ("max_size", max_size)):
        if h < multiple or w < multiple or h % multiple or w % multiple:
            raise ValueError(f"{label} {h}x{w} must be positive multiples of {multiple}")
    if opt_size[0] > max_size[0] or opt_size[1] > max_size[1]:
        raise ValueError(f"opt_size {opt_size} exceeds max_size {max_size}")
    return (1, 3, multiple, multiple), (1, 3, *opt_size), (1, 3, *max_size)


def trt_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def _import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as exc:
            raise BackendUnavailableError(
                "backend 'tensorrt' needs cuda-python for device memory: pip install cuda-python"
            ) from exc
    return cudart


def gpu_available() -> bool:
    """True when the CUDA runtime reports at least one device (False on any failure)."""
    try:
        cudart = _import_cudart()
        err, count = cudart.cudaGetDeviceCount()
    except Exception:
        return False
    return err == cudart.cudaError_t.cudaSuccess and count > 0


def _cuda_call(result: tuple) -> Any:
    """cuda-python returns ``(error, *values)``; turn a non-success error into an exception."""
    cudart = _import_cudart()
    err, *values = result
    if err != cudart.cudaError_t.cudaSuccess:
        _, name = cudart.cudaGetErrorName(err)
        raise RuntimeError(f"CUDA error {name.decode() if isinstance(name, bytes) else name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_name(device: int = 0) -> str:
    props = _cuda_call(_import_cudart().cudaGetDeviceProperties(device))
    name = props.name
    return (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).rstrip("\x00").strip()


# --------------------------------------------------------------------------- the backend


def _make_logger(trt: Any) -> Any:
    """A TensorRT ILogger that forwards to Python logging (so a ROS node can route it)."""
    severity = trt.ILogger.Severity
    levels = {
        severity.INTERNAL_ERROR: logging.CRITICAL,
        severity.ERROR: logging.ERROR,
        severity.WARNING: logging.WARNING,
        severity.INFO: logging.INFO,
        severity.VERBOSE: logging.DEBUG,
    }

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, sev: Any, msg: str) -> None:
            LOG.log(levels.get(sev, logging.INFO), "TensorRT: %s", msg)

    return _Logger()


class _DeviceBuffer:
    """A device allocation that grows on demand (one per I/O tensor)."""

    def __init__(self) -> None:
        self.ptr = 0
        self.nbytes = 0

    def ensure(self, nbytes: int) -> int:
        if nbytes > self.nbytes:
            self.free()
            self.ptr = int(_cuda_call(_import_cudart().cudaMalloc(nbytes)))
            self.nbytes = nbytes
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            _cuda_call(_import_cudart().cudaFree(self.ptr))
            self.ptr, self.nbytes = 0, 0


class TensorRTRuntime(Runtime):
    """An engine built from an ONNX model (or loaded from the engine cache) and run on a GPU/DLA.

    Args:
        model_path: ``.onnx`` (FP32 or INT8 QDQ export).
        num_threads: unused by the GPU; kept for a uniform interface.
        engine_cache_dir: where built engines are kept; default ``<model dir>/.engine_cache``.
        precision: ``auto`` (INT8 + FP16 when the graph has Q/DQ layers, else FP16), ``int8``,
            ``fp16`` or ``fp32``.
        dla_core: DLA core to run on (Jetson), -1 for the GPU; layers DLA cannot run fall back to
            the GPU.
        strongly_typed: build a STRONGLY_TYPED network (precision then follows the graph's types and
            the precision flags are not set).
        opt_size / max_size: (height, width) the optimization profile is tuned for / admits.
        workspace_bytes: builder workspace memory pool limit.
        device: CUDA device index.
    """

    name = "tensorrt"

    def __init__(
        self,
        model_path: str | os.PathLike,
        num_threads: int = 0,
        engine_cache_dir: str | os.PathLike | None = None,
        precision: str = "auto",
        dla_core: int = -1,
        strongly_typed: bool = False,
        opt_size: tuple[int, int] = DEFAULT_OPT_SIZE,
        max_size: tuple[int, int] = DEFAULT_MAX_SIZE,
        workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
        device: int = 0,
    ) -> None:
        super().__init__(str(model_path), num_threads)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise BackendUnavailableError(
                "backend 'tensorrt' needs the TensorRT Python package (JetPack: python3-libnvinfer; "
                "x86: pip install tensorrt); use backend 'onnxruntime' otherwise"
            ) from exc
        self.trt_version = trt.__version__
        check_trt_version(self.trt_version)
        if not os.path.isfile(self.model_path):
            raise ModelFileError(f"ONNX model not found: {self.model_path}")
        self._trt = trt
        self._cudart = _import_cudart()
        _cuda_call(self._cudart.cudaSetDevice(device))
        self.gpu_name = gpu_name(device)
        self.precision = precision
        self.dla_core = int(dla_core)
        self.strongly_typed = bool(strongly_typed)
        self.metadata = read_metadata(self.model_path)
        self._read_shape_metadata()
        # Checked before the profile is sized from it (load_runtime checks the rest after loading).
        check_size_multiple(self)
        # Profile sizes round up to the model's multiple (1080 -> 1088 for a 32-multiple model):
        # ``infer`` pads every frame to that multiple anyway.
        self.opt_size = round_up_size(opt_size, self.size_multiple)
        self.max_size = round_up_size(max_size, self.size_multiple)
        self.max_tile_shape = self.max_size  # frames beyond the profile run in tiles
        self.workspace_bytes = int(workspace_bytes)
        self._profile = profile_shapes(self.opt_size, self.max_size, self.size_multiple)
        self._logger = _make_logger(trt)
        # Plugins (none in an EFM) would be needed by QDQ graphs from other exporters.
        trt.init_libnvinfer_plugins(self._logger, "")

        precision_tag = f"{precision}{'-strong' if strongly_typed else ''}"
        key = engine_cache_key(
            file_sha256(self.model_path),
            self.trt_version,
            self.gpu_name,
            precision_tag,
            self.dla_core,
            self.opt_size,
            self.max_size,
        )
        cache_dir = (
            Path(engine_cache_dir) if engine_cache_dir else Path(self.model_path).parent / ".engine_cache"
        )
        self.engine_path = engine_cache_path(cache_dir, self.model_path, key)
        self._runtime = trt.Runtime(self._logger)
        if self.dla_core >= 0:
            self._runtime.DLA_core = self.dla_core
        self.engine = self._load_cached_engine()
        if self.engine is None:
            plan = self._build_engine()
            self._store_engine(plan)
            self.engine = self._runtime.deserialize_cuda_engine(plan)
            if self.engine is None:
                raise ModelFileError(
                    f"TensorRT could not deserialize the engine it just built from {self.model_path}"
                )
        self._setup_io()

    # -- build / cache ------------------------------------------------------------------

    def _load_cached_engine(self) -> Any | None:
        if not self.engine_path.is_file():
            return None
        engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if engine is None:  # truncated or stale file: rebuild rather than fail
            LOG.warning("discarding unreadable cached engine %s; rebuilding", self.engine_path)
            return None
        LOG.info("loaded cached TensorRT engine %s", self.engine_path)
        return engine

    def _store_engine(self, plan: bytes) -> None:
        # Write-then-rename: two nodes starting together never read a half-written engine.
        self.engine_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.engine_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(plan)
        os.replace(tmp, self.engine_path)
        LOG.info("cached TensorRT engine %s", self.engine_path)

    def _build_engine(self) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        flags = 0
        if self.strongly_typed:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        # TensorRT 10 networks are always explicit-batch; EXPLICIT_BATCH is deprecated and ignored.
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(self.model_path):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            for error in errors:
                LOG.error("TensorRT ONNX parser: %s", error)
            detail = "; ".join(errors) or "no parser error reported"
            raise ModelFileError(f"TensorRT cannot parse {self.model_path}: {detail}")
        inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
        images = [n for n in inputs if n != STATE_IN]
        if len(images) != 1:
            raise ModelFileError(f"{self.model_path}: expected one image input, got {list(inputs)}")
        input_name = images[0]

        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        has_qdq = any(
            network.get_layer(i).type in (trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE)
            for i in range(network.num_layers)
        )
        if not self.strongly_typed:
            for flag in self._precision_flags(has_qdq, builder):
                config.set_flag(flag)
        if self.dla_core >= 0:
            if builder.num_DLA_cores <= self.dla_core:
                raise BackendUnavailableError(
                    f"dla_core {self.dla_core} requested but this device has {builder.num_DLA_cores} DLA cores"
                )
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = self.dla_core
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        profile = builder.create_optimization_profile()
        profile.set_shape(input_name, *self._profile)
        if STATE_IN in inputs:  # a streaming model: the state follows the frame's size
            channels = int(inputs[STATE_IN].shape[1])
            stride = self._stream_metadata()[0]
            profile.set_shape(
                STATE_IN, *[(1, channels, s[2] // stride, s[3] // stride) for s in self._profile]
            )
        config.add_optimization_profile(profile)

        LOG.info(
            "building TensorRT %s engine for %s (precision %s, QDQ %s, DLA %s); this takes a while",
            self.trt_version,
            self.model_path,
            self.precision,
            has_qdq,
            self.dla_core,
        )
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise ModelFileError(
                f"TensorRT failed to build an engine from {self.model_path} (precision {self.precision}); "
                "see the TensorRT errors logged above"
            )
        return bytes(plan)

    def _precision_flags(self, has_qdq: bool, builder: Any) -> list[Any]:
        trt = self._trt
        wanted = {
            "auto": ["INT8", "FP16"] if has_qdq else ["FP16"],
            "int8": ["INT8", "FP16"],
            "fp16": ["FP16"],
            "fp32": [],
        }[self.precision]
        if "FP16" in wanted and not builder.platform_has_fast_fp16:
            LOG.warning("this GPU has no fast FP16; building without the FP16 flag")
            wanted.remove("FP16")
        flags = []
        for name in wanted:
            # Later 10.x releases deprecate weakly-typed precision flags; skip any that are gone.
            flag = getattr(trt.BuilderFlag, name, None)
            if flag is not None:
                flags.append(flag)
        if self.precision == "int8" and not has_qdq:
            LOG.warning(
                "%s has no Q/DQ layers: INT8 needs a QDQ export; layers stay FP16/FP32", self.model_path
            )
        return flags

    # -- execution ----------------------------------------------------------------------

    def _setup_io(self) -> None:
        trt, engine = self._trt, self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if STATE_IN in inputs:
            if STATE_OUT not in outputs:
                raise ModelFileError(f"{self.model_path}: has input {STATE_IN} but no output {STATE_OUT}")
            self.streaming = True
            self.state_stride, self.state_fill = self._stream_metadata()
            self.state_channels = int(engine.get_tensor_shape(STATE_IN)[1])
            inputs = [n for n in inputs if n != STATE_IN]
        if len(inputs) != 1 or not outputs:
            raise ModelFileError(f"{self.model_path}: engine has inputs {inputs} and outputs {outputs}")
        for name in names:
            LOG.info(
                "TensorRT engine %s %s: shape %s dtype %s",
                "input" if name in inputs else "output",
                name,
                engine.get_tensor_shape(name),
                engine.get_tensor_dtype(name),
            )
        self.input_name = inputs[0]
        self.output_names = outputs
        self.output_name = "output" if "output" in outputs else next(o for o in outputs if o != STATE_OUT)
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._context = engine.create_execution_context()
        if self._context is None:
            raise BackendUnavailableError(
                "TensorRT could not create an execution context (out of GPU memory?)"
            )
        self._stream = _cuda_call(self._cudart.cudaStreamCreate())
        self._buffers = {n: _DeviceBuffer() for n in names}

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self.streaming:  # a still: the first frame of a stream
            return self._run_state(batch, self.empty_state(*batch.shape[2:]))[0]
        return self._execute({self.input_name: batch}, [self.output_name])[0]

    def _run_state(self, batch: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.streaming:
            return super()._run_state(batch, state)
        out, new_state = self._execute(
            {self.input_name: batch, STATE_IN: state}, [self.output_name, STATE_OUT]
        )
        return out, new_state

    def _execute(self, feeds: dict[str, np.ndarray], fetch: list[str]) -> list[np.ndarray]:
        """Copy ``feeds`` in, run the engine, copy the ``fetch`` outputs out (float32)."""
        cudart, ctx = self._cudart, self._context
        _, _, h, w = feeds[self.input_name].shape
        max_h, max_w = self._profile[2][2:]
        if h > max_h or w > max_w:
            raise ImageFormatError(
                f"{w}x{h} image exceeds the engine's maximum {max_w}x{max_h}; rebuild with a larger max_size"
            )
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, value in feeds.items():
            host_in = np.ascontiguousarray(value, dtype=self._dtypes[name])
            if not ctx.set_input_shape(name, host_in.shape):
                raise RuntimeError(f"TensorRT rejected {name} shape {host_in.shape}")
            ptr = self._buffers[name].ensure(host_in.nbytes)
            ctx.set_tensor_address(name, ptr)
            _cuda_call(cudart.cudaMemcpyAsync(ptr, host_in.ctypes.data, host_in.nbytes, h2d, self._stream))
        hosts: dict[str, np.ndarray] = {}
        for name in self.output_names:
            array = np.empty(tuple(ctx.get_tensor_shape(name)), dtype=self._dtypes[name])
            ctx.set_tensor_address(name, self._buffers[name].ensure(max(array.nbytes, 1)))
            hosts[name] = array
        if not ctx.execute_async_v3(int(self._stream)):
            raise RuntimeError("TensorRT execute_async_v3 failed; see the TensorRT errors logged above")
        for name in fetch:
            host = hosts[name]
            src = self._buffers[name].ptr
            _cuda_call(cudart.cudaMemcpyAsync(host.ctypes.data, src, host.nbytes, d2h, self._stream))
        _cuda_call(cudart.cudaStreamSynchronize(self._stream))
        return [hosts[name].astype(np.float32, copy=False) for name in fetch]

    def _release(self) -> None:
        for buffer in getattr(self, "_buffers", {}).values():
            buffer.free()
        if getattr(self, "_stream", None) is not None:
            _cuda_call(self._cudart.cudaStreamDestroy(self._stream))
            self._stream = None
        # Context before engine before runtime: TensorRT requires that destruction order.
        self._context = None
        self.engine = None
        self._runtime = None
