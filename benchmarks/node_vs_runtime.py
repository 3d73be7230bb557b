"""Benchmark (not a test): qdr_restore end-to-end vs the bare runtime at 640x480.

The benchmark is ``qdr_ros.bench`` (installed with the package; ``qdr bench`` runs it as
``python -m qdr_ros.bench``); this script is its entry point from a source checkout:

    .venv/bin/python benchmarks/node_vs_runtime.py [--model m.onnx] [--threads 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qdr_ros.bench import main

if __name__ == "__main__":
    sys.exit(main())
