"""Benchmark input frames: a real photo resized to each resolution (the demo frames), or a seeded
smooth random image where none ships. Speed does not depend on content; quality is measured in
``peers`` on the held-out photo split, not here."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from qdr_core.paths import source_root

DEMO_DIR = source_root() / "demo" / "images"


@lru_cache(maxsize=1)
def _source() -> np.ndarray:
    for path in sorted(DEMO_DIR.glob("*.jpg")):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    return cv2.resize(small, (640, 480), interpolation=cv2.INTER_CUBIC)


def frame_uint8(height: int, width: int) -> np.ndarray:
    """An HxWx3 uint8 RGB camera-like frame."""
    return np.ascontiguousarray(cv2.resize(_source(), (width, height), interpolation=cv2.INTER_LINEAR))


def frame_float(height: int, width: int) -> np.ndarray:
    """The same frame as float32 RGB in [0, 1] (what ``Runtime.infer`` takes)."""
    return frame_uint8(height, width).astype(np.float32) / np.float32(255.0)


def parse_resolution(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (width, height)."""
    w, sep, h = text.lower().partition("x")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit() or int(w) < 1 or int(h) < 1:
        raise ValueError(f"resolution must look like 640x480, got {text!r}")
    return int(w), int(h)
