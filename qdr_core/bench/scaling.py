"""How time grows with pixels (least-squares ms per megapixel) and with model size (preset MACs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qdr_core.bench.frames import frame_float
from qdr_core.bench.timing import interleaved, interleaved_models


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
    presets: Sequence[str], threads: int, width: int, height: int, repeats: int, cache_dir: str
) -> list[dict[str, Any]]:
    """ORT FP32 and ORT INT8 (int8_cpu-style) time of each preset at one resolution, with its MACs.

    Random-weight stand-ins of every preset (speed does not depend on weights); FP32 and INT8 of a
    preset are timed interleaved, so their ratio shares one load condition.
    """
    from qdr_core.bench.models import onnx_complexity, standin_files

    image = frame_float(height, width)
    rows = []
    for preset in presets:
        files = standin_files(preset, cache_dir)
        cx = onnx_complexity(files["fp32_onnx"].path, height, width)
        paths = {"fp32": files["fp32_onnx"].path, "int8": files["int8_cpu"].path}
        t = interleaved_models(paths, image, threads, 2, repeats)
        gmacs, f, i = cx["macs"] / 1e9, t["fp32"], t["int8"]
        row = {"preset": preset, "threads": threads, "width": width, "height": height, "gmacs": gmacs}
        row |= {
            "params": cx["params_fp32_initializers"],
            "fp32_median_ms": f.median_ms,
            "int8_median_ms": i.median_ms,
        }
        row |= {"fp32_fps": f.fps, "int8_fps": i.fps, "int8_ms_per_gmac": i.median_ms / gmacs}
        rows.append(
            {**row, "fp32_ms_per_gmac": f.median_ms / gmacs, "int8_speedup": f.median_ms / i.median_ms}
        )
    return rows


def stream_pair_timing(
    single: str, stream: str, threads: int, width: int, height: int, repeats: int
) -> dict[str, Any]:
    """A streaming model file against its single-frame one at ``width x height`` (onnxruntime):
    conv MACs of each from the graph and interleaved median times, the streaming one restoring a
    stream (``StreamSession``: its state fed back every frame, as the node runs it)."""
    from qdr_core.bench.models import onnx_complexity
    from qdr_core.runtime import load_runtime
    from qdr_core.runtime.stateful import StreamSession

    image = frame_float(height, width)
    single_rt = load_runtime(single, backend="onnxruntime", num_threads=threads)
    stream_rt = load_runtime(stream, backend="onnxruntime", num_threads=threads)
    try:
        session = StreamSession(stream_rt)
        t = interleaved(
            {"single": lambda: single_rt.infer(image), "stream": lambda: session.infer(image)}, 2, repeats
        )
    finally:
        single_rt.close()
        stream_rt.close()
    macs = {
        name: onnx_complexity(path, height, width)["macs"] / 1e9
        for name, path in (("single", single), ("stream", stream))
    }
    return {
        "single": single,
        "stream": stream,
        "threads": threads,
        "width": width,
        "height": height,
        "single_gmacs": macs["single"],
        "stream_gmacs": macs["stream"],
        "macs_ratio": macs["stream"] / macs["single"],
        "single_median_ms": t["single"].median_ms,
        "stream_median_ms": t["stream"].median_ms,
        "time_ratio": t["stream"].median_ms / t["single"].median_ms,
    }
