"""The QDR ablation table, and the evaluation helpers the INT8 commands share.

One call trains and measures every variant of METHOD.md's ablation for a task on a short schedule:
FP32, PTQ, QAT, QAT + output KD, QAT + decoder KD, QAT + DFD (fixed weights), QAT + DFD + LMR (QDR),
and QDR with a larger FP32 teacher. Each quantized variant is exported to both INT8 ONNX files and
scored through the onnxruntime runtime (``load_runtime``) on the held-out eval photos — the numbers
users get, not the fake-quant model's. A task is scored on its benchmark degradation; ``auto`` on the
realistic conditions of ``AUTO_ABLATION_CONDITIONS`` (and on clean frames, reported apart).

With ``reuse``, a variant whose ``qat.pt`` exists (trained elsewhere, e.g. on a GPU) is exported and
scored, not retrained, after ``check_reuse`` has matched its stored QAT config to the ablation's.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qdr_core.data.datasets import AUTO_VAL_CONDITIONS, fixed_condition_pairs, fixed_eval_pairs
from qdr_core.data.degrade.pipeline import Condition
from qdr_core.data.sources import MAX_SIDE, photos
from qdr_core.errors import ConfigError, ModelFileError
from qdr_core.metrics import Scores, mean_scores, score, score_restoration
from qdr_core.tasks import AUTO_TASK, check_task

if TYPE_CHECKING:
    from qdr_core.train.qat import QATConfig

EVAL_SEED = 0  # the seed `qdr eval` uses by default: the same degraded eval set
#: The group of the frames no condition touched: an ``auto`` model must leave them as they are.
CLEAN = Condition().name
#: The frames the ``auto`` ablation scores: the eval photos clean and under each condition its
#: training validates on (every effect at medium severity, two mixtures), seeded by ``EVAL_SEED``.
AUTO_ABLATION_CONDITIONS: tuple[str, ...] = (CLEAN, *AUTO_VAL_CONDITIONS)


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


def _eval_photos(count: int, max_side: int) -> tuple[list[str], list[np.ndarray]]:
    chosen = photos("eval")
    chosen = chosen[:count] if count > 0 else chosen
    return [p.name for p in chosen], [p.load(max_side) for p in chosen]


def eval_pairs(task: str, count: int = 0, seed: int = EVAL_SEED, max_side: int = MAX_SIDE) -> list:
    """(name, degraded, clean) for the held-out eval photos (all when ``count`` is 0)."""
    names, images = _eval_photos(count, max_side)
    return fixed_eval_pairs(task, images, seed, names)


@dataclass(frozen=True)
class EvalSet:
    """The frames an ablation scores: ``pairs`` (name, degraded, clean), each one's group (its
    condition, or the benchmark task) and the degraded input's scores, measured once for every model."""

    pairs: list
    groups: tuple[str, ...]
    inputs: tuple[Scores, ...]

    @classmethod
    def of(cls, pairs: list, groups: Sequence[str] | None = None) -> EvalSet:
        groups = tuple(groups) if groups is not None else ("all",) * len(pairs)
        if len(groups) != len(pairs):
            raise ValueError(f"{len(pairs)} pairs but {len(groups)} groups")
        return cls(list(pairs), groups, tuple(score(clean, degraded) for _, degraded, clean in pairs))


def eval_set(task: str, count: int = 0, max_side: int = MAX_SIDE) -> EvalSet:
    """What the ablation scores for ``task``: the eval photos (the first ``count``; 0 = all) under
    its benchmark degradation, or for ``auto`` clean and under each of ``AUTO_ABLATION_CONDITIONS``."""
    if task != AUTO_TASK:
        pairs = eval_pairs(check_task(task), count, max_side=max_side)
        return EvalSet.of(pairs, [task] * len(pairs))
    names, images = _eval_photos(count, max_side)
    pairs = fixed_condition_pairs(AUTO_ABLATION_CONDITIONS, images, EVAL_SEED, names)
    return EvalSet.of(pairs, [Condition.parse(c).name for c in AUTO_ABLATION_CONDITIONS for _ in images])


def calibration_batches(
    task: str, count: int = 16, patch: int = 128, seed: int = 303, images: list[np.ndarray] | None = None
) -> list[np.ndarray]:
    """Degraded training crops (1x3xPxP each) for the ranges onnxruntime calibrates itself, cut from
    ``images`` or the task's training photos (for ``auto``: ``train_all`` under the condition mix)."""
    from qdr_core.train.trainer import synthetic_pairs, training_split

    if images is None:
        images = [p.load() for p in photos(training_split(task))]
    data = synthetic_pairs(task, images, patch, seed)
    return [data.batch(i, 1)[0] for i in range(count)]


