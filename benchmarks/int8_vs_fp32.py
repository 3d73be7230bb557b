"""ORT INT8 vs ORT FP32 at 640x480 on one CPU thread: latency of each and the speed-up ratio.

    .venv/bin/python benchmarks/int8_vs_fp32.py --task noise            # models/noise/{fp32,int8_cpu}.onnx
    .venv/bin/python benchmarks/int8_vs_fp32.py --fp32 a.onnx --int8 b.onnx

Times each model two ways, alternating the two models round by round so that load from other
processes hits both alike, and reports medians: ``model`` is the onnxruntime session alone on a
ready NCHW float batch (what the INT8 export changes), ``frame`` is the project's runtime
(``load_runtime(...).infer``) on an HxWx3 image, layout conversion and clipping included (what a
caller gets). Writes benchmarks/results/int8_vs_fp32.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qdr_core.export.ort_int8 import optimized_op_counts  # noqa: E402
from qdr_core.runtime import load_runtime  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="noise")
    p.add_argument("--fp32", help="FP32 ONNX (default models/<task>/fp32.onnx)")
    p.add_argument("--int8", help="INT8 ONNX (default models/<task>/int8_cpu.onnx)")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", default=str(REPO / "benchmarks/results/int8_vs_fp32.json"))
    args = p.parse_args(argv)
    paths = {
        "fp32": Path(args.fp32 or REPO / f"models/{args.task}/fp32.onnx"),
        "int8": Path(args.int8 or REPO / f"models/{args.task}/int8_cpu.onnx"),
    }
    image = np.random.default_rng(0).random((args.height, args.width, 3), dtype=np.float32)
    batch = np.ascontiguousarray(image.transpose(2, 0, 1))[None]
    runtimes = {k: load_runtime(v, backend="onnxruntime", num_threads=args.threads) for k, v in paths.items()}
    calls = {
        "model": {k: (lambda rt=rt: rt._run(batch)) for k, rt in runtimes.items()},
        "frame": {k: (lambda rt=rt: rt.infer(image)) for k, rt in runtimes.items()},
    }
    times = {way: {k: [] for k in paths} for way in calls}
    for r in range(args.warmup + args.rounds):
        for way, fns in calls.items():
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                if r >= args.warmup:
                    times[way][name].append(1000 * (time.perf_counter() - t0))
    for rt in runtimes.values():
        rt.close()
    med = {way: {k: statistics.median(v) for k, v in t.items()} for way, t in times.items()}
    ratios = {way: m["fp32"] / m["int8"] for way, m in med.items()}
    result = {
        "size": [args.height, args.width],
        "threads": args.threads,
        "rounds": args.rounds,
        "median_ms": med,
        "min_ms": {way: {k: min(v) for k, v in t.items()} for way, t in times.items()},
        "speedup_int8_over_fp32": ratios,
        "models": {k: str(v.relative_to(REPO) if v.is_relative_to(REPO) else v) for k, v in paths.items()},
        "int8_optimized_ops": optimized_op_counts(paths["int8"]),
        "cpu": platform.processor() or platform.machine(),
        "onnxruntime": __import__("onnxruntime").__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for way, what in (("model", "onnxruntime session"), ("frame", "runtime.infer, per frame")):
        m = med[way]
        print(
            f"{args.width}x{args.height}, {args.threads} thread(s), {what}: FP32 {m['fp32']:.1f} ms, "
            f"INT8 {m['int8']:.1f} ms, INT8 speed-up {ratios[way]:.2f}x"
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
