"""Evaluation of any runtime (FP32 or INT8, any backend) on a fixed, seeded degradation set."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from qdr_core.data.datasets import fixed_eval_pairs
from qdr_core.metrics import mean_scores, score_restoration


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
