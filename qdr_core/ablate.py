"""The QDR ablation table, and the evaluation helpers the INT8 commands share.

One call trains and measures every variant of METHOD.md's ablation for a task on a short schedule:
FP32, PTQ, QAT, QAT + output KD, QAT + decoder KD, QAT + DFD (fixed weights), QAT + DFD + LMR (QDR),
and QDR with a larger FP32 teacher. Each quantized variant is exported to both INT8 ONNX files and
scored through the onnxruntime runtime (``load_runtime``) on the held-out eval photos — the numbers
users get, not the fake-quant model's.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qdr_core.data.datasets import fixed_eval_pairs
from qdr_core.data.sources import MAX_SIDE, photos
from qdr_core.errors import ModelFileError
from qdr_core.metrics import mean_scores, score_restoration

EVAL_SEED = 0  # the seed `qdr eval` uses by default: the same degraded eval set


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    kd: str = "none"
    balance: str = "fixed"
    ptq: bool = False
    large_teacher: bool = False


VARIANTS = (
    Variant("ptq", "PTQ (calibration only)", ptq=True),
    Variant("qat", "QAT"),
    Variant("qat_output", "QAT + output KD", kd="output"),
    Variant("qat_decoder", "QAT + decoder-feature KD", kd="decoder"),
    Variant("qat_dfd", "QAT + DFD (fixed weights)", kd="dfd"),
    Variant("qdr", "QAT + DFD + LMR (QDR)", kd="dfd", balance="lmr"),
    Variant("qat_dfd_gradnorm", "QAT + DFD, grad-norm balancing", kd="dfd", balance="gradnorm"),
    Variant("qdr_large", "QDR, larger teacher (efm-m)", kd="dfd", balance="lmr", large_teacher=True),
)


def eval_pairs(task: str, count: int = 0, seed: int = EVAL_SEED, max_side: int = MAX_SIDE) -> list:
    """(name, degraded, clean) for the held-out eval photos (all when ``count`` is 0)."""
    chosen = photos("eval")
    chosen = chosen[:count] if count > 0 else chosen
    return fixed_eval_pairs(task, [p.load(max_side) for p in chosen], seed, [p.name for p in chosen])


def calibration_batches(task: str, count: int = 16, patch: int = 128, seed: int = 303) -> list[np.ndarray]:
    """Degraded training crops (1x3xPxP each) for the ranges onnxruntime calibrates itself (for
    ``auto``: crops of ``train_all`` under the training condition mix)."""
    from qdr_core.train.trainer import synthetic_pairs, training_split

    data = synthetic_pairs(task, [p.load() for p in photos(training_split(task))], patch, seed)
    return [data.batch(i, 1)[0] for i in range(count)]


def _score(restore, pairs: list) -> dict[str, float]:
    t0 = time.perf_counter()
    result = mean_scores(
        score_restoration(clean, degraded, restore(degraded)) for _, degraded, clean in pairs
    )
    result["seconds"] = time.perf_counter() - t0
    result["n_images"] = len(pairs)
    return result


def score_runtime(
    model_path: str | Path, pairs: list, backend: str = "onnxruntime", threads: int = 1
) -> dict:
    """PSNR / SSIM of a model file run through ``qdr_core.runtime.load_runtime``."""
    from qdr_core.runtime import load_runtime

    with load_runtime(model_path, backend=backend, num_threads=threads) as runtime:
        return _score(runtime.infer, pairs)


def score_torch(model: torch.nn.Module, pairs: list) -> dict:
    """PSNR / SSIM of an in-memory model (the fake-quant reference), through the torch runtime:
    the same padding and clipping as the exported models get."""
    from qdr_core.runtime.torch_backend import TorchRuntime

    return _score(TorchRuntime.from_model(model).infer, pairs)


def recovery(int8: dict, fp32: dict) -> dict[str, float]:
    """INT8 recovery (PSNR ratio) and gain recovery ((int8 - input) / (fp32 - input))."""
    gain = fp32["psnr_output"] - fp32["psnr_input"]
    return {
        "psnr_ratio": int8["psnr_output"] / fp32["psnr_output"],
        "gain_recovery": (int8["psnr_output"] - int8["psnr_input"]) / gain if gain > 0 else float("nan"),
    }


def export_int8(
    qat_path: str | Path, out_dir: str | Path, task: str, calib: list[np.ndarray]
) -> dict[str, Path]:
    """Both INT8 exports of a QAT checkpoint: ``int8_trt.onnx`` and ``int8_cpu.onnx`` in ``out_dir``."""
    from qdr_core.export.ort_int8 import export_ort_int8
    from qdr_core.export.qdq_tensorrt import export_tensorrt_qdq
    from qdr_core.quant.qat_model import load_model

    model = load_model(qat_path)
    out_dir = Path(out_dir)
    meta = {"task": task, "source": str(qat_path)}
    trt = export_tensorrt_qdq(model, out_dir / "int8_trt.onnx", metadata=meta)
    cpu = export_ort_int8(model, out_dir / "int8_cpu.onnx", calib, metadata=meta)
    return {"trt": trt, "cpu": cpu}


@dataclass(frozen=True)
class AblationConfig:
    """Args:
    task: the task to ablate.
    teacher: FP32 efm-s checkpoint (teacher and student init).
    large_teacher: FP32 checkpoint of a larger preset; trained here (``large_teacher_iters``) if absent.
    out_dir: run folder (one sub-folder per variant, table as ablation.md / ablation.json).
    iters / batch_size / patch / lr: the short QAT schedule shared by every variant.
    eval_images: held-out images scored (0 = all).
    variants: comma-separated subset of variant names (empty = all).
    seed / threads: seeding and torch threads.
    """

    task: str = "noise"
    teacher: str = "models/noise/fp32.pt"
    large_teacher: str | None = None
    large_teacher_iters: int = 1500
    out_dir: str = "runs/qat_ablate/noise"
    iters: int = 200
    batch_size: int = 8
    patch: int = 96
    lr: float = 1e-4
    eval_images: int = 0
    variants: str = ""
    seed: int = 0
    threads: int = 1


def _large_teacher(cfg: AblationConfig) -> str:
    if cfg.large_teacher and Path(cfg.large_teacher).is_file():
        return cfg.large_teacher
    from qdr_core.train.config import TrainConfig
    from qdr_core.train.trainer import fit

    out = Path(cfg.out_dir) / "teacher_efm-m"
    if not (out / "fp32.pt").is_file():
        tc = TrainConfig(
            task=cfg.task, preset="efm-m", out_dir=str(out), iters=cfg.large_teacher_iters, batch_size=8,
            patch=96, val_every=cfg.large_teacher_iters, seed=cfg.seed, threads=cfg.threads,
        )  # fmt: skip
        fit(tc, resume=True, progress=False)
    return str(out / "fp32.pt")


def run_ablation(cfg: AblationConfig, progress: bool = True) -> list[dict[str, Any]]:
    """Train, export and score every variant; writes ``ablation.json`` and ``ablation.md``."""
    from qdr_core.export.onnx_fp32 import export_onnx
    from qdr_core.models.checkpoint import load_fp32_model
    from qdr_core.train.qat import QATConfig, fit_qat

    if not Path(cfg.teacher).is_file():
        raise ModelFileError(f"teacher checkpoint not found: {cfg.teacher}")
    wanted = [v for v in cfg.variants.split(",") if v]
    unknown = set(wanted) - {v.name for v in VARIANTS} - {"fp32"}
    if unknown:
        raise ModelFileError(
            f"unknown variants {sorted(unknown)}; known: fp32, {', '.join(v.name for v in VARIANTS)}"
        )
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = eval_pairs(cfg.task, cfg.eval_images)
    calib = calibration_batches(cfg.task)
    train_images = [p.load() for p in photos("train")]
    rows: list[dict[str, Any]] = []
    table_path = out / "ablation.json"

    teacher, teacher_payload = load_fp32_model(cfg.teacher)
    teacher_preset = teacher_payload.get("meta", {}).get("preset", "EFM")
    fp32_onnx = export_onnx(teacher, out / "fp32.onnx", metadata={"task": cfg.task, "precision": "fp32"})
    fp32 = score_runtime(fp32_onnx, pairs, threads=cfg.threads)
    rows.append({"variant": "fp32", "label": f"FP32 teacher ({teacher_preset})", "cpu": fp32, "trt": fp32})

    for v in VARIANTS:
        if wanted and v.name not in wanted:
            continue
        folder = out / v.name
        teacher_path = _large_teacher(cfg) if v.large_teacher else cfg.teacher
        qcfg = QATConfig(
            task=cfg.task, teacher=teacher_path, student_init=cfg.teacher, out=str(folder / "qat.pt"),
            kd=v.kd, balance=v.balance, ptq=v.ptq, iters=cfg.iters, batch_size=cfg.batch_size,
            patch=cfg.patch, lr=cfg.lr, seed=cfg.seed, threads=cfg.threads, val_every=-1,
        )  # fmt: skip
        t0 = time.time()
        result = fit_qat(qcfg, progress=progress, train_images=train_images)
        train_s = time.time() - t0
        paths = export_int8(folder / "qat.pt", folder, cfg.task, calib)
        row = {
            "variant": v.name, "label": v.label, "kd": v.kd, "balance": v.balance, "teacher": teacher_path,
            "train_seconds": round(train_s, 1),
            "fake_quant": score_torch(result["model"], pairs),
            "trt": score_runtime(paths["trt"], pairs, threads=cfg.threads),
            "cpu": score_runtime(paths["cpu"], pairs, threads=cfg.threads),
        }  # fmt: skip
        if v.large_teacher:
            t_model, _ = load_fp32_model(teacher_path)
            row["teacher_fp32"] = score_torch(t_model, pairs)
        lmr = [h for h in result["history"] if "w_rec" in h]
        if lmr:
            row["final_weights"] = {k: lmr[-1][k] for k in lmr[-1] if k.startswith("w_")}
        rows.append(row)
        table_path.write_text(json.dumps({"config": dataclasses.asdict(cfg), "rows": rows}, indent=1))
        if progress:
            print(
                f"{cfg.task} {v.name}: cpu {row['cpu']['psnr_output']:.2f} dB, trt {row['trt']['psnr_output']:.2f} dB"
            )
    for row in rows:
        for key in ("cpu", "trt"):
            row[f"{key}_recovery"] = recovery(row[key], fp32)
    table_path.write_text(json.dumps({"config": dataclasses.asdict(cfg), "rows": rows}, indent=1))
    (out / "ablation.md").write_text(markdown_table(cfg, rows))
    return rows


def markdown_table(cfg: AblationConfig, rows: list[dict[str, Any]]) -> str:
    lines = [
        f"### Ablation: {cfg.task} (QAT {cfg.iters} iters, batch {cfg.batch_size}, patch {cfg.patch}, seed {cfg.seed})",
        "",
        f"{rows[0]['cpu']['n_images']} held-out photos of split `eval` (seed {EVAL_SEED}); PSNR (dB) / SSIM. "
        "`int8_cpu`: onnxruntime U8S8 QDQ (real int8 kernels); `int8_trt`: the TensorRT QDQ graph run in onnxruntime.",
        "",
        "| variant | int8_cpu PSNR | int8_cpu SSIM | int8_trt PSNR | int8_trt SSIM | fake-quant PSNR "
        "| gain recovery cpu / trt |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fq = f"{r['fake_quant']['psnr_output']:.2f}" if "fake_quant" in r else ""
        rec = (
            f"{100 * r['cpu_recovery']['gain_recovery']:.1f} % / {100 * r['trt_recovery']['gain_recovery']:.1f} %"
            if "cpu_recovery" in r
            else ""
        )
        lines.append(
            f"| {r['label']} | {r['cpu']['psnr_output']:.2f} | {r['cpu']['ssim_output']:.4f} | "
            f"{r['trt']['psnr_output']:.2f} | {r['trt']['ssim_output']:.4f} | {fq} | {rec} |"
        )
    lines.append("")
    large = [r for r in rows if "teacher_fp32" in r]
    if large:
        lines.append(f"Larger teacher's own FP32 PSNR: {large[0]['teacher_fp32']['psnr_output']:.2f} dB.")
    lines.append(
        f"Degraded input: {rows[0]['cpu']['psnr_input']:.2f} dB / {rows[0]['cpu']['ssim_input']:.4f}."
    )
    return "\n".join(lines) + "\n"


def acceptance_report(
    task: str, model_dir: str | Path, threads: int = 1, eval_images: int = 0
) -> dict[str, Any]:
    """Score ``fp32.onnx``, ``int8_trt.onnx``, ``int8_cpu.onnx`` (onnxruntime) and ``qat.pt`` (torch
    fake-quant) of one task on the held-out set, and check the INT8 acceptance criteria."""
    from qdr_core.quant.qat_model import load_model

    model_dir = Path(model_dir)
    pairs = eval_pairs(task, eval_images)
    fp32 = score_runtime(model_dir / "fp32.onnx", pairs, threads=threads)
    report: dict[str, Any] = {"task": task, "eval_seed": EVAL_SEED, "fp32": fp32}
    report["fake_quant"] = score_torch(load_model(model_dir / "qat.pt"), pairs)
    for key in ("int8_trt", "int8_cpu"):
        scores = score_runtime(model_dir / f"{key}.onnx", pairs, threads=threads)
        rec = recovery(scores, fp32)
        report[key] = {**scores, **rec, "size_mb": (model_dir / f"{key}.onnx").stat().st_size / 2**20}
        report[key]["pass"] = rec["psnr_ratio"] >= 0.99 and rec["gain_recovery"] >= 0.95
    report["trt_vs_fake_quant_db"] = report["int8_trt"]["psnr_output"] - report["fake_quant"]["psnr_output"]
    report["pass"] = (
        report["int8_trt"]["pass"]
        and report["int8_cpu"]["pass"]
        and abs(report["trt_vs_fake_quant_db"]) <= 0.1
    )
    return report


def write_model_card_section(path: str | Path, text: str, heading: str = "## INT8") -> None:
    """Append (or replace) the ``## INT8`` section of a model card, leaving the rest untouched."""
    path = Path(path)
    old = path.read_text() if path.is_file() else ""
    start = old.find(f"\n{heading}") if not old.startswith(heading) else 0
    if start >= 0:
        end = old.find("\n## ", start + len(heading) + 1)
        old = old[:start] + (old[end:] if end >= 0 else "")
    path.write_text(old.rstrip("\n") + ("\n\n" if old.strip() else "") + text.rstrip("\n") + "\n")
