"""Motion between consecutive frames of a stream, for a model that carries its previous output.

A streaming EFM with ``state: output`` (``models.streaming.OutputFusion``) gets the previous
frame's restored output as its state, *aligned to the current frame*: the runtime estimates the
optical flow from the current degraded frame to the previous one and warps the state with it
before feeding it. The flow is computed on the degraded frames (the clean ones do not exist at run
time) at half resolution on mean-normalised grey (area down-sampling averages sensor noise away and
the normalisation makes a dark frame usable), with OpenCV's DIS; the network's learned gate then
rejects what the flow got wrong.

No torch here: the onnxruntime and TensorRT runtimes use it (``runtime.stateful.StreamSession``);
training (``data.clips``) computes the same flows for its clips and warps with torch.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Frames are down-sampled by this factor before the flow is estimated.
FLOW_SCALE = 2
#: DIS preset: MEDIUM costs ~9 ms at 320x240 on a 2-core EPYC (FAST ~3 ms, but 0.1-0.2 dB less gain).
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
#: Variational refinement iterations (MEDIUM's own: 5). 2 saves ~2.6 ms of the ~7.5 and costs the
#: noise stream 0.02 dB (0 saves 3.6 ms and costs 0.07; docs/streaming.md).
DIS_REFINEMENT_ITERATIONS = 2
#: How the previous output is resampled at the flow's sub-pixel positions. Bicubic: a recursion
#: resamples its output once per frame, and bilinear's blur (a [0.5, 0.5] filter at a half-pixel
#: shift) piles up frame after frame, so the gate had to close on detail; bicubic keeps it
#: (noise stream +1.05 dB vs single-frame, bilinear +0.84, same network; docs/streaming.md).
WARP_INTERPOLATION = cv2.INTER_CUBIC
#: The normalised grey frame's mean (0..1): every frame is brought to this brightness.
_MEAN = 0.45


def _grey(planes: np.ndarray, scale: int) -> np.ndarray:
    """3 x H x W float RGB planes in [0, 1] (any view) -> uint8 BT.601 grey, down-sampled by
    ``scale``, mean-normalised."""
    r, g, b = (np.ascontiguousarray(p, dtype=np.float32) for p in planes[:3])  # no copy for NCHW planes
    grey = cv2.scaleAdd(b, 0.114, cv2.addWeighted(r, 0.299, g, 0.587, 0.0))
    h, w = grey.shape
    if scale > 1 and h >= 2 * scale and w >= 2 * scale:
        grey = cv2.resize(grey, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
    grey *= _MEAN / max(float(grey.mean()), 1e-3)
    return np.clip(grey * 255.0 + 0.5, 0, 255).astype(np.uint8)


def stream_flow(previous: np.ndarray, current: np.ndarray, scale: int | None = None) -> np.ndarray:
    """HxWx2 float32 flow (dx, dy) from ``current`` to ``previous`` (two HxWx3 float RGB frames of
    one size): pixel p of ``current`` shows what ``previous`` had at p + flow(p)."""
    if previous.shape != current.shape or current.ndim != 3:
        raise ValueError(f"flow needs two HxWx3 frames of one size, got {previous.shape} and {current.shape}")
    aligner = MotionAligner(scale)
    aligner.observe(np.moveaxis(previous, 2, 0))
    return aligner.observe(np.moveaxis(current, 2, 0))


class MotionAligner:
    """Aligns a stream's state to each new frame: ``observe(planes)`` takes the next frame and
    returns its flow to the previous one, ``warp(state, flow)`` brings the previous frame's output
    (``1 x C x H x W``) to the new frame. Keeps the previous frame's grey image (each frame is
    converted once), a DIS instance and the pixel grid: one per stream and thread, like
    ``StreamSession``."""

    def __init__(self, scale: int | None = None) -> None:
        self.scale = FLOW_SCALE if scale is None else scale
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESET)
        self._dis.setVariationalRefinementIterations(DIS_REFINEMENT_ITERATIONS)
        self._previous: np.ndarray | None = None
        self._grid: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def observe(self, planes: np.ndarray) -> np.ndarray | None:
        """Take the next frame (3 x H x W float RGB planes in [0, 1]); the HxWx2 flow from it to the
        previous one (None for the first, or after a size change)."""
        grey = _grey(planes, self.scale)
        previous, self._previous = self._previous, grey
        if previous is None or previous.shape != grey.shape:
            return None
        flow = self._dis.calc(grey, previous, None)
        h, w = planes.shape[1:]
        if flow.shape[:2] != (h, w):
            scale = np.float32(w / flow.shape[1])
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow *= scale
        return np.ascontiguousarray(flow, dtype=np.float32)

    def warp(self, state: np.ndarray, flow: np.ndarray) -> np.ndarray:
        h, w = flow.shape[:2]
        if self._grid is None or self._grid.shape[:2] != (h, w):
            self._grid = _pixel_grid(h, w)
        return warp_state(state, flow, self._grid)


def _pixel_grid(h: int, w: int) -> np.ndarray:
    """HxWx2 float32 (x, y) of every pixel."""
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.ascontiguousarray(np.stack([xx, yy], axis=-1))


def warp_state(state: np.ndarray, flow: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """A ``1 x C x H x W`` float32 state sampled at p + flow(p) (``WARP_INTERPOLATION``, edges
    replicated): the previous frame's output seen from the current frame. ``grid``:
    ``_pixel_grid(H, W)``, cached by the caller."""
    h, w = flow.shape[:2]
    if state.ndim != 4 or state.shape[0] != 1 or state.shape[2:] != (h, w):
        raise ValueError(f"state {state.shape} does not match a {h}x{w} flow")
    where = cv2.add(_pixel_grid(h, w) if grid is None else grid, np.ascontiguousarray(flow, np.float32))
    map1, map2 = cv2.convertMaps(where, None, cv2.CV_16SC2)
    warped = np.empty((1, state.shape[1], h, w), np.float32)
    for c in range(state.shape[1]):
        cv2.remap(
            np.ascontiguousarray(state[0, c], dtype=np.float32),
            map1,
            map2,
            WARP_INTERPOLATION,
            dst=warped[0, c],
            borderMode=cv2.BORDER_REPLICATE,
        )
    return warped
