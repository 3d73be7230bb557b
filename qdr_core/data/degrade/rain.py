"""Rain: layers of oriented, motion-blurred streaks screen-blended over the image, plus a veil.

Streaks are sparse drops smeared along one direction per layer (a line kernel, as a falling drop
is during the exposure); distant rain scatters light as a faint uniform veil.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from qdr_core.data.degrade.common import quantize8, uniform


@dataclass(frozen=True)
class RainRange:
    """Severity ranges.

    Args:
        density: fraction of pixels that start a streak, per layer.
        length: streak length in pixels.
        angle: streak angle from vertical, degrees (shared by the layers of one image).
        intensity: peak brightness added by a streak.
        layers: number of streak layers (min, max), each with its own density and length.
        veil: strength of the uniform scattering veil.
    """

    density: tuple[float, float] = (0.001, 0.006)
    length: tuple[float, float] = (10.0, 30.0)
    angle: tuple[float, float] = (-25.0, 25.0)
    intensity: tuple[float, float] = (0.35, 0.8)
    layers: tuple[int, int] = (1, 3)
    veil: tuple[float, float] = (0.0, 0.12)


def line_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A 1-pixel line of ``length`` through the kernel centre, ``angle_deg`` from vertical."""
    size = length if length % 2 else length + 1
    kernel = np.zeros((size, size), np.float32)
    kernel[:, size // 2] = 1.0
    rot = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (size, size), flags=cv2.INTER_LINEAR)
    return kernel / max(kernel.max(), 1e-6)


def streak_layer(
    shape: tuple[int, int], rng: np.random.Generator, ranges: RainRange, angle: float
) -> np.ndarray:
    drops = (rng.random(shape, dtype=np.float32) < uniform(rng, ranges.density)).astype(np.float32)
    drops *= rng.uniform(0.6, 1.0, size=shape).astype(np.float32)
    length = round(uniform(rng, ranges.length))
    streaks = cv2.filter2D(drops, -1, line_kernel(length, angle), borderType=cv2.BORDER_REFLECT)
    streaks = cv2.GaussianBlur(np.clip(streaks, 0.0, 1.0), (3, 3), 0.6)
    return uniform(rng, ranges.intensity) * streaks


def rain(image: np.ndarray, rng: np.random.Generator, ranges: RainRange = RainRange()) -> np.ndarray:
    h, w = image.shape[:2]
    angle = uniform(rng, ranges.angle)
    n_layers = int(rng.integers(ranges.layers[0], ranges.layers[1] + 1))
    streaks = sum(streak_layer((h, w), rng, ranges, angle + rng.uniform(-3, 3)) for _ in range(n_layers))
    streaks = np.clip(streaks, 0.0, 1.0)[..., None]
    out = 1.0 - (1.0 - image) * (1.0 - streaks)  # screen blend: streaks only brighten
    veil = uniform(rng, ranges.veil)
    out = out * (1.0 - veil) + veil * 0.9
    return quantize8(out)
