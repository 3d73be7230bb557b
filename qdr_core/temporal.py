"""Temporal consistency of a restored clip: warping error and flicker, against the clean clip.

A restored stream can score well frame by frame and still flicker. Two measures, both in 8-bit
levels (a difference of 1.0 is one grey level):

* **warping error**: the optical flow from clean frame t to clean frame t-1 (OpenCV DIS) carries
  frame t-1 of a clip onto frame t (``cv2.remap``); the error is the mean absolute difference over
  the pixels the flow can be trusted on (forward-backward consistent, not leaving the image). The
  flow comes from the clean frames, so the restored, degraded and clean clips are warped alike; the
  clean clip's own warping error is the floor (interpolation and flow error), a restored clip that
  moves exactly like the clean one reaches it.
* **flicker**: the standard deviation over time of mean-luma(frame t) - mean-luma(clean t), the
  brightness that pumps from frame to frame whatever the motion.

``TemporalMeter`` takes frames one at a time and keeps only the previous one (bounded memory, so a
live replay can feed it as frames arrive); ``temporal_metrics`` scores a whole sequence of
``(stamp, clean, restored[, degraded])`` frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import cv2
import numpy as np

#: Forward-backward consistency test of Sundaram et al. (ECCV 2010), as used by the video
#: consistency literature: a pixel is occluded when the round trip misses by more than this.
FB_ALPHA = 0.01
FB_BETA = 0.5
#: Sides of the clip that ``TemporalMeter`` measures (each an optional HxWx3 float RGB frame).
SIDES = ("clean", "input", "output")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def mean_luma(image: np.ndarray) -> float:
    """Mean BT.601 luma of HxWx3 float RGB in [0, 1], in 8-bit levels."""
    return float(np.clip(image, 0, 1).reshape(-1, 3).astype(np.float32).mean(axis=0) @ _LUMA) * 255.0


def _grey8(image: np.ndarray) -> np.ndarray:
    rgb = np.ascontiguousarray(np.clip(image, 0, 1) * 255.0 + 0.5, dtype=np.float32).astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def optical_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """HxWx2 flow (dx, dy) such that pixel p of ``source`` sits at p + flow(p) in ``target`` (DIS)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_grey8(source), _grey8(target), None)


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at p + flow(p): with the flow from frame t to t-1, frame t-1 seen at t."""
    xx, yy = _grid(flow.shape[:2])
    return cv2.remap(
        np.ascontiguousarray(image, dtype=np.float32),
        xx + flow[..., 0],
        yy + flow[..., 1],
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def valid_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """HxW bool: pixels of frame t whose flow to t-1 (``forward``) stays in the image and comes back
    (``backward``, t-1 to t, sampled where ``forward`` lands) within the consistency tolerance."""
    h, w = forward.shape[:2]
    xx, yy = _grid((h, w))
    x1, y1 = xx + forward[..., 0], yy + forward[..., 1]
    inside = (x1 >= 0) & (x1 <= w - 1) & (y1 >= 0) & (y1 <= h - 1)
    back = cv2.remap(backward, x1, y1, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    miss = np.sum((forward + back) ** 2, axis=2)
    tolerance = FB_ALPHA * (np.sum(forward**2, axis=2) + np.sum(back**2, axis=2)) + FB_BETA
    return inside & (miss <= tolerance)


class TemporalMeter:
    """Warping error and flicker of a clip, fed one frame at a time in time order.

    Each ``add`` gives the clean frame and, optionally, the degraded input and the restored output
    of the same instant; the metrics of every side given come back from ``result``.
    """

    def __init__(self) -> None:
        self._previous: dict[str, np.ndarray] | None = None
        self._warp: dict[str, list[float]] = {side: [] for side in SIDES}
        self._luma_error: dict[str, list[float]] = {side: [] for side in SIDES}
        self.stamps: list[int] = []
        self.valid_fraction: list[float] = []

    def reset_motion(self) -> None:
        """Forget the previous frame (a gap in the clip: the next pair is not compared)."""
        self._previous = None

    def add(
        self,
        stamp: int,
        clean: np.ndarray,
        restored: np.ndarray | None = None,
        degraded: np.ndarray | None = None,
    ) -> None:
        frames = {"clean": clean, "input": degraded, "output": restored}
        frames = {k: np.asarray(v, np.float32) for k, v in frames.items() if v is not None}
        shapes = {v.shape for v in frames.values()}
        if len(shapes) != 1 or len(clean.shape) != 3 or clean.shape[2] != 3:
            raise ValueError(f"frames must be HxWx3 and of one size, got {sorted(shapes)}")
        reference = mean_luma(clean)
        for side, frame in frames.items():
            self._luma_error[side].append(mean_luma(frame) - reference)
        previous, self._previous = self._previous, frames
        self.stamps.append(int(stamp))
        if previous is None or previous["clean"].shape != clean.shape:
            return
        forward = optical_flow(clean, previous["clean"])
        backward = optical_flow(previous["clean"], clean)
        mask = valid_mask(forward, backward)
        self.valid_fraction.append(float(mask.mean()))
        if not mask.any():
            return
        for side, frame in frames.items():
            if side in previous:
                diff = np.abs(warp(previous[side], forward) - frame)[mask]
                self._warp[side].append(255.0 * float(diff.mean()))

    def result(self) -> dict[str, Any]:
        """``warp_error_<side>`` (mean over frame pairs) and ``flicker_<side>`` in 8-bit levels, for
        each side given, plus the number of frames and compared pairs."""
        out: dict[str, Any] = {
            "n_frames": len(self.stamps),
            "n_pairs": len(self._warp["clean"]),
            "valid_fraction": float(np.mean(self.valid_fraction)) if self.valid_fraction else None,
        }
        for side in SIDES:
            if self._warp[side]:
                out[f"warp_error_{side}"] = float(np.mean(self._warp[side]))
            if side != "clean" and len(self._luma_error[side]) >= 2:
                out[f"flicker_{side}"] = float(np.std(self._luma_error[side]))
        return out


def temporal_metrics(frames: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """The temporal metrics of ``(stamp_ns, clean, restored)`` or ``(stamp_ns, clean, restored,
    degraded)`` frames, taken in stamp order (a live replay may deliver them out of order).

    Returns ``warp_error_clean`` (the floor), ``warp_error_output`` and ``flicker_output`` (and the
    ``_input`` ones when degraded frames are given), in 8-bit levels; see ``TemporalMeter.result``.
    """
    meter = TemporalMeter()
    for item in sorted(frames, key=lambda f: f[0]):
        stamp, clean, restored, *rest = item
        meter.add(stamp, clean, restored, rest[0] if rest else None)
    return meter.result()
