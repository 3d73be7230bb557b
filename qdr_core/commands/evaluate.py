"""``qdr eval``: degrade clean images with a seed, restore them, write PSNR / SSIM as JSON."""

from __future__ import annotations

import argparse

from qdr_core.tasks import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="measure PSNR/SSIM of a model on a seeded set", description=__doc__
    )
    p.add_argument("--model", required=True, help=".onnx (FP32 or INT8) or .pt checkpoint")
    p.add_argument("--task", required=True, choices=TASKS)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--clean", help="folder of clean images")
    src.add_argument(
        "--split", choices=["eval", "other"], help="package photos: held-out eval or never-seen other"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", help="write the results here")
    p.add_argument("--backend", default="auto", help="auto | onnxruntime | torch | tensorrt")
    p.add_argument("--threads", type=int, default=0, help="runtime threads (0 = backend default)")
    p.add_argument("--max-side", type=int, default=None, help="shrink images so the longer side fits")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from qdr_core.evaluate import evaluate_runtime
    from qdr_core.runtime import load_runtime

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
    if args.json_out:
        from qdr_core.commands import write_json_atomic

        write_json_atomic(args.json_out, result)
        print(f"wrote {args.json_out}")
    return 0
