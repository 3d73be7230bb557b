"""Training a streaming EFM on clips: the loss of one clip unrolled through the model's state.

A clip batch is ``N x T x 3 x H x W`` (degraded and clean). The first frame of each clip gets the
empty state (``EFM.empty_state``, as the runtimes feed after every reset), so the still path is
trained too; the state is carried through all T frames and gradients flow back through it
(truncated back-propagation through time: one clip). A model whose state is its previous output (``EFMConfig.aligned_state``)
gets that output warped to each next frame by the clip's flows (``data.clips.ClipPairs(flows=True)``:
the runtimes' own motion estimate, ``runtime.motion``), as the runtimes do. The per-frame losses
are reported separately: the first frame's is the still restoration, the later ones show what the
state adds.
"""

from __future__ import annotations

import torch
from torch import nn

from qdr_core.errors import ConfigError
from qdr_core.train.losses import CharbonnierLoss


def is_streaming(model: nn.Module) -> bool:
    """Whether ``model`` (or the model a DistributedDataParallel wraps) carries state."""
    return bool(getattr(getattr(getattr(model, "module", model), "cfg", None), "temporal", False))


def carries_output(model: nn.Module) -> bool:
    """Whether ``model``'s state is its previous output, aligned by flow (``state: output``)."""
    cfg = getattr(getattr(model, "module", model), "cfg", None)
    return bool(getattr(cfg, "aligned_state", False))


def warp_state(state: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``N x C x H x W`` state sampled at p + flow(p) (``flow``: ``N x 2 x H x W``, dx and dy in
    pixels; bicubic, edges replicated): the torch twin of ``runtime.motion.warp_state``."""
    h, w = state.shape[2:]
    ys, xs = torch.meshgrid(
        torch.arange(h, device=state.device, dtype=state.dtype),
        torch.arange(w, device=state.device, dtype=state.dtype),
        indexing="ij",
    )
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return nn.functional.grid_sample(state, grid, mode="bicubic", padding_mode="border", align_corners=True)


def carry(
    model: nn.Module, state: torch.Tensor | None, flows: torch.Tensor | None, t: int
) -> torch.Tensor | None:
    """The state frame ``t`` of a clip gets: the previous one, warped by ``flows[:, t]`` for a model
    that carries its output."""
    if state is None or not carries_output(model):
        return state
    if flows is None:
        raise ConfigError("a model that carries its output needs the clips' flows (ClipPairs(flows=True))")
    return warp_state(state, flows[:, t])


def clip_losses(
    model: nn.Module,
    degraded: torch.Tensor,
    clean: torch.Tensor,
    loss_fn: nn.Module,
    flows: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """The loss of every frame of a clip batch restored as one stream per clip (``flows``:
    ``N x T x 2 x H x W``, needed by a model that carries its output)."""
    if degraded.ndim != 5 or degraded.shape != clean.shape:
        raise ConfigError(
            f"expected N x T x 3 x H x W clips of equal shape, got {tuple(degraded.shape)} and {tuple(clean.shape)}"
        )
    if not is_streaming(model):
        raise ConfigError("clip training needs a streaming model (EFMConfig(temporal=True))")
    state = None
    losses = []
    for t in range(degraded.shape[1]):
        out, state = model(degraded[:, t], carry(model, state, flows, t))
        losses.append(loss_fn(out, clean[:, t]))
    return losses


def stream_train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    degraded: torch.Tensor,
    clean: torch.Tensor,
    loss_fn: nn.Module | None = None,
    grad_clip: float = 0.0,
    flows: torch.Tensor | None = None,
) -> dict[str, float]:
    """One optimiser step on a clip batch; the mean loss, the first frame's and the last frame's."""
    model.train()
    losses = clip_losses(model, degraded, clean, loss_fn or CharbonnierLoss(), flows)
    loss = torch.stack(losses).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return {"loss": loss.item(), "loss_first": losses[0].item(), "loss_last": losses[-1].item()}


class ClipRunner(nn.Module):
    """Runs ``N x T x 3 x H x W`` clip batches through a streaming model as streams (the empty
    state at the first frame): lets ``quant.calibrate`` observe the state path's real ranges."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor, flows: torch.Tensor | None = None) -> torch.Tensor:
        state, outs = None, []
        for t in range(clips.shape[1]):
            out, state = self.model(clips[:, t], carry(self.model, state, flows, t))
            outs.append(out)
        return torch.stack(outs, 1)


def validation_clips(task: str, count: int, size: int, n_frames: int, seed: int):
    """``count`` fixed evaluation clips (camera-motion clips of the eval photos, centre ``size``
    crops), degraded coherently: a list of (name, degraded frames, clean frames)."""
    from qdr_core.data.clips import ClipDegrader, photo_clips

    out = []
    # Photos shrunk to twice the crop: the crop then shows a good part of the scene, quickly.
    for k, clip in enumerate(photo_clips("eval", n_frames, seed, max_side=2 * size)[:count]):
        h, w = clip.frames[0].shape[:2]
        s = min(size, h, w) // 4 * 4
        y, x = (h - s) // 2, (w - s) // 2
        clean = [f[y : y + s, x : x + s] for f in clip.frames]
        degrader = ClipDegrader(task, seed * 1000 + k, len(clean))
        out.append((clip.name, [degrader(t, f) for t, f in enumerate(clean)], clean))
    return out


def evaluate_stream_model(model: nn.Module, clips) -> dict[str, float]:
    """Mean PSNR / SSIM over the later frames (all but the first) of validation clips restored as
    streams (``psnr_output``) and as stills (``psnr_still``: the same model, empty state every
    frame); ``psnr_stream_gain`` is what the state adds."""
    from qdr_core.metrics import mean_scores, score_restoration
    from qdr_core.runtime.stateful import StreamSession
    from qdr_core.runtime.torch_backend import TorchRuntime

    runtime = TorchRuntime.from_model(model)
    rows, still_rows = [], []
    for _, degraded, clean in clips:
        session = StreamSession(runtime)
        streamed = [session.infer(frame) for frame in degraded]
        for t in range(1, len(clean)):
            rows.append(score_restoration(clean[t], degraded[t], streamed[t]))
            still_rows.append(score_restoration(clean[t], degraded[t], runtime.infer(degraded[t])))
    scores = mean_scores(rows)
    still = mean_scores(still_rows)
    scores.update(psnr_still=still["psnr_output"], ssim_still=still["ssim_output"])
    scores["psnr_stream_gain"] = scores["psnr_output"] - scores["psnr_still"]
    return scores
