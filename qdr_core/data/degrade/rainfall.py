"""Rainfall: layers of streaks of varied width, length, blur and angle, drops on the lens, a veil.

Unlike ``rain`` (thin 1-pixel streaks, one angle, sRGB screen blend), each layer here has its own
streak width, length, defocus blur and density (near rain is wide, long and blurred, far rain thin
and dense), out-of-focus drops on the lens show a blurred, brighter patch of the scene, and the
streaks add light in linear RGB, so at night (applied after this stage) they dim with the scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from qdr_core.data.degrade.common import lerp, wide_blur


@dataclass(frozen=True)
class StreakLayer:
    density: float  # fraction of pixels that start a streak
    length: float  # pixels
    width: int  # pixels
    blur: float  # Gaussian sigma, pixels (defocus of near rain)
    angle: float  # degrees from vertical, positive = clockwise (top leans right)
    intensity: float  # linear light added at a streak's peak


@dataclass(frozen=True)
class LensDrop:
    x: float  # fraction of width
    y: float  # fraction of height
    radius: float  # fraction of the longer side
    aspect: float  # height / width of the drop


@dataclass(frozen=True)
class RainfallParams:
    """One shower.

    Args:
        layers: streak layers, far to near.
        drops: out-of-focus drops on the lens.
        drop_blur: blur (fraction of the longer side) of the scene seen through a drop.
        veil: fraction of the light replaced by scattered light from distant rain.
        veil_level: linear brightness of that scattered light.
        fall: how far the streaks have fallen, in streak lengths (each layer along its own angle,
            wrapping round the frame): a clip advances it every frame so the rain moves.
    """

    layers: tuple[StreakLayer, ...] = ()
    drops: tuple[LensDrop, ...] = ()
    drop_blur: float = 0.01
    veil: float = 0.0
    veil_level: float = 0.7
    fall: float = 0.0

    @classmethod
    def sample(cls, rng: np.random.Generator, level: float) -> RainfallParams:
        angle = float(rng.uniform(-30.0, 30.0))
        n_layers = int(rng.integers(1, 2 + round(lerp((0, 2), level))))
        layers = []
        for k in range(n_layers):
            near = k / max(n_layers - 1, 1)  # 0 = far layer, 1 = near layer
            layers.append(
                StreakLayer(
                    density=lerp((0.0008, 0.006), level) * float(rng.uniform(0.5, 1.5)) * (1.0 - 0.6 * near),
                    length=float(rng.uniform(8.0, 20.0) + near * rng.uniform(10.0, 40.0)),
                    width=1 + int(near * rng.integers(0, 3)),
                    blur=float(rng.uniform(0.3, 0.8) + near * rng.uniform(0.0, 1.5)),
                    angle=angle + float(rng.uniform(-4.0, 4.0)),
                    intensity=lerp((0.15, 0.6), level) * float(rng.uniform(0.7, 1.3)),
                )
            )
        n_drops = int(rng.integers(0, 1 + round(lerp((0, 8), level))))
        drops = tuple(
            LensDrop(
                x=float(rng.random()),
                y=float(rng.random()),
                radius=float(rng.uniform(0.015, 0.06)),
                aspect=float(rng.uniform(0.7, 1.3)),
            )
            for _ in range(n_drops)
        )
        return cls(
            layers=tuple(layers),
            drops=drops,
            drop_blur=float(rng.uniform(0.008, 0.02)),
            veil=lerp((0.0, 0.25), level) * float(rng.random()),
            veil_level=float(rng.uniform(0.5, 0.85)),
        )


def streak_kernel(length: float, width: int, angle_deg: float) -> np.ndarray:
    """A line of ``length`` and ``width`` pixels through the centre, ``angle_deg`` clockwise from vertical."""
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = (size - 1) / 2
    dx, dy = np.sin(np.radians(angle_deg)) * length / 2, np.cos(np.radians(angle_deg)) * length / 2
    shift = 4  # sub-pixel end points
    p0 = (round((c + dx) * 2**shift), round((c - dy) * 2**shift))  # top end
    p1 = (round((c - dx) * 2**shift), round((c + dy) * 2**shift))  # bottom end
    cv2.line(kernel, p0, p1, 1.0, thickness=max(1, width), lineType=cv2.LINE_AA, shift=shift)
    return kernel / max(float(kernel.max()), 1e-6)


def streaks(shape: tuple[int, int], rng: np.random.Generator, layer: StreakLayer) -> np.ndarray:
    """HxW streak light of one layer in [0, intensity]."""
    seeds = (rng.random(shape, dtype=np.float32) < layer.density).astype(np.float32)
    seeds *= rng.uniform(0.5, 1.0, size=shape).astype(np.float32)
    out = cv2.filter2D(seeds, -1, streak_kernel(layer.length, layer.width, layer.angle))
    out = np.clip(out, 0.0, 1.0)
    if layer.blur > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), layer.blur)
    return layer.intensity * out


def fallen(light: np.ndarray, layer: StreakLayer, fall: float) -> np.ndarray:
    """``light`` of ``layer`` moved ``fall`` streak lengths down along the layer's angle (wrapping)."""
    distance = fall * layer.length
    dx = -np.sin(np.radians(layer.angle)) * distance  # the top leans right: drops fall down-left
    dy = np.cos(np.radians(layer.angle)) * distance
    return np.roll(light, (round(dy), round(dx)), axis=(0, 1))


def drop_mask(shape: tuple[int, int], params: RainfallParams) -> np.ndarray:
    """HxW opacity of the lens drops in [0, 1], soft at the rim (they are out of focus)."""
    h, w = shape
    mask = np.zeros((h, w), np.float32)
    side = max(h, w)
    for d in params.drops:
        r = d.radius * side
        axes = (max(1, round(r)), max(1, round(r * d.aspect)))
        cv2.ellipse(mask, (round(d.x * w), round(d.y * h)), axes, 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    if params.drops:
        mask = wide_blur(mask, max(1.0, 0.01 * side))
    return np.clip(mask, 0.0, 1.0)


def rainfall(linear: np.ndarray, rng: np.random.Generator, params: RainfallParams) -> np.ndarray:
    h, w = linear.shape[:2]
    out = linear
    if params.drops:
        # A drop is a lens of its own: it shows a blurred, slightly brighter view of the scene.
        seen = wide_blur(linear, max(1.0, params.drop_blur * max(h, w))) * 1.15 + 0.02
        mask = drop_mask((h, w), params)[..., None]
        out = out * (1.0 - mask) + seen * mask
    if params.layers:
        light = sum(fallen(streaks((h, w), rng, layer), layer, params.fall) for layer in params.layers)
        out = out + np.clip(light, 0.0, 1.0)[..., None] * (1.0 - np.clip(out, 0.0, 1.0))
    if params.veil > 0:
        out = out * (1.0 - params.veil) + params.veil * params.veil_level
    return out.astype(np.float32)
