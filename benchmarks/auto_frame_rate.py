"""The `auto` model's frame-rate budget: its INT8 onnxruntime frame rate vs efm-s's, in one run.

    .venv/bin/python benchmarks/auto_frame_rate.py            # models/auto vs models/noise (efm-s)

Target (issue #13): ``auto`` INT8 frames/s >= 85 % of efm-s INT8 frames/s on the same machine.
Both models run through the project's runtime (``load_runtime(...).infer`` on a 640x480 HxWx3
frame: padding to the size multiple, layout, clipping included), alternating round by round so that
load from other processes hits both alike; medians are reported. Writes
benchmarks/results/auto_frame_rate.json.
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

from qdr_core.runtime import load_runtime  # noqa: E402

TARGET = 0.85


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--auto", default=str(REPO / "models/auto/int8_cpu.onnx"))
    p.add_argument(
        "--reference", default=str(REPO / "models/noise/int8_cpu.onnx"), help="an efm-s INT8 model"
    )
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks/results/auto_frame_rate.json"))
    args = p.parse_args(argv)
    paths = {"auto": Path(args.auto), "efm-s": Path(args.reference)}
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
    ratio = med["efm-s"] / med["auto"]
    result = {
        "size": [args.height, args.width],
        "threads": args.threads,
        "rounds": args.rounds,
        "median_ms": med,
        "fps": {k: 1000 / v for k, v in med.items()},
        "auto_fps_over_efm_s_fps": ratio,
        "target": TARGET,
        "met": ratio >= TARGET,
        "models": {k: str(v.relative_to(REPO) if v.is_relative_to(REPO) else v) for k, v in paths.items()},
        "cpu": platform.processor() or platform.machine(),
        "onnxruntime": __import__("onnxruntime").__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{args.width}x{args.height}, {args.threads} thread(s), INT8 onnxruntime per frame: "
        f"auto {med['auto']:.1f} ms ({1000 / med['auto']:.1f} FPS), efm-s {med['efm-s']:.1f} ms "
        f"({1000 / med['efm-s']:.1f} FPS): auto runs at {100 * ratio:.0f} % of efm-s's rate "
        f"(target >= {100 * TARGET:.0f} %: {'met' if ratio >= TARGET else 'NOT met'})"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