def _score(restore: Callable[[np.ndarray], np.ndarray], data: list | EvalSet) -> dict[str, Any]:
    """Mean scores over the degraded frames (``CLEAN`` ones are left out: their input PSNR is
    infinite) and, when the set has several groups, the means of each under ``by_condition``."""
    data = data if isinstance(data, EvalSet) else EvalSet.of(data)
    t0 = time.perf_counter()
    frames = [
        score_restoration(clean, degraded, restore(degraded), before)
        for (_, degraded, clean), before in zip(data.pairs, data.inputs)
    ]
    result: dict[str, Any] = mean_scores(f for f, g in zip(frames, data.groups) if g != CLEAN)
    if len(set(data.groups)) > 1:
        by = {
            group: mean_scores(f for f, g in zip(frames, data.groups) if g == group)
            for group in dict.fromkeys(data.groups)
        }
        if CLEAN in by:  # the input is the reference: only what the model made of it counts
            by[CLEAN] = {k: by[CLEAN][k] for k in ("psnr_output", "ssim_output")}
        result["by_condition"] = by
    result["seconds"] = time.perf_counter() - t0
    result["n_images"] = len(frames)
    return result


def score_runtime(
    model_path: str | Path, pairs: list | EvalSet, backend: str = "onnxruntime", threads: int = 1
) -> dict:
    """PSNR / SSIM of a model file run through ``qdr_core.runtime.load_runtime``."""
    from qdr_core.runtime import load_runtime

    with load_runtime(model_path, backend=backend, num_threads=threads) as runtime:
        return _score(runtime.infer, pairs)


