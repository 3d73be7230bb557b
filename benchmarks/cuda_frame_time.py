"""Torch eager CUDA time per 640x480 frame of FP32 checkpoints, FP32 and fp16 autocast (batch 1).

    python benchmarks/cuda_frame_time.py models/auto/fp32.pt models/lowlight/fp32.pt \
        --json benchmarks/results/cuda_frame_time.json

The frame is made on the GPU and padded to the model's size multiple; a streaming model is timed on
a first frame (no state). 20 warm-up runs, then the mean of ``--runs``. Needs a CUDA build of
torch and a GPU. The figures of the lent H200 of 2026-11-30 (docs/training.md,
``benchmarks/results/cuda_frame_time_h200.json``) came from this loop run inline in that session,
before it was saved here as a script.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from qdr_core.models.checkpoint import load_fp32_model


def frame_ms(model: torch.nn.Module, frame: torch.Tensor, half: bool, runs: int) -> float:
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=half):
        for _ in range(20):
            model(frame)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(runs):
            model(frame)
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / runs * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoints", nargs="+", help="FP32 .pt checkpoints")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA build of torch and a GPU", file=sys.stderr)
        return 2
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": []}
    for path in args.checkpoints:
        model, _ = load_fp32_model(path)
        model = model.cuda().eval()
        multiple = model.size_multiple
        frame = torch.rand(1, 3, 480 + (-480) % multiple, 640 + (-640) % multiple, device="cuda")
        row = {"model": path, "input": list(frame.shape[2:])}
        row.update(
            {
                name: round(frame_ms(model, frame, half, args.runs), 3)
                for name, half in (("fp32_ms", False), ("fp16_autocast_ms", True))
            }
        )
        results["rows"].append(row)
        print(row, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
