#!/usr/bin/env bash
# Retrain the shipped FP32 models with the commands their model cards record (models/<task>/MODEL_CARD.md).
#   TASKS="lowlight rain" scripts/train_models.sh       # a subset
#   WORKERS=15 scripts/train_models.sh                  # on a GPU machine: batch synthesis in 15 processes
# lowlight / rain / noise: ~20 minutes each on one CPU core. haze is a chain of five runs; its last
# three took ~15 minutes on an H100 with 16 cores and take hours on a 2-core CPU. Its first two steps
# ran at older commits (3947514: haze synthesised per crop; 26c449f), so with today's code they start
# the chain from slightly different weights.
set -euo pipefail
cd "$(dirname "$0")/.."
qdr=${QDR:-.venv/bin/qdr}
workers=${WORKERS:-0}
for task in ${TASKS:-lowlight haze rain noise}; do
  case $task in
    lowlight|rain)
      $qdr train --task $task --preset efm-s --iters 4000 --batch-size 8 --patch 128 --threads 1 \
        --val-every 500 --out runs/$task --export models/$task --no-progress ;;
    noise)
      $qdr train --task noise --preset efm-s --iters 5000 --batch-size 8 --patch 128 --threads 1 \
        --val-every 500 --out runs/noise --export models/noise --no-progress ;;
    haze)
      common=(--task haze --workers "$workers" --save-every 500 --no-progress)
      $qdr train "${common[@]}" --preset efm-s --iters 4000 --batch-size 8 --patch 128 --val-every 500 \
        --out runs/haze_0
      $qdr train "${common[@]}" --preset efm-s-ctx --init runs/haze_0/fp32.pt --iters 3000 --batch-size 4 \
        --patch 256 --lr 0.001 --val-every 500 --seed 0 --out runs/haze_1
      $qdr train "${common[@]}" --preset efm-s-ctx --init runs/haze_1/fp32.pt --iters 4000 --batch-size 12 \
        --patch 384 --lr 0.001 --val-every 1000 --val-images 11 --val-size 768 --seed 0 --out runs/haze_2
      $qdr train "${common[@]}" --preset efm-s-ctx --init runs/haze_2/fp32.pt --iters 4000 --batch-size 12 \
        --patch 384 --lr 0.0005 --val-every 1000 --val-images 11 --val-size 768 --seed 1 --out runs/haze_3
      $qdr train "${common[@]}" --preset efm-s-ctx5 --init runs/haze_3/fp32.pt --iters 2200 --batch-size 8 \
        --patch 512 --lr 0.0005 --val-every 1100 --val-images 11 --val-size 768 --seed 2 --out runs/haze_4 \
        --export models/haze ;;
    *) echo "unknown task $task" >&2; exit 2 ;;
  esac
done
