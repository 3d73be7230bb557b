"""Crops around the brightest spot of each grid frame (a lamp at night): input | output | clean.

A model that treats a light source wrongly leaves a dark ring around it; at the size of a full-frame
grid the ring is a few pixels and invisible, so the report also shows these crops, enlarged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Crop side in pixels of the frame, and the enlargement in the report.
CROP = 72
SCALE = 3


def label(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with ``text`` in its top-left corner, white on a black outline (readable anywhere)."""
    import cv2

    out = image.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def brightest_spot(rgb: np.ndarray, sigma: float = 4.0) -> tuple[int, int]:
    """(row, col) of the brightest blob: luminance smoothed so one hot pixel of noise does not win."""
    import cv2

    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    smooth = cv2.GaussianBlur(luma, (0, 0), sigma)
    row, col = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    return int(row), int(col)


def crop_box(center: tuple[int, int], shape: tuple[int, ...], size: int = CROP) -> tuple[slice, slice]:
    """A ``size`` square around ``center`` shifted to lie inside an image of ``shape``."""
    h, w = shape[:2]
    size_h, size_w = min(size, h), min(size, w)
    top = min(max(center[0] - size_h // 2, 0), h - size_h)
    left = min(max(center[1] - size_w // 2, 0), w - size_w)
    return slice(top, top + size_h), slice(left, left + size_w)


def bright_crops(grid: list[dict[str, Any]], size: int = CROP, scale: int = SCALE) -> np.ndarray | None:
    """One row per grid cell: the crop around the input's brightest spot from input, output and
    clean (when there is one), enlarged ``scale`` times without smoothing; None for no cells."""
    import cv2

    if not grid:
        return None
    rows = []
    for cell in grid:
        box = crop_box(brightest_spot(cell["degraded"]), cell["degraded"].shape, size)
        names = [("degraded", "input"), ("restored", "output")]
        names += [("clean", "clean")] if cell.get("clean") is not None else []
        tiles = []
        for key, name in names:
            crop = np.ascontiguousarray(cell[key][box])
            big = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            tiles.append(label(big, f"{name} #{cell['index']}"))
        rows.append(np.concatenate(tiles, axis=1))
    widest = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, widest - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows, axis=0)
