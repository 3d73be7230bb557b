"""Tiled vs whole-frame restoration on the eval photos: the quality cost of tile seams, per task.

    .venv/bin/python benchmarks/tile_seams.py                      # all four shipped INT8 models
    .venv/bin/python benchmarks/tile_seams.py --tasks haze --tile-pixels 147456

Each eval photo (``qdr_core.data.sources`` split ``eval``, up to 768 px) is degraded exactly as
``qdr eval`` degrades it (``fixed_eval_pairs``, seed 0) and restored twice by the same runtime:
whole, and in tiles forced by a small ``--tile-pixels`` budget (384x384 by default, below every eval
photo's area: the lowlight / rain / noise models cut them into 2x2 to 3x3 tiles of up to 384x384;
the haze model, whose overlap is 256 px, into 128-px cores each reading up to 640x640). Reports mean PSNR of each against the clean photo, the
difference, and the largest pixel difference between the two outputs. Writes
benchmarks/results/tile_seams.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qdr_core.data.datasets import fixed_eval_pairs  # noqa: E402
from qdr_core.data.sources import MAX_SIDE, photos  # noqa: E402
from qdr_core.metrics import psnr  # noqa: E402
from qdr_core.runtime import DEFAULT_TILE_OVERLAP, load_runtime  # noqa: E402
from qdr_core.tasks import TASKS  # noqa: E402


def measure(task: str, model: Path, images: list, names: list, tile_pixels: int, overlap: int, threads: int):
    runtime = load_runtime(model, backend="onnxruntime", num_threads=threads)
    rows = []
    for name, degraded, clean in fixed_eval_pairs(task, images, seed=0, names=names):
        runtime.set_tiling(math.inf, overlap)
        whole = runtime.infer(degraded)
        runtime.set_tiling(tile_pixels, overlap)
        tiles = len(runtime._tiles(*degraded.shape[:2]) or [None])
        tiled = runtime.infer(degraded)
        rows.append({
            "image": name, "size": list(degraded.shape[:2]), "tiles": tiles,
            "psnr_whole": psnr(clean, whole), "psnr_tiled": psnr(clean, tiled),
            "max_abs_diff": float(np.abs(whole - tiled).max()),
        })  # fmt: skip
    geometry = runtime.tile_geometry()
    runtime.close()
    whole_db = float(np.mean([r["psnr_whole"] for r in rows]))
    tiled_db = float(np.mean([r["psnr_tiled"] for r in rows]))
    return {
        "task": task,
        "model": str(model.relative_to(REPO)) if model.is_relative_to(REPO) else str(model),
        "size_multiple": runtime.size_multiple,
        "tile_unit": geometry[0],
        "overlap_px": geometry[1],
        "psnr_whole": whole_db,
        "psnr_tiled": tiled_db,
        "delta_db": tiled_db - whole_db,
        "worst_image_delta_db": min(r["psnr_tiled"] - r["psnr_whole"] for r in rows),
        "min_tiles": min(r["tiles"] for r in rows),
        "max_abs_diff": max(r["max_abs_diff"] for r in rows),
        "images": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--model", default="int8_cpu", help="model file name under models/<task>/ (no suffix)")
    p.add_argument("--tile-pixels", type=int, default=384 * 384)
    p.add_argument("--overlap", type=int, default=DEFAULT_TILE_OVERLAP)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks/results/tile_seams.json"))
    args = p.parse_args(argv)
    chosen = photos("eval")
    names, images = [ph.name for ph in chosen], [ph.load(MAX_SIDE) for ph in chosen]
    results = []
    for task in args.tasks:
        row = measure(task, REPO / "models" / task / f"{args.model}.onnx", images, names,
                      args.tile_pixels, args.overlap, args.threads)  # fmt: skip
        results.append(row)
        print(
            f"{task:8s} m={row['size_multiple']:<3d} unit {row['tile_unit']:<3d} overlap {row['overlap_px']:3d}px: whole "
            f"{row['psnr_whole']:.3f} dB, tiled {row['psnr_tiled']:.3f} dB, delta {row['delta_db']:+.4f} dB "
            f"(worst image {row['worst_image_delta_db']:+.4f}), max |diff| {row['max_abs_diff']:.4f}, "
            f"tiles per image >= {row['min_tiles']}"
        )
    report = {
        "benchmark": "tile_seams",
        "command": "benchmarks/tile_seams.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": platform.processor() or platform.machine(),
        "tile_pixels": args.tile_pixels,
        "n_images": len(images),
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
