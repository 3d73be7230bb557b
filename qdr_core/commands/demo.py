"""``qdr demo`` (what ``make demo`` runs): build a small bag from the bundled demo frames, replay it
live through the qdr_restore lifecycle node with the shipped default model, and summarise.

Steps: degrade ``demo/images`` (default task lowlight) into a bag; start the real node in a
subprocess; configure + activate it over its lifecycle services; replay the bag at its recorded
rate; score PSNR / SSIM, person AP (SSDLite, clean frames as reference), latency and throughput;
write a report. Without rclpy the same evaluation runs offline (in process) and says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_TASK = "lowlight"
#: The model the demo uses, best first: the onnxruntime INT8 export, else the FP32 ONNX.
MODEL_PREFERENCE = ("int8_cpu.onnx", "fp32.onnx")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="end-to-end demo: bag -> live lifecycle node -> report", description=__doc__
    )
    p.add_argument("--task", default=DEFAULT_TASK, choices=["lowlight", "haze", "rain", "noise"])
    p.add_argument("--model", help="model file (default: models/<task>/int8_cpu.onnx, else fp32.onnx)")
    p.add_argument("--images", help="clean frames (default: the bundled demo/images)")
    p.add_argument(
        "--output", default="runs/demo", help="folder for the bag, results and report (default runs/demo)"
    )
    p.add_argument(
        "--repeat", type=int, default=4, help="times the frames are repeated (new degradation each time)"
    )
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


def demo_frames(folder: Path, repeat: int):
    from qdr_core.bag.make import frames_from_images

    for r in range(repeat):
        for name, image in frames_from_images(folder):
            yield f"{Path(name).stem}_r{r}", image


def run(args: argparse.Namespace) -> int:
    import json
    import time

    from qdr_core.bag.make import make_bag
    from qdr_core.commands.bag import remove_bag, summary_line
    from qdr_core.detect import build_detector
    from qdr_core.errors import DataError
    from qdr_core.paths import source_root
    from qdr_core.report import write_report

    started = time.perf_counter()
    if args.repeat < 1:
        raise DataError(f"--repeat must be >= 1, got {args.repeat}")
    model = Path(args.model) if args.model else default_model(args.task)
    if not model.is_file():
        raise DataError(f"model not found: {model}")
    images = Path(args.images) if args.images else source_root() / "demo" / "images"
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    bag = out / "bag"
    remove_bag(bag)  # the previous demo's bag
    print(f"qdr demo: task {args.task}, model {model}")
    made = make_bag(args.task, demo_frames(images, args.repeat), bag, rate=args.rate)
    print(f"  bag: {bag} ({made['n_frames']} frames {made['size'][0]}x{made['size'][1]} at {args.rate:g} Hz)")
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
            result, scorer = evaluate_bag_offline(bag, runtime, out / "restored_bag", detector=detector)
    else:
        options = LiveOptions(num_threads=args.threads, log_dir=str(out / "node"))
        result, scorer = evaluate_bag_live(bag, model, options=options, detector=detector,
                                           progress=lambda m: print(f"  {m}"))  # fmt: skip
    report = write_report(result, scorer, out / "report", title=f"qdr demo: {args.task} ({result['mode']})")
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
