"""Fog: non-homogeneous scattering ``I = J t + A (1 - t)``, ``t = exp(-beta(x) d(x))``, in linear light.

Unlike ``haze`` (one density, grey airlight, sRGB), the density varies in patches, the airlight has a
colour and brightens towards the sky, depth comes from one of several proxies (no depth maps exist
for package photos), and distant parts are slightly blurred (forward scattering).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from qdr_core.data.degrade.common import lerp, smooth_field, wide_blur

#: Depth cues: higher in the frame is farther; a ground plane below a horizon; bright smooth regions
#: (sky) are farther; a smooth random field so a model cannot rely on one cue.
DEPTH_CUES = ("vertical", "ground", "luminance", "field")


@dataclass(frozen=True)
class FogParams:
    """One fog.

    Args:
        beta: mean scattering coefficient; depth is normalised to [0.1, 1].
        patchiness: relative spread of the density (0 = homogeneous, 0.8 = dense and thin patches).
        patch_scale: size of the density patches, fraction of the longer side.
        cue_weights: weights of ``DEPTH_CUES`` in the depth proxy.
        horizon: the ground plane's horizon, fraction of the height.
        airlight: atmospheric light in linear RGB at mid-height.
        gradient: airlight brighter by this fraction at the top than at the bottom.
        blur: Gaussian sigma (pixels) of the forward-scattering blur at t = 0.
    """

    beta: float = 1.0
    patchiness: float = 0.0
    patch_scale: float = 0.3
    cue_weights: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    horizon: float = 0.4
    airlight: tuple[float, float, float] = (0.8, 0.8, 0.8)
    gradient: float = 0.0
    blur: float = 0.0

    @classmethod
    def sample(cls, rng: np.random.Generator, level: float) -> FogParams:
        grey = float(rng.uniform(0.55, 0.95))
        tint = rng.uniform(-0.05, 0.05, size=3) + np.array([0.0, 0.0, rng.uniform(0.0, 0.06)])
        return cls(
            beta=lerp((0.4, 2.6), level) * float(rng.uniform(0.85, 1.15)),
            patchiness=float(rng.uniform(0.1, 0.8)),
            patch_scale=float(rng.uniform(0.15, 0.5)),
            cue_weights=tuple(float(v) for v in rng.dirichlet((2.0, 1.5, 1.0, 1.0))),
            horizon=float(rng.uniform(0.25, 0.6)),
            airlight=tuple(float(v) for v in np.clip(grey + tint, 0.3, 1.0)),
            gradient=float(rng.uniform(0.0, 0.3)),
            blur=float(rng.uniform(0.0, lerp((0.8, 2.5), level))),
        )


def depth_map(linear: np.ndarray, rng: np.random.Generator, params: FogParams) -> np.ndarray:
    """Relative depth in [0.1, 1] mixing ``DEPTH_CUES`` with ``params.cue_weights``."""
    h, w = linear.shape[:2]
    rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    vertical = np.broadcast_to(1.0 - rows, (h, w))
    # A flat ground seen from a camera: distance ~ 1 / (rows below the horizon); the sky is far.
    below = np.clip(rows - params.horizon, 1e-3, None)
    ground = np.broadcast_to(np.clip(0.05 / below, 0.0, 1.0), (h, w))
    sigma = max(h, w) / 16.0
    luminance = wide_blur(linear.mean(axis=2).astype(np.float32), sigma)
    luminance = luminance / max(float(luminance.max()), 1e-6)
    field = smooth_field((h, w), rng, 0.5, octaves=2)
    depth = sum(wt * cue for wt, cue in zip(params.cue_weights, (vertical, ground, luminance, field)))
    depth = (depth - depth.min()) / (np.ptp(depth) + 1e-6)
    return (0.1 + 0.9 * depth).astype(np.float32)


def transmission(linear: np.ndarray, rng: np.random.Generator, params: FogParams) -> np.ndarray:
    h, w = linear.shape[:2]
    density = params.beta * (
        1.0 + params.patchiness * (2.0 * smooth_field((h, w), rng, params.patch_scale) - 1.0)
    )
    return np.exp(-np.clip(density, 0.0, None) * depth_map(linear, rng, params)).astype(np.float32)


def fog(linear: np.ndarray, rng: np.random.Generator, params: FogParams) -> np.ndarray:
    h = linear.shape[0]
    t = transmission(linear, rng, params)[..., None]
    scene = linear
    if params.blur > 0.05:
        blurred = cv2.GaussianBlur(linear, (0, 0), params.blur)
        scene = linear * t + blurred * (1.0 - t)  # farther (lower t) is blurrier
    rows = np.linspace(0.5, -0.5, h, dtype=np.float32)[:, None, None]
    airlight = np.asarray(params.airlight, np.float32) * (1.0 + params.gradient * rows)
    return (scene * t + airlight * (1.0 - t)).astype(np.float32)
