"""One isolated measurement, run as ``python -m qdr_core.bench.worker`` with a JSON config on stdin.

A fresh process per (runtime, resolution, threads) keeps peak RSS, allocator arenas, thread pools
and torch's process-wide thread count from leaking between configurations. The result is printed as
one JSON line prefixed with ``RESULT_PREFIX``; ``run_isolated`` is the parent's side.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from qdr_core.bench.memory import current_rss_mb, peak_rss_mb, reset_peak_rss

RESULT_PREFIX = "QDR_BENCH_RESULT "


def run_isolated(cfg: dict[str, Any], timeout_s: float = 300.0) -> dict[str, Any]:
    """Run one worker configuration in a fresh interpreter; returns its result dict (``ok`` False
    with ``error`` when it failed or timed out)."""
    env = dict(os.environ)
    threads = int(cfg.get("threads", 0))
    if threads > 0:
        # Keep OpenMP / MKL pools (torch) at the requested size instead of one thread per CPU.
        env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "qdr_core.bench.worker"],
            input=json.dumps(cfg),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout_s:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"ok": False, "error": f"worker exited {proc.returncode}: {' | '.join(tail)}"}


def measure_config(cfg: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from qdr_core.bench.frames import frame_float
    from qdr_core.bench.machine import load_average
    from qdr_core.bench.timing import measure
    from qdr_core.runtime import load_runtime

    backend, threads = cfg["backend"], int(cfg["threads"])
    height, width = int(cfg["height"]), int(cfg["width"])
    image = frame_float(height, width)
    importlib.import_module(backend)  # the package's import is not model load time
    result: dict[str, Any] = {"loadavg_start": load_average(), "rss_before_load_mb": current_rss_mb()}
    reset_peak_rss()
    opts = dict(cfg["opts"])
    if backend == "tensorrt":
        opts["engine_cache_dir"] = cfg["engine_cache_dir"]
    wall0, t0 = time.time(), time.perf_counter()
    runtime = load_runtime(cfg["model"], backend=backend, num_threads=threads, **opts)
    result["load_s"] = time.perf_counter() - t0
    result["rss_after_load_mb"] = current_rss_mb()
    try:
        if backend == "tensorrt":
            # An engine file written during this load was built now: that load time is the build
            # time; a second load times what a restart costs (cached plan).
            engine = Path(runtime.engine_path)
            result["engine_built"] = engine.is_file() and engine.stat().st_mtime >= wall0 - 1
            if result["engine_built"]:
                result["engine_build_s"] = result["load_s"]
            result["trt_version"], result["gpu"] = runtime.trt_version, runtime.gpu_name
            t0 = time.perf_counter()
            load_runtime(cfg["model"], backend=backend, num_threads=threads, **opts).close()
            result["load_s"] = time.perf_counter() - t0
        fn = _half_fn(runtime, image) if cfg.get("half") else (lambda: runtime.infer(image))
        t0 = time.perf_counter()
        out = fn()
        result["first_infer_s"] = time.perf_counter() - t0
        if not np.all(np.isfinite(np.asarray(out, dtype=np.float32))):
            raise RuntimeError("the model produced non-finite values")
        result.update(
            measure(fn, cfg["warmup"], cfg["repeats"], cfg["min_seconds"], max_seconds=30.0).as_dict()
        )
        providers = getattr(runtime, "active_providers", None)
        if providers:
            result["providers"] = list(providers)
    finally:
        runtime.close()
    result["peak_rss_mb"] = peak_rss_mb()
    result["rss_delta_mb"] = result["peak_rss_mb"] - result["rss_before_load_mb"]
    result["loadavg_end"] = load_average()
    return result


def _half_fn(runtime: Any, image: Any):
    """torch FP16 on CUDA: the Runtime interface is FP32-only, so call the module directly (with the
    same pad/crop the runtime does) and synchronise so the time is the GPU's, not the launch's."""
    import torch

    from qdr_core.runtime.base import pad_image

    model = runtime.model.half()
    padded = pad_image(image, runtime.size_multiple)
    x = torch.from_numpy(padded.transpose(2, 0, 1).copy())[None].to(runtime.device).half()

    @torch.inference_mode()
    def fn():
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        return out[0, :, : image.shape[0], : image.shape[1]].clamp(0, 1).float().cpu().numpy()

    return fn


def main() -> int:
    cfg = json.loads(sys.stdin.read())
    try:
        result = {"ok": True, **measure_config(cfg)}
    except Exception as exc:  # reported to the parent as data: one failed config must not stop the suite
        error = f"{type(exc).__name__}: {exc}"
        result = {"ok": False, "error": error, "traceback": traceback.format_exc(limit=5)}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