def score_torch(model: torch.nn.Module, pairs: list | EvalSet) -> dict:
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
    task: the task to ablate (one of ``MODEL_TASKS``; ``auto`` is scored on ``eval_set``'s conditions).
    teacher: FP32 efm-s checkpoint (teacher and student init).
    large_teacher: FP32 checkpoint of a larger preset; trained here (``large_teacher_iters``) if absent.
    out_dir: run folder (one sub-folder per variant, table as ablation.md / ablation.json).
    iters / batch_size / patch / lr: the short QAT schedule shared by every variant.
    eval_images: held-out images scored (0 = all); max_side: their longer side at most.
    variants: comma-separated subset of variant names (empty = all).
    seed / threads: seeding and torch threads.
    reuse: score a variant's existing ``<out_dir>/<variant>/qat.pt`` instead of training it, if its
        stored QAT config has the ablation's schedule (``check_reuse``).
    fake_quant: score each variant's fake-quant model through torch too (the slowest column on a CPU).
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
    max_side: int = MAX_SIDE
    variants: str = ""
    seed: int = 0
    threads: int = 1
    reuse: bool = False
    fake_quant: bool = True


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


#: QAT config fields a reused checkpoint may differ in: where it ran and wrote, how it logged, and
#: the teacher's paths (files on the machine that trained it). ``check_reuse`` compares every other
#: field, and the teacher's role and the student's preset in place of the paths.
REUSE_FREE_FIELDS = frozenset(
    {"teacher", "student_init", "out", "threads", "workers", "device", "val_every", "val_images",
     "val_size", "log_every"}
)  # fmt: skip


def check_reuse(path: str | Path, qcfg: QATConfig, preset: str) -> dict[str, Any]:
    """The meta of QAT checkpoint ``path`` if it was made by ``qcfg`` up to
    ``REUSE_FREE_FIELDS``, from a student of ``preset``; else a one-line ConfigError naming each
    difference, so that one table never mixes schedules."""
    from qdr_core.models.checkpoint import read_checkpoint

    meta = read_checkpoint(path).get("meta", {})
    try:
        theirs = json.loads(meta["config"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"--reuse {path}: no QAT config in its meta, so its schedule is unknown"
        ) from exc
    ours, defaults = qcfg.to_dict(), type(qcfg)().to_dict()  # fields older checkpoints lack: defaults
    diffs = [
        f"{k}={theirs.get(k, defaults[k])!r} (ablation: {v!r})"
        for k, v in ours.items()
        if k not in REUSE_FREE_FIELDS and theirs.get(k, defaults[k]) != v
    ]

    def self_distilled(c: dict) -> bool:
        return c.get("student_init") in (None, c.get("teacher"))

    if self_distilled(theirs) != self_distilled(ours):
        diffs.append(f"self-distilled={self_distilled(theirs)} (ablation: {self_distilled(ours)})")
    if not qcfg.ptq and meta.get("step") != qcfg.iters:
        diffs.append(f"steps done={meta.get('step')!r} (ablation: {qcfg.iters})")
    if meta.get("preset", preset) != preset:
        diffs.append(f"preset={meta.get('preset')!r} (ablation's teacher: {preset!r})")
    if diffs:
        raise ConfigError(f"--reuse {path}: made with {', '.join(diffs)}; retrain it or match the schedule")
    return meta


def _variant_model(
    cfg: AblationConfig, qcfg: QATConfig, preset: str, train_images: Callable[[], list], progress: bool
) -> tuple[torch.nn.Module, list, dict[str, Any]]:
    """A variant's QAT model, its training history and how it came: trained now, or (``cfg.reuse``)
    its existing checkpoint, checked by ``check_reuse``."""
    from qdr_core.quant.qat_model import load_model
    from qdr_core.train.qat import fit_qat

    path = Path(qcfg.out)
    if cfg.reuse and path.is_file():
        meta = check_reuse(path, qcfg, preset)
        history_path = path.with_suffix(".history.json")
        history = json.loads(history_path.read_text()) if history_path.is_file() else []
        info = {
            "reused": True, "train_seconds": meta.get("train_seconds"), "checkpoint_config": json.loads(meta["config"]),
            "checkpoint_meta": {k: meta[k] for k in ("teacher", "git_commit", "device", "step") if k in meta},
        }  # fmt: skip
        return load_model(path), history, info
    t0 = time.time()
    result = fit_qat(qcfg, progress=progress, train_images=train_images())
    return result["model"], result["history"], {"reused": False, "train_seconds": round(time.time() - t0, 1)}


def variant_qat_config(cfg: AblationConfig, variant: Variant, teacher: str | None = None) -> QATConfig:
    """The ``QATConfig`` that trains ``variant`` into ``<out_dir>/<variant>/qat.pt``: the ablation's
    schedule, distilled from ``teacher`` (default ``cfg.teacher``), the student starting from ``cfg.teacher``."""
    from qdr_core.train.qat import QATConfig

    return QATConfig(
        task=cfg.task, teacher=teacher or cfg.teacher, student_init=cfg.teacher,
        out=str(Path(cfg.out_dir) / variant.name / "qat.pt"), kd=variant.kd, balance=variant.balance,
        ptq=variant.ptq, iters=cfg.iters, batch_size=cfg.batch_size, patch=cfg.patch, lr=cfg.lr,
        seed=cfg.seed, threads=cfg.threads, val_every=-1,
    )  # fmt: skip


def _wanted(cfg: AblationConfig) -> list[str]:
    wanted = [v for v in cfg.variants.split(",") if v]
    unknown = set(wanted) - {v.name for v in VARIANTS} - {"fp32"}
    if unknown:
        raise ModelFileError(
            f"unknown variants {sorted(unknown)}; known: fp32, {', '.join(v.name for v in VARIANTS)}"
        )
    return wanted


def run_ablation(
    cfg: AblationConfig, progress: bool = True, train_images: list[np.ndarray] | None = None
) -> list[dict[str, Any]]:
    """Train (or reuse), export and score every variant; writes ``ablation.json`` and ``ablation.md``.

    ``train_images``: the QAT and calibration photos (default: the task's ``training_split``).
    """
    from qdr_core.export.onnx_fp32 import export_onnx
    from qdr_core.models.checkpoint import load_fp32_model
    from qdr_core.train.trainer import training_split

    if not Path(cfg.teacher).is_file():
        raise ModelFileError(f"teacher checkpoint not found: {cfg.teacher}")
    wanted = _wanted(cfg)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = eval_set(cfg.task, cfg.eval_images, cfg.max_side)
    images = functools.cache(lambda: train_images or [p.load() for p in photos(training_split(cfg.task))])
    calib = functools.cache(lambda: calibration_batches(cfg.task, images=images()))
    rows: list[dict[str, Any]] = []
    table_path = out / "ablation.json"

    teacher, teacher_payload = load_fp32_model(cfg.teacher)
    preset = teacher_payload.get("meta", {}).get("preset", "EFM")
    fp32_onnx = export_onnx(teacher, out / "fp32.onnx", metadata={"task": cfg.task, "precision": "fp32"})
    fp32 = score_runtime(fp32_onnx, data, threads=cfg.threads)
    rows.append({"variant": "fp32", "label": f"FP32 teacher ({preset})", "cpu": fp32, "trt": fp32})

    for v in VARIANTS:
        if wanted and v.name not in wanted:
            continue
        folder = out / v.name
        teacher_path = _large_teacher(cfg) if v.large_teacher else cfg.teacher
        qcfg = variant_qat_config(cfg, v, teacher_path)
        model, history, how = _variant_model(cfg, qcfg, preset, images, progress)
        paths = export_int8(folder / "qat.pt", folder, cfg.task, calib())
        row = {
            "variant": v.name, "label": v.label, "kd": v.kd, "balance": v.balance, "teacher": teacher_path, **how,
            "trt": score_runtime(paths["trt"], data, threads=cfg.threads),
            "cpu": score_runtime(paths["cpu"], data, threads=cfg.threads),
        }  # fmt: skip
        if cfg.fake_quant:
            row["fake_quant"] = score_torch(model, data)
        if v.large_teacher:
            row["teacher_fp32"] = score_torch(load_fp32_model(teacher_path)[0], data)
        lmr = [h for h in history if "w_rec" in h]
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
    by_condition = "by_condition" in rows[0]["cpu"]
    if by_condition:
        groups = [g for g in rows[0]["cpu"]["by_condition"] if g != CLEAN]
        scored = (
            f"{rows[0]['cpu']['n_images']} frames: the held-out photos of split `eval` under each of "
            f"{', '.join(f'`{g}`' for g in groups)} (seed {EVAL_SEED})"
            + (", and clean" if CLEAN in rows[0]["cpu"]["by_condition"] else "")
            + ". PSNR (dB) / SSIM are means over the degraded frames; *clean PSNR*: output vs the untouched frame."
        )
    else:
        scored = f"{rows[0]['cpu']['n_images']} held-out photos of split `eval` (seed {EVAL_SEED}); PSNR (dB) / SSIM."
    clean_col = by_condition and CLEAN in rows[0]["cpu"]["by_condition"]
    lines = [
        f"### Ablation: {cfg.task} (QAT {cfg.iters} iters, batch {cfg.batch_size}, patch {cfg.patch}, seed {cfg.seed})",
        "",
        scored + " `int8_cpu`: onnxruntime U8S8 QDQ (real int8 kernels); `int8_trt`: the TensorRT QDQ graph "
        "run in onnxruntime.",
        "",
        "| variant | int8_cpu PSNR | int8_cpu SSIM | int8_trt PSNR | int8_trt SSIM | fake-quant PSNR "
        "| gain recovery cpu / trt |" + (" clean PSNR cpu / trt |" if clean_col else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if clean_col else ""),
    ]
    for r in rows:
        fq = f"{r['fake_quant']['psnr_output']:.2f}" if "fake_quant" in r else ""
        rec = (
            f"{100 * r['cpu_recovery']['gain_recovery']:.1f} % / {100 * r['trt_recovery']['gain_recovery']:.1f} %"
            if "cpu_recovery" in r
            else ""
        )
        clean = (
            f" {r['cpu']['by_condition'][CLEAN]['psnr_output']:.2f} / {r['trt']['by_condition'][CLEAN]['psnr_output']:.2f} |"
            if clean_col
            else ""
        )
        lines.append(
            f"| {r['label']}{' (reused)' if r.get('reused') else ''} | {r['cpu']['psnr_output']:.2f} | "
            f"{r['cpu']['ssim_output']:.4f} | {r['trt']['psnr_output']:.2f} | {r['trt']['ssim_output']:.4f} | "
            f"{fq} | {rec} |{clean}"
        )
    lines.append("")
    if by_condition:
        lines += _condition_table(rows, "cpu") + _condition_table(rows, "trt")
    lines += _notes(rows)
    return "\n".join(lines) + "\n"


def _condition_table(rows: list[dict[str, Any]], key: str) -> list[str]:
    """PSNR of each variant's ``key`` export per condition (the degraded input's in the first row)."""
    groups = list(rows[0][key]["by_condition"])
    inputs = rows[0][key]["by_condition"]
    lines = [
        f"int8_{key} PSNR (dB) per condition:",
        "",
        "| variant | " + " | ".join(groups) + " |",
        "|---|" + "---|" * len(groups),
        "| degraded input | "
        + " | ".join("—" if g == CLEAN else f"{inputs[g]['psnr_input']:.2f}" for g in groups)
        + " |",
    ]
    for r in rows:
        by = r[key]["by_condition"]
        lines.append(f"| {r['label']} | " + " | ".join(f"{by[g]['psnr_output']:.2f}" for g in groups) + " |")
    return [*lines, ""]


def _notes(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    large = [r for r in rows if "teacher_fp32" in r]
    if large:
        lines.append(f"Larger teacher's own FP32 PSNR: {large[0]['teacher_fp32']['psnr_output']:.2f} dB.")
    lines.append(
        f"Degraded input: {rows[0]['cpu']['psnr_input']:.2f} dB / {rows[0]['cpu']['ssim_input']:.4f}."
    )
    reused = [r for r in rows if r.get("reused")]
    if reused:
        made = sorted(
            {
                f"git {r['checkpoint_meta'].get('git_commit', '?')} on {r['checkpoint_meta'].get('device', '?')}"
                for r in reused
            }
        )
        lines.append(
            f"Reused checkpoints (trained elsewhere with this schedule, checked by `--reuse`; {'; '.join(made)}): "
            + ", ".join(r["variant"] for r in reused)
            + "."
        )
    return lines


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
