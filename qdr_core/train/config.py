"""FP32 training configuration (a YAML file maps onto these fields one to one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Args:
    task: lowlight | haze | rain | noise, or auto (every realistic condition, ``ConditionPairs``).
    preset: EFM preset name (efm-t, efm-s, efm-m).
    ldg: learnable degradation gating on (False = plain residual blocks, the LDG ablation).
    out_dir: run folder: checkpoints, curves, history.
    iters: optimisation steps.
    batch_size / patch: crops per step and their size (multiple of 4).
    accum_steps: micro-batches of ``batch_size`` crops whose gradients are averaged into one
        optimiser step (an effective batch of ``batch_size * accum_steps``): GPU-sized batches on a
        CPU, whose small batches pull a shared network towards whatever the last few crops held.
        ``iters``, ``warmup``, ``val_every`` and ``save_every`` count optimiser steps.
    lr / weight_decay / warmup: AdamW with linear warm-up then cosine decay to ``lr * min_lr_ratio``.
    loss / ssim_weight: reconstruction loss (charbonnier | l1) and weight of the (1 - SSIM) term.
    val_every / val_images / val_size: validation cadence, image count and centre-crop size.
    save_every: checkpoint cadence (``last.pt``, atomic).
    seed: seeds model init and the data stream.
    threads: torch intra-op threads (0 = torch default).
    input_dir / target_dir: train on real paired folders instead of synthesised photos.
    grad_clip: max gradient norm (0 = off).
    workers: processes that synthesise batches ahead of the optimiser (0 = in the training loop;
        on a GPU machine, most of its cores: synthesis, not the model, is then the bottleneck).
    init: start from the weights of this FP32 checkpoint (same preset, or one it extends: efm-s ->
        efm-s-ctx); new modules keep their initialisation.
    clip_frames: frames per training clip of a streaming preset (``efm-s-stream``): its batches are
        clips (``data.clips.ClipPairs``), validated on as many-frame eval clips.
    time_budget: wall-clock seconds for the run (0 = none): the cosine schedule follows the larger
        of step and time progress and the run stops when the time is up (``iters`` is then an
        upper bound); for a lent GPU of fixed minutes. Single-process runs only. ``--resume``
        continues the clock where the checkpoint left it (time spent is saved in ``last.pt``).
    mix: for ``auto``: the condition mix (``ConditionMix.parse``, e.g.
        ``clean=0.25,single=0.5,effects=fog+rain+night+sensor+sensor``; ``bench=0.2`` makes a fifth
        of the samples the paper's benchmark degradations); empty = ``ConditionMix()``.
    train_only: comma-separated parameter-name prefixes to train, the rest frozen (empty: all);
        ``output_fusion`` trains a streaming ``efm-s-recur``'s fusion over frozen single-frame weights.
    data: ``benchmark`` (the task's paper degradation) or ``realistic``: a specialist also learns
        its realistic condition (``tasks.REALISTIC_EFFECT``) and clean frames, on ``train_all``.
    """

    task: str = "lowlight"
    preset: str = "efm-s"
    ldg: bool = True
    out_dir: str = "runs/lowlight"
    iters: int = 4000
    batch_size: int = 8
    accum_steps: int = 1
    patch: int = 96
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    min_lr_ratio: float = 0.01
    loss: str = "charbonnier"
    ssim_weight: float = 0.0
    val_every: int = 500
    val_images: int = 4
    val_size: int = 256
    save_every: int = 250
    seed: int = 0
    threads: int = 0
    input_dir: str | None = None
    target_dir: str | None = None
    grad_clip: float = 1.0
    init: str | None = None
    workers: int = 0
    clip_frames: int = 5
    time_budget: float = 0.0
    data: str = "benchmark"
    mix: str = ""
    train_only: str = ""

    def to_dict(self) -> dict:
        return asdict(self)
