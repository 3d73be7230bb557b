"""Degradation synthesis, one module per degradation. ``degrade(task, image, rng)`` dispatches.

Training samples severities from each task's range; evaluation uses ``EVAL_RANGES`` (the same,
except noise, which is fixed at sigma 25/255, the benchmark level). These four make the shipped
models' training data and benchmark rows and stay as they are.

The realistic conditions (night with lamps, patchy fog, rainfall with lens drops, Bayer-correlated
sensor noise, response curves, JPEG, and their mixtures) live in ``night``, ``fog``, ``rainfall``,
``sensor``, ``jpeg``, composed by ``pipeline.synthesize(image, Condition, rng)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from qdr_core.data.degrade.haze import HazeRange, haze
from qdr_core.data.degrade.lowlight import LowLightRange, lowlight
from qdr_core.data.degrade.noise import NoiseRange, noise
from qdr_core.data.degrade.rain import RainRange, rain
from qdr_core.tasks import TASKS, check_task

_FUNCTIONS: dict[str, Callable] = {"lowlight": lowlight, "haze": haze, "rain": rain, "noise": noise}
TRAIN_RANGES = {"lowlight": LowLightRange(), "haze": HazeRange(), "rain": RainRange(), "noise": NoiseRange()}
EVAL_RANGES = {**TRAIN_RANGES, "noise": NoiseRange(sigma=(25 / 255, 25 / 255))}

__all__ = ["EVAL_RANGES", "TASKS", "TRAIN_RANGES", "check_task", "degrade", "eval_rng"]


def degrade(
    task: str, image: np.ndarray, rng: np.random.Generator, split: str = "train", ranges: Any = None
) -> np.ndarray:
    """Degrade float32 RGB [0, 1] ``image`` for ``task``; ``split`` picks train or eval severities,
    ``ranges`` (the task's range dataclass) replaces them (a clip fixes its severities this way)."""
    if ranges is None:
        ranges = (EVAL_RANGES if split == "eval" else TRAIN_RANGES)[check_task(task)]
    return _FUNCTIONS[task](np.asarray(image, np.float32), rng, ranges)


def eval_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for evaluation image ``index``: fixed by (seed, index), independent of order."""
    return np.random.default_rng([seed, index])
