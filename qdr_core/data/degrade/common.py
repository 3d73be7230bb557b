"""Shared pieces of the degradation models: sRGB transfer curves, 8-bit camera output, severities."""

from __future__ import annotations

import cv2
import numpy as np


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def quantize8(x: np.ndarray) -> np.ndarray:
    """Clip and round to 8-bit levels: frames reach the robot as uint8, so training inputs do too."""
    return (np.round(np.clip(x, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(lo if lo == hi else rng.uniform(lo, hi))


#: Named severities as bands of a continuous level in [0, 1]; ``level_of`` draws inside the band.
SEVERITIES: dict[str, tuple[float, float]] = {
    "mild": (0.0, 1 / 3),
    "medium": (1 / 3, 2 / 3),
    "strong": (2 / 3, 1.0),
}


def level_of(severity: str | float, rng: np.random.Generator) -> float:
    """A level in [0, 1]: a number is used as given, a named severity is drawn inside its band."""
    if isinstance(severity, str):
        if severity not in SEVERITIES:
            from qdr_core.errors import ConfigError

            raise ConfigError(f"unknown severity {severity!r}; choose {', '.join(SEVERITIES)} or a number")
        return uniform(rng, SEVERITIES[severity])
    return float(np.clip(severity, 0.0, 1.0))


def lerp(bounds: tuple[float, float], level: float) -> float:
    """``bounds[0]`` at level 0, ``bounds[1]`` at level 1."""
    return float(bounds[0] + (bounds[1] - bounds[0]) * level)


def log_lerp(bounds: tuple[float, float], level: float) -> float:
    """Like ``lerp`` but geometric: for exposures and photon counts, which act in ratios."""
    return float(np.exp(np.log(bounds[0]) + (np.log(bounds[1]) - np.log(bounds[0])) * level))


def smooth_field(
    shape: tuple[int, int], rng: np.random.Generator, scale: float, octaves: int = 3
) -> np.ndarray:
    """Smooth random field in [0, 1]: octaves of low-resolution noise, resized up (cheap at any size).

    ``scale`` is the coarsest feature size as a fraction of the longer side.
    """
    h, w = shape
    field = np.zeros((h, w), np.float32)
    weight = 1.0
    for k in range(octaves):
        cells = max(2, round(1.0 / max(scale / 2**k, 1e-3)))
        gh, gw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
        coarse = rng.random((gh, gw), dtype=np.float32)
        field += weight * cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        weight *= 0.5
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide ones run on a shrunk copy (the result is smooth, so nothing is lost)."""
    if sigma <= 4.0:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    h, w = image.shape[:2]
    f = 2.0 / sigma
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), 2.0), (w, h), interpolation=cv2.INTER_LINEAR)


_LUT_SIZE = 65536
_LUT_X = np.linspace(0.0, 1.0, _LUT_SIZE, dtype=np.float32)
_TO_LINEAR_LUT = srgb_to_linear(_LUT_X)
_TO_SRGB_LUT = linear_to_srgb(_LUT_X)


def _lut(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    index = np.clip(x, 0.0, 1.0) * np.float32(_LUT_SIZE - 1) + np.float32(0.5)
    return table[index.astype(np.uint16)]


def fast_srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """``srgb_to_linear`` by a 16-bit table: several times faster, within 1e-4 (below 8-bit steps)."""
    return _lut(x, _TO_LINEAR_LUT)


def fast_linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """``linear_to_srgb`` by a 16-bit table; within 1e-3 near black, where the curve is steepest."""
    return _lut(x, _TO_SRGB_LUT)
