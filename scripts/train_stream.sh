#!/usr/bin/env bash
# Streaming models (issue #14): for each task, fine-tune the streaming preset from the shipped
# single-frame model on coherent clips, QAT it (DFD + LMR on clips), export both INT8 files and
# evaluate it against the shipped single-frame INT8 model on the eval clips and on fast pans.
#   scripts/train_stream.sh                                   # lowlight and noise, full schedule
#   PRESET=efm-s-recur BATCH=2 PATCH=192 FRAMES=8 TIME=1800 RESULTS=benchmarks/results/stream_recur \
#     OUT=models scripts/train_stream.sh   # the output-recursive preset: fusion only, over the
#                                          # frozen shipped single-frame network (docs/streaming.md)
#   TASKS="lowlight noise rain" WORKERS=15 THREADS=0 scripts/train_stream.sh   # GPU machine
#   ITERS=30 QAT_ITERS=5 PATCH=48 BATCH=2 EVAL_FRAMES=4 EVAL_SIDE=160 OUT=/tmp/s RESULTS=/tmp/s \
#     scripts/train_stream.sh   # CPU smoke run of the whole chain (~2 min)
# `qdr train` uses the GPU by itself when torch sees one (cuda:0; torchrun for several); `qdr qat`
# too (--device auto). Outputs: $OUT/<task>/{fp32.pt,fp32.onnx,qat.pt,int8_cpu.onnx,int8_trt.onnx},
# the runs in $RUNS/<task>_stream, and $RESULTS/stream_<task>_{clips,pans}.json (streaming vs
# single-frame INT8: `delta` holds the PSNR delta, the warping error change in % and the flicker),
# summarised against the issue's thresholds in $RESULTS/stream_acceptance.json.
set -euo pipefail
cd "$(dirname "$0")/.."
qdr=${QDR:-.venv/bin/qdr}
python=${PYTHON:-.venv/bin/python}
preset=${PRESET:-efm-s-stream}
time_budget=${TIME:-0}
qat_time=${QAT_TIME:-0}
lr=${LR:-0.0005}
train_extra=()
qat_extra=()
if [[ $preset == *-recur ]]; then
  # Train only the fusion; QAT keeps the shipped single-frame QAT weights and step sizes frozen.
  lr=${LR:-0.001}
  train_extra=(--train-only output_fusion)
fi
iters=${ITERS:-3000}
qat_iters=${QAT_ITERS:-300}
batch=${BATCH:-8}
patch=${PATCH:-128}
frames=${FRAMES:-5}
workers=${WORKERS:-0}
threads=${THREADS:-1}
eval_frames=${EVAL_FRAMES:-16}
eval_side=${EVAL_SIDE:-640}
out=${OUT:-runs/stream_models}
runs=${RUNS:-runs}
results=${RESULTS:-benchmarks/results}
mkdir -p "$results"
for task in ${TASKS:-lowlight noise}; do
  single=${SINGLE_DIR:-models}/$task
  dest=$out/$task
  if [[ $preset == *-recur ]]; then
    dest=$out/$task/stream
    qat_extra=(--base-qat "$single/qat.pt" --kd output)
  fi
  $qdr train --task "$task" --preset "$preset" --init "$single/fp32.pt" --iters "$iters" \
    --batch-size "$batch" --patch "$patch" --clip-frames "$frames" --lr "$lr" --warmup 100 \
    --val-every 500 --save-every 250 --workers "$workers" --threads "$threads" --time-budget "$time_budget" \
    "${train_extra[@]}" --out "$runs/${task}_${preset}" --resume --export "$dest" --no-progress
  $qdr qat --task "$task" --teacher "$dest/fp32.pt" --out "$dest/qat.pt" --iters "$qat_iters" \
    --batch-size "$batch" --patch "$patch" --clip-frames "$frames" --threads "$threads" \
    --time-budget "$qat_time" "${qat_extra[@]}" --no-progress
  $qdr export --checkpoint "$dest/qat.pt" --target onnxruntime --output "$dest/int8_cpu.onnx"
  $qdr export --checkpoint "$dest/qat.pt" --target tensorrt --output "$dest/int8_trt.onnx"
  for source in all pans; do
    $qdr eval --model "$dest/int8_cpu.onnx" --compare "$single/int8_cpu.onnx" --task "$task" \
      --clips eval --clip-source "$source" --frames "$eval_frames" --max-side "$eval_side" \
      --threads "$threads" --json "$results/stream_${task}_${source/all/clips}.json"
  done
done
$python scripts/stream_acceptance.py --results "$results"
