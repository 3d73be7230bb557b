"""Conditions: realistic degradations composed in physical order, seeded, with their parameters recorded.

A ``Condition`` names effects and their severities (``"night:strong+rain:mild"``). ``synthesize``
turns the photo into linear light and applies them in the order light meets them on its way to the
robot: the scene, fog, rain, the (night) illumination, the sensor's noise, its response curve, JPEG.
Each stage is a pure function ``(image, rng, params) -> image`` whose params dataclass has
``sample(rng, level)``; the record of every sampled parameter comes back with the image.

A night implies the sensor noise and response curve of a camera at night, at the night's level,
unless the condition names ``sensor`` itself; night and sensor imply a mild JPEG unless ``jpeg`` is
named. ``clean`` returns the photo unchanged: the identity target a model must learn to leave alone.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qdr_core.data.degrade.common import SEVERITIES, fast_srgb_to_linear, level_of, quantize8
from qdr_core.data.degrade.fog import FogParams, fog
from qdr_core.data.degrade.jpeg import JpegParams, jpeg
from qdr_core.data.degrade.night import NightParams, night
from qdr_core.data.degrade.rainfall import RainfallParams, rainfall
from qdr_core.data.degrade.sensor import ResponseParams, SensorParams, response, sensor
from qdr_core.errors import ConfigError
from qdr_core.tasks import TASKS

#: Effects a condition may name, in the physical order they are applied.
EFFECTS: tuple[str, ...] = ("fog", "rain", "night", "sensor", "jpeg")

_LINEAR_STAGES: dict[str, tuple[Callable[..., Any], Callable[..., np.ndarray]]] = {
    "fog": (FogParams.sample, fog),
    "rain": (RainfallParams.sample, rainfall),
    "night": (NightParams.sample, night),
    "sensor": (SensorParams.sample, sensor),
}
#: JPEG level implied by a night or sensor stage, as a fraction of that stage's level.
IMPLIED_JPEG = 0.5
#: The mixtures a robot meets (the CDD-11 style composites), each in physical order.
MIXTURES: tuple[tuple[str, ...], ...] = (
    ("fog", "rain"),
    ("rain", "night"),
    ("fog", "night"),
    ("fog", "rain", "night"),
)


@dataclass(frozen=True)
class Condition:
    """Effects and their severities (a name in ``SEVERITIES`` or a level in [0, 1]), in physical order."""

    effects: tuple[tuple[str, str | float], ...] = ()

    def __post_init__(self) -> None:
        seen = set()
        for effect, severity in self.effects:
            if effect not in EFFECTS:
                raise ConfigError(f"unknown effect {effect!r}; choose from {', '.join(EFFECTS)}")
            if effect in seen:
                raise ConfigError(f"effect {effect!r} given twice")
            seen.add(effect)
            if isinstance(severity, str) and severity not in SEVERITIES:
                raise ConfigError(
                    f"unknown severity {severity!r}; choose {', '.join(SEVERITIES)} or a number"
                )
            if not isinstance(severity, str) and not 0.0 <= float(severity) <= 1.0:
                raise ConfigError(f"severity level {severity!r} of {effect!r} is outside [0, 1]")
        ordered = tuple(sorted(self.effects, key=lambda e: EFFECTS.index(e[0])))
        object.__setattr__(self, "effects", ordered)

    @classmethod
    def parse(cls, text: str) -> Condition:
        """``"clean"``, ``"fog:medium"``, ``"night:strong+rain:0.3"`` (a bare effect is ``medium``)."""
        text = text.strip()
        if text in ("", "clean"):
            return cls()
        effects: list[tuple[str, str | float]] = []
        for part in text.split("+"):
            effect, _, severity = part.strip().partition(":")
            severity = severity or "medium"
            try:
                effects.append((effect, float(severity)))
            except ValueError:
                effects.append((effect, severity))
        return cls(tuple(effects))

    @property
    def name(self) -> str:
        return "+".join(f"{e}:{s}" for e, s in self.effects) or "clean"

    def severity(self, effect: str) -> str | float | None:
        return dict(self.effects).get(effect)


def condition_rng(seed: int, condition: Condition | str, index: int) -> np.random.Generator:
    """The generator for image ``index`` under a condition: fixed by (seed, condition name, index)."""
    name = condition if isinstance(condition, str) else condition.name
    return np.random.default_rng([seed, zlib.crc32(name.encode()), index])


class FramePlan:
    """Where one frame's draws come from. A still's plan (this one) draws everything from the one
    generator, in a fixed order; a clip's plan (``qdr_core.data.clips``) keeps a clip's levels and
    parameters and draws only the sensor noise afresh for each frame."""

    def level(self, effect: str, severity: str | float, rng: np.random.Generator) -> float:
        return level_of(severity, rng)

    def rng(self, effect: str, part: str, rng: np.random.Generator) -> np.random.Generator:
        """The generator stage ``effect`` draws its parameters (``part="sample"``) or applies itself
        (``part="apply"``) with."""
        return rng

    def params(self, effect: str, params: Any) -> Any:
        """The sampled parameters, adjusted for this frame (a clip moves its rain streaks)."""
        return params


def synthesize(
    image: np.ndarray, condition: Condition, rng: np.random.Generator, plan: FramePlan | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Degrade float32 sRGB ``image`` (HxWx3, [0, 1]) under ``condition``.

    Returns the degraded image on 8-bit levels and a record: the condition's name and, per stage
    in the order applied, the effect, its level, whether the condition named it or another stage
    implied it, and the sampled parameters. ``plan`` (default: a still's) says which generator each
    draw comes from.
    """
    plan = plan or FramePlan()
    image = np.asarray(image, np.float32)
    record: dict[str, Any] = {"condition": condition.name, "stages": []}
    if not condition.effects:
        return image, record

    def log(effect: str, level: float, implied: bool, params: Any) -> None:
        record["stages"].append(
            {"effect": effect, "level": level, "implied": implied, "params": asdict(params)}
        )

    levels = {effect: plan.level(effect, severity, rng) for effect, severity in condition.effects}
    if "night" in levels and "sensor" not in levels:
        levels["sensor"] = levels["night"]
    linear = fast_srgb_to_linear(image)
    for effect in EFFECTS[:-1]:
        if effect not in levels:
            continue
        sample, apply = _LINEAR_STAGES[effect]
        draw = plan.rng(effect, "sample", rng)
        params = (
            sample(draw, levels[effect], image.shape[:2])
            if effect == "night"
            else sample(draw, levels[effect])
        )
        params = plan.params(effect, params)
        linear = apply(linear, plan.rng(effect, "apply", rng), params)
        log(effect, levels[effect], condition.severity(effect) is None, params)
    curve = (
        ResponseParams.sample(plan.rng("response", "sample", rng), levels["night"])
        if "night" in levels
        else ResponseParams()
    )
    out = quantize8(response(linear, curve))
    if "night" in levels:
        log("response", levels["night"], True, curve)
    jpeg_level = levels.get("jpeg")
    implied_jpeg = jpeg_level is None and "sensor" in levels
    if implied_jpeg:
        jpeg_level = IMPLIED_JPEG * levels["sensor"]
    if jpeg_level is not None:
        params = JpegParams.sample(plan.rng("jpeg", "sample", rng), jpeg_level)
        out = jpeg(out, rng, params)
        log("jpeg", jpeg_level, implied_jpeg, params)
    return out, record


