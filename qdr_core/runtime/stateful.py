"""A stream through a streaming model: the state one frame leaves for the next.

``StreamSession`` keeps the ``state_out`` of each frame and feeds it as ``state_in`` to the next
one; ``reset()`` (or ``reset=True`` on a frame) drops it, so that frame is restored as a still (the
empty state). A model whose state is its previous output (``state_align: flow``) gets that output warped
to the new frame by the optical flow between the two frames (``runtime.motion``). Which frames
reset is decided by ``node.temporal.StreamState``; this module only carries the tensors. Frames
of a stream are padded exactly as ``Runtime`` pads a still, so the state of one frame lines up
with the next; a streaming model runs whole frames (never tiles), because the state is one tensor
per frame.

A session belongs to one stream and one thread: frames of a stream are restored in order.
"""

from __future__ import annotations

import cv2
import numpy as np

from qdr_core.errors import ConfigError
from qdr_core.runtime.base import _INV_255, _SCALE_255, Runtime, check_rgb, pad_image
from qdr_core.runtime.motion import MotionAligner
from qdr_core.sizes import pad_amounts


class StreamSession:
    """Restore the frames of one stream with a streaming ``runtime``, carrying its state."""

    def __init__(self, runtime: Runtime) -> None:
        if not runtime.streaming:
            raise ConfigError(f"{runtime.model_path} is not a streaming model (it has no state_in input)")
        self.runtime = runtime
        self._state: np.ndarray | None = None
        #: An output-state model gets its previous output aligned to each new frame.
        self._aligner = MotionAligner() if runtime.state_align == "flow" else None

    @property
    def has_state(self) -> bool:
        return self._state is not None

    def reset(self) -> None:
        """The next frame is restored as a still."""
        self._state = None
        if self._aligner is not None:
            self._aligner.reset()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        h, w = batch.shape[2:]
        state = self._state
        flow = self._aligner.observe(batch[0]) if self._aligner is not None else None
        if state is None or state.shape != self.runtime.state_shape(h, w):
            state = self.runtime.empty_state(h, w)
        elif flow is not None:
            state = self._aligner.warp(state, flow)
        out, self._state = self.runtime._run_state(batch, state)
        return out

    def planes8(self, rgb: np.ndarray, reset: bool = False) -> list[np.ndarray]:
        """Restore the next HxWx3 uint8 frame (any strides); its R, G, B planes (HxW uint8)."""
        check_rgb(rgb, np.uint8)
        if reset:
            self.reset()
        h, w = rgb.shape[:2]
        ph, pw = pad_amounts(h, w, self.runtime.size_multiple)
        if ph or pw:
            rgb = pad_image(rgb, self.runtime.size_multiple)
        batch = np.empty((1, 3, h + ph, w + pw), np.float32)
        for c in range(3):
            np.multiply(rgb[..., c], _INV_255, out=batch[0, c])
        out = np.asarray(self._run(batch), np.float32)
        return [cv2.multiply(out[0, c, :h, :w], _SCALE_255, dtype=cv2.CV_8U) for c in range(3)]

    def infer(self, image: np.ndarray, reset: bool = False) -> np.ndarray:
        """Restore the next HxWx3 float RGB frame in [0, 1]; HxWx3 float32 in [0, 1]."""
        check_rgb(image)
        if reset:
            self.reset()
        h, w = image.shape[:2]
        padded = pad_image(np.ascontiguousarray(image, dtype=np.float32), self.runtime.size_multiple)
        batch = np.ascontiguousarray(padded.transpose(2, 0, 1)[None])
        out = np.asarray(self._run(batch), np.float32)[0, :, :h, :w].transpose(1, 2, 0)
        return np.clip(out, 0.0, 1.0)
