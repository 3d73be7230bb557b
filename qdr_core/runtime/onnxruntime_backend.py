"""onnxruntime backend: the CPU (and CUDA, where onnxruntime-gpu is installed) runtime.

Runs any ONNX with one NCHW image input and an image output: the FP32 export and the INT8 QDQ
exports alike. Nothing in this module's import chain imports torch, so a robot node starts
without it (tested).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from qdr_core.errors import BackendUnavailableError, ModelFileError
from qdr_core.runtime.base import STATE_IN, STATE_OUT, Runtime
from qdr_core.runtime.contract import ModelSignature
from qdr_core.runtime.onnx_metadata import count_weights

# Providers tried by default, best first. TensorRT-in-onnxruntime is left out on purpose: it builds
# an engine on every start without our cache; the dedicated tensorrt backend does that properly.
_PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
#: Runs on more pixels than this hand their arena growth back afterwards. onnxruntime's CPU arena
#: otherwise keeps the peak of the largest frame ever seen (about 100 MB per megapixel) until the
#: session closes; frames up to about 1280x720 keep theirs, which saves re-allocating every frame.
ARENA_KEEP_PIXELS = 1280 * 736


def _dims(shape) -> tuple[int | None, ...]:
    """onnxruntime reports a dynamic dim as a name (str) or None; fixed ones as ints."""
    return tuple(d if isinstance(d, int) else None for d in shape)


def _type_name(onnx_type: str) -> str:
    return onnx_type.removeprefix("tensor(").removesuffix(")")


def _import_ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            "backend 'onnxruntime' needs the onnxruntime package: pip install onnxruntime "
            "(onnxruntime-gpu on CUDA machines)"
        ) from exc
    return onnxruntime


def default_providers() -> list[str]:
    available = set(_import_ort().get_available_providers())
    return [p for p in _PREFERRED_PROVIDERS if p in available] or ["CPUExecutionProvider"]


class OnnxRuntime(Runtime):
    """An ONNX model run by onnxruntime.

    Args:
        model_path: ``.onnx`` file with one NCHW float input.
        num_threads: intra-op threads; 0 lets onnxruntime use one per physical core.
        providers: onnxruntime execution providers, best first; default CUDA (if present) then CPU.
    """

    name = "onnxruntime"
    # InferenceSession.run is thread-safe; each call computes on its caller thread plus the pool.
    concurrent = True

    def __init__(
        self, model_path: str | os.PathLike, num_threads: int = 0, providers: Sequence[str] | None = None
    ) -> None:
        super().__init__(str(model_path), num_threads)
        ort = _import_ort()
        if os.path.isdir(self.model_path):
            raise ModelFileError(f"{self.model_path} is a directory, not an ONNX model file")
        if not os.path.isfile(self.model_path):
            raise ModelFileError(f"ONNX model not found: {self.model_path}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = self.num_threads
        # One frame at a time through a chain of convs: inter-op parallelism only adds threads.
        opts.inter_op_num_threads = 1
        # Keep onnxruntime's own warnings (e.g. unused initializers) out of a node's log.
        opts.log_severity_level = 3
        self.providers = list(providers) if providers else default_providers()
        try:
            self._session = ort.InferenceSession(self.model_path, sess_options=opts, providers=self.providers)
        except Exception as exc:  # onnxruntime raises Fail / InvalidProtobuf / InvalidGraph / ...
            raise ModelFileError(
                f"{self.model_path} is not a loadable ONNX model ({type(exc).__name__}: {exc})"
            ) from exc
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        inputs = self._split_state(inputs, outputs)
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [(i.name, i.shape) for i in inputs]
            raise ModelFileError(f"{self.model_path}: expected one NCHW image input, got {shapes}")
        if inputs[0].type not in _FLOAT_TYPES:
            raise ModelFileError(f"{self.model_path}: input must be float or float16, got {inputs[0].type}")
        channels = inputs[0].shape[1]
        if isinstance(channels, int) and channels != 3:
            raise ModelFileError(f"{self.model_path}: expected a 3-channel RGB input, got {channels}")
        if not outputs:
            raise ModelFileError(f"{self.model_path}: the graph has no output")
        self.arena_keep_pixels: float = ARENA_KEEP_PIXELS
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.input_name = inputs[0].name
        self._input_dtype = _FLOAT_TYPES[inputs[0].type]
        # The exports name their image output "output"; anything else extra (e.g. gate maps) is ignored.
        names = [o.name for o in outputs]
        self.output_name = "output" if "output" in names else names[0]
        output = outputs[names.index(self.output_name)]
        self._read_shape_metadata()
        self.signature = ModelSignature(
            input_shape=_dims(inputs[0].shape),
            output_shape=_dims(output.shape),
            input_type=_type_name(inputs[0].type),
            output_type=_type_name(output.type),
            n_weights=count_weights(self.model_path),
        )

    def _split_state(self, inputs: list, outputs: list) -> list:
        """The image inputs, after taking a streaming model's ``state_in`` / ``state_out`` pair
        out (``self.streaming`` and the state's size are set from it)."""
        names = [i.name for i in inputs]
        if STATE_IN not in names:
            return inputs
        state = inputs[names.index(STATE_IN)]
        if STATE_OUT not in [o.name for o in outputs]:
            raise ModelFileError(f"{self.model_path}: has input {STATE_IN} but no output {STATE_OUT}")
        if len(state.shape) != 4 or not isinstance(state.shape[1], int) or state.shape[1] < 1:
            raise ModelFileError(
                f"{self.model_path}: {STATE_IN} must be NCHW with fixed channels, got {state.shape}"
            )
        self.streaming, self.state_channels = True, state.shape[1]
        self.state_stride, self.state_fill = self._stream_metadata()
        return [i for i in inputs if i.name != STATE_IN]

    @property
    def active_providers(self) -> list[str]:
        return self._session.get_providers()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self.streaming:  # a still: the first frame of a stream
            return self._run_state(batch, self.empty_state(*batch.shape[2:]))[0]
        if self._input_dtype is not np.float32:
            batch = batch.astype(self._input_dtype)
        big = batch.shape[2] * batch.shape[3] > self.arena_keep_pixels
        (out,) = self._session.run(
            [self.output_name], {self.input_name: batch}, self._shrink if big else None
        )
        return np.asarray(out, dtype=np.float32)

    def _run_state(self, batch: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.streaming:
            return super()._run_state(batch, state)
        if self._input_dtype is not np.float32:
            batch, state = batch.astype(self._input_dtype), state.astype(self._input_dtype)
        big = batch.shape[2] * batch.shape[3] > self.arena_keep_pixels
        out, new_state = self._session.run(
            [self.output_name, STATE_OUT],
            {self.input_name: batch, STATE_IN: state},
            self._shrink if big else None,
        )
        return np.asarray(out, dtype=np.float32), new_state

    def _release(self) -> None:
        # onnxruntime frees the session's arena when the last reference goes.
        del self._session
