"""The model contract: what a model file must satisfy before any entry point runs frames through it.

A file can load and still be unable to restore a camera frame: a 1-channel output, a fixed 64x64
input, ``size_multiple=100000`` metadata (padding a VGA frame to 100000x100000 asks for 112 GiB),
or a graph without weights. ``load_runtime`` checks this contract right after a backend opened the
file, so the node, the CLI, ``qdr bag eval`` and the benchmarks all reject such a file the same way:
one ``ModelContractError`` line (exit code 2 in the CLI, a configure FAILURE in the node).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qdr_core.errors import ModelContractError

#: A dimension of a model's input or output: an int when fixed, None when dynamic (symbolic).
Dim = int | None


@dataclass(frozen=True)
class ModelSignature:
    """What a backend knows about a model's image input and output before running it.

    Args:
        input_shape / output_shape: NCHW dims, None for a dynamic one.
        input_type / output_type: element type names (``float``, ``float16`` ...).
        n_weights: weight tensors (ONNX initializers, torch parameters); None when unknown.
    """

    input_shape: tuple[Dim, ...]
    output_shape: tuple[Dim, ...]
    input_type: str = "float"
    output_type: str = "float"
    n_weights: int | None = None


@dataclass(frozen=True)
class ModelContract:
    """Limits a restoration model must respect.

    Args:
        channels: image channels in and out (RGB).
        float_types: element types accepted for the input and output.
        max_size_multiple: largest sane ``size_multiple`` (the EFMs use 4 .. 128).
        probe_side: the probe frame is ``max(probe_side, size_multiple)`` square.
    """

    channels: int = 3
    float_types: tuple[str, ...] = ("float", "float16")
    max_size_multiple: int = 1024
    probe_side: int = 8


DEFAULT_CONTRACT = ModelContract()


def one_line(text: object) -> str:
    """Backend messages (onnxruntime's especially) span lines; an error here is one line."""
    return " ".join(str(text).split())


def _fail(runtime, problem: str) -> ModelContractError:
    return ModelContractError(f"{runtime.model_path}: {one_line(problem)}")


def check_size_multiple(runtime, contract: ModelContract = DEFAULT_CONTRACT) -> None:
    """The size-multiple part of the contract (with ``context_cell``, the other size the metadata
    sets), for backends that size buffers from it while loading."""
    for key in ("size_multiple", "context_cell"):
        raw = runtime.metadata.get(key)
        if raw is not None:
            text = str(raw).strip()
            if not text.isdigit() or not 1 <= int(text) <= contract.max_size_multiple:
                raise _fail(
                    runtime,
                    f"metadata {key}={raw!r} is not an integer in 1..{contract.max_size_multiple}",
                )
    multiple = runtime.size_multiple
    if not isinstance(multiple, int) or not 1 <= multiple <= contract.max_size_multiple:
        raise _fail(
            runtime, f"size_multiple {multiple!r} is not an integer in 1..{contract.max_size_multiple}"
        )


def _check_shape(runtime, role: str, shape: tuple[Dim, ...], dtype: str, contract: ModelContract) -> None:
    if len(shape) != 4:
        raise _fail(runtime, f"{role} has rank {len(shape)} {list(shape)}: expected NCHW (rank 4)")
    batch, channels, height, width = shape
    if dtype not in contract.float_types:
        raise _fail(runtime, f"{role} element type is {dtype}: expected {' or '.join(contract.float_types)}")
    if channels is not None and channels != contract.channels:
        raise _fail(runtime, f"{role} has {channels} channel(s): expected {contract.channels} (RGB)")
    if batch is not None and batch != 1:
        raise _fail(runtime, f"{role} has a fixed batch of {batch}: expected 1 or dynamic")
    if height is not None or width is not None:
        raise _fail(
            runtime,
            f"{role} has a fixed spatial size {height}x{width}: a camera model needs dynamic height and "
            "width (export with dynamic axes)",
        )


def probe_frame(side: int) -> np.ndarray:
    """A 1x3xSxS ramp: a constant frame would let a model that ignores its input look healthy."""
    ramp = np.linspace(0.05, 0.95, side * side * 3, dtype=np.float32)
    return np.ascontiguousarray(ramp.reshape(3, side, side)[None])


def check_runtime(runtime, contract: ModelContract = DEFAULT_CONTRACT) -> None:
    """Raise ``ModelContractError`` (one line naming the file) unless ``runtime`` keeps the contract.

    Checks the size multiple, the static signature a backend reports (``runtime.signature``), that
    the model has weights, and one probe inference: a 3-channel frame in gives a finite 3-channel
    frame of the same size out.
    """
    check_size_multiple(runtime, contract)
    signature: ModelSignature | None = getattr(runtime, "signature", None)
    if signature is not None:
        _check_shape(runtime, "input", signature.input_shape, signature.input_type, contract)
        _check_shape(runtime, "output", signature.output_shape, signature.output_type, contract)
        if signature.n_weights == 0:
            raise _fail(runtime, "the model has no weights (an empty or placeholder graph)")
    multiple = runtime.size_multiple
    side = -(-max(contract.probe_side, multiple) // multiple) * multiple
    batch = probe_frame(side)
    try:
        out = runtime._run(batch)
    except Exception as exc:  # every backend error on a valid frame is a broken model
        raise _fail(runtime, f"fails on a {side}x{side} probe frame ({type(exc).__name__}: {exc})") from exc
    shape = tuple(np.shape(out))
    if shape != batch.shape:
        raise _fail(
            runtime, f"returns shape {list(shape)} for a {list(batch.shape)} frame: expected the same"
        )
    if not np.isfinite(np.asarray(out, dtype=np.float32)).all():
        raise _fail(runtime, f"returns non-finite values on a {side}x{side} probe frame")
    if getattr(runtime, "streaming", False):
        _check_state(runtime, batch)


def _check_state(runtime, batch: np.ndarray) -> None:
    """A streaming model's state: ``state_out`` has ``state_in``'s shape (so it can be fed back),
    stays finite over two frames, and the second frame's output is still a frame."""
    side = batch.shape[2]
    state = runtime.empty_state(side, side)
    for frame in (1, 2):
        try:
            out, new_state = runtime._run_state(batch, state)
        except Exception as exc:
            raise _fail(
                runtime, f"fails on probe frame {frame} of a stream ({type(exc).__name__}: {exc})"
            ) from exc
        if tuple(np.shape(new_state)) != state.shape:
            raise _fail(
                runtime,
                f"returns state_out {list(np.shape(new_state))} for state_in {list(state.shape)}: "
                "the state cannot be fed back",
            )
        if tuple(np.shape(out)) != batch.shape or not np.isfinite(np.asarray(new_state, np.float32)).all():
            raise _fail(
                runtime, f"returns a bad frame or non-finite state on probe frame {frame} of a stream"
            )
        state = np.asarray(new_state, np.float32)
