"""Write the FP32 section of models/<task>/MODEL_CARD.md from the checkpoint and eval JSON.

Usage: python scripts/fp32_model_card.py TASK COMMIT "COMMAND"
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from qdr_core.data.sources import photos
from qdr_core.models.checkpoint import read_checkpoint

task, commit, command = sys.argv[1], sys.argv[2], sys.argv[3]
folder = Path("models") / task
payload = read_checkpoint(folder / "fp32.pt")
cfg = json.loads(payload["meta"]["config"])
results = Path("benchmarks/results")
ev = json.loads((results / f"eval_{task}_fp32_eval.json").read_text())
ot = json.loads((results / f"eval_{task}_fp32_other.json").read_text())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


card = f"""# {task} — model card

## FP32 (`fp32.pt`, `fp32.onnx`): the QDR teacher

- Architecture: EFM preset `{cfg["preset"]}` (LDG {"on" if cfg["ldg"] else "off"}), config {payload["model"]}.
- Command (from the repository root, `make data` done):
  `{command}`
- Data: the `train` split of `qdr_core/data/sources.py` ({len(photos("train"))} photos from Debian
  opencv-doc, mate-backgrounds, plasma-workspace-wallpapers, shrunk to <= 768 px), `{task}`
  degradation synthesised on the fly on random {cfg["patch"]}x{cfg["patch"]} crops (train severities).
- Schedule: {cfg["iters"]} steps, batch {cfg["batch_size"]}, AdamW lr {cfg["lr"]} (warm-up {cfg["warmup"]},
  cosine to {cfg["lr"] * cfg["min_lr_ratio"]:.1e}), {cfg["loss"]} loss, grad clip {cfg["grad_clip"]},
  seed {cfg["seed"]}, 1 CPU thread.
- Code: git commit `{commit}`.
- Files: `fp32.pt` sha256 {sha(folder / "fp32.pt")}…, `fp32.onnx` sha256 {sha(folder / "fp32.onnx")}… (opset 17).
- Held-out `eval` split ({ev["n_images"]} photos, seed 0): PSNR {ev["psnr_input"]:.2f} → {ev["psnr_output"]:.2f} dB
  (+{ev["psnr_gain"]:.2f}), SSIM {ev["ssim_input"]:.3f} → {ev["ssim_output"]:.3f}.
- Never-seen `other` split ({ot["n_images"]} photos: scikit-image + vtest.avi frames): PSNR
  {ot["psnr_input"]:.2f} → {ot["psnr_output"]:.2f} dB (+{ot["psnr_gain"]:.2f}).
- Reproduce the numbers: `qdr eval --model models/{task}/fp32.onnx --task {task} --split eval --seed 0`
  (and `--split other`).
"""
path = folder / "MODEL_CARD.md"
existing = path.read_text() if path.exists() else ""
marker = "\n## INT8"
rest = existing[existing.index(marker) :] if marker in existing else ""
path.write_text(card + rest)
print(f"wrote {path}")
