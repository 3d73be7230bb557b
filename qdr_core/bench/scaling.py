"""How time grows with pixels (least-squares ms per megapixel) and with model size (preset MACs)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from qdr_core.bench.frames import frame_float
from qdr_core.bench.timing import interleaved


def fit_ms_per_megapixel(megapixels: Sequence[float], ms: Sequence[float]) -> dict[str, float] | None:
    """Fit ``ms = intercept + slope * MP``; None with fewer than two distinct sizes."""
    x, y = np.asarray(megapixels, dtype=np.float64), np.asarray(ms, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    pred = intercept + slope * x
    ss_res, ss_tot = float(((y - pred) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    return {
        "ms_per_megapixel": float(slope),
        "intercept_ms": float(intercept),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0,
        "points": int(x.size),
    }


def pixel_scaling(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One fit per (runtime, threads) over the resolutions timed in the main grid."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("ok"):
            groups.setdefault((r["runtime"], r["threads"]), []).append(r)
    fits = []
    for (runtime, threads), group in sorted(groups.items()):
        fit = fit_ms_per_megapixel([g["megapixels"] for g in group], [g["median_ms"] for g in group])
        if fit:
            fits.append({"runtime": runtime, "threads": threads, **fit})
    return fits


def preset_scaling(
    presets: Sequence[str],
    threads: int,
    width: int = 640,
    height: int = 480,
    repeats: int = 10,
    cache_dir: str | os.PathLike = "runs/bench_models",
) -> list[dict[str, Any]]:
    """ORT FP32 and ORT INT8 (int8_cpu-style) time of each preset at one resolution, with its MACs.

    Random-weight stand-ins of every preset (speed does not depend on weights); FP32 and INT8 of a
    preset are timed interleaved, so their ratio shares one load condition.
    """
    from qdr_core.bench.models import onnx_complexity, standin_files
    from qdr_core.runtime import load_runtime

    image = frame_float(height, width)
    rows = []
    for preset in presets:
        files = standin_files(preset, cache_dir)
        cx = onnx_complexity(files["fp32_onnx"].path, height, width)
        fp32 = load_runtime(files["fp32_onnx"].path, backend="onnxruntime", num_threads=threads)
        int8 = load_runtime(files["int8_cpu"].path, backend="onnxruntime", num_threads=threads)
        try:
            t = interleaved(
                {"fp32": lambda r=fp32: r.infer(image), "int8": lambda r=int8: r.infer(image)}, 2, repeats
            )
        finally:
            fp32.close()
            int8.close()
        gmacs = cx["macs"] / 1e9
        rows.append(
            {
                "preset": preset,
                "threads": threads,
                "width": width,
                "height": height,
                "gmacs": gmacs,
                "params": cx["params_fp32_initializers"],
                "fp32_median_ms": t["fp32"].median_ms,
                "int8_median_ms": t["int8"].median_ms,
                "fp32_fps": t["fp32"].fps,
                "int8_fps": t["int8"].fps,
                "int8_ms_per_gmac": t["int8"].median_ms / gmacs,
                "fp32_ms_per_gmac": t["fp32"].median_ms / gmacs,
                "int8_speedup": t["fp32"].median_ms / t["int8"].median_ms,
            }
        )
    return rows
