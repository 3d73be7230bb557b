"""Training a streaming EFM on clips: the loss of one clip unrolled through the model's state.

A clip batch is ``N x T x 3 x H x W`` (degraded and clean). The first frame of each clip gets the
zero state (as the runtimes feed after every reset), so the still path is trained too; the state is
carried through all T frames and gradients flow back through it (truncated back-propagation
through time: one clip). The per-frame losses are reported separately: the first frame's is the
still restoration, the later ones show what the state adds.
"""

from __future__ import annotations

import torch
from torch import nn

from qdr_core.errors import ConfigError
from qdr_core.train.losses import CharbonnierLoss


def clip_losses(
    model: nn.Module, degraded: torch.Tensor, clean: torch.Tensor, loss_fn: nn.Module
) -> list[torch.Tensor]:
    """The loss of every frame of a clip batch restored as one stream per clip."""
    if degraded.ndim != 5 or degraded.shape != clean.shape:
        raise ConfigError(
            f"expected N x T x 3 x H x W clips of equal shape, got {tuple(degraded.shape)} and {tuple(clean.shape)}"
        )
    if not getattr(getattr(model, "cfg", None), "temporal", False):
        raise ConfigError("clip training needs a streaming model (EFMConfig(temporal=True))")
    state = None
    losses = []
    for t in range(degraded.shape[1]):
        out, state = model(degraded[:, t], state)
        losses.append(loss_fn(out, clean[:, t]))
    return losses


def stream_train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    degraded: torch.Tensor,
    clean: torch.Tensor,
    loss_fn: nn.Module | None = None,
) -> dict[str, float]:
    """One optimiser step on a clip batch; the mean loss, the first frame's and the last frame's."""
    model.train()
    losses = clip_losses(model, degraded, clean, loss_fn or CharbonnierLoss())
    loss = torch.stack(losses).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), "loss_first": losses[0].item(), "loss_last": losses[-1].item()}
