"""``qdr detect-eval``: does restoration help a person detector? Detections on the clean frame are
the reference; AP@0.5 / recall (pycocotools) on the degraded and on the restored frame."""

from __future__ import annotations

import argparse

from qdr_core.tasks import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "detect-eval", help="person detection AP on degraded vs restored frames", description=__doc__
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--task", choices=TASKS, help="today's benchmark degradation of this task")
    what.add_argument(
        "--condition",
        help="a realistic condition or row of the condition suite instead (night:medium, rain+night, clean)",
    )
    p.add_argument("--model", required=True, help=".onnx (FP32 or INT8) or .pt checkpoint")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="clean video with people (e.g. opencv-doc's vtest.avi)")
    src.add_argument("--images", help="folder of clean images with people")
    p.add_argument("--json", dest="json_out", required=True)
    p.add_argument("--detector", default="ssdlite", choices=["ssdlite", "hog"])
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--stride", type=int, default=1, help="video: keep every N-th frame")
    p.add_argument("--seed", type=int, default=0, help="degradation seed (frame i uses (seed, i))")
    p.add_argument("--backend", default="auto", help="auto | onnxruntime | torch | tensorrt")
    p.add_argument("--threads", type=int, default=0)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from qdr_core.bag.make import frames_from_images, frames_from_video, quantize
    from qdr_core.detect import REFERENCE_SCORE, build_detector, detection_ap
    from qdr_core.errors import DataError
    from qdr_core.metrics import mean_scores, score_restoration
    from qdr_core.runtime import load_runtime
    from qdr_core.suite.conditions import select_rows

    # A task is the suite's benchmark row of that task: one way to make the frames.
    row = select_rows([args.condition or f"bench:{args.task}"])[0]

    if args.max_frames is not None and args.max_frames < 1:
        raise DataError(f"--max-frames must be >= 1, got {args.max_frames}")
    frames = (
        frames_from_video(args.video, args.max_frames, args.stride)
        if args.video
        else frames_from_images(args.images, args.max_frames)
    )
    detector = build_detector(args.detector)
    dets: dict[str, list] = {"clean": [], "degraded": [], "restored": []}
    rows = []
    started = time.perf_counter()
    with load_runtime(args.model, backend=args.backend, num_threads=args.threads) as runtime:
        for i, (name, image) in enumerate(frames):
            # Same frames as `qdr bag make` / the suite: 8-bit clean frame, degradation from (seed, i).
            clean = quantize(image)
            degraded = quantize(row.degrade(clean, args.seed, i)[0])
            restored = runtime.infer(degraded)
            for key, frame in (("clean", clean), ("degraded", degraded), ("restored", restored)):
                dets[key].append(detector.detect(frame))
            persons = {f"persons_{k}": len(v[-1].above(REFERENCE_SCORE)) for k, v in dets.items()}
            rows.append({"name": name, **score_restoration(clean, degraded, restored), **persons})
        backend = runtime.name
    result = {
        "task": args.task,
        "condition": row.name,
        "detector": detector.name,
        "reference": f"{detector.name} detections on the clean frames with score >= {REFERENCE_SCORE}",
        "model": str(args.model),
        "backend": backend,
        "source": str(args.video or args.images),
        "stride": args.stride,
        "seed": args.seed,
        "n_frames": len(rows),
        **mean_scores(rows),
        "degraded": detection_ap(dets["clean"], dets["degraded"]),
        "restored": detection_ap(dets["clean"], dets["restored"]),
        "seconds": time.perf_counter() - started,
        "frames": rows,
    }
    ap_in, ap_out = result["degraded"]["ap50"], result["restored"]["ap50"]
    if ap_in is not None and ap_out is not None:
        result["ap50_gain"] = ap_out - ap_in
    print(
        f"{row.name}: {len(rows)} frames, {result['degraded']['n_reference']} reference persons; "
        f"{detector.name} AP50 {_f(ap_in)} -> {_f(ap_out)}, recall {_f(result['degraded']['recall50'])} -> "
        f"{_f(result['restored']['recall50'])}; PSNR {result['psnr_input']:.2f} -> {result['psnr_output']:.2f} dB"
    )
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json_out}")
    return 0


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
