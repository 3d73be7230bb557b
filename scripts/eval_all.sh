#!/usr/bin/env bash
# Evaluate every shipped model (fp32.onnx, int8_cpu.onnx, int8_trt.onnx) of every task on the held-out
# `eval` photos and the never-seen `other` photos (seed 0), through onnxruntime.
# Writes benchmarks/results/eval_<task>_<variant>_<split>.json; scripts/results_table.py prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
qdr=.venv/bin/qdr
for task in ${TASKS:-lowlight haze rain noise}; do
  for variant in ${VARIANTS:-fp32 int8_cpu int8_trt}; do
    model="models/$task/$variant.onnx"
    [ -f "$model" ] || { echo "skip $model (missing)"; continue; }
    for split in ${SPLITS:-eval other}; do
      $qdr eval --model "$model" --task "$task" --split "$split" --seed 0 --backend onnxruntime \
        --json "benchmarks/results/eval_${task}_${variant}_${split}.json"
    done
  done
done
