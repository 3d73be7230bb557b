"""Print the README's quality tables from the JSON that scripts/eval_all.sh writes.

Usage: python scripts/results_table.py [benchmarks/results]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from qdr_core.tasks import TASKS

TARGET_GAIN = {"lowlight": 8.0, "haze": 6.0, "rain": 5.0, "noise": 6.0}


def load(folder: Path, task: str, variant: str, split: str) -> dict | None:
    path = folder / f"eval_{task}_{variant}_{split}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fp32_table(folder: Path) -> str:
    rows = [
        "| task | held-out PSNR in → out (gain) | SSIM in → out | never-seen PSNR in → out (gain) | gain gap | target gain |",
        "|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        ev, ot = load(folder, task, "fp32", "eval"), load(folder, task, "fp32", "other")
        if not ev or not ot:
            continue
        rows.append(
            f"| {task} | {ev['psnr_input']:.2f} → {ev['psnr_output']:.2f} (**+{ev['psnr_gain']:.2f}**) "
            f"| {ev['ssim_input']:.3f} → {ev['ssim_output']:.3f} "
            f"| {ot['psnr_input']:.2f} → {ot['psnr_output']:.2f} (+{ot['psnr_gain']:.2f}) "
            f"| {ev['psnr_gain'] - ot['psnr_gain']:+.2f} | ≥ +{TARGET_GAIN[task]:.0f} |"
        )
    return "\n".join(rows)


def int8_table(folder: Path, split: str = "eval") -> str:
    rows = [
        "| task | input | FP32 | INT8 CPU (`int8_cpu.onnx`) | INT8 TensorRT QDQ (`int8_trt.onnx`, run in ORT) |",
        "|---|---|---|---|---|",
    ]
    for task in TASKS:
        fp = load(folder, task, "fp32", split)
        if not fp:
            continue
        cells = [f"{fp['psnr_input']:.2f}", f"{fp['psnr_output']:.2f}"]
        for variant in ("int8_cpu", "int8_trt"):
            q = load(folder, task, variant, split)
            if not q:
                cells.append("—")
                continue
            ratio = q["psnr_output"] / fp["psnr_output"]
            gain = (q["psnr_output"] - fp["psnr_input"]) / (fp["psnr_output"] - fp["psnr_input"])
            cells.append(f"{q['psnr_output']:.2f} ({100 * ratio:.1f} % PSNR, {100 * gain:.1f} % gain)")
        rows.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results")
    print("FP32\n\n" + fp32_table(folder) + "\n\nINT8 (held-out)\n\n" + int8_table(folder))
