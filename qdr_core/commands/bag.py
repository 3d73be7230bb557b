"""``qdr bag``: make evaluation bags and replay bags through a model (offline) or the node (live)."""

from __future__ import annotations

import argparse

from qdr_core.tasks import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bag", help="make ROS 2 evaluation bags; evaluate a model on a bag", description=__doc__
    )
    sub = p.add_subparsers(dest="bag_command", metavar="SUBCOMMAND")
    sub.required = True

    m = sub.add_parser("make", help="write degraded + clean + camera_info topics from images or a video")
    m.add_argument("--task", required=True, choices=TASKS)
    src = m.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="folder of clean images (sorted by name)")
    src.add_argument("--video", help="clean video file (e.g. opencv-doc's vtest.avi)")
    m.add_argument("--output", required=True, help="bag folder to create (must not exist)")
    m.add_argument("--rate", type=float, default=10.0, help="frame rate of the stamps, Hz (default 10)")
    m.add_argument("--encoding", default="rgb8", choices=["rgb8", "bgr8"])
    m.add_argument("--storage", default="sqlite3", choices=["sqlite3", "mcap"])
    m.add_argument("--max-frames", type=int, default=None)
    m.add_argument("--stride", type=int, default=1, help="video: keep every N-th frame")
    m.add_argument(
        "--seed", type=int, default=0, help="degradation seed (per-frame severities: frame i uses (seed, i))"
    )
    m.add_argument(
        "--per-frame-severity",
        action="store_true",
        help="draw a new severity for every frame (default: one per bag, fresh noise per frame)",
    )
    m.add_argument(
        "--condition", help="realistic condition instead of --task's (e.g. 'night:strong+rain:mild')"
    )
    m.add_argument("--frame-id", default="camera_optical_frame")
    m.set_defaults(run=run_make)

    e = sub.add_parser(
        "eval", help="restore every frame of a bag (offline) or replay it through the node (--live)"
    )
    e.add_argument("--bag", required=True, help="ROS 2 bag folder")
    e.add_argument("--model", required=True, help=".onnx (FP32 or INT8) or .pt checkpoint")
    e.add_argument("--json", dest="json_out", required=True, help="write the results here")
    e.add_argument(
        "--report", help="write report.md + report.html (plots, frame grid, gate maps) into this folder"
    )
    e.add_argument("--input-topic", default="/camera/image_raw")
    e.add_argument("--clean-topic", default=None,
                   help="reference topic (default /camera/image_clean when the bag has it; 'none' for no reference)")  # fmt: skip
    e.add_argument("--backend", default="auto", help="auto | onnxruntime | torch | tensorrt")
    e.add_argument("--threads", type=int, default=0, help="runtime threads (0 = backend default)")
    e.add_argument("--detector", default="ssdlite", choices=["ssdlite", "hog", "none"],
                   help="person detector run on every frame (default ssdlite)")  # fmt: skip
    e.add_argument("--max-frames", type=int, default=None)
    e.add_argument(
        "--output-bag", help="offline: bag to write /camera/image_restored to (default <bag>_restored)"
    )
    e.add_argument(
        "--storage", default="sqlite3", choices=["sqlite3", "mcap"], help="storage of the output bag"
    )
    e.add_argument("--overwrite", action="store_true", help="replace an existing output bag")
    e.add_argument("--live", action="store_true", help="replay through the real qdr_restore lifecycle node")
    e.add_argument(
        "--rate-scale", type=float, default=1.0, help="live: replay speed relative to the recording"
    )
    e.add_argument("--warmup", type=int, default=2, help="live: unmeasured frames sent first")
    e.set_defaults(run=run_eval)


