#!/usr/bin/env bash
# One lent-GPU session (one H200, 16 cores, ~10 minutes): every model that needs real training,
# trained concurrently, each FP32 run then its QDR QAT, under wall-clock budgets (--time-budget: the
# cosine schedule follows the clock, so each run anneals fully whatever its speed). Synthesis, not
# the GPU, is the bottleneck: the data workers share the 16 cores.
#   auto               efm-s-auto, from models/auto/fp32.pt (all conditions + mixtures + clean)
#   stream_lowlight    efm-s-stream on coherent clips, from models/lowlight/fp32.pt
#   stream_noise       efm-s-stream on coherent clips, from models/noise/fp32.pt
#   real_<task>        each specialist with --data realistic (its realistic condition + clean frames
#                      + its benchmark degradation, train_all photos), from models/<task>/fp32.pt
#   ablate_auto/<v>    the QAT ablation variants on the new auto teacher (qat, output KD, DFD, QDR),
#                      same fixed schedule; `qdr ablate --task auto --reuse` scores them on a CPU.
# AUTO_ONLY=1 runs only the auto continuation of models/auto/MODEL_CARD.md ("how to continue"): one
# FP32 run with every core synthesising, the rain-weighted mix and 288-px crops (9 x 32: the pyramid's
# 1/32 level rounds up as a 640x480 frame's does, context_crop), then its QAT; lent-GPU time is
# 15 minutes now, so e.g. T_FP32=420 T_QAT=150. AUTO_MIX replaces its condition mix (FP32 and QAT),
# e.g. with bench=0.2 a fifth of the samples are the paper's benchmark degradations.
# The machine has no Debian packages and no pip: first, here,
#   .venv/bin/python scripts/pack_data.py .gpu && pip download PyWavelets, mahotas (cp312) to .gpu/whl
# and carry .gpu. Outputs (tarballs, packed every minute so a cut-off run still returns what it
# made): $OUT/{fp32,qat,ablate,logs}.tar.gz. Exports, evaluation and the model cards happen on a CPU
# machine afterwards (docs/training.md). Local smoke run of the whole wiring on a CPU:
#   T_FP32=40 T_QAT=20 ABL_ITERS=2 BATCH_SCALE=4 WORKERS_MAX=1 OUT=/tmp/g RUNS=/tmp/gr PYTHON=.venv/bin/python scripts/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
out=${OUT:?set OUT}
runs=${RUNS:-/tmp/qdr_gpu_runs}
t_fp32=${T_FP32:-300}
t_qat=${T_QAT:-130}
abl_iters=${ABL_ITERS:-300}
div=${BATCH_SCALE:-1}   # divides batch sizes (CPU smoke runs)
wmax=${WORKERS_MAX:-16} # caps each run's data workers (CPU smoke runs)
mkdir -p "$out" "$runs/logs"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
qdr() { "$py" -m qdr_core.cli "$@"; }
common=(--threads 1 --no-progress --seed 1)

