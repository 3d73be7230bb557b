"""``qdr train``: FP32 training of one EFM (the QDR teacher); exports fp32.pt and fp32.onnx."""

from __future__ import annotations

import argparse
import dataclasses

from qdr_core.config import add_dataclass_arguments
from qdr_core.tasks import DATA_KINDS, MODEL_TASKS
from qdr_core.train.config import TrainConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train an FP32 EFM for one task (or auto: every condition)", description=__doc__
    )
    p.add_argument("--config", help="YAML file with TrainConfig fields (flags override it)")
    p.add_argument("--task", choices=MODEL_TASKS)
    p.add_argument("--preset", help="EFM preset (efm-t, efm-s, efm-m)")
    p.add_argument("--no-ldg", dest="ldg", action="store_const", const=False, help="plain residual blocks")
    p.add_argument("--out", dest="out_dir", help="run folder (default runs/<task>)")
    add_dataclass_arguments(
        p, TrainConfig, skip={"task", "preset", "ldg", "out_dir"}, choices={"data": list(DATA_KINDS)}
    )
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument(
        "--export", default=None, help="also write the model here as fp32.pt + fp32.onnx (a folder)"
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from qdr_core.config import dataclass_overrides, from_dict, load_yaml
    from qdr_core.export.onnx_fp32 import export_onnx
    from qdr_core.models.checkpoint import load_fp32_model
    from qdr_core.train.trainer import fit

    overrides = dataclass_overrides(args, TrainConfig)
    if args.config:
        cfg = load_yaml(TrainConfig, args.config, **overrides)
    else:
        cfg = from_dict(TrainConfig, overrides)
    if "out_dir" not in overrides and not args.config:
        cfg = dataclasses.replace(cfg, out_dir=f"runs/{cfg.task}")
    result = fit(cfg, resume=args.resume, progress=not args.no_progress)
    if "checkpoint" not in result:
        return 0
    last = [h for h in result["history"] if "psnr_output" in h][-1:]
    if last:
        print(f"{cfg.task}: validation PSNR {last[0]['psnr_input']:.2f} -> {last[0]['psnr_output']:.2f} dB")
    print(f"checkpoint: {result['checkpoint']}")
    if args.export:
        dest = Path(args.export)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result["checkpoint"], dest / "fp32.pt")
        model, _ = load_fp32_model(dest / "fp32.pt")
        export_onnx(
            model, dest / "fp32.onnx", metadata={"task": cfg.task, "preset": cfg.preset, "precision": "fp32"}
        )
        print(f"exported: {dest / 'fp32.pt'}, {dest / 'fp32.onnx'}")
    return 0
