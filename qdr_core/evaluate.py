"""Evaluation of any runtime (FP32 or INT8, any backend) on a fixed, seeded degradation set, or on
coherently degraded clips (frame scores and temporal consistency)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from qdr_core.data.clips import Clip, ClipDegrader
from qdr_core.data.datasets import fixed_eval_pairs
from qdr_core.errors import DataError
from qdr_core.metrics import mean_scores, score_restoration
from qdr_core.runtime.stateful import StreamSession
from qdr_core.temporal import TemporalMeter


def evaluate_runtime(
    runtime: Any, task: str, images: Sequence[np.ndarray], names: Sequence[str], seed: int
) -> dict[str, Any]:
    """Degrade each clean image with ``(seed, index)``, restore it with ``runtime.infer``, score it.

    Returns means (``psnr_input``, ``psnr_output``, ``ssim_input``, ``ssim_output``), ``n_images``
    and a row per image, including the inference time.
    """
    rows = []
    for name, degraded, clean in fixed_eval_pairs(task, images, seed, names):
        start = time.perf_counter()
        restored = runtime.infer(degraded)
        elapsed = time.perf_counter() - start
        rows.append(
            {
                "name": name,
                "height": clean.shape[0],
                "width": clean.shape[1],
                **score_restoration(clean, degraded, restored),
                "infer_ms": 1000 * elapsed,
            }
        )
    summary = mean_scores(rows)
    return {
        "task": task,
        "seed": seed,
        "n_images": len(rows),
        **summary,
        "psnr_gain": summary["psnr_output"] - summary["psnr_input"],
        "model": str(getattr(runtime, "model_path", "")),
        "backend": getattr(runtime, "name", ""),
        "images": rows,
    }


def evaluate_clip(runtime: Any, clip: Clip, spec: str, seed: int, drift: bool = False) -> dict[str, Any]:
    """Degrade ``clip`` coherently (``ClipDegrader``), restore each frame, score it frame by frame
    (PSNR / SSIM) and over time (warping error and flicker of the input, the output and the clean
    clip's own warping error, the floor). A streaming runtime restores the clip as one stream (a
    ``StreamSession`` from the empty state), any other frame by frame."""
    degrader = ClipDegrader(spec, seed, n_frames=len(clip.frames), drift=drift)
    restore = StreamSession(runtime).infer if getattr(runtime, "streaming", False) else runtime.infer
    meter = TemporalMeter()
    rows = []
    for t, clean in enumerate(clip.frames):
        degraded = degrader(t, clean)
        start = time.perf_counter()
        restored = restore(degraded)
        elapsed = time.perf_counter() - start
        meter.add(t, clean, restored, degraded)
        rows.append({"frame": t, **score_restoration(clean, degraded, restored), "infer_ms": 1000 * elapsed})
    return {
        "name": clip.name,
        "height": clip.frames[0].shape[0],
        "width": clip.frames[0].shape[1],
        **mean_scores(rows),
        **meter.result(),
        "frames": rows,
    }


#: The temporal keys averaged over clips, in report order.
TEMPORAL_KEYS = (
    "warp_error_clean",
    "warp_error_input",
    "warp_error_output",
    "flicker_input",
    "flicker_output",
)


def evaluate_clips(
    runtime: Any, clips: Sequence[Clip], spec: str, seed: int, drift: bool = False
) -> dict[str, Any]:
    """``evaluate_clip`` on each clip (clip ``k`` seeded by ``(seed, k)``); means over the clips."""
    if not clips:
        raise DataError("no clips to evaluate")
    results = [evaluate_clip(runtime, clip, spec, seed * 1000 + k, drift) for k, clip in enumerate(clips)]
    summary = mean_scores(results)
    temporal = {key: float(np.mean([r[key] for r in results if key in r])) for key in TEMPORAL_KEYS}
    return {
        "degradation": spec,
        "seed": seed,
        "drift": drift,
        "n_clips": len(results),
        "n_frames": int(sum(len(r["frames"]) for r in results)),
        **summary,
        "psnr_gain": summary["psnr_output"] - summary["psnr_input"],
        **temporal,
        "model": str(getattr(runtime, "model_path", "")),
        "backend": getattr(runtime, "name", ""),
        "streaming": bool(getattr(runtime, "streaming", False)),
        "clips": results,
    }


def compare_clip_results(stream: dict[str, Any], single: dict[str, Any]) -> dict[str, float]:
    """What a streaming model changes against a single-frame one on the same clips (two
    ``evaluate_clips`` results): PSNR / SSIM deltas (stream - single), the output warping error's
    change in percent (negative = steadier), both outputs' flicker (8-bit levels) and its delta."""
    if (stream["degradation"], stream["seed"], stream["n_frames"]) != (
        single["degradation"],
        single["seed"],
        single["n_frames"],
    ):
        raise DataError("the two results are not on the same clips (degradation, seed, frames)")
    warp_single = single["warp_error_output"]
    return {
        "psnr_delta": stream["psnr_output"] - single["psnr_output"],
        "ssim_delta": stream["ssim_output"] - single["ssim_output"],
        "warp_error_change_pct": 100.0 * (stream["warp_error_output"] - warp_single) / max(warp_single, 1e-9),
        "flicker_stream": stream["flicker_output"],
        "flicker_single": single["flicker_output"],
        "flicker_delta": stream["flicker_output"] - single["flicker_output"],
    }
