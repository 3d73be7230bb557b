"""Tiny training inputs shared by the training, QAT and ablation tests."""

from __future__ import annotations

import numpy as np


def smooth_images(n: int = 3, size: int = 72, seed: int = 0) -> list[np.ndarray]:
    """``n`` smooth colour images (sinusoids): enough structure for a few training steps."""
    rng = np.random.default_rng(seed)
    _, xx = np.mgrid[0:size, 0:size] / size
    return [
        np.clip(np.stack([np.sin(xx * f + p) * 0.4 + 0.5 for p in rng.uniform(0, 3, 3)], -1), 0, 1).astype(
            np.float32
        )
        for f in rng.uniform(2, 8, n)
    ]


def random_images(n: int = 2, size: int = 48) -> list[np.ndarray]:
    """``n`` uniform-noise images (seed 0)."""
    rng = np.random.default_rng(0)
    return [rng.random((size, size, 3), dtype=np.float32) for _ in range(n)]
