"""Night: uneven illumination in linear light, from near-normal exposure down to very dark.

A night scene is not a uniformly darkened day scene: the ambient light falls (a global exposure),
the lens vignettes, street lamps light pools on the ground, and the lamps themselves are in the frame
as saturated cores with a glow around them (scattering in the air and the lens). This stage only
builds the light; the sensor's noise, its response curve and JPEG come after it in the pipeline
(``qdr_core.data.degrade.pipeline``), as in a camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qdr_core.data.degrade.common import lerp, log_lerp

#: Lamp colours in linear RGB: sodium vapour (orange), warm and cool white LED.
LAMP_COLOURS = ((1.0, 0.55, 0.18), (1.0, 0.85, 0.65), (0.85, 0.92, 1.0))


@dataclass(frozen=True)
class Lamp:
    """One light: a pool it lights (``pool_*``) and, when ``core_radius`` > 0, the visible source."""

    x: float  # centre, fraction of width
    y: float  # centre, fraction of height
    pool_radius: float  # fraction of the longer side
    pool_gain: float  # illumination added at the pool centre (1.0 = daylight exposure)
    core_radius: float  # pixels at the image's size; 0 = the source is outside the frame
    glow_radius: float  # pixels
    glow_gain: float
    colour: tuple[float, float, float]


@dataclass(frozen=True)
class NightParams:
    """One night's light.

    Args:
        exposure: ambient multiplier on linear intensity (1 = daylight, 0.004 = ~8 stops darker).
        vignette: fall-off at the corners (0 = none, 0.6 = the corners get 40 % of the centre's light).
        ambient_colour: white balance of the ambient light (moonlight / sky glow is bluish).
        lamps: the light sources.
    """

    exposure: float = 1.0
    vignette: float = 0.0
    ambient_colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    lamps: tuple[Lamp, ...] = ()

    @classmethod
    def sample(
        cls, rng: np.random.Generator, level: float, shape: tuple[int, int] = (512, 768)
    ) -> NightParams:
        """Level 0 is dusk (near-normal exposure, no lamps needed), level 1 a dark street at night."""
        h, w = shape
        exposure = log_lerp((0.8, 0.004), level) * float(rng.uniform(0.8, 1.25))
        blue = lerp((0.0, 0.25), level) * float(rng.random())
        ambient = (1.0 - blue, 1.0 - 0.4 * blue, 1.0)
        n_lamps = int(rng.integers(0, 1 + round(lerp((1, 4), level))))
        lamps = []
        for _ in range(n_lamps):
            visible = rng.random() < 0.7
            core = float(rng.uniform(0.004, 0.012) * max(h, w)) if visible else 0.0
            lamps.append(
                Lamp(
                    x=float(rng.uniform(0.05, 0.95)),
                    y=float(rng.uniform(0.05, 0.6)),
                    pool_radius=float(rng.uniform(0.06, 0.25)),
                    pool_gain=float(rng.uniform(0.05, 0.6)),
                    core_radius=core,
                    glow_radius=core * float(rng.uniform(4.0, 12.0)),
                    glow_gain=float(rng.uniform(0.15, 0.6)),
                    colour=LAMP_COLOURS[int(rng.integers(len(LAMP_COLOURS)))],
                )
            )
        return cls(
            exposure=exposure,
            vignette=lerp((0.05, 0.55), level) * float(rng.uniform(0.5, 1.0)),
            ambient_colour=ambient,
            lamps=tuple(lamps),
        )


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def illumination(shape: tuple[int, int], params: NightParams) -> np.ndarray:
    """HxWx3 light falling on the scene, relative to daylight (1.0 everywhere = unchanged)."""
    h, w = shape
    yy, xx = _grid(h, w)
    side = float(max(h, w))
    r2 = ((xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    light = (params.exposure * (1.0 - params.vignette * r2))[..., None] * np.asarray(
        params.ambient_colour, np.float32
    )
    for lamp in params.lamps:
        d2 = (xx - lamp.x * w) ** 2 + (yy - lamp.y * h) ** 2
        pool = lamp.pool_gain * np.exp(-d2 / (2 * (lamp.pool_radius * side) ** 2))
        light = light + pool[..., None] * np.asarray(lamp.colour, np.float32)
    return light.astype(np.float32)


def lamp_radiance(shape: tuple[int, int], params: NightParams) -> np.ndarray:
    """HxWx3 light of the sources themselves: cores far above 1 (they clip) and a glow falling off."""
    h, w = shape
    out = np.zeros((h, w, 3), np.float32)
    yy, xx = _grid(h, w)
    for lamp in params.lamps:
        if lamp.core_radius <= 0:
            continue
        d = np.sqrt((xx - lamp.x * w) ** 2 + (yy - lamp.y * h) ** 2)
        core = np.clip(lamp.core_radius + 0.5 - d, 0.0, 1.0) * 20.0
        glow = lamp.glow_gain * np.exp(-d / max(lamp.glow_radius / 3, 1e-3))
        out += (core + glow)[..., None] * np.asarray(lamp.colour, np.float32)
    return out


def night(linear: np.ndarray, rng: np.random.Generator, params: NightParams) -> np.ndarray:
    """Relight linear RGB ``linear`` (HxWx3) with ``params``; values above 1 are left for the sensor to clip."""
    del rng  # the light is fully described by params; kept for the stage signature
    shape = linear.shape[:2]
    return linear * illumination(shape, params) + lamp_radiance(shape, params)
