"""The condition suite's outputs: JSON, a markdown table and a figure (conditions x models).

Infinite PSNR (identical frames) is written as ``null`` in JSON (which has no infinity) and read
back as infinity; it shows as "∞" in the table. A cascade scored on some rows only has no cell on
the others: "—" in the table, grey in the figure.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qdr_core.metrics import HALO_NOTE

#: The clean row has no PSNR gain (its input is perfect); its colour is the output PSNR against
#: this level, above which a change is invisible.
CLEAN_REFERENCE_DB = 40.0


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    return value


def _db(value: float | None) -> float:
    return math.inf if value is None else float(value)


def write_json(result: Mapping[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite_or_none(dict(result)), indent=1, allow_nan=False))
    return path


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _grid(result: Mapping[str, Any]) -> tuple[list[str], list[str], dict[tuple[str, str], Mapping[str, Any]]]:
    rows = [r["name"] for r in result["conditions"]]
    models = [m["name"] for m in result["models"]]
    return rows, models, {(c["condition"], c["model"]): c for c in result["cells"]}


def _fmt_db(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:.1f}"


def _row_input(
    row: str, models: list[str], cells: Mapping[tuple[str, str], Mapping[str, Any]]
) -> Mapping[str, Any]:
    """Any cell of ``row``: every model sees the same degraded frames, so any one gives the input."""
    return next(cells[(row, m)] for m in models if (row, m) in cells)


def markdown(result: Mapping[str, Any]) -> str:
    """A GitHub table: per condition the input PSNR / SSIM, then each model's output and gain.

    Cells where the model harms (output PSNR below input) are bold and marked ▼.
    """
    rows, models, cells = _grid(result)
    head = ["condition", "input PSNR / SSIM", *[f"{m} PSNR (gain) / SSIM" for m in models]]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        first = _row_input(row, models, cells)
        out = [row, f"{_fmt_db(_db(first['psnr_input']))} / {first['ssim_input']:.3f}"]
        for m in models:
            if (row, m) not in cells:
                out.append("—")
                continue
            c = cells[(row, m)]
            p_in, p_out = _db(c["psnr_input"]), _db(c["psnr_output"])
            gain = "" if math.isinf(p_in) else f" ({p_out - p_in:+.1f})"
            text = f"{_fmt_db(p_out)}{gain} / {c['ssim_output']:.3f}"
            out.append(f"**{text} ▼**" if c["harm"] else text)
        lines.append("| " + " | ".join(out) + " |")
    n, seed = len(result["images"]), result["seed"]
    lines.append("")
    lines.append(
        f"Mean over {n} images, seed {seed}. PSNR in dB; ▼ = harm (mean output PSNR below the input's; "
        "on clean frames any change)."
    )
    if result.get("cascade_rows"):
        scope = (
            "on the mixture rows only (— = not scored)"
            if result["cascade_rows"] == "mixtures"
            else "on every row"
        )
        lines.append(f"A>B is a cascade, model A's output fed to model B, scored {scope}.")
    lines += halo_table(result)
    return "\n".join(lines) + "\n"


def halo_table(result: Mapping[str, Any]) -> list[str]:
    """Markdown lines: per row whose input has bright regions, each model's ``halo`` (``metrics.halo``);
    none when no cell has one (a result written before the suite measured it)."""
    rows, models, cells = _grid(result)
    measured = [r for r in rows if any(cells.get((r, m), {}).get("halo") is not None for m in models)]
    if not measured:
        return []
    head = ["condition", "images with bright regions", "input", *models]
    lines = [
        "",
        f"Ring around bright objects (`metrics.halo`): {HALO_NOTE}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for row in measured:
        first = _row_input(row, models, cells)
        measured_input = first.get("halo_input")
        out = [
            row,
            str(first.get("halo_images", "")),
            "—" if measured_input is None else f"{measured_input:+.1f}",
        ]
        for m in models:
            value = cells.get((row, m), {}).get("halo")
            out.append("—" if value is None else f"{value:+.1f}")
        lines.append("| " + " | ".join(out) + " |")
    return lines


def figure(result: Mapping[str, Any], path: str | os.PathLike, title: str = "") -> Path:
    """Heat map, conditions x models: mean PSNR gain (red = harm), the output PSNR written in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, models, cells = _grid(result)
    gain = np.full((len(rows), len(models)), np.nan)
    text = [["" for _ in models] for _ in rows]
    for i, row in enumerate(rows):
        for j, m in enumerate(models):
            if (row, m) not in cells:
                continue
            c = cells[(row, m)]
            p_in, p_out = _db(c["psnr_input"]), _db(c["psnr_output"])
            if math.isinf(p_in):
                gain[i, j] = 0.0 if math.isinf(p_out) else p_out - CLEAN_REFERENCE_DB
                text[i][j] = f"{_fmt_db(p_out)} dB"
            else:
                gain[i, j] = p_out - p_in
                text[i][j] = f"{p_out - p_in:+.1f}\n{p_out:.1f}"
    limit = max(1.0, float(np.nanmax(np.abs(gain))))
    # At least 3.2 inches tall so the colour bar's label fits a few rows (a cascades-only run).
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(models), max(3.2, 0.9 + 0.42 * len(rows))))
    cmap = plt.get_cmap("RdBu").with_extremes(bad="0.85")  # grey: a cascade not scored on this row
    shown = np.ma.masked_invalid(np.clip(gain, -limit, limit))
    im = ax.imshow(shown, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(models)):
            ax.text(j, i, text[i][j], ha="center", va="center", fontsize=7)
    inputs = [_fmt_db(_db(_row_input(r, models, cells)["psnr_input"])) for r in rows]
    ax.set_yticks(range(len(rows)), [f"{r}  [{p}]" for r, p in zip(rows, inputs)], fontsize=7)
    ax.set_xticks(range(len(models)), models, fontsize=7, rotation=20, ha="right")
    fig.colorbar(im, ax=ax, label="PSNR gain, dB (clean: output - 40 dB)")
    ax.set_title(
        title or f"condition suite: gain / output PSNR [input PSNR], {len(result['images'])} images",
        fontsize=8,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_all(result: Mapping[str, Any], json_path: str | os.PathLike, title: str = "") -> list[Path]:
    """``json_path`` and its ``.md`` and ``.png`` siblings."""
    json_path = Path(json_path)
    written = write_json(result, json_path)
    md = json_path.with_suffix(".md")
    md.write_text(markdown(read_json(written)))
    png = figure(read_json(written), json_path.with_suffix(".png"), title)
    return [written, md, png]
