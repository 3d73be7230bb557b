"""Peak and after-frame memory (RSS) of the node's frame path against frame size, tiled or not.

    .venv/bin/python benchmarks/memory_vs_frame_size.py                 # 0.3, 2, 8, 12 MP; before/after
    .venv/bin/python benchmarks/memory_vs_frame_size.py --sizes 640x480 4000x3000

For each frame size and mode a fresh ``python`` process loads ``models/lowlight/int8_cpu.onnx``
(onnxruntime, the node's default), restores one 640x480 frame (the "baseline": a node that has been
running; the "baseline" RSS includes the big frame's message buffer), then one bgr8 frame of the size
under test through ``qdr_core.frame_restore.restore_raw``
(the node's ROS-free frame path), drops the result and reports: peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), RSS before and after the big frame, and its time.
Mode ``before`` is the frame path as it was before issue #12: no tiling (``tile_pixels=inf``, the
frame is computed whole) and onnxruntime's arena keeping its peak (``arena_keep_pixels=inf``);
``after`` uses the defaults: tiles above ``DEFAULT_TILE_PIXELS`` and the arena handing back what a
run above ``ARENA_KEEP_PIXELS`` grew.
Writes benchmarks/results/memory_vs_frame_size.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = ("640x480", "1920x1080", "3840x2160", "4000x3000")
MODEL = REPO / "models" / "lowlight" / "int8_cpu.onnx"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def frame_data(height: int, width: int):
    """A dim bgr8 frame (a low-light scene) as the message's flat uint8 buffer, built from a 256x256
    patch so that making it leaves no large freed float buffers behind to blur the RSS baseline."""
    import numpy as np

    y, x = np.mgrid[0:256, 0:256].astype(np.float32)
    base = 40 + 30 * np.sin(x / 23.0) * np.cos(y / 17.0)
    noise = np.random.default_rng(0).normal(0, 4, (256, 256)).astype(np.float32)
    patch = np.clip(np.stack([base + noise, base * 0.8 + noise, base * 0.6 + noise], -1), 0, 255)
    frame = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, 256):
        for left in range(0, width, 256):
            block = frame[top : top + 256, left : left + 256]
            block[...] = patch[: block.shape[0], : block.shape[1]]
    return frame.reshape(-1)


def worker(height: int, width: int, tile_pixels: float, threads: int) -> dict:
    from qdr_core.frame_restore import restore_raw
    from qdr_core.runtime import load_runtime

    data = frame_data(height, width)
    runtime = load_runtime(MODEL, backend="onnxruntime", num_threads=threads, tile_pixels=tile_pixels)
    if math.isinf(tile_pixels):
        runtime.arena_keep_pixels = math.inf  # as before issue #12: the arena keeps its peak
    restore_raw(runtime, 480, 640, "bgr8", 640 * 3, frame_data(480, 640))
    baseline, peak_before = rss_mb(), peak_mb()
    start = time.perf_counter()
    out = restore_raw(runtime, height, width, "bgr8", width * 3, data)
    seconds = time.perf_counter() - start
    assert (out.height, out.width) == (height, width)
    del out
    after = rss_mb()
    return {
        "size": f"{width}x{height}",
        "megapixels": round(height * width / 1e6, 2),
        "tile_pixels": None if math.isinf(tile_pixels) else int(tile_pixels),
        "tiles": len(runtime._tiles(height, width) or [None]),
        "input_mb": round(data.nbytes / 2**20, 1),
        "rss_baseline_mb": round(baseline, 1),
        "peak_rss_mb": round(max(peak_mb(), peak_before), 1),
        "rss_after_mb": round(after, 1),
        "seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=list(SIZES), help="WIDTHxHEIGHT")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks/results/memory_vs_frame_size.json"))
    p.add_argument("--worker", nargs=3, metavar=("WIDTH", "HEIGHT", "TILE_PIXELS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        width, height, tile = int(args.worker[0]), int(args.worker[1]), float(args.worker[2])
        print(json.dumps(worker(height, width, tile, args.threads)))
        return 0
    from qdr_core.runtime import DEFAULT_TILE_PIXELS

    load_start = os.getloadavg()[0]
    rows = []
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        for mode, tile in (("before", math.inf), ("after", DEFAULT_TILE_PIXELS)):
            cmd = [sys.executable, __file__, "--threads", str(args.threads), "--worker", str(width), str(height),
                   str(tile)]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            row = {"mode": mode, **json.loads(done.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(
                f"{row['size']:>10s} ({row['megapixels']:5.2f} MP) {mode:6s} tiles {row['tiles']:2d}: peak "
                f"{row['peak_rss_mb']:7.1f} MB, baseline {row['rss_baseline_mb']:6.1f} MB, after "
                f"{row['rss_after_mb']:7.1f} MB, {row['seconds']:.2f} s"
            )
    report = {
        "benchmark": "memory_vs_frame_size",
        "command": "benchmarks/memory_vs_frame_size.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": str(MODEL.relative_to(REPO)),
        "machine": cpu_name(),
        "cpus": os.cpu_count(),
        "load_average": {"start": load_start, "end": os.getloadavg()[0]},
        "threads": args.threads,
        "default_tile_pixels": DEFAULT_TILE_PIXELS,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
