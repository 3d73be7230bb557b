"""Sensor noise: additive Gaussian or Poisson-Gaussian (signal-dependent) at a sigma range."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qdr_core.data.degrade.common import quantize8, uniform


@dataclass(frozen=True)
class NoiseRange:
    """Severity ranges.

    Args:
        sigma: std of the Gaussian part, in [0, 1] units (25/255 is the classic benchmark level).
        poisson_prob: probability of adding signal-dependent shot noise on top.
        photons: photon count at 1.0 for the shot-noise part.
    """

    sigma: tuple[float, float] = (5 / 255, 50 / 255)
    poisson_prob: float = 0.0
    photons: tuple[float, float] = (50.0, 400.0)


def noise(image: np.ndarray, rng: np.random.Generator, ranges: NoiseRange = NoiseRange()) -> np.ndarray:
    out = image
    if ranges.poisson_prob > 0 and rng.random() < ranges.poisson_prob:
        photons = uniform(rng, ranges.photons)
        out = rng.poisson(np.clip(out, 0, 1) * photons).astype(np.float32) / photons
    sigma = uniform(rng, ranges.sigma)
    return quantize8(out + rng.normal(0.0, sigma, size=image.shape).astype(np.float32))