def run_make(args: argparse.Namespace) -> int:
    from qdr_core.bag.make import frames_from_images, frames_from_video, make_bag

    if args.max_frames is not None and args.max_frames < 1:
        from qdr_core.errors import DataError

        raise DataError(f"--max-frames must be >= 1, got {args.max_frames}")
    frames = (
        frames_from_images(args.images, args.max_frames)
        if args.images
        else frames_from_video(args.video, args.max_frames, args.stride)
    )
    summary = make_bag(
        args.task, frames, args.output, rate=args.rate, encoding=args.encoding, storage=args.storage,
        seed=args.seed, frame_id=args.frame_id, per_frame_severity=args.per_frame_severity,
        condition=args.condition,
    )  # fmt: skip
    severity = "a severity per frame" if args.per_frame_severity else "one severity for the bag"
    print(
        f"wrote {args.output}: {summary['n_frames']} frames {summary['size'][0]}x{summary['size'][1]} "
        f"{args.encoding} at {args.rate:g} Hz ({args.storage}), {summary['degradation']}, {severity}"
    )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qdr_core.detect import build_detector

    clean_topic = (
        "" if args.clean_topic is not None and args.clean_topic.lower() == "none" else args.clean_topic
    )
    detector = None if args.detector == "none" else build_detector(args.detector)
    if args.live:
        from qdr_core.node.live import LiveOptions, live_evaluator

        evaluate_bag_live = live_evaluator()

        options = LiveOptions(
            rate_scale=args.rate_scale, backend=args.backend, num_threads=args.threads, warmup=args.warmup,
            max_frames=args.max_frames, log_dir=str(Path(args.report) / "node") if args.report else None,
        )  # fmt: skip
        result, scorer = evaluate_bag_live(
            args.bag, args.model, args.input_topic, clean_topic, options, detector, progress=print
        )
    else:
        from qdr_core.bag.evaluate import evaluate_bag_offline
        from qdr_core.runtime import load_runtime

        output_bag = (
            Path(args.output_bag) if args.output_bag else Path(str(Path(args.bag)).rstrip("/") + "_restored")
        )
        with load_runtime(args.model, backend=args.backend, num_threads=args.threads) as runtime:
            result, scorer = evaluate_bag_offline(
                args.bag, runtime, output_bag, args.input_topic, clean_topic, detector,
                max_frames=args.max_frames, storage=args.storage, overwrite=args.overwrite,
            )  # fmt: skip
    print(summary_line(result))
    if args.report:
        from qdr_core.report import write_report

        result["report"] = str(
            write_report(result, scorer, args.report, title=f"qdr bag eval ({result['mode']})")
        )
        print(f"report: {result['report']} (+ report.html)")
    from qdr_core.commands import write_json_atomic

    write_json_atomic(args.json_out, result)
    print(f"wrote {args.json_out}")
    return 0


def summary_line(result: dict) -> str:
    parts = [f"{result['mode']}: {result['n_frames']} frames [{result.get('backend', '')}]"]
    if "psnr_input" in result:
        parts.append(f"PSNR {result['psnr_input']:.2f} -> {result['psnr_output']:.2f} dB")
        parts.append(f"SSIM {result['ssim_input']:.3f} -> {result['ssim_output']:.3f}")
    elif "no_reference" in result:
        nr = result["no_reference"]
        parts.append(
            f"brightness {nr['input']['brightness']:.3f} -> {nr['output']['brightness']:.3f} (no reference)"
        )
    det = result.get("detection") or {}
    if "degraded" in det and det["degraded"]["ap50"] is not None:
        parts.append(
            f"person AP50 {det['degraded']['ap50']:.3f} -> {det['restored']['ap50']:.3f} ({det['detector']})"
        )
    if result["mode"] == "live":
        lat = result["latency_ms"]
        fps = result.get("throughput_fps")
        parts.append(
            f"latency p50/p95/p99 {lat['p50']:.1f}/{lat['p95']:.1f}/{lat['p99']:.1f} ms"
            if lat["p50"] is not None
            else "no output"
        )
        parts.append(f"{fps:.1f} fps" if fps else "fps n/a")
        parts.append(f"dropped {result['frames_dropped']}/{result['frames_sent']}")
        counters = result.get("node_counters") or {}
        if counters:
            lost = ", ".join(f"{k} {v}" for k, v in counters.items() if k not in ("received", "published"))
            parts.append(f"node: {lost}")
    elif result.get("infer_ms", {}).get("p50") is not None:
        parts.append(f"inference p50 {result['infer_ms']['p50']:.1f} ms")
    return ", ".join(parts)
