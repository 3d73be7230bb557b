"""FP32 training loop: a plain step function plus a loop that logs, validates and saves in a fixed
order. Runs single-process on CPU by default and under ``torchrun`` (DistributedDataParallel)
without code changes: each rank draws its own crops and rank 0 validates and writes files.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from qdr_core.data.datasets import (
    AUTO_VAL_CONDITIONS,
    ConditionPairs,
    PairedFolder,
    PairedFolderPairs,
    SpecialistPairs,
    SyntheticPairs,
    fixed_condition_pairs,
    fixed_eval_pairs,
)
from qdr_core.data.degrade.pipeline import ConditionMix
from qdr_core.data.sources import photos
from qdr_core.errors import ConfigError
from qdr_core.metrics import mean_scores, score_restoration
from qdr_core.models import build_model, preset_config
from qdr_core.models.checkpoint import init_from, model_payload, read_checkpoint, save_checkpoint
from qdr_core.paths import git_commit
from qdr_core.tasks import AUTO_TASK, DATA_KINDS, REALISTIC_EFFECT
from qdr_core.train.config import TrainConfig
from qdr_core.train.losses import ReconstructionLoss
from qdr_core.train.stream import evaluate_stream_model, stream_train_step, validation_clips

VAL_SEED = 1234


def cosine_lr(step: int, cfg: TrainConfig, time_fraction: float = 0.0) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine to ``min_lr_ratio``. Progress is the
    larger of the step count's and ``time_fraction`` (the share of ``cfg.time_budget`` spent), so a
    time-budgeted run anneals fully whatever its speed."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(1.0, max((step - cfg.warmup) / max(1, cfg.iters - cfg.warmup), time_fraction))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class Budget:
    """Wall-clock budget of a run (``seconds <= 0``: none): the share spent, and whether it is up.
    ``spent``: seconds already used by an earlier process of the same run (a resumed run)."""

    def __init__(self, seconds: float, spent: float = 0.0) -> None:
        self.seconds = seconds
        self.resume_at(spent)

    def spent(self) -> float:
        return time.time() - self.start

    def resume_at(self, spent: float) -> None:
        """Continue the clock from ``spent`` seconds (what the resumed checkpoint had used)."""
        self.start = time.time() - spent

    def fraction(self) -> float:
        return self.spent() / self.seconds if self.seconds > 0 else 0.0

    def expired(self) -> bool:
        return self.seconds > 0 and self.fraction() >= 1.0


def train_step(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    grad_clip: float = 0.0,
) -> dict[str, float]:
    """One optimisation step on ``(degraded, clean)``; returns floats for logging. Clip batches
    (``N x T x 3 x H x W``, a streaming model) are unrolled through the state (``stream_train_step``)."""
    degraded, clean, *flows = batch
    if degraded.ndim == 5:
        model.train()
        return stream_train_step(model, optimizer, degraded, clean, loss_fn, grad_clip, *flows)
    return accumulated_step(model, [batch], optimizer, loss_fn, grad_clip)


def accumulated_step(
    model: nn.Module,
    batches: list[tuple[torch.Tensor, ...]],
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    grad_clip: float = 0.0,
) -> dict[str, float]:
    """One optimisation step on the mean loss of equal-sized still ``batches`` (micro-batches whose
    gradients are accumulated: the step of one batch holding all their crops); logging floats."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for degraded, clean, *_ in batches:
        loss = loss_fn(model(degraded), clean) / len(batches)
        loss.backward()
        total += float(loss.detach())
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else float("inf"))
    optimizer.step()
    return {"loss": total, "grad_norm": float(grad_norm)}


def grouped(batches, size: int):
    """Consecutive groups of ``size`` items of ``batches`` (a last, short group is dropped)."""
    group = []
    for item in batches:
        group.append(item)
        if len(group) == size:
            yield group
            group = []


