"""Clips with a known answer, shared by the temporal-metric tests."""

from __future__ import annotations

import cv2
import numpy as np


def panning_frames(n: int, size: int) -> list[np.ndarray]:
    """``n`` ``size x size`` crops of one smooth random image, each 3 px right of the previous."""
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.random((size, size + 3 * n, 3), dtype=np.float32), (0, 0), 2.0)
    big = 0.2 + 0.6 * (big - big.min()) / np.ptp(big)
    return [big[:, 3 * t : 3 * t + size].copy() for t in range(n)]
