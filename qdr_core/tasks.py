"""The restoration tasks: one definition that the CLI, the data, the node and the benchmarks share."""

from __future__ import annotations

from qdr_core.errors import ConfigError

#: One model per task; ``models/<task>/`` holds its shipped files.
TASKS: tuple[str, ...] = ("lowlight", "haze", "rain", "noise")
#: The all-conditions model: no task label, trained on every realistic condition and mixture
#: (``data.datasets.ConditionPairs``); ``models/auto/`` holds its files.
AUTO_TASK = "auto"
#: The shipped model folders ``models/<task>/``: what ``qdr train`` / ``qdr qat`` make and the
#: node's ``task`` parameter picks: one model per task, and ``auto``.
MODEL_TASKS: tuple[str, ...] = (*TASKS, AUTO_TASK)
#: The realistic condition (``data.degrade.pipeline``) that each task's specialist meets on a robot
#: and learns beside its benchmark degradation when trained with ``data: realistic``.
REALISTIC_EFFECT: dict[str, str] = {"lowlight": "night", "haze": "fog", "rain": "rain", "noise": "sensor"}
#: Training data of a specialist: the paper's benchmark degradation alone, or with the realistic one.
DATA_KINDS: tuple[str, ...] = ("benchmark", "realistic")


def check_task(name: str) -> str:
    """``name`` if it is a task, else ConfigError listing the tasks."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return name
