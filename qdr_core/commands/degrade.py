"""``qdr degrade``: write degraded copies (same file names) of every image in a folder."""

from __future__ import annotations

import argparse

from qdr_core.tasks import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("degrade", help="synthesise a degradation over a folder", description=__doc__)
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--input", required=True, help="folder of clean images")
    p.add_argument("--output", required=True, help="folder for the degraded copies")
    p.add_argument("--seed", type=int, default=0, help="image i is degraded with generator (seed, i)")
    p.add_argument("--split", choices=["eval", "train"], default="eval", help="severity ranges to use")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qdr_core.data.degrade import degrade, eval_rng
    from qdr_core.data.imageio import list_images, read_rgb, write_rgb

    files = list_images(args.input)
    out = Path(args.output)
    for i, path in enumerate(files):
        write_rgb(
            out / path.name, degrade(args.task, read_rgb(path), eval_rng(args.seed, i), split=args.split)
        )
    print(f"wrote {len(files)} degraded image(s) ({args.task}, seed {args.seed}) to {out}")
    return 0
