"""Low light: exposure scaling and a gamma in linear RGB, then Poisson-Gaussian sensor noise.

Photons are counted in linear light, so the exposure drop and the shot noise happen there; the
result goes back through the sRGB curve and 8-bit quantization like a camera's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qdr_core.data.degrade.common import linear_to_srgb, quantize8, srgb_to_linear, uniform


@dataclass(frozen=True)
class LowLightRange:
    """Severity ranges (sampled uniformly per image).

    Args:
        exposure: multiplier on linear intensity (0.05 = ~4.3 stops darker).
        gamma: extra power on linear intensity (>1 crushes shadows further).
        photons: full-well photon count at linear 1.0 after the exposure drop (shot noise).
        read_noise: std of additive Gaussian read noise in linear units.
    """

    exposure: tuple[float, float] = (0.04, 0.2)
    gamma: tuple[float, float] = (1.0, 1.4)
    photons: tuple[float, float] = (300.0, 3000.0)
    read_noise: tuple[float, float] = (0.0005, 0.003)


def lowlight(
    image: np.ndarray, rng: np.random.Generator, ranges: LowLightRange = LowLightRange()
) -> np.ndarray:
    linear = srgb_to_linear(image)
    dark = uniform(rng, ranges.exposure) * np.power(linear, uniform(rng, ranges.gamma))
    photons = uniform(rng, ranges.photons)
    shot = rng.poisson(dark * photons).astype(np.float32) / photons
    noisy = shot + rng.normal(0.0, uniform(rng, ranges.read_noise), size=dark.shape).astype(np.float32)
    return quantize8(linear_to_srgb(noisy))
