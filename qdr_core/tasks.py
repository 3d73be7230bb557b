"""The restoration tasks: one definition that the CLI, the data, the node and the benchmarks share."""

from __future__ import annotations

from qdr_core.errors import ConfigError

#: One model per task; ``models/<task>/`` holds its shipped files.
TASKS: tuple[str, ...] = ("lowlight", "haze", "rain", "noise")
#: What the node's ``task`` parameter accepts: the tasks and ``auto``, the all-conditions model
#: (``models/auto/``), which restores any mix of the conditions.
NODE_TASKS: tuple[str, ...] = (*TASKS, "auto")


def check_task(name: str) -> str:
    """``name`` if it is a task, else ConfigError listing the tasks."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return name
