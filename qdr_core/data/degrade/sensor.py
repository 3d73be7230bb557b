"""Sensor: signal-dependent noise on a Bayer mosaic, demosaicing, the camera's response curve.

Photon (shot) noise grows with the signal and read noise does not: the noise variance is
``x / photons + read_noise**2`` in linear light (the Poisson-Gaussian model in its usual
heteroscedastic-Gaussian form, which is exact enough above a few photons and far cheaper than
drawing Poisson counts). A colour camera measures one colour per pixel and interpolates the other two
(demosaicing), which spreads each pixel's noise over its neighbours and across channels: real sensor
noise is spatially correlated, unlike the i.i.d. Gaussian of ``noise`` (kept as the benchmark row).
The response curve maps linear light to the 8-bit output; cameras differ from the sRGB curve, most
at night where they lift shadows and compress highlights.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from qdr_core.data.degrade.common import fast_linear_to_srgb, lerp, log_lerp


@dataclass(frozen=True)
class SensorParams:
    """One sensor's noise.

    Args:
        photons: photons at linear 1.0 (full well after gain): fewer = noisier.
        read_noise: std of the signal-independent part, linear units.
        mosaic: add the noise on an RGGB Bayer mosaic and demosaic (correlated), else per pixel.
    """

    photons: float = 1e6
    read_noise: float = 0.0
    mosaic: bool = True

    @classmethod
    def sample(cls, rng: np.random.Generator, level: float) -> SensorParams:
        return cls(
            photons=log_lerp((4000.0, 60.0), level) * float(rng.uniform(0.8, 1.25)),
            read_noise=log_lerp((0.0008, 0.012), level) * float(rng.uniform(0.7, 1.3)),
            mosaic=bool(rng.random() < 0.8),
        )

    def std(self, signal: np.ndarray | float) -> np.ndarray | float:
        """Noise std at linear ``signal`` (before demosaicing)."""
        return np.sqrt(np.clip(signal, 0.0, None) / self.photons + self.read_noise**2)


def mosaic(linear: np.ndarray) -> np.ndarray:
    """HxW RGGB Bayer mosaic of HxWx3 ``linear``."""
    m = np.empty(linear.shape[:2], np.float32)
    m[0::2, 0::2] = linear[0::2, 0::2, 0]
    m[0::2, 1::2] = linear[0::2, 1::2, 1]
    m[1::2, 0::2] = linear[1::2, 0::2, 1]
    m[1::2, 1::2] = linear[1::2, 1::2, 2]
    return m


def demosaic(raw: np.ndarray) -> np.ndarray:
    """Bilinear demosaicing of an RGGB mosaic in [0, 1] (OpenCV, 16-bit)."""
    u16 = np.round(np.clip(raw, 0.0, 1.0) * 65535.0).astype(np.uint16)
    return cv2.cvtColor(u16, cv2.COLOR_BayerRGGB2RGB).astype(np.float32) / 65535.0


def sensor(linear: np.ndarray, rng: np.random.Generator, params: SensorParams) -> np.ndarray:
    """Noisy linear RGB: clipped at full well, noise added, demosaiced when ``params.mosaic``."""
    clipped = np.clip(linear, 0.0, 1.0).astype(np.float32)
    if params.mosaic:
        raw = mosaic(clipped)
        noisy = raw + params.std(raw).astype(np.float32) * rng.standard_normal(raw.shape, dtype=np.float32)
        return demosaic(noisy)
    return clipped + params.std(clipped).astype(np.float32) * rng.standard_normal(
        clipped.shape, dtype=np.float32
    )


@dataclass(frozen=True)
class ResponseParams:
    """A camera response curve: a gamma in place of sRGB's, an S-shaped contrast, a shadow lift.

    The identity element (``gamma=None``, ``contrast=0``, ``lift=0``) is the sRGB curve.
    """

    gamma: float | None = None
    contrast: float = 0.0
    lift: float = 0.0

    @classmethod
    def sample(cls, rng: np.random.Generator, level: float) -> ResponseParams:
        spread = lerp((0.1, 1.0), level)
        return cls(
            gamma=float(rng.uniform(1.8, 2.6)) if rng.random() < spread else None,
            contrast=float(rng.uniform(-0.3, 0.5)) * spread,
            lift=float(rng.uniform(0.0, 0.04)) * spread,
        )


def response(linear: np.ndarray, params: ResponseParams) -> np.ndarray:
    """Display-referred RGB in [0, 1] from linear light."""
    x = np.clip(linear, 0.0, 1.0)
    y = fast_linear_to_srgb(x) if params.gamma is None else np.power(x, 1.0 / params.gamma)
    if params.contrast:
        y = y + params.contrast * (3 * y * y - 2 * y * y * y - y)  # blend towards smoothstep: monotonic
    if params.lift:
        y = params.lift + (1.0 - params.lift) * y
    return np.clip(y, 0.0, 1.0).astype(np.float32)
