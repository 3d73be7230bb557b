"""The condition suite: every model on clean frames, each condition at three severities, mixtures.

The matrix is fixed and seeded per (seed, condition, image), so any two runs and any two models see
the same degraded frames. Each degraded frame is made once and fed to every model. Today's benchmark
degradations (``qdr eval --task``'s, same seeds) are rows too, so the suite's numbers for them equal
the README's benchmark table.

A cell *harms* when the model's mean output PSNR is below the input's: the model made frames worse.
On ``clean`` the input PSNR is infinite, so any change counts; its output PSNR says how much.

Each cell also has ``halo`` (``metrics.halo``: the luma error in a ring around the input's bright
regions minus the rest of the frame's, 8-bit levels; negative = a dark ring around lamps and white
objects, positive = a glow kept or grown), averaged over the images that have a bright region
(``halo_images``; None when none has); ``halo_input`` is the input's own (the degraded frame as the
output), to compare with.

A *cascade* ``A>B`` (model A's output fed to model B) is scored as one more model column. It reuses
A's output on each frame, so it costs one run of B; by default it is scored on the mixture rows only,
the rows a chain of specialists is meant for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qdr_core.data.degrade import degrade, eval_rng
from qdr_core.data.degrade.pipeline import MIXTURES, Condition, condition_rng, synthesize
from qdr_core.errors import ConfigError
from qdr_core.metrics import halo_in, halo_regions, score
from qdr_core.tasks import TASKS

SINGLE_EFFECTS = ("night", "fog", "rain", "sensor")
BENCHMARK_TASKS = TASKS
#: Which rows cascades are scored on: the mixtures (rows of two or more effects) or every row.
CASCADE_ROWS = ("mixtures", "all")


@dataclass(frozen=True)
class Row:
    """One row of the matrix: a realistic ``condition`` or one of today's benchmark degradations."""

    name: str
    condition: Condition | None = None
    benchmark_task: str | None = None

    def degrade(self, image: np.ndarray, seed: int, index: int) -> tuple[np.ndarray, dict[str, Any]]:
        """The degraded frame for image ``index`` and a record of how it was made."""
        if self.benchmark_task is not None:
            out = degrade(self.benchmark_task, image, eval_rng(seed, index), split="eval")
            return out, {"benchmark_task": self.benchmark_task}
        return synthesize(image, self.condition, condition_rng(seed, self.condition, index))


@dataclass(frozen=True)
class Cascade:
    """Two of the suite's models in a row: ``first``'s restored frame is ``second``'s input."""

    first: str
    second: str

    @property
    def name(self) -> str:
        return f"{self.first}>{self.second}"


def is_mixture(row: Row) -> bool:
    """A realistic condition of two or more effects (``fog+rain``, ``night:0.9+fog:mild``)."""
    return row.condition is not None and len(row.condition.effects) > 1


def default_matrix() -> list[Row]:
    rows = [Row("clean", Condition())]
    for effect in SINGLE_EFFECTS:
        for severity in ("mild", "medium", "strong"):
            cond = Condition(((effect, severity),))
            rows.append(Row(cond.name, cond))
    for mixture in MIXTURES:
        cond = Condition(tuple((e, "medium") for e in mixture))
        rows.append(Row("+".join(mixture), cond))
    rows += [Row(f"bench:{task}", benchmark_task=task) for task in BENCHMARK_TASKS]
    return rows


def select_rows(names: Sequence[str] | None) -> list[Row]:
    """The default matrix, or the named rows of it / condition strings (``"fog:0.3+rain:mild"``)."""
    matrix = default_matrix()
    if not names:
        return matrix
    by_name = {row.name: row for row in matrix}
    by_condition = {row.condition: row for row in matrix if row.condition is not None}
    rows = []
    for name in names:
        if name in by_name:
            rows.append(by_name[name])
        elif name.startswith("bench:"):
            raise ConfigError(
                f"unknown benchmark row {name!r}; choose bench:{', bench:'.join(BENCHMARK_TASKS)}"
            )
        else:
            cond = Condition.parse(name)
            rows.append(by_condition.get(cond, Row(cond.name, cond)))  # "night+rain" is row rain+night
    return rows


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _harms(psnr_input: float, psnr_output: float) -> bool:
    if math.isinf(psnr_input):
        return not math.isinf(psnr_output)
    return psnr_output < psnr_input


