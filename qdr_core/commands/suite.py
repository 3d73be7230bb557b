"""``qdr suite conditions``: score models on the fixed, seeded condition matrix; JSON + markdown + figure."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "suite",
        help="score models on the condition matrix (clean, night/fog/rain/noise x severity, mixtures)",
        description=__doc__,
    )
    p.add_argument("suite", choices=["conditions"], help="which suite (only `conditions` today)")
    p.add_argument(
        "--model", action="append", required=True, help=".onnx or .pt model; repeat for several models"
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


def run(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from qdr_core.errors import ConfigError
    from qdr_core.runtime import load_runtime
    from qdr_core.suite.conditions import run_suite, select_rows
    from qdr_core.suite.report import markdown, write_all

    if len(set(args.model)) < len(args.model):
        raise ConfigError("a model is given twice")
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
            for name, path in zip(model_names(args.model), args.model)
        }
        result = run_suite(
            runtimes, images, names, rows, seed=args.seed, progress=lambda row: print(f"  {row}", flush=True)
        )
    result["source"] = args.clean or f"split:{args.split}"
    written = write_all(result, args.json_out, title=f"condition suite, {result['source']}, seed {args.seed}")
    print(markdown(result))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
