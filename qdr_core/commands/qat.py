"""``qdr qat``: quantization-aware training of an FP32 EFM (QDR: self-distillation, DFD, LMR), or
PTQ calibration only with ``--ptq``; writes a QAT checkpoint (``kind: qat``)."""

from __future__ import annotations

import argparse

from qdr_core.config import add_dataclass_arguments, dataclass_overrides
from qdr_core.tasks import DATA_KINDS, MODEL_TASKS
from qdr_core.train.qat import QATConfig

_CHOICES = {"kd": ["none", "output", "decoder", "dfd"], "balance": ["fixed", "lmr", "gradnorm"], "kd_distance": ["l1", "mse"],
            "act_method": ["max", "percentile", "mse"], "weight_method": ["max", "percentile", "mse"],
            "device": ["auto", "cpu", "cuda"], "data": list(DATA_KINDS)}  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "qat", help="INT8 quantization-aware training (QDR) or PTQ", description=__doc__
    )
    p.add_argument("--task", required=True, choices=MODEL_TASKS)
    p.add_argument(
        "--teacher", required=True, help="FP32 checkpoint of the frozen teacher (e.g. models/T/fp32.pt)"
    )
    p.add_argument(
        "--student-init", dest="student_init", help="FP32 checkpoint of the student (default: teacher)"
    )
    p.add_argument("--out", help="QAT checkpoint to write (default models/<task>/qat.pt)")
    p.add_argument("--ptq", action="store_true", help="calibrate only (post-training quantization)")
    add_dataclass_arguments(
        p, QATConfig, skip={"task", "teacher", "student_init", "out", "ptq"}, choices=_CHOICES
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from qdr_core.train.qat import check_config, fit_qat

    values = dataclass_overrides(args, QATConfig)
    values.setdefault("out", f"models/{args.task}/qat.pt")
    cfg = check_config(QATConfig(**values))
    result = fit_qat(cfg, progress=not args.no_progress)
    val = [h for h in result["history"] if "psnr_output" in h]
    if val:
        print(
            f"{cfg.task}: fake-quant validation PSNR {val[-1]['psnr_input']:.2f} -> {val[-1]['psnr_output']:.2f} dB"
        )
    print(f"checkpoint: {result['checkpoint']}")
    return 0
