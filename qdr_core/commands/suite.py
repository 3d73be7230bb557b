"""``qdr suite conditions``: score models on the fixed, seeded condition matrix; JSON + markdown + figure."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qdr_core.suite.conditions import Cascade


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "suite",
        help="score models on the condition matrix (clean, night/fog/rain/noise x severity, mixtures)",
        description=__doc__,
    )
    p.add_argument("suite", choices=["conditions"], help="which suite (only `conditions` today)")
    p.add_argument(
        "--model", action="append", default=[], help=".onnx or .pt model; repeat for several models"
    )
    p.add_argument(
        "--cascades",
        action="store_true",
        help="also score every ordered pair of the --models as a cascade A>B (A's output fed to B)",
    )
    p.add_argument(
        "--cascade",
        action="append",
        default=[],
        metavar="A,B",
        help="also score this cascade (model A's output fed to model B); repeatable; A and B are "
        "scored alone too",
    )
    p.add_argument(
        "--cascade-conditions",
        default="mixtures",
        metavar="ROWS",
        help="rows the cascades are scored on: mixtures (default; the rows of two or more effects) or all",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--clean", help="folder of clean images")
    src.add_argument(
        "--split", choices=["eval", "other"], help="package photos: held-out eval or never-seen other"
    )
    p.add_argument("--json", dest="json_out", required=True, help="write OUT.json, OUT.md and OUT.png")
    p.add_argument(
        "--conditions",
        help="comma-separated rows instead of the whole matrix: names such as clean, fog:mild, "
        "rain+night, bench:noise, or any condition such as night:0.8+rain:mild",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", help="auto | onnxruntime | torch | tensorrt")
    p.add_argument("--threads", type=int, default=0, help="runtime threads (0 = backend default)")
    p.add_argument("--max-side", type=int, default=None, help="shrink images so the longer side fits")
    p.set_defaults(run=run)


def model_names(paths: list[str]) -> list[str]:
    """Short unique names: ``models/haze/int8_cpu.onnx`` -> ``haze/int8_cpu``."""
    from pathlib import Path

    names = [f"{Path(p).parent.name}/{Path(p).stem}" if Path(p).parent.name else Path(p).stem for p in paths]
    if len(set(names)) < len(names):
        names = [str(Path(p).with_suffix("")) for p in paths]
    return names


def model_columns(
    models: list[str], cascade_args: list[str], all_pairs: bool
) -> tuple[list[str], list[str], list[Cascade]]:
    """The model paths, their names and the cascades from ``--model``, ``--cascade A,B`` and ``--cascades``.

    A path that appears only in a ``--cascade`` is scored alone too.
    """
    from qdr_core.errors import ConfigError
    from qdr_core.suite.conditions import Cascade

    if len(set(models)) < len(models):
        raise ConfigError("a model is given twice")
    pairs = []
    for text in cascade_args:
        parts = [part.strip() for part in text.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"--cascade {text!r}: give two models, FIRST,SECOND")
        pairs.append(tuple(parts))
    paths = list(models)
    paths += [p for p in dict.fromkeys(p for pair in pairs for p in pair) if p not in paths]
    if not paths:
        raise ConfigError("give at least one --model (or a --cascade)")
    names = model_names(paths)
    name_of = dict(zip(paths, names))
    cascades = [Cascade(name_of[a], name_of[b]) for a, b in pairs]
    if all_pairs:
        if len(models) < 2:
            raise ConfigError("--cascades pairs the --models: give at least two")
        given = set(cascades)
        cascades += [
            c
            for a in models
            for b in models
            if a != b and (c := Cascade(name_of[a], name_of[b])) not in given
        ]
    return paths, names, cascades


def run(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from qdr_core.runtime import load_runtime
    from qdr_core.suite.conditions import run_suite, select_rows
    from qdr_core.suite.report import markdown, write_all

    paths, labels, cascades = model_columns(args.model, args.cascade, args.cascades)
    rows = select_rows([s.strip() for s in args.conditions.split(",")] if args.conditions else None)
    if args.clean:
        from qdr_core.data.datasets import load_folder_images

        names, images = load_folder_images(args.clean, max_side=args.max_side)
    else:
        from qdr_core.data.sources import MAX_SIDE, photos

        chosen = photos(args.split)
        names, images = [p.name for p in chosen], [p.load(args.max_side or MAX_SIDE) for p in chosen]
    with ExitStack() as stack:
        runtimes = {
            name: stack.enter_context(load_runtime(path, backend=args.backend, num_threads=args.threads))
            for name, path in zip(labels, paths)
        }
        result = run_suite(
            runtimes,
            images,
            names,
            rows,
            seed=args.seed,
            progress=lambda row: print(f"  {row}", flush=True),
            cascades=cascades,
            cascade_rows=args.cascade_conditions,
        )
    result["source"] = args.clean or f"split:{args.split}"
    written = write_all(result, args.json_out, title=f"condition suite, {result['source']}, seed {args.seed}")
    print(markdown(result))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
