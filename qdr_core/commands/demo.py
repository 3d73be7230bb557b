"""``qdr demo`` (what ``make demo`` runs): a bag that goes through the day, replayed live through
the qdr_restore lifecycle node with the node's default model, and summarised.

Steps: degrade ``demo/images`` segment by segment (clean daylight -> dusk -> night -> rainy night
-> fog, ``qdr_core.bag.day``) into a bag with the clean frames as reference; start the real node
in a subprocess; configure + activate it over its lifecycle services; replay the bag at its
recorded rate; score PSNR / SSIM per segment, person AP (SSDLite, clean frames as reference),
latency and throughput; write a report with the grid and crops around the brightest spots (lamps).
Without rclpy the same evaluation runs offline (in process) and says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qdr_core.node.params import BY_NAME
from qdr_core.tasks import MODEL_TASKS

#: The node's default model (the parameter table's ``task`` default).
DEFAULT_TASK: str = BY_NAME["task"].default
#: The model the demo uses, best first: the onnxruntime INT8 export, else the FP32 ONNX.
MODEL_PREFERENCE = ("int8_cpu.onnx", "fp32.onnx")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="end-to-end demo: bag -> live lifecycle node -> report", description=__doc__
    )
    p.add_argument("--task", default=DEFAULT_TASK, choices=MODEL_TASKS,
                   help=f"model models/<task>/ to use (default: the node's, {DEFAULT_TASK})")  # fmt: skip
    p.add_argument("--model", help="model file (default: models/<task>/int8_cpu.onnx, else fp32.onnx)")
    p.add_argument("--images", help="clean frames (default: the bundled demo/images)")
    p.add_argument(
        "--output", default="runs/demo", help="folder for the bag, results and report (default runs/demo)"
    )
    p.add_argument("--per-segment", type=int, default=0,
                   help="frames per segment of the day (default: every demo image once)")  # fmt: skip
    p.add_argument("--rate", type=float, default=5.0, help="camera rate of the demo bag, Hz")
    p.add_argument("--offline", action="store_true", help="skip the ROS node; restore in this process")
    p.add_argument("--detector", default="ssdlite", choices=["ssdlite", "hog", "none"])
    p.add_argument("--threads", type=int, default=0, help="inference threads in the node (0 = default)")
    p.set_defaults(run=run)


def default_model(task: str, roots: list[Path] | None = None) -> Path:
    """The bundled model for ``task``: int8_cpu.onnx, else fp32.onnx (the ROS package share
    directory, then the source tree: the node's search roots). ModelFileError lists what was
    looked for."""
    from qdr_core.errors import ModelFileError
    from qdr_core.node.runtime import model_search_roots

    candidates = roots if roots is not None else model_search_roots()
    tried = []
    for name in MODEL_PREFERENCE:
        for root in candidates:
            path = root / "models" / task / name
            tried.append(str(path))
            if path.is_file():
                return path
    raise ModelFileError(
        f"no bundled {task} model (looked for {', '.join(tried)}); train one with `make models` "
        "or pass --model FILE"
    )


def demo_frames(folder: Path, per_segment: int) -> list:
    """The clean frames of one segment: the images of ``folder``, cycled to ``per_segment`` (0: each once)."""
    from qdr_core.bag.make import frames_from_images

    images = [image for _, image in frames_from_images(folder)]
    count = per_segment or len(images)
    return [images[i % len(images)] for i in range(count)] if images else []


def run(args: argparse.Namespace) -> int:
    import json
    import time

    from qdr_core.bag.day import DAY, make_day_bag, segment_scores
    from qdr_core.bag.io import remove_bag
    from qdr_core.commands.bag import summary_line
    from qdr_core.detect import build_detector
    from qdr_core.errors import DataError
    from qdr_core.paths import source_root
    from qdr_core.report import write_report

    started = time.perf_counter()
    if args.per_segment < 0:
        raise DataError(f"--per-segment must be >= 0, got {args.per_segment}")
    model = Path(args.model) if args.model else default_model(args.task)
    if not model.is_file():
        raise DataError(f"model not found: {model}")
    images = Path(args.images) if args.images else source_root() / "demo" / "images"
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    bag = out / "bag"
    remove_bag(bag)  # the previous demo's bag
    print(f"qdr demo: task {args.task}, model {model}")
    made = make_day_bag(demo_frames(images, args.per_segment), bag, rate=args.rate)
    day = " -> ".join(f"{s['name']} ({s['condition']})" for s in made["segments"])
    print(
        f"  bag: {bag} ({made['n_frames']} frames {made['size'][0]}x{made['size'][1]} at {args.rate:g} Hz): {day}"
    )
    detector = None if args.detector == "none" else build_detector(args.detector)

    from qdr_core.errors import BackendUnavailableError
    from qdr_core.node.live import LiveOptions, live_evaluator

    evaluate_bag_live, reason = None, None
    if not args.offline:
        try:
            evaluate_bag_live = live_evaluator()
        except BackendUnavailableError as exc:
            reason = str(exc)
    if evaluate_bag_live is None:
        if reason:
            print(f"  ROS 2 not available ({reason}): running OFFLINE instead of through the node")
        from qdr_core.bag.evaluate import evaluate_bag_offline
        from qdr_core.runtime import load_runtime

        remove_bag(out / "restored_bag")
        with load_runtime(model, num_threads=args.threads) as runtime:
            result, scorer = evaluate_bag_offline(bag, runtime, out / "restored_bag", detector=detector,
                                                  grid_frames=len(DAY))  # fmt: skip
    else:
        options = LiveOptions(num_threads=args.threads, log_dir=str(out / "node"))
        result, scorer = evaluate_bag_live(bag, model, options=options, detector=detector, grid_frames=len(DAY),
                                           progress=lambda m: print(f"  {m}"))  # fmt: skip
    result["segments"] = segment_scores(result.get("frames", []), made["segments"])
    title = f"qdr demo: through the day, {args.task} model ({result['mode']})"
    report = write_report(result, scorer, out / "report", title=title)
    result["report"] = str(report)
    result["seconds"] = time.perf_counter() - started
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print("  " + summary_line(result))
    print(format_summary(result))
    print(f"  report: {report} (+ {report.with_suffix('.html').name}); results: {out / 'result.json'}")
    print(f"  done in {result['seconds']:.1f} s")
    return 0


def format_summary(result: dict) -> str:
    lines = ["", f"  {'':28s}{'degraded':>10s}{'restored':>10s}"]
    for seg in result.get("segments", []):
        if seg["psnr_input"] is not None:
            label = f"PSNR {seg['name']} (dB)"
            lines.append(f"  {label:28s}{seg['psnr_input']:10.2f}{seg['psnr_output']:10.2f}")
    if "psnr_input" in result:
        lines.append(f"  {'PSNR (dB)':28s}{result['psnr_input']:10.2f}{result['psnr_output']:10.2f}")
        lines.append(f"  {'SSIM':28s}{result['ssim_input']:10.3f}{result['ssim_output']:10.3f}")
    det = result.get("detection") or {}
    if "degraded" in det and det["degraded"]["ap50"] is not None:
        lines.append(
            f"  {'person AP@0.5 (' + det['detector'] + ')':28s}{det['degraded']['ap50']:10.3f}{det['restored']['ap50']:10.3f}"
        )
    if result["mode"] == "live":
        lat, fps = result["latency_ms"], result.get("throughput_fps")
        lines.append(
            f"  node: {fps:.1f} fps, latency p95 {lat['p95']:.1f} ms"
            if fps and lat["p95"]
            else "  node: no output"
        )
        lines.append(f"  frames dropped: {result['frames_dropped']} of {result['frames_sent']}")
    else:
        lines.append(f"  offline: {result['fps']:.1f} fps, inference p95 {result['infer_ms']['p95']:.1f} ms")
    return "\n".join([*lines, ""])
