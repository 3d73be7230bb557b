"""Speed of the realistic condition synthesis (``qdr_core.data.degrade.pipeline``) on one CPU thread.

    .venv/bin/python benchmarks/condition_synthesis.py             # a 768x512 photo, every suite row
    .venv/bin/python benchmarks/condition_synthesis.py --rounds 5 --side 768

Training synthesises on the fly, so each condition must cost well under the time of a training step.
Reports the median over ``--rounds`` (fresh parameters every round, same photo) per condition, and
the cost of one training sample (``ConditionPairs``: photometric augmentation, a condition from
``ConditionMix`` on a 384-px window, a 128-px crop), and writes
benchmarks/results/condition_synthesis.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from qdr_core.data.datasets import ConditionPairs  # noqa: E402
from qdr_core.data.degrade.pipeline import synthesize  # noqa: E402
from qdr_core.data.sources import skimage_photo  # noqa: E402
from qdr_core.suite.conditions import default_matrix  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=768, help="width of the test photo (3:2)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "condition_synthesis.json"))
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    photo = skimage_photo("astronaut", max_side=4096)
    image = cv2.resize(photo, (args.side, args.side * 2 // 3), interpolation=cv2.INTER_AREA)
    rows = []
    for row in default_matrix():
        if row.condition is None:
            continue
        times = []
        for r in range(args.rounds):
            rng = np.random.default_rng([0, r])
            start = time.perf_counter()
            synthesize(image, row.condition, rng)
            times.append(1000 * (time.perf_counter() - start))
        rows.append({"condition": row.name, "median_ms": statistics.median(times), "max_ms": max(times)})
        print(f"{row.name:28s} {rows[-1]['median_ms']:7.1f} ms (max {rows[-1]['max_ms']:.1f})")
    pairs = ConditionPairs([image], patch=128, seed=0, window=384)
    times = []
    for i in range(20 * args.rounds):
        start = time.perf_counter()
        pairs.sample(i)
        times.append(1000 * (time.perf_counter() - start))
    sample = {"window": 384, "patch": 128, "samples": len(times), "median_ms": statistics.median(times)}
    sample["mean_ms"] = statistics.fmean(times)
    print(
        f"training sample (ConditionPairs, 384 window) {sample['median_ms']:.1f} ms median, {sample['mean_ms']:.1f} mean"
    )
    result = {
        "image": f"{image.shape[1]}x{image.shape[0]}",
        "rounds": args.rounds,
        "threads": 1,
        "machine": platform.processor() or platform.machine(),
        "load_average": list(__import__("os").getloadavg()),
        "conditions": rows,
        "training_sample": sample,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
