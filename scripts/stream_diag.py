"""What limits a streaming (output-recursion) model's gain: the diagnostics behind docs/streaming.md.

``variant``: a streaming file on the eval clips with one part of the runtime's motion alignment
changed (the warp's interpolation, the flow's scale or DIS refinement, or the flow computed on the
*clean* frames, an oracle), against its single-frame file: ``qdr eval --compare`` in this process.
``ceiling``: the single-frame file on static clips (one eval photo, fresh degradation each frame),
its restorations averaged over 2, 4 and 12 frames, and the restoration of the averaged degraded
frames: what a perfectly aligned average of the past, after or before the network, gains.

    .venv/bin/python scripts/stream_diag.py variant --task noise --stream models/noise/stream/int8_cpu.onnx \
        --warp linear [--flow-scale 4] [--refine 5] [--oracle-flow]
    .venv/bin/python scripts/stream_diag.py ceiling --task lowlight
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from qdr_core import cli
from qdr_core.data.clips import ClipDegrader, photo_clips
from qdr_core.metrics import psnr
from qdr_core.runtime import load_runtime, motion

WARPS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


@contextmanager
def motion_settings(warp: str, flow_scale: int, refine: int, oracle: bool) -> Iterator[None]:
    """The runtime's motion alignment with the given settings, restored on exit; ``oracle``: flows
    from the clean frames (``ClipDegrader`` hands the aligner each frame's clean image)."""
    kept = (motion.WARP_INTERPOLATION, motion.FLOW_SCALE, motion.DIS_REFINEMENT_ITERATIONS)
    degrade, observe = ClipDegrader.__call__, motion.MotionAligner.observe
    clean: dict[str, np.ndarray] = {}

    def remembering(self, t, frame):
        clean["frame"] = frame
        return degrade(self, t, frame)

    def observing_clean(self, planes):
        frame = np.moveaxis(clean["frame"].astype(np.float32), 2, 0)
        pad = ((0, 0), (0, planes.shape[1] - frame.shape[1]), (0, planes.shape[2] - frame.shape[2]))
        return observe(self, np.pad(frame, pad, mode="edge"))

    motion.WARP_INTERPOLATION, motion.FLOW_SCALE, motion.DIS_REFINEMENT_ITERATIONS = (
        WARPS[warp],
        flow_scale,
        refine,
    )
    if oracle:  # a single-frame model has no aligner: only the streaming one is affected
        ClipDegrader.__call__, motion.MotionAligner.observe = remembering, observing_clean
    try:
        yield
    finally:
        motion.WARP_INTERPOLATION, motion.FLOW_SCALE, motion.DIS_REFINEMENT_ITERATIONS = kept
        ClipDegrader.__call__, motion.MotionAligner.observe = degrade, observe


def variant(args: argparse.Namespace) -> dict:
    """``qdr eval --compare`` of the streaming file against the single-frame one on the eval clips,
    in this process, with the motion settings changed."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        motion_settings(args.warp, args.flow_scale, args.refine, args.oracle_flow),
    ):
        out = Path(tmp) / "compare.json"
        cli.main(["eval", "--model", args.stream, "--compare", args.single, "--task", args.task, "--clips", "eval",
                  "--clip-source", "all", "--frames", str(args.frames), "--max-side", str(args.max_side),
                  "--backend", "onnxruntime", "--threads", "1", "--json", str(out)])  # fmt: skip
        delta = json.loads(out.read_text())["delta"]
    print(
        f"{args.stream} warp {args.warp}, flow scale {args.flow_scale}, refine {args.refine}"
        f"{', oracle flow' if args.oracle_flow else ''}: PSNR {delta['psnr_delta']:+.3f} dB, "
        f"warping error {delta['warp_error_change_pct']:+.1f} %"
    )
    return {"args": vars(args), "delta": delta}


def ceiling(args: argparse.Namespace) -> dict:
    rows = []
    with load_runtime(args.single, backend="onnxruntime", num_threads=1) as runtime:
        for k, clip in enumerate(photo_clips("eval", 16, 0, args.max_side)[: args.photos]):
            clean, degrader = clip.frames[0], ClipDegrader(args.task, k, n_frames=16)
            inputs = [degrader(t, clean) for t in range(12)]
            outs = [runtime.infer(x) for x in inputs]
            single = float(np.mean([psnr(clean, y) for y in outs]))
            after = {n: psnr(clean, np.mean(outs[:n], 0)) - single for n in (2, 4, 12)}
            # the other order: average the degraded frames, restore the mean once
            before = {
                n: psnr(clean, runtime.infer(np.mean(inputs[:n], 0, dtype=np.float32))) - single
                for n in (2, 4, 12)
            }
            row = {"photo": clip.name, "single_psnr": single}
            row |= {f"mean_of_{n}": g for n, g in after.items()}
            row |= {f"restored_mean_input_of_{n}": g for n, g in before.items()}
            rows.append(row)
            print(
                f"{clip.name}: single {single:.2f} dB; the mean of 2 / 4 / 12 restorations "
                + " / ".join(f"{g:+.2f}" for g in after.values())
                + "; the restored mean of 2 / 4 / 12 inputs "
                + " / ".join(f"{g:+.2f}" for g in before.values())
            )
    return {"task": args.task, "photos": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("variant", help="a streaming file with one part of the motion alignment changed")
    v.add_argument("--stream", required=True)
    v.add_argument("--warp", choices=sorted(WARPS), default="cubic")
    v.add_argument("--flow-scale", type=int, default=motion.FLOW_SCALE)
    v.add_argument("--refine", type=int, default=motion.DIS_REFINEMENT_ITERATIONS)
    v.add_argument("--oracle-flow", action="store_true", help="flow from the clean frames")
    v.add_argument("--frames", type=int, default=16)
    c = sub.add_parser("ceiling", help="averages of a static scene's single-frame restorations")
    c.add_argument("--photos", type=int, default=4)
    for p in (v, c):
        p.add_argument("--task", required=True)
        p.add_argument("--single", help="single-frame file (default models/<task>/int8_cpu.onnx)")
        p.add_argument("--max-side", type=int, default=640)
        p.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    args.single = args.single or f"models/{args.task}/int8_cpu.onnx"
    result = variant(args) if args.command == "variant" else ceiling(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