@dataclass(frozen=True)
class ConditionMix:
    """How often training meets each kind of condition; levels are uniform in [0, 1].

    Clean frames (identity targets) and low levels are part of the mix on purpose: a model for the
    whole day must leave a good frame alone.

    Args:
        clean: probability of a clean frame.
        single: probability of one effect from ``effects``.
        mixture: probability of one of ``MIXTURES`` (the rest of the mass).
        bench: share of samples that are instead one of the paper's benchmark degradations
            (``qdr_core.data.degrade.degrade``, one of ``bench_tasks`` at its training severities):
            drawn first, so ``clean`` / ``single`` / mixtures split the other ``1 - bench``. 0 draws
            nothing, so a mix without it makes the same samples as before it existed.
        bench_tasks: the benchmark tasks drawn (a task named twice is drawn twice as often).
    """

    clean: float = 0.15
    single: float = 0.5
    effects: tuple[str, ...] = ("fog", "rain", "night", "sensor")
    bench: float = 0.0
    bench_tasks: tuple[str, ...] = TASKS

    @classmethod
    def parse(cls, text: str) -> ConditionMix:
        """``"clean=0.25,single=0.5,effects=fog+rain+night+sensor+sensor,bench=0.2"`` (omitted keys
        keep their defaults; an effect or bench task named twice is drawn twice as often)."""
        values: dict[str, Any] = {}
        keys = ("clean", "single", "effects", "bench", "bench_tasks")
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in keys:
                raise ConfigError(
                    f"bad mix entry {part!r}; use clean=P, single=P, effects=A+B+..., bench=P, bench_tasks=T+U+..."
                )
            try:
                values[key] = tuple(value.split("+")) if key in ("effects", "bench_tasks") else float(value)
            except ValueError:
                raise ConfigError(f"bad mix entry {part!r}: {value!r} is not a number") from None
        mix = cls(**values)
        unknown = sorted(set(mix.effects) - set(EFFECTS))
        if unknown or not mix.effects:
            raise ConfigError(f"mix effects {unknown or 'empty'}; choose from {', '.join(EFFECTS)}")
        unknown = sorted(set(mix.bench_tasks) - set(TASKS))
        if unknown or not mix.bench_tasks:
            raise ConfigError(f"mix bench_tasks {unknown or 'empty'}; choose from {', '.join(TASKS)}")
        if not (0.0 <= mix.clean <= 1.0 and 0.0 <= mix.single <= 1.0 - mix.clean):
            raise ConfigError(
                f"mix shares need 0 <= clean and clean + single <= 1, got {mix.clean}, {mix.single}"
            )
        if not 0.0 <= mix.bench < 1.0:
            raise ConfigError(f"mix bench share needs 0 <= bench < 1, got {mix.bench}")
        return mix

    def sample_benchmark(self, rng: np.random.Generator) -> str | None:
        """The benchmark task this sample is degraded with, or None (a realistic condition: ``sample``).
        Draws from ``rng`` only when ``bench > 0``."""
        if self.bench <= 0.0 or rng.random() >= self.bench:
            return None
        return self.bench_tasks[int(rng.integers(len(self.bench_tasks)))]

    def sample(self, rng: np.random.Generator) -> Condition:
        u = rng.random()
        if u < self.clean:
            return Condition()
        if u < self.clean + self.single:
            chosen: tuple[str, ...] = (self.effects[int(rng.integers(len(self.effects)))],)
        else:
            chosen = MIXTURES[int(rng.integers(len(MIXTURES)))]
        return Condition(tuple((effect, float(rng.random())) for effect in chosen))
