"""``qdr bench``: speed, memory, efficiency and quality of every runtime, the node path and peers.

Prints the tables, writes ``<output>/<name>.json`` and ``<output>/<name>.png``. ``--quick`` is the
< 3 minute set ``make bench`` runs; without it the full suite (four resolutions, all tasks' peers)
takes about 11 minutes on an idle 2-core CPU. Rerun it on an idle machine for numbers to publish: every
JSON records the load average it was measured under.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qdr_core.paths import source_root
from qdr_core.tasks import TASKS


def _csv_ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _csv_resolutions(text: str) -> list[tuple[int, int]]:
    from qdr_core.bench.frames import parse_resolution

    try:
        return [parse_resolution(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _default_dir(name: str) -> str:
    # Repository-relative when run from a checkout (editable install), else relative to the cwd.
    root = source_root()
    return str(root / name) if (root / "benchmarks").is_dir() else name


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmark runtimes, node path and peers", description=__doc__)
    p.add_argument(
        "--quick", action="store_true", help="the < 3 minute set (2 resolutions, one task's peers)"
    )
    p.add_argument("--threads", type=_csv_ints, help="CPU thread counts, e.g. 1,2 (default 1,2)")
    p.add_argument(
        "--resolutions",
        type=_csv_resolutions,
        help="WxH list (default 320x240,640x480,1280x720,1920x1080; quick: the first two)",
    )
    p.add_argument("--output", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--name", default=None, help="output file stem (default bench_quick / bench_full[_cuda])")
    p.add_argument(
        "--task",
        default="lowlight",
        choices=TASKS,
        help="whose models are timed",
    )
    p.add_argument(
        "--runtimes",
        type=_csv,
        help="subset of runtime keys (ort-fp32, ort-int8-cpu, ort-int8-trt, torch-fp32, trt-int8, ...)",
    )
    p.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="cuda adds ORT CUDA and torch CUDA FP32/FP16"
    )
    p.add_argument("--repeats", type=int, help="timed runs per configuration (after warm-up)")
    p.add_argument("--min-seconds", type=float, help="time each configuration at least this long")
    p.add_argument(
        "--presets",
        type=_csv,
        help="presets for the size scaling (default efm-t,efm-s,efm-s-ctx,efm-s-ctx5,efm-m; '' for none)",
    )
    p.add_argument(
        "--preset",
        default="efm-s",
        help="preset of the random-weight stand-ins used where no model is shipped",
    )
    p.add_argument("--models-dir", default=None, help="where models/<task>/ live (default models)")
    p.add_argument("--cache", default=None, help="stand-in models and engines (default runs/bench_models)")
    p.add_argument(
        "--peer-tasks", type=_csv, help="tasks whose peers are compared (default: all; quick: --task)"
    )
    p.add_argument("--peer-images", type=int, help="held-out photos per task for quality")
    p.add_argument("--peer-max-side", type=int, help="shrink quality photos to this longer side")
    p.add_argument("--no-peers", action="store_true", help="skip the peer comparison")
    p.add_argument("--no-node", action="store_true", help="skip node vs runtime")
    p.add_argument(
        "--no-stream", action="store_true", help="skip the streaming model's row (models/<task>/stream/)"
    )
    p.add_argument(
        "--no-ros-node",
        action="store_true",
        help="skip benchmarks/node_vs_runtime.py (keep the frame pipeline)",
    )
    p.add_argument("--no-roofline", action="store_true", help="skip the roofline")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from qdr_core.bench.report import plot, render, write_json
    from qdr_core.bench.suite import BenchOptions, default_output_name, run_suite

    overrides = {
        "task": args.task,
        "device": args.device,
        "preset": args.preset,
        "models_dir": args.models_dir or _default_dir("models"),
        "cache_dir": args.cache or str(Path(_default_dir("runs")) / "bench_models"),
        "roofline": not args.no_roofline,
        "peers": not args.no_peers,
        "node": not args.no_node,
        "stream": not args.no_stream,
        "ros_node": not args.no_ros_node,
    }
    optional = ("threads", "resolutions", "runtimes", "repeats", "min_seconds", "presets", "peer_tasks")
    for key in (*optional, "peer_images", "peer_max_side"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    options = BenchOptions.quick(**overrides) if args.quick else BenchOptions(**overrides)
    command = (
        "qdr " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "qdr bench"
    )
    result = run_suite(options, command=command)
    output = Path(args.output or _default_dir("benchmarks/results"))
    name = args.name or default_output_name(options)
    json_path = write_json(result, output / f"{name}.json")
    png_path = plot(result, output / f"{name}.png")
    result_files = [str(json_path), *([str(png_path)] if png_path else [])]
    print(render(result))
    print(f"\nwrote {', '.join(result_files)}")
    return 1 if result["errors"] else 0
