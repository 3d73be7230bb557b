#!/usr/bin/env bash
# FP32 ablations with one short schedule (1500 steps, patch 96, batch 8, seed 0) per task:
#   efm-s with LDG (default) | efm-s without LDG | efm-m (3.4x the MACs: what the compute budget costs)
# Each is evaluated on the held-out `eval` photos; JSON goes to benchmarks/results/fp32_ablation_*.
# Usage: scripts/fp32_ablation.sh [task ...]   (default: noise rain)
set -euo pipefail
cd "$(dirname "$0")/.."
qdr=.venv/bin/qdr
tasks=("${@:-noise rain}")
# shellcheck disable=SC2068
for task in ${tasks[@]}; do
  common=(--task "$task" --iters 1500 --batch-size 8 --patch 96 --threads 1 --val-every 500 --seed 0 --no-progress)
  $qdr train "${common[@]}" --preset efm-s --out "runs/ablate_fp32/$task/efm-s" &
  $qdr train "${common[@]}" --preset efm-s --no-ldg --out "runs/ablate_fp32/$task/efm-s-noldg" &
  wait
  $qdr train "${common[@]}" --preset efm-m --out "runs/ablate_fp32/$task/efm-m"
  for variant in efm-s efm-s-noldg efm-m; do
    $qdr eval --model "runs/ablate_fp32/$task/$variant/fp32.pt" --task "$task" --split eval --seed 0 \
      --json "benchmarks/results/fp32_ablation_${task}_${variant}.json"
  done
done
