#!/usr/bin/env bash
# Run the qdr benchmark suite on a CUDA machine (x86 + NVIDIA GPU, or a Jetson).
#
#   benchmarks/gpu.sh [extra qdr bench arguments]
#
# Picks what the machine has, best first:
#   - TensorRT (python `tensorrt` >= 10 + cuda-python): engines built from the QDQ ONNX (int8_trt.onnx ->
#     INT8, fp32.onnx -> FP16 and FP32); the engine build time is reported; engines are cached under
#     runs/bench_models/engines keyed by ONNX hash, TensorRT version, GPU and precision;
#   - otherwise onnxruntime-gpu (CUDAExecutionProvider, FP32) and a CUDA build of torch (FP32 and FP16).
# The CPU runtimes run too (same JSON, for the ratio GPU/CPU on this machine).
# Writes benchmarks/results/bench_gpu.json and bench_gpu.png (the GPU figure) and prints the tables.
#
# Environment: PYTHON (default .venv/bin/python, else python3), RESOLUTIONS (default the four sizes),
# NAME (output stem, default bench_gpu). The venv's pinned torch is the CPU build: for torch CUDA rows
# install a CUDA torch in the environment you point PYTHON at; nothing here installs anything.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
RESOLUTIONS=${RESOLUTIONS:-320x240,640x480,1280x720,1920x1080}
NAME=${NAME:-bench_gpu}

if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
elif [ -r /etc/nv_tegra_release ]; then
    head -1 /etc/nv_tegra_release
else
    echo "benchmarks/gpu.sh: no NVIDIA GPU visible (no nvidia-smi, not a Jetson)" >&2
    exit 1
fi

# Ask Python which GPU runtimes can run; the same checks qdr bench reports as 'unavailable'.
RUNTIMES=$("$PY" - <<'PYEOF'
import sys

from qdr_core.bench.runtimes import CPU_RUNTIMES, CUDA_RUNTIMES, TENSORRT_RUNTIMES, unavailable_reason

gpu = [s for s in TENSORRT_RUNTIMES if unavailable_reason(s) is None]
fallback = [s for s in CUDA_RUNTIMES if unavailable_reason(s) is None]
# With TensorRT, ORT CUDA / torch CUDA are still timed when present: they show what TensorRT buys.
chosen = gpu + fallback
for s in (*TENSORRT_RUNTIMES, *CUDA_RUNTIMES):
    reason = unavailable_reason(s)
    print(f"  {s.key:16s} {'ok' if reason is None else 'unavailable: ' + reason}", file=sys.stderr)
if not chosen:
    sys.exit("no GPU runtime can run here: install TensorRT (+ cuda-python), onnxruntime-gpu or a CUDA torch")
print(",".join(s.key for s in (*chosen, *CPU_RUNTIMES[1:3])))
PYEOF
)
echo "runtimes: $RUNTIMES"

exec "$PY" -m qdr_core.cli bench --device cuda --runtimes "$RUNTIMES" --threads "$(nproc)" \
    --resolutions "$RESOLUTIONS" --no-peers --no-ros-node --name "$NAME" "$@"