def run_suite(
    runtimes: Mapping[str, Any],
    images: Sequence[np.ndarray],
    names: Sequence[str],
    rows: Sequence[Row] | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    cascades: Sequence[Cascade] = (),
    cascade_rows: str = "mixtures",
) -> dict[str, Any]:
    """Score every runtime (``name -> object with .infer(image)``) on every row x image.

    Each of ``cascades`` (pairs of names in ``runtimes``) is scored as one more model, on the mixture
    rows or on every row (``cascade_rows``).

    Returns a JSON-ready dict: the rows (with each image's sampled parameters), the models, and per
    (model, row) the mean input / output PSNR and SSIM, the gains, ``harm`` and per-image rows.
    Infinite PSNRs (identical frames) are kept as ``inf`` here; ``report.to_json`` writes them as null.
    """
    if not runtimes:
        raise ConfigError("the suite needs at least one model")
    if not images:
        raise ConfigError("the suite needs at least one image")
    rows = list(rows) if rows is not None else default_matrix()
    cascade_row_names = _check_cascades(runtimes, rows, cascades, cascade_rows)
    per_cell: dict[tuple[str, str], list[dict[str, Any]]] = {}
    row_records = []
    for row in rows:
        records = []
        for index, (name, clean) in enumerate(zip(names, images)):
            degraded, record = row.degrade(clean, seed, index)
            records.append({"name": name, **record})
            regions = halo_regions(degraded)
            before, halo_before = score(clean, degraded), halo_in(regions, clean, degraded)
            restored = {model: runtime.infer(degraded) for model, runtime in runtimes.items()}
            if row.name in cascade_row_names:
                for c in cascades:
                    restored[c.name] = runtimes[c.second].infer(restored[c.first])
            for model, output in restored.items():
                after = score(clean, output)
                per_cell.setdefault((model, row.name), []).append({
                    "name": name, "psnr_input": before.psnr, "psnr_output": after.psnr,
                    "ssim_input": before.ssim, "ssim_output": after.ssim,
                    "halo_input": halo_before, "halo": halo_in(regions, clean, output),
                })  # fmt: skip
        row_records.append({
            "name": row.name,
            "condition": row.condition.name if row.condition is not None else None,
            "benchmark_task": row.benchmark_task,
            "images": records,
        })  # fmt: skip
        if progress is not None:
            progress(row.name)
    models = [
        {"name": m, "path": str(getattr(r, "model_path", "")), "backend": getattr(r, "name", "")}
        for m, r in runtimes.items()
    ]
    cascade_scope = [r.name for r in rows if r.name in cascade_row_names]
    models += [{"name": c.name, "cascade": [c.first, c.second], "rows": cascade_scope} for c in cascades]
    return {
        "suite": "conditions",
        "seed": seed,
        "images": list(names),
        "models": models,
        "cascade_rows": cascade_rows if cascades else None,
        "conditions": row_records,
        "cells": [_cell(model, row_name, image_rows) for (model, row_name), image_rows in per_cell.items()],
    }


def _cell(model: str, row_name: str, image_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One (model, row) cell: the means over its images, the gains, ``harm`` and the per-image rows."""
    means = {
        k: _mean([r[k] for r in image_rows])
        for k in ("psnr_input", "psnr_output", "ssim_input", "ssim_output")
    }
    measured = [r for r in image_rows if r.get("halo") is not None]
    return {
        "model": model, "condition": row_name, **means,
        "psnr_gain": means["psnr_output"] - means["psnr_input"],
        "ssim_gain": means["ssim_output"] - means["ssim_input"],
        "harm": _harms(means["psnr_input"], means["psnr_output"]),
        "halo_input": _mean([r["halo_input"] for r in measured]) if measured else None,
        "halo": _mean([r["halo"] for r in measured]) if measured else None,
        "halo_images": len(measured),
        "images": image_rows,
    }  # fmt: skip


def _check_cascades(
    runtimes: Mapping[str, Any], rows: Sequence[Row], cascades: Sequence[Cascade], cascade_rows: str
) -> set[str]:
    """The names of the rows the cascades are scored on; a ConfigError for a cascade that cannot run."""
    if cascade_rows not in CASCADE_ROWS:
        raise ConfigError(f"unknown cascade rows {cascade_rows!r}; choose {' or '.join(CASCADE_ROWS)}")
    names = [c.name for c in cascades]
    if len(set(names)) < len(names):
        raise ConfigError("a cascade is given twice")
    for c in cascades:
        for part in (c.first, c.second):
            if part not in runtimes:
                raise ConfigError(f"cascade {c.name}: {part!r} is not one of the suite's models")
        if c.name in runtimes:
            raise ConfigError(f"cascade {c.name} has the name of a model")
    if not cascades:
        return set()
    chosen = {r.name for r in rows if cascade_rows == "all" or is_mixture(r)}
    if not chosen:
        raise ConfigError(
            "the cascades run on mixture rows and none is chosen; add one or score them on all rows"
        )
    return chosen


def cell(result: Mapping[str, Any], model: str, condition: str) -> dict[str, Any]:
    """The (model, condition) cell of a ``run_suite`` result."""
    for c in result["cells"]:
        if c["model"] == model and c["condition"] == condition:
            return c
    raise KeyError((model, condition))
