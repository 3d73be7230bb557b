"""``qdr restore``: restore an image file or every image of a folder, writing PNGs."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("restore", help="restore an image or a folder of images", description=__doc__)
    p.add_argument("--model", required=True, help=".onnx (FP32 or INT8) or .pt checkpoint")
    p.add_argument("--input", required=True, help="image file or folder")
    p.add_argument("--output", required=True, help="output PNG file (for a file input) or folder")
    p.add_argument("--backend", default="auto", help="auto | onnxruntime | torch | tensorrt")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qdr_core.data.imageio import list_images, read_rgb, write_rgb
    from qdr_core.errors import DataError
    from qdr_core.runtime import load_runtime

    source, target = Path(args.input), Path(args.output)
    if source.is_dir():
        jobs = [(p, target / f"{p.stem}.png") for p in list_images(source)]
    elif source.is_file():
        jobs = [(source, target if target.suffix else target / f"{source.stem}.png")]
    else:
        raise DataError(f"input not found: {source}")
    with load_runtime(args.model, backend=args.backend, num_threads=args.threads) as runtime:
        for src, dst in jobs:
            write_rgb(dst, runtime.infer(read_rgb(src)))
    print(f"restored {len(jobs)} image(s) with {runtime.name} -> {target}")
    return 0
