"""Where an ONNX model spends its time in onnxruntime: per-op-type and per-node kernel times of
``--runs`` runs on random ``--height x --width`` frames (a streaming model's state too), 1 thread
by default. Prints the top nodes; ``--json`` writes them.

    .venv/bin/python scripts/profile_onnx.py models/noise/stream/int8_cpu.onnx [--top 15]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--json", help="write {op_ms, node_ms, total_ms} here")
    args = parser.parse_args(argv)
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.intra_op_num_threads = args.threads
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "profile")
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in session.get_inputs():  # input and state_in: N x C x H/s x W/s
        channels, stride = spec.shape[1], 1
        if spec.name == "state_in":
            meta = session.get_modelmeta().custom_metadata_map
            stride = int(meta.get("state_stride", "1"))
        shape = (1, channels, args.height // stride, args.width // stride)
        feeds[spec.name] = rng.random(shape, dtype=np.float32)
    session.run(None, feeds)  # warm-up, not profiled apart: it is averaged in below
    for _ in range(args.runs):
        session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    by_op, by_node = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
            by_node[event["name"][: -len("_kernel_time")]] += event["dur"]
    runs = args.runs + 1
    total = sum(by_op.values()) / runs / 1000
    print(
        f"{args.model}: {total:.1f} ms of kernels per run ({args.width}x{args.height}, {args.threads} thread(s))"
    )
    for op, us in by_op.most_common():
        print(f"  {op:24s} {us / runs / 1000:8.1f} ms")
    print("top nodes:")
    for node, us in by_node.most_common(args.top):
        print(f"  {node:56s} {us / runs / 1000:8.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "model": args.model, "width": args.width, "height": args.height, "threads": args.threads,
            "total_ms": total,
            "op_ms": {k: v / runs / 1000 for k, v in by_op.most_common()},
            "node_ms": {k: v / runs / 1000 for k, v in by_node.most_common()},
        }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
