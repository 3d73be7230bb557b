"""``qdr ablate``: the QDR ablation table for one task (FP32, PTQ, QAT, output / decoder KD, DFD,
DFD + LMR, larger teacher), each INT8 variant scored through onnxruntime; writes markdown + JSON.
``--task auto`` scores the all-conditions model on realistic conditions and clean frames;
``--reuse`` scores variants already trained (e.g. on a GPU) instead of training them again."""

from __future__ import annotations

import argparse

from qdr_core.ablate import AblationConfig
from qdr_core.config import add_dataclass_arguments, dataclass_overrides
from qdr_core.tasks import MODEL_TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ablate", help="run the QDR ablation table for a task", description=__doc__)
    p.add_argument("--task", required=True, choices=MODEL_TASKS)
    add_dataclass_arguments(p, AblationConfig, skip={"task", "reuse", "fake_quant"})
    p.add_argument(
        "--reuse", action="store_true", default=None,
        help="score an existing <out-dir>/<variant>/qat.pt made with this schedule instead of training it",
    )  # fmt: skip
    p.add_argument(
        "--no-fake-quant", dest="fake_quant", action="store_false", default=None,
        help="skip scoring the fake-quant models through torch (the slowest column on a CPU)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qdr_core.ablate import run_ablation

    values = dataclass_overrides(args, AblationConfig)
    values.setdefault("teacher", f"models/{args.task}/fp32.pt")
    values.setdefault("out_dir", f"runs/qat_ablate/{args.task}")
    cfg = AblationConfig(**values)
    run_ablation(cfg, progress=not args.no_progress)
    print((Path(cfg.out_dir) / "ablation.md").read_text())
    return 0
