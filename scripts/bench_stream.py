"""Time the streaming preset against its single-frame model (onnxruntime FP32 and INT8, 640x480,
random-weight stand-ins, interleaved) and write benchmarks/results/stream_compute.json.

    .venv/bin/python scripts/bench_stream.py [--threads 1] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from qdr_core.bench.scaling import preset_scaling

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "stream_compute.json"))
    args = parser.parse_args()
    before = os.getloadavg()
    rows = preset_scaling(["efm-s", "efm-s-stream"], threads=args.threads, repeats=args.repeats)
    single, stream = rows
    result = {
        "command": f"python scripts/bench_stream.py --threads {args.threads} --repeats {args.repeats}",
        "loadavg_before": before,
        "loadavg_after": os.getloadavg(),
        "macs_ratio": stream["gmacs"] / single["gmacs"],
        "int8_time_ratio": stream["int8_median_ms"] / single["int8_median_ms"],
        "fp32_time_ratio": stream["fp32_median_ms"] / single["fp32_median_ms"],
        "rows": rows,
    }
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    for key in ("macs_ratio", "int8_time_ratio", "fp32_time_ratio"):
        print(f"{key}: {result[key]:.3f}")
    print(f"load average before/after: {before} / {result['loadavg_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