fp32() { # name task preset init batch patch workers [extra...]
  local name=$1 task=$2 preset=$3 init=$4 batch=$(($5 / div)) patch=$6 workers=$(($7 < wmax ? $7 : wmax))
  shift 7
  qdr train --task "$task" --preset "$preset" --init "$init" --iters 200000 --time-budget "$t_fp32" \
    --batch-size "$batch" --patch "$patch" --workers "$workers" --lr 0.0005 --warmup 50 \
    --val-every 1000000 --save-every 500 --out "$runs/$name" "${common[@]}" "$@"
}
qat() { # name task batch patch workers [extra...]
  local name=$1 task=$2 batch=$(($3 / div)) patch=$4 workers=$(($5 < wmax ? $5 : wmax))
  shift 5
  qdr qat --task "$task" --teacher "$runs/$name/fp32.pt" --out "$runs/$name/qat.pt" --iters 200000 \
    --time-budget "$t_qat" --batch-size "$batch" --patch "$patch" --workers "$workers" --val-every 0 \
    --device auto "${common[@]}" "$@"
}
chain() { # name task preset init batch patch fp32_workers qat_workers [extra...]
  local name=$1 task=$2 preset=$3 init=$4 batch=$5 patch=$6 w1=$7 w2=$8
  shift 8
  { fp32 "$name" "$task" "$preset" "$init" "$batch" "$patch" "$w1" "$@" &&
    qat "$name" "$task" "$batch" "$patch" "$w2" "$@"; } >"$runs/logs/$name.log" 2>&1
  echo "$name: exit $?" >>"$runs/logs/status.txt"
}
ablate() { # the auto teacher's QAT variants, one fixed schedule (qdr_core.ablate.VARIANTS)
  local v kd balance
  for v in qat:none:fixed qat_output:output:fixed qat_dfd:dfd:fixed qdr:dfd:lmr; do
    IFS=: read -r name kd balance <<<"$v"
    qdr qat --task auto --teacher "$runs/auto/fp32.pt" --out "$runs/ablate_auto/$name/qat.pt" \
      --kd "$kd" --balance "$balance" --iters "$abl_iters" --batch-size $((8 / div)) --patch 256 \
      --lr 0.0001 --workers $((2 < wmax ? 2 : wmax)) --val-every -1 --device auto --threads 1 --seed 0 --no-progress \
      >"$runs/logs/ablate_$name.log" 2>&1 &
  done
  wait
}
tarball() { # NAME PATTERN...: $out/NAME.tar.gz of what the patterns (under $runs) match now, atomically
  local name=$1 files
  shift
  files=$(cd "$runs" && ls -d $@ 2>/dev/null) || true # unquoted: the patterns glob in $runs
  [ -n "$files" ] && (cd "$runs" && tar czf "$out/.$name.tgz" $files && mv "$out/.$name.tgz" "$out/$name.tar.gz")
  true
}
pack() { # the tarballs: what exists now
  tarball fp32 '*/fp32.pt' '*/history.json'
  tarball qat '*/qat.pt' '*/qat.history.json'
  tarball ablate 'ablate_auto/*/qat.pt' 'ablate_auto/*/qat.history.json'
  tarball logs logs
}

t0=$(date +%s)
(nvidia-smi --query-gpu=name,memory.used --format=csv,noheader; "$py" -c "import torch; print(torch.__version__, torch.cuda.is_available())") \
  >"$runs/logs/machine.txt" 2>&1
if [ -n "${AUTO_ONLY:-}" ]; then
  # Not `chain`: --lr is the FP32 run's, QAT keeps its own.
  auto_mix=${AUTO_MIX:-clean=0.25,single=0.5,effects=fog+rain+rain+night+sensor+sensor}
  ({ fp32 auto auto efm-s-auto models/auto/fp32.pt 16 288 15 --lr 0.0002 --seed 4 --mix "$auto_mix" &&
    qat auto auto 16 288 15 --seed 4 --mix "$auto_mix"; } >"$runs/logs/auto.log" 2>&1
  echo "auto: exit $?" >>"$runs/logs/status.txt") &
else
  chain auto auto efm-s-auto models/auto/fp32.pt 16 256 6 3 &
  chain stream_lowlight lowlight efm-s-stream models/lowlight/fp32.pt 8 128 3 2 --clip-frames 5 &
  chain stream_noise noise efm-s-stream models/noise/fp32.pt 8 128 1 1 --clip-frames 5 &
  for task in lowlight rain noise; do
    chain "real_$task" "$task" efm-s "models/$task/fp32.pt" 16 128 1 1 --data realistic &
  done
  chain real_haze haze efm-s-ctx5 models/haze/fp32.pt 8 256 1 1 --data realistic &
  # The ablation starts when the auto teacher exists (the auto chain's FP32 part is done).
  (while [ ! -f "$runs/auto/fp32.pt" ] && ! grep -qs "^auto:" "$runs/logs/status.txt"; do sleep 5; done
    [ -f "$runs/auto/fp32.pt" ] && ablate) &
fi
(while sleep 60; do pack; done) &
packer=$!
wait $(jobs -p | grep -v "^$packer$")
kill "$packer" 2>/dev/null
pack
cat "$runs/logs/status.txt" "$runs/logs/machine.txt"
for f in "$runs"/logs/*.log; do echo "== $f"; grep -E "val PSNR|fake-quant|Error|error|Traceback" "$f" | tail -4; done
echo "total $(($(date +%s) - t0)) s"
ls -la "$out"
