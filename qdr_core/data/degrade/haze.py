"""Haze: atmospheric scattering ``I = J t + A (1 - t)`` with ``t = exp(-beta d)``.

No depth maps exist for package photos, so depth is a proxy mixing the usual cues: higher in the
frame is farther, bright smooth regions (sky) are farther, plus a smooth random field so the model
cannot rely on one cue.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from qdr_core.data.degrade.common import quantize8, uniform


@dataclass(frozen=True)
class HazeRange:
    """Severity ranges.

    Args:
        beta: scattering coefficient; depth is normalised to [0.1, 1].
        airlight: atmospheric light A (grey level), jittered per channel by ``tint``.
        tint: per-channel jitter of A (bluish / yellowish haze).
    """

    beta: tuple[float, float] = (0.8, 2.2)
    airlight: tuple[float, float] = (0.75, 0.98)
    tint: float = 0.04


def depth_proxy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Relative depth in [0.1, 1] from position, smoothed brightness and a random smooth field."""
    h, w = image.shape[:2]
    vertical = np.repeat(np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None], w, axis=1)
    sigma = max(h, w) / 16.0
    luminance = cv2.GaussianBlur(image.mean(axis=2).astype(np.float32), (0, 0), sigma)
    field = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), sigma)
    field = (field - field.min()) / (np.ptp(field) + 1e-6)
    a, b, c = rng.dirichlet((2.0, 1.5, 1.0))
    depth = a * vertical + b * luminance + c * field
    depth = (depth - depth.min()) / (np.ptp(depth) + 1e-6)
    return (0.1 + 0.9 * depth).astype(np.float32)


def haze(image: np.ndarray, rng: np.random.Generator, ranges: HazeRange = HazeRange()) -> np.ndarray:
    t = np.exp(-uniform(rng, ranges.beta) * depth_proxy(image, rng))[..., None]
    airlight = uniform(rng, ranges.airlight) + rng.uniform(-ranges.tint, ranges.tint, size=3)
    return quantize8(image * t + airlight.astype(np.float32) * (1.0 - t))
