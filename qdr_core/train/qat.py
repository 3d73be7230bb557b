"""QDR training: QAT of a self-distilled student with DFD and LMR.

Order of one run: load the frozen FP32 teacher; student = fake-quant copy of the student init (the
teacher itself by default: FP32 self-distillation); calibrate (PTQ; a ``ptq`` run stops here); then
``iters`` steps of ``L = balance(rec, kd)``; save ``qat.pt``, the history and its plots.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from qdr_core.data.sources import photos
from qdr_core.distill import (
    DecoderFreeDistillation,
    FeatureKD,
    OutputKD,
    ProjectionAdapter,
    build_balancer,
    check_kd_mode,
)
from qdr_core.distill.losses import FEATURE_OF_MODE
from qdr_core.errors import ConfigError
from qdr_core.models.checkpoint import load_fp32_model, read_checkpoint, save_checkpoint
from qdr_core.models.efm import EFM
from qdr_core.paths import git_commit
from qdr_core.quant.calibrate import calibrate
from qdr_core.quant.convert import quantize_model
from qdr_core.quant.qat_model import qat_payload
from qdr_core.train.losses import ReconstructionLoss
from qdr_core.train.stream import ClipRunner, carries_output, carry, is_streaming, validation_clips
from qdr_core.train.trainer import (
    VAL_SEED,
    Budget,
    batch_stream,
    evaluate_model,
    synthetic_pairs,
    synthetic_validation_pairs,
    training_split,
)


@dataclass(frozen=True)
class QATConfig:
    """Args:
    task: lowlight | haze | rain | noise, or auto (every realistic condition).
    teacher: FP32 checkpoint of the frozen teacher.
    student_init: FP32 checkpoint the student starts from (default: the teacher = self-distillation).
    out: the QAT checkpoint to write.
    kd: none | output | decoder | dfd.
    balance: fixed | lmr | gradnorm.
    kd_weight: the distillation weight under ``fixed``.
    kd_distance: l1 | mse.
    ptq: calibrate only (no training).
    iters / batch_size / patch: QAT schedule.
    lr / lmr_lr: AdamW learning rate of weights and step sizes; Adam rate of the LMR magnitudes.
    calib_batches: calibration batches (of ``batch_size``).
    act_method / weight_method: calibration method of activation / weight scales.
    val_every / val_images / val_size: validation of the fake-quant model (0 = only at the end).
    log_every: cadence of history entries (losses, LMR weights, per-loss gradient norms).
    seed / threads: seeding and torch intra-op threads (0 = default).
    clip_frames: frames per clip when the student is a streaming EFM (its data, calibration and
        validation are clips, restored as streams).
    workers: processes that synthesise batches ahead of the optimiser (0 = in the loop).
    time_budget: wall-clock seconds for the QAT steps (0 = none): the cosine follows the larger of
        step and time progress, and the run stops when the time is up.
    device: ``auto`` (the GPU when torch sees one), ``cpu`` or ``cuda``; calibration runs on the CPU.
    data: ``benchmark`` or ``realistic`` (as ``TrainConfig.data``).
    mix: for ``auto``: the condition mix of calibration and QAT (as ``TrainConfig.mix``; empty =
        ``ConditionMix()``): give the FP32 run's mix so QAT sees what the teacher learned.
    base_qat: a QAT checkpoint of the single-frame network a streaming student extends
        (``efm-s-recur`` over ``models/<task>/qat.pt``): after calibration its weights and step
        sizes replace the student's where names match, and stay frozen, so the still path is
        exactly the shipped INT8 one and QAT trains only what is new (the fusion).
    """

    task: str = "lowlight"
    teacher: str = "models/lowlight/fp32.pt"
    student_init: str | None = None
    out: str = "models/lowlight/qat.pt"
    kd: str = "dfd"
    balance: str = "lmr"
    kd_weight: float = 1.0
    kd_distance: str = "l1"
    ptq: bool = False
    iters: int = 300
    batch_size: int = 8
    patch: int = 96
    lr: float = 1e-4
    lmr_lr: float = 1e-2
    calib_batches: int = 8
    act_method: str = "mse"
    weight_method: str = "max"
    val_every: int = 0
    val_images: int = 4
    val_size: int = 256
    log_every: int = 25
    seed: int = 0
    threads: int = 0
    clip_frames: int = 5
    workers: int = 0
    time_budget: float = 0.0
    device: str = "auto"
    data: str = "benchmark"
    mix: str = ""
    base_qat: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def build_kd_loss(mode: str, distance: str, student: EFM, teacher: EFM) -> nn.Module | None:
    """The distillation loss of ``mode``, with a projection adapter when widths differ."""
    check_kd_mode(mode)
    if mode == "none":
        return None
    if mode == "output":
        return OutputKD(distance)
    # Bottleneck has 2*width channels, decoder features width channels.
    factor = 2 if mode == "dfd" else 1
    s_ch, t_ch = factor * student.cfg.width, factor * teacher.cfg.width
    adapter = ProjectionAdapter(s_ch, t_ch) if s_ch != t_ch else None
    if mode == "dfd":
        return DecoderFreeDistillation(distance, adapter)
    return FeatureKD(FEATURE_OF_MODE[mode], distance, adapter)


def kd_term(kd_loss: nn.Module, mode: str, s_out, s_feat, t_out, t_feat) -> torch.Tensor:
    return kd_loss(s_out, t_out) if mode == "output" else kd_loss(s_feat, t_feat)


def grad_norm(loss: torch.Tensor, params: list[nn.Parameter]) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return float(torch.sqrt(sum((g.detach() ** 2).sum() for g in grads if g is not None)))


def qat_step(
    student: EFM,
    teacher: EFM | None,
    batch: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    rec_loss: nn.Module,
    kd_loss: nn.Module | None,
    kd_mode: str,
    balancer: nn.Module,
    measure_grads: bool = False,
    grad_clip: float = 1.0,
) -> dict[str, float]:
    """One QAT step; returns floats (losses, balance weights, optionally per-loss gradient norms)."""
    student.train()
    degraded, clean, *flows = batch
    optimizer.zero_grad(set_to_none=True)
    losses = frame_losses(student, teacher, degraded, clean, rec_loss, kd_loss, kd_mode, *flows)
    total, weights = balancer(losses)
    logs = {"loss": float(total.detach()), **{f"loss_{k}": float(v.detach()) for k, v in losses.items()}}
    logs.update({f"w_{k}": v for k, v in weights.items()})
    if measure_grads and len(losses) > 1:
        params = [p for p in student.parameters() if p.requires_grad]
        norms = {k: grad_norm(v, params) for k, v in losses.items()}
        logs.update({f"gnorm_{k}": v for k, v in norms.items()})
        if hasattr(balancer, "update"):
            balancer.update(norms)
    total.backward()
    logs["grad_norm"] = float(
        nn.utils.clip_grad_norm_(student.parameters(), grad_clip if grad_clip > 0 else math.inf)
    )
    optimizer.step()
    return logs


def frame_losses(
    student: EFM,
    teacher: EFM | None,
    degraded: torch.Tensor,
    clean: torch.Tensor,
    rec_loss: nn.Module,
    kd_loss: nn.Module | None,
    kd_mode: str,
    flows: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """``rec`` (and ``kd``) of a still batch, or averaged over the frames of a clip batch
    (``N x T x 3 x H x W``) that student and teacher each restore as a stream (the empty state first;
    ``flows`` align a model's previous output, ``train.stream.carry``)."""
    clips = degraded if degraded.ndim == 5 else degraded[:, None]
    targets = clean if clean.ndim == 5 else clean[:, None]
    s_state = t_state = None
    sums: dict[str, torch.Tensor] = {}
    for t in range(clips.shape[1]):
        s_out, s_feat = student(clips[:, t], carry(student, s_state, flows, t), return_features=True)
        frame = {"rec": rec_loss(s_out, targets[:, t])}
        if kd_loss is not None:
            with torch.no_grad():
                t_out, t_feat = teacher(clips[:, t], carry(teacher, t_state, flows, t), return_features=True)
            frame["kd"] = kd_term(kd_loss, kd_mode, s_out, s_feat, t_out, t_feat)
            t_state = t_feat.get("state")
        s_state = s_feat.get("state")
        sums = {k: sums[k] + v if k in sums else v for k, v in frame.items()}
    return {k: v / clips.shape[1] for k, v in sums.items()}


def plot_qat_history(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [h for h in history if "loss_rec" in h]
    if not rows:
        return
    steps = [h["step"] for h in rows]
    names = [k[5:] for k in rows[0] if k.startswith("loss_")]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
    for n in names:
        axes[0].plot(steps, [h[f"loss_{n}"] for h in rows], label=n)
        axes[1].plot(steps, [h.get(f"w_{n}", 1.0) for h in rows], label=f"w_{n}")
        if f"gnorm_{n}" in rows[0]:
            axes[2].plot(
                steps, [h[f"gnorm_{n}"] * h.get(f"w_{n}", 1.0) for h in rows], label=f"{n} (weighted)"
            )
            axes[2].plot(steps, [h[f"gnorm_{n}"] for h in rows], ls="--", label=f"{n} (raw)")
    axes[0].set(xlabel="step", ylabel="loss", yscale="log", title="losses")
    axes[1].set(xlabel="step", ylabel="weight", yscale="log", title="balance weights")
    axes[2].set(xlabel="step", ylabel="||grad||", yscale="log", title="per-loss gradient norm")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _validation(cfg: QATConfig, streaming: bool) -> list:
    if streaming:
        return validation_clips(cfg.task, cfg.val_images, cfg.val_size, max(cfg.clip_frames, 4), VAL_SEED)
    return synthetic_validation_pairs(cfg.task, cfg.val_images, cfg.val_size)


def _calibrated_student(cfg: QATConfig, student_fp32: EFM, data_of) -> EFM:
    """The fake-quant copy of ``student_fp32`` with PTQ scales from ``cfg.calib_batches`` batches
    (clips run as streams for a streaming student, so the state path sees real states)."""
    student = quantize_model(student_fp32, cfg.act_method, cfg.weight_method)
    calib_data = data_of(cfg.seed + 202)
    target = ClipRunner(student) if is_streaming(student) else student
    inputs = (calib_data.batch(i, cfg.batch_size) for i in range(cfg.calib_batches))
    # Clips of a model that carries its output come with their flows.
    calibrate(target, ((torch.from_numpy(b[0]), *map(torch.from_numpy, b[2:])) for b in inputs))
    if cfg.base_qat:
        adopt_frozen(student, cfg.base_qat)
    return student


def adopt_frozen(student: EFM, path: str) -> list[str]:
    """Load the tensors of QAT checkpoint ``path`` that ``student`` has too (same name and shape)
    and freeze those parameters; the names loaded. Refuses a checkpoint that shares nothing."""
    payload = read_checkpoint(path)
    if payload.get("kind") != "qat":
        raise ConfigError(f"--base-qat {path}: expected a QAT checkpoint, got kind {payload.get('kind')!r}")
    own = student.state_dict()
    shared = {k: v for k, v in payload["state_dict"].items() if k in own and own[k].shape == v.shape}
    if not shared:
        raise ConfigError(f"--base-qat {path}: no tensor matches the student's")
    student.load_state_dict(shared, strict=False)
    # Every name of a parameter: a quantizer shared by two consumers (``shared_inputs``) has two,
    # and the checkpoint may know it by either.
    for name, param in student.named_parameters(remove_duplicate=False):
        if name in shared:
            param.requires_grad_(False)
    return sorted(shared)


def _data_source(cfg: QATConfig, streaming: bool, train_images: list[np.ndarray] | None, flows: bool = False):
    """``seed -> training data``: stills (``SyntheticPairs``) or, for a streaming student, clips
    (``ClipPairs``; the training videos too unless ``train_images`` are given; with their flows
    for a student that carries its output)."""
    split = "train" if streaming else training_split(cfg.task, cfg.data)
    images = train_images if train_images is not None else [p.load() for p in photos(split)]
    if not streaming:
        return lambda seed: synthetic_pairs(cfg.task, images, cfg.patch, seed, cfg.data, cfg.mix)
    from qdr_core.data.clips import ClipPairs, training_videos

    videos = training_videos() if train_images is None else []
    return lambda seed: ClipPairs(cfg.task, images, videos, cfg.patch, cfg.clip_frames, seed, flows=flows)


def _optimizer(
    cfg: QATConfig, student: EFM, kd_loss: nn.Module | None, balancer: nn.Module
) -> torch.optim.Optimizer:
    """AdamW over the student (and KD adapters) at ``cfg.lr``, the LMR magnitudes at ``cfg.lmr_lr``."""
    params = list(student.parameters()) + (list(kd_loss.parameters()) if kd_loss is not None else [])
    groups = [{"params": params, "lr": cfg.lr, "weight_decay": 0.0}]
    if list(balancer.parameters()):
        groups.append({"params": list(balancer.parameters()), "lr": cfg.lmr_lr, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, betas=(0.9, 0.99))


def _log_entry(logs: dict[str, float], running: list[dict[str, float]]) -> dict[str, float]:
    """Losses and gradient norms averaged since the last entry; other values as of this step."""
    entry = {}
    for key in logs:
        if key.startswith(("loss", "grad_norm")):
            entry[key] = float(np.mean([r[key] for r in running if key in r]))
        else:
            entry[key] = logs[key]
    return entry


def _progress_bar(cfg: QATConfig):
    from tqdm import tqdm

    return tqdm(
        total=cfg.iters, desc=f"qat {cfg.task} kd={cfg.kd} {cfg.balance}", unit="it", dynamic_ncols=True
    )


def _write_outputs(out: Path, student: EFM, meta: dict[str, Any], history: list) -> dict[str, Any]:
    """``qat.pt`` and its history and curves beside it."""
    student.eval()
    save_checkpoint(out, qat_payload(student, meta))
    out.with_suffix(".history.json").write_text(json.dumps(history, indent=1))
    plot_qat_history(history, out.with_suffix(".curves.png"))
    return {"checkpoint": str(out), "history": history, "model": student}


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no GPU here")
    return torch.device(name)


def _qat_loop(
    cfg: QATConfig,
    student: EFM,
    teacher: EFM,
    kd_loss: nn.Module | None,
    balancer: nn.Module,
    data: Any,
    val: list,
    device: torch.device,
    progress: bool,
) -> tuple[list[dict[str, Any]], int]:
    """The QAT steps on ``device``: (history entries, steps done; fewer than ``iters`` when the
    time is up). ``data`` is a pair stream (``batch(i, n)``), ``val`` its fixed validation set."""
    optimizer = _optimizer(cfg, student, kd_loss, balancer)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    rec_loss = ReconstructionLoss("charbonnier")
    bar = _progress_bar(cfg) if progress else None
    history, running, budget, done = [], [], Budget(cfg.time_budget), 0
    t0 = time.time()
    batches = batch_stream(data, cfg.batch_size, 0, cfg.iters, cfg.workers, device.type == "cuda")
    for step, tensors in enumerate(batches):
        # Cosine decay of the weights' rate; LMR magnitudes keep a constant rate.
        factor = 0.5 * (1 + math.cos(math.pi * min(1.0, max(step / max(1, cfg.iters), budget.fraction()))))
        optimizer.param_groups[0]["lr"] = base_lrs[0] * (0.01 + 0.99 * factor)
        done = step + 1
        last = done == cfg.iters or budget.expired()
        # Gradient-norm balancing needs frequent measurements; otherwise only at log steps.
        every = 5 if getattr(balancer, "needs_grad_norms", False) else cfg.log_every
        log_now = done % cfg.log_every == 0 or last or step == 0
        batch = tuple(t.to(device, non_blocking=True) for t in tensors)
        logs = qat_step(
            student, teacher, batch, optimizer, rec_loss, kd_loss, cfg.kd, balancer,
            measure_grads=log_now or done % every == 0,
        )  # fmt: skip
        running.append(logs)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(rec=f"{logs['loss_rec']:.4f}", kd=f"{logs.get('loss_kd', 0):.4f}")
        if log_now:
            history.append({"step": done, "seconds": time.time() - t0, **_log_entry(logs, running)})
            running = []
        if val and ((cfg.val_every > 0 and done % cfg.val_every == 0) or last):
            scores = evaluate_model(student, val)
            history.append({"step": done, **scores})
            if bar is not None:
                bar.write(
                    f"step {done}: val PSNR {scores['psnr_input']:.2f} -> {scores['psnr_output']:.2f} dB"
                )
        if last:
            break
    if bar is not None:
        bar.close()
    return history, done


def fit_qat(
    cfg: QATConfig, progress: bool = True, train_images: list[np.ndarray] | None = None
) -> dict[str, Any]:
    """Run PTQ or QAT per ``cfg``; writes ``cfg.out`` (+ ``.history.json`` / ``.curves.png`` beside it)."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = _device(cfg.device)
    teacher, _ = load_fp32_model(cfg.teacher)
    teacher.requires_grad_(False)
    init_path = cfg.student_init or cfg.teacher
    student_fp32, init_payload = load_fp32_model(init_path)
    streaming = is_streaming(student_fp32)
    data_of = _data_source(cfg, streaming, train_images, carries_output(student_fp32))
    t0 = time.time()
    student = _calibrated_student(cfg, student_fp32, data_of)
    calib_seconds = time.time() - t0
    meta = {
        "task": cfg.task,
        "teacher": cfg.teacher,
        "student_init": init_path,
        "preset": init_payload.get("meta", {}).get("preset", ""),
        "config": json.dumps(cfg.to_dict()),
        "git_commit": git_commit(),
        "method": "ptq" if cfg.ptq else f"qat kd={cfg.kd} balance={cfg.balance}",
    }
    out = Path(cfg.out)
    history: list[dict[str, Any]] = [{"step": 0, "calib_seconds": calib_seconds}]
    if cfg.ptq:
        save_checkpoint(out, qat_payload(student.eval(), {**meta, "step": 0}))
        return {"checkpoint": str(out), "history": history, "model": student}

    kd_loss = build_kd_loss(cfg.kd, cfg.kd_distance, student, teacher)
    names = ("rec",) if kd_loss is None else ("rec", "kd")
    balancer = build_balancer(cfg.balance, names, cfg.kd_weight)
    for module in (student, teacher, kd_loss, balancer):
        if module is not None:
            module.to(device)
    val = _validation(cfg, streaming) if cfg.val_every >= 0 else []
    t0 = time.time()
    data = data_of(cfg.seed + 101)
    steps, done = _qat_loop(cfg, student, teacher, kd_loss, balancer, data, val, device, progress)
    history += steps
    meta.update(step=done, train_seconds=round(time.time() - t0, 1), device=device.type)
    return _write_outputs(out, student.cpu(), meta, history)


def check_config(cfg: QATConfig) -> QATConfig:
    check_kd_mode(cfg.kd)
    if cfg.balance not in ("fixed", "lmr", "gradnorm"):
        raise ConfigError(f"unknown --balance {cfg.balance!r}; choose fixed, lmr or gradnorm")
    if cfg.patch % 4:
        raise ConfigError(f"--patch must be a multiple of 4, got {cfg.patch}")
    return cfg