def evaluate_model(model: nn.Module, pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Mean PSNR / SSIM of ``model`` on (name, degraded, clean) pairs (any size: run through the
    torch runtime, so padded, cropped and clipped as a model file would be). Clips (degraded and
    clean as lists of frames) are restored as streams: ``evaluate_stream_model``."""
    from qdr_core.runtime.torch_backend import TorchRuntime

    if pairs and isinstance(pairs[0][1], list):
        return evaluate_stream_model(model, pairs)

    runtime = TorchRuntime.from_model(model)
    return mean_scores(
        score_restoration(clean, degraded, runtime.infer(degraded)) for _, degraded, clean in pairs
    )


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(size, h, w) // 4 * 4
    y, x = (h - s) // 2, (w - s) // 2
    return image[y : y + s, x : x + s]


class _Batches(torch.utils.data.Dataset):
    """Batch ``i`` of a pair stream as tensors: lets a DataLoader's worker processes synthesise
    batches ahead of the GPU. Batches depend only on their index, so the stream is the same with
    any number of workers."""

    def __init__(self, data, batch_size: int, start: int, stop: int) -> None:
        self.data, self.batch_size, self.start, self.stop = data, batch_size, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        """``(degraded, clean)``, plus the flows of clips for a model that carries its output."""
        return tuple(torch.from_numpy(a) for a in self.data.batch(self.start + i, self.batch_size))


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def batch_stream(data, batch_size: int, start: int, stop: int, workers: int = 0, pin_memory: bool = False):
    """Batches ``start .. stop - 1`` in order; ``workers > 0`` makes them in that many processes."""
    batches = _Batches(data, batch_size, start, stop)
    if workers <= 0:
        return (batches[i] for i in range(len(batches)))
    loader = torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=4,
        # Workers must not fight the training threads for the cores they synthesise on.
        worker_init_fn=_one_thread,
    )
    return iter(loader)


def training_split(task: str, data: str = "benchmark") -> str:
    """The photo split a task trains on: ``auto`` and realistic specialists use every training
    photo (``train_all``)."""
    return "train_all" if task == AUTO_TASK or data == "realistic" else "train"


def synthetic_pairs(
    task: str, images: list[np.ndarray], patch: int, seed: int, data: str = "benchmark", mix: str = ""
) -> SyntheticPairs | ConditionPairs | SpecialistPairs:
    """The endless training pairs of ``task``: its benchmark degradation (``data: realistic``: plus
    its realistic condition and clean frames), or for ``auto`` the realistic condition mix (clean,
    single effects, mixtures; ``mix``: its shares, ``ConditionMix.parse``)."""
    if data not in DATA_KINDS:
        raise ConfigError(f"unknown data {data!r}; choose {', '.join(DATA_KINDS)}")
    if task == AUTO_TASK:
        return ConditionPairs(images, patch, seed, ConditionMix.parse(mix) if mix else None)
    if mix:
        raise ConfigError("--mix is the auto model's condition mix; a specialist's is --data realistic")
    if data == "realistic":
        return SpecialistPairs(task, REALISTIC_EFFECT[task], images, patch, seed)
    return SyntheticPairs(task, images, patch, seed)


def synthetic_validation_pairs(task: str, count: int, size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Fixed validation pairs: centre crops of the first ``count`` ``eval`` photos, degraded with
    seed ``VAL_SEED`` (for ``auto``: under each of ``AUTO_VAL_CONDITIONS``)."""
    eval_photos = photos("eval")[:count]
    clean = [center_crop(p.load(), size) for p in eval_photos]
    names = [p.name for p in eval_photos]
    if task == AUTO_TASK:
        return fixed_condition_pairs(AUTO_VAL_CONDITIONS, clean, VAL_SEED, names)
    return fixed_eval_pairs(task, clean, VAL_SEED, names)


def _dist_info() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _streaming(cfg: TrainConfig) -> bool:
    return bool(preset_config(cfg.preset).temporal)


def _training_data(cfg: TrainConfig, rank: int, images: list[np.ndarray] | None = None):
    if _streaming(cfg):
        if cfg.input_dir or cfg.target_dir:
            raise ConfigError(f"{cfg.preset} trains on clips; --input-dir/--target-dir are stills")
        from qdr_core.data.clips import ClipPairs, training_videos

        images = [p.load() for p in photos("train")]
        return ClipPairs(
            cfg.task,
            images,
            training_videos(),
            cfg.patch,
            cfg.clip_frames,
            cfg.seed + 7919 * rank,
            flows=preset_config(cfg.preset).aligned_state,
        )
    if cfg.input_dir or cfg.target_dir:
        return PairedFolderPairs(
            PairedFolder(cfg.input_dir, cfg.target_dir), cfg.patch, cfg.seed + 7919 * rank
        )
    if images is None:
        images = [p.load() for p in photos(training_split(cfg.task, cfg.data))]
    return synthetic_pairs(cfg.task, images, cfg.patch, cfg.seed + 7919 * rank, cfg.data, cfg.mix)


def _validation_pairs(cfg: TrainConfig) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if cfg.input_dir or cfg.target_dir:
        folder = PairedFolder(cfg.input_dir, cfg.target_dir)
        picked = [folder[i] for i in range(min(cfg.val_images, len(folder)))]
        return [
            (folder.names[i], center_crop(d, cfg.val_size), center_crop(c, cfg.val_size))
            for i, (d, c) in enumerate(picked)
        ]
    if _streaming(cfg):
        return validation_clips(cfg.task, cfg.val_images, cfg.val_size, max(cfg.clip_frames, 4), VAL_SEED)
    return synthetic_validation_pairs(cfg.task, cfg.val_images, cfg.val_size)


def plot_history(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = [h["step"] for h in history if "loss" in h]
    ax_loss.plot(steps, [h["loss"] for h in history if "loss" in h])
    ax_loss.set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
    val = [h for h in history if "psnr_output" in h]
    if val:
        ax_psnr.plot([h["step"] for h in val], [h["psnr_output"] for h in val], marker="o", label="restored")
        ax_psnr.plot([h["step"] for h in val], [h["psnr_input"] for h in val], ls="--", label="degraded")
        ax_psnr.legend()
    ax_psnr.set(xlabel="step", ylabel="PSNR (dB)", title="validation")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def freeze_except(model: nn.Module, prefixes: str) -> list[nn.Parameter]:
    """Freeze every parameter whose name starts with none of the comma-separated ``prefixes``
    (empty: train everything); the parameters left to train. ``output_fusion`` trains only the
    fusion of a streaming model on top of its single-frame network's weights."""
    wanted = tuple(p for p in prefixes.split(",") if p)
    if not wanted:
        return list(model.parameters())
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(wanted))
        if param.requires_grad:
            trainable.append(param)
    if not trainable:
        names = sorted({n.split(".")[0] for n, _ in model.named_parameters()})
        raise ConfigError(
            f"--train-only {prefixes!r} matches no parameter; top-level modules: {', '.join(names)}"
        )
    return trainable


def _model_and_optimizer(
    cfg: TrainConfig, device: torch.device, verbose: bool, budget: Budget | None = None
) -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The EFM of ``cfg`` (optionally initialised from ``cfg.init``) on ``device``, AdamW and the
    cosine schedule (following ``budget``'s clock too, when given)."""
    model = build_model(preset_config(cfg.preset, ldg=cfg.ldg))
    if cfg.init:
        fresh = init_from(model, cfg.init)
        if verbose:
            print(f"initialised from {cfg.init}; {len(fresh)} tensors keep their own init")
    model = model.to(device)
    trainable = freeze_except(model, cfg.train_only)
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    clock = budget.fraction if budget is not None else (lambda: 0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: cosine_lr(s, cfg, clock()))
    return model, optimizer, scheduler


def _resume(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, list[dict[str, Any]], float]:
    """Load the resume state in ``path`` into the three objects; returns (step, history, seconds of
    the time budget already spent)."""
    state = read_checkpoint(path)
    model.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["meta"]["optimizer"])
    scheduler.load_state_dict(state["meta"]["scheduler"])
    meta = state["meta"]
    return int(meta["step"]), json.loads(meta["history"]), float(meta.get("seconds_spent", 0.0))


def _write_outputs(model: nn.Module, out: Path, meta: dict[str, Any], history: list) -> dict[str, Any]:
    """``fp32.pt``, ``history.json`` and ``curves.png`` of a finished run."""
    model.eval()
    save_checkpoint(out / "fp32.pt", model_payload(model.cpu(), "fp32", meta))
    (out / "history.json").write_text(json.dumps(history, indent=1))
    if history:
        plot_history(history, out / "curves.png")
    return {"history": history, "checkpoint": str(out / "fp32.pt")}


def _log_step(history: list, running: list, done: int, lr: float, t0: float) -> None:
    """A history entry: the mean training loss since the last one."""
    history.append({"step": done, "loss": float(np.mean(running)), "lr": lr, "seconds": time.time() - t0})
    running.clear()


def _prepare_run(cfg: TrainConfig, rank: int, world: int) -> torch.device:
    """Check what a run of ``cfg`` cannot do, set threads and seed; the device of this rank."""
    if cfg.time_budget > 0 and world > 1:
        raise ConfigError("--time-budget needs a single-process run (ranks would stop at different steps)")
    if cfg.accum_steps < 1:
        raise ConfigError(f"--accum-steps must be >= 1, got {cfg.accum_steps}")
    if cfg.accum_steps > 1 and _streaming(cfg):
        raise ConfigError(
            f"{cfg.preset} trains on clips unrolled through its state; --accum-steps needs stills"
        )
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = device.type == "cuda"
    return device


def _progress_bar(cfg: TrainConfig, start: int):
    from tqdm import tqdm

    return tqdm(total=cfg.iters, initial=start, desc=f"train {cfg.task}", unit="it", dynamic_ncols=True)


def fit(
    cfg: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    train_images: list[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Train an EFM per ``cfg``; writes ``last.pt`` (resume state), ``fp32.pt``, history and curves.
    ``train_images``: clean photos to synthesise from instead of the task's photo split. With a
    ``time_budget`` the run may end before ``iters``: the result's ``steps`` says where."""
    rank, world = _dist_info()
    device = _prepare_run(cfg, rank, world)
    out = Path(cfg.out_dir)
    budget = Budget(cfg.time_budget)
    model, optimizer, scheduler = _model_and_optimizer(cfg, device, rank == 0, budget)
    start, history = 0, []
    if resume and (out / "last.pt").exists():
        start, history, spent = _resume(out / "last.pt", model, optimizer, scheduler)
        budget.resume_at(spent)
    train_model = nn.parallel.DistributedDataParallel(model) if world > 1 else model

    data = _training_data(cfg, rank, train_images)
    val_pairs = _validation_pairs(cfg) if rank == 0 else []
    loss_fn = ReconstructionLoss(cfg.loss, cfg.ssim_weight)
    meta = {
        "task": cfg.task,
        "preset": cfg.preset,
        "config": json.dumps(cfg.to_dict()),
        "git_commit": git_commit(),
    }

    def save_state(step: int) -> None:
        extra = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": json.dumps(history),
            "seconds_spent": budget.spent(),
        }
        save_checkpoint(out / "last.pt", model_payload(model, "fp32", {**meta, **extra}))

    bar = _progress_bar(cfg, start) if progress and rank == 0 else None
    t0, running, done = time.time(), [], start
    accum = cfg.accum_steps
    micro = batch_stream(
        data, cfg.batch_size, start * accum, cfg.iters * accum, cfg.workers, device.type == "cuda"
    )
    for step, group in enumerate(grouped(micro, accum), start):
        batches = [tuple(t.to(device, non_blocking=True) for t in tensors) for tensors in group]
        if accum == 1:  # train_step also unrolls a streaming model's clips
            logs = train_step(train_model, batches[0], optimizer, loss_fn, cfg.grad_clip)
        else:
            logs = accumulated_step(train_model, batches, optimizer, loss_fn, cfg.grad_clip)
        scheduler.step()
        running.append(logs["loss"])
        done = step + 1
        last = done == cfg.iters or budget.expired()
        if rank == 0:
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if done % 25 == 0 or last:
                _log_step(history, running, done, scheduler.get_last_lr()[0], t0)
            if (cfg.val_every > 0 and done % cfg.val_every == 0) or last:
                scores = evaluate_model(model, val_pairs)
                history.append({"step": done, **scores})
                line = f"step {done}: val PSNR {scores['psnr_input']:.2f} -> {scores['psnr_output']:.2f} dB"
                bar.write(line) if bar is not None else print(line, flush=True)
            if done % cfg.save_every == 0 or last:
                save_state(done)
        if last:
            break
    if bar is not None:
        bar.close()

    result: dict[str, Any] = {"out_dir": str(out), "steps": done}
    if rank == 0:
        result.update(_write_outputs(model, out, {**meta, "step": done}, history))
    if world > 1:
        dist.barrier()
    return result
