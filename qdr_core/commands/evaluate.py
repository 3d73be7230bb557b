"""``qdr eval``: degrade clean images (or clips) with a seed, restore them, write the scores as JSON.

Stills (``--clean`` / ``--split``) get PSNR / SSIM. Clips (``--video FILE`` or ``--clips eval``: the
evaluation part of the opencv-doc videos and camera-motion clips of the eval photos) are degraded
coherently (one severity per clip, fresh noise per frame) and also get the temporal metrics: warping
error of input, output and clean clip (the floor), and flicker, in 8-bit levels. A streaming model
restores each clip as one stream (its state carried from a zero state); ``--compare SINGLE_FRAME``
runs a second model on the same clips and reports the streaming-vs-single-frame deltas (PSNR,
warping error change in %, flicker). ``--clip-source pans`` gives fast-pan clips (the ghosting check).
"""

from __future__ import annotations

import argparse

from qdr_core.tasks import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="measure PSNR/SSIM (and temporal metrics on clips) of a model", description=__doc__
    )
    p.add_argument("--model", required=True, help=".onnx (FP32 or INT8) or .pt checkpoint")
    p.add_argument("--task", required=True, choices=TASKS)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--clean", help="folder of clean images")
    src.add_argument(
        "--split", choices=["eval", "other"], help="package photos: held-out eval or never-seen other"
    )
    src.add_argument("--video", help="a clean video: one clip of --frames frames from --start")
    src.add_argument(
        "--clips", choices=["eval"], help="evaluation clips: video parts and camera-motion photo clips"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", help="write the results here")
    p.add_argument("--backend", default="auto", help="auto | onnxruntime | torch | tensorrt")
    p.add_argument("--threads", type=int, default=0, help="runtime threads (0 = backend default)")
    p.add_argument("--max-side", type=int, default=None, help="shrink images so the longer side fits")
    clips = p.add_argument_group("clips (--video / --clips)")
    clips.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    clips.add_argument("--start", type=int, default=0, help="--video: first frame")
    clips.add_argument(
        "--clip-source",
        choices=["all", "videos", "photos", "pans"],
        default="all",
        help="--clips: which clips (pans: fast-pan camera motion over the photos, not in all)",
    )
    clips.add_argument(
        "--compare", help="a second (single-frame) model on the same clips: report the deltas to it"
    )
    clips.add_argument(
        "--condition", help="degrade with this condition (e.g. 'fog:medium+rain:mild') instead of --task's"
    )
    clips.add_argument("--drift", action="store_true", help="severities drift over each clip")
    p.set_defaults(run=run)


def _load_clips(args: argparse.Namespace) -> list:
    from qdr_core.data.clips import Clip, photo_clips, read_frames, video_clips
    from qdr_core.data.sources import MAX_SIDE
    from qdr_core.errors import DataError

    if args.frames < 2:
        raise DataError(f"--frames must be >= 2 for temporal metrics, got {args.frames}")
    max_side = args.max_side or MAX_SIDE
    if args.video:
        frames = read_frames(args.video, args.start, args.frames, max_side)
        return [Clip(f"{args.video}@{args.start}", frames)]
    chosen = []
    if args.clip_source in ("all", "videos"):
        chosen += video_clips(args.clips, args.frames, max_side)
    if args.clip_source in ("all", "photos"):
        chosen += photo_clips(args.clips, args.frames, args.seed, max_side)
    if args.clip_source == "pans":
        from qdr_core.data.clips import FAST_PAN

        chosen += photo_clips(args.clips, args.frames, args.seed, max_side, motion=FAST_PAN)
    return chosen


def run(args: argparse.Namespace) -> int:
    from qdr_core.runtime import load_runtime

    if args.video or args.clips:
        return _run_clips(args)
    from qdr_core.evaluate import evaluate_runtime

    if args.clean:
        from qdr_core.data.datasets import load_folder_images

        names, images = load_folder_images(args.clean, max_side=args.max_side)
    else:
        from qdr_core.data.sources import MAX_SIDE, photos

        chosen = photos(args.split)
        names, images = [p.name for p in chosen], [p.load(args.max_side or MAX_SIDE) for p in chosen]
    with load_runtime(args.model, backend=args.backend, num_threads=args.threads) as runtime:
        result = evaluate_runtime(runtime, args.task, images, names, args.seed)
    result["source"] = args.clean or f"split:{args.split}"
    print(
        f"{args.task}: {result['n_images']} images, PSNR {result['psnr_input']:.2f} -> {result['psnr_output']:.2f} dB "
        f"(+{result['psnr_gain']:.2f}), SSIM {result['ssim_input']:.3f} -> {result['ssim_output']:.3f} "
        f"[{result['backend']}]"
    )
    _write(args, result)
    return 0


def _run_clips(args: argparse.Namespace) -> int:
    from qdr_core.evaluate import evaluate_clips
    from qdr_core.runtime import load_runtime

    clips = _load_clips(args)
    spec = args.condition or args.task
    results = []
    for model in [args.model] + ([args.compare] if args.compare else []):
        with load_runtime(model, backend=args.backend, num_threads=args.threads) as runtime:
            result = evaluate_clips(runtime, clips, spec, args.seed, drift=args.drift)
        result["task"] = args.task
        result["source"] = args.video or f"clips:{args.clips}:{args.clip_source}"
        kind = "streaming" if result["streaming"] else "single-frame"
        print(
            f"{spec}: {result['n_clips']} clip(s), {result['n_frames']} frames, PSNR {result['psnr_input']:.2f} -> "
            f"{result['psnr_output']:.2f} dB, SSIM {result['ssim_input']:.3f} -> {result['ssim_output']:.3f}; "
            f"warping error input {result['warp_error_input']:.2f}, output {result['warp_error_output']:.2f}, "
            f"clean {result['warp_error_clean']:.2f}; flicker input {result['flicker_input']:.2f}, "
            f"output {result['flicker_output']:.2f} (8-bit levels) [{result['backend']}, {kind}] {model}"
        )
        results.append(result)
    if args.compare:
        result = _compared(*results)
    _write(args, result)
    return 0


def _compared(result: dict, other: dict) -> dict:
    from qdr_core.evaluate import compare_clip_results

    delta = compare_clip_results(result, other)
    print(
        f"{result['model']} vs {other['model']}: PSNR {delta['psnr_delta']:+.2f} dB, SSIM "
        f"{delta['ssim_delta']:+.3f}, warping error {delta['warp_error_change_pct']:+.1f} %, flicker "
        f"{delta['flicker_stream']:.2f} vs {delta['flicker_single']:.2f} ({delta['flicker_delta']:+.2f}) 8-bit levels"
    )
    return {"model": result, "compare": other, "delta": delta}


def _write(args: argparse.Namespace, result: dict) -> None:
    if args.json_out:
        from qdr_core.commands import write_json_atomic

        write_json_atomic(args.json_out, result)
        print(f"wrote {args.json_out}")
