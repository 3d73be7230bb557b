"""Time the streaming preset against its single-frame model (onnxruntime, 640x480) and write
benchmarks/results/stream_compute.json: FP32 and INT8 of random-weight stand-ins of both presets
(the ``qdr bench --presets efm-s,efm-s-stream`` rows), and, with ``--pair SINGLE STREAM``, two model
files (the streaming one restoring a stream, its state fed back every frame), interleaved.

    .venv/bin/python scripts/bench_stream.py [--threads 1] [--repeats 15] \
        [--pair models/noise/int8_cpu.onnx runs/stream_models/noise/int8_cpu.onnx ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from qdr_core.bench.scaling import preset_scaling, stream_pair_timing

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("SINGLE", "STREAM"))
    parser.add_argument("--no-presets", action="store_true", help="time only the --pair files")
    parser.add_argument("--cache", default=str(REPO / "runs" / "bench_models"), help="stand-in models")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "stream_compute.json"))
    args = parser.parse_args(argv)
    size = (args.threads, args.width, args.height)
    result: dict = {
        "command": "python scripts/bench_stream.py "
        + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "loadavg_before": os.getloadavg(),
    }
    if not args.no_presets:
        single, stream = preset_scaling(["efm-s", "efm-s-stream"], *size, args.repeats, args.cache)
        result["presets"] = {
            "macs_ratio": stream["gmacs"] / single["gmacs"],
            "int8_time_ratio": stream["int8_median_ms"] / single["int8_median_ms"],
            "fp32_time_ratio": stream["fp32_median_ms"] / single["fp32_median_ms"],
            "rows": [single, stream],
        }
        print(", ".join(f"{k} {v:.3f}" for k, v in result["presets"].items() if k != "rows"))
    result["pairs"] = [stream_pair_timing(s, t, *size, args.repeats) for s, t in args.pair]
    for p in result["pairs"]:
        print(
            f"{p['stream']} vs {p['single']}: MACs x{p['macs_ratio']:.3f}, {p['stream_median_ms']:.1f} / "
            f"{p['single_median_ms']:.1f} ms = x{p['time_ratio']:.3f}"
        )
    result["loadavg_after"] = os.getloadavg()
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(f"load average before/after: {result['loadavg_before']} / {result['loadavg_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
