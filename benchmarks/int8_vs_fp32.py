"""ORT INT8 vs ORT FP32 at 640x480 on one CPU thread: latency of each and the speed-up ratio.

    .venv/bin/python benchmarks/int8_vs_fp32.py --task noise            # models/noise/{fp32,int8_cpu}.onnx
    .venv/bin/python benchmarks/int8_vs_fp32.py --fp32 a.onnx --int8 b.onnx

Runs both through the project's onnxruntime runtime (``load_runtime``), alternating the two models
round by round so that load from other processes hits both alike; reports the median. Writes
benchmarks/results/int8_vs_fp32.json.
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
    runtimes = {k: load_runtime(v, backend="onnxruntime", num_threads=args.threads) for k, v in paths.items()}
    times: dict[str, list[float]] = {k: [] for k in paths}
    for r in range(args.warmup + args.rounds):
        for name, rt in runtimes.items():
            t0 = time.perf_counter()
            rt.infer(image)
            if r >= args.warmup:
                times[name].append(1000 * (time.perf_counter() - t0))
    for rt in runtimes.values():
        rt.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["fp32"] / med["int8"]
    result = {
        "size": [args.height, args.width],
        "threads": args.threads,
        "rounds": args.rounds,
        "median_ms": med,
        "min_ms": {k: min(v) for k, v in times.items()},
        "speedup_int8_over_fp32": ratio,
        "models": {k: str(v.relative_to(REPO) if v.is_relative_to(REPO) else v) for k, v in paths.items()},
        "int8_optimized_ops": optimized_op_counts(paths["int8"]),
        "cpu": platform.processor() or platform.machine(),
        "onnxruntime": __import__("onnxruntime").__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{args.width}x{args.height}, {args.threads} thread(s): FP32 {med['fp32']:.1f} ms, INT8 {med['int8']:.1f} ms"
    )
    print(f"INT8 speed-up over FP32: {ratio:.2f}x  ({out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
