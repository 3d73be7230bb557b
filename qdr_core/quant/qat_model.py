"""QAT checkpoints: build, save and load a fake-quant EFM.

A QAT checkpoint has the FP32 layout (``kind: "qat"``, ``model``: the EFMConfig, ``state_dict``,
``meta``); its state dict is the FP32 one plus the quantizer step sizes. Loading rebuilds the EFM,
swaps in the quantized layers (deterministic) and loads the tensors; nothing is unpickled.

``load_model`` opens either kind. It lives here, not in ``models.checkpoint``, because only this
layer knows both kinds: ``models`` never imports ``quant``.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from qdr_core.errors import ModelFileError
from qdr_core.models.checkpoint import (
    fp32_model_from_payload,
    model_payload,
    read_checkpoint,
    save_checkpoint,
)
from qdr_core.models.efm import EFM, EFMConfig
from qdr_core.quant.convert import quantize_model


def qat_payload(model: EFM, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return model_payload(model, "qat", meta)


def load_qat_model(payload: dict[str, Any], source: str = "<payload>") -> EFM:
    """The fake-quant EFM stored in a ``kind: "qat"`` checkpoint payload, in eval mode."""
    if payload.get("kind") != "qat":
        raise ModelFileError(f"{source}: expected a QAT checkpoint, got kind {payload.get('kind')!r}")
    try:
        model = quantize_model(EFM(EFMConfig.from_dict(payload["model"])))
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:
        raise ModelFileError(f"{source}: QAT weights do not match the stored architecture ({exc})") from exc
    return model.eval()


def model_from_payload(payload: dict[str, Any], source: str = "<payload>") -> nn.Module:
    """The runnable model of a checkpoint payload (``kind`` fp32 or qat), in eval mode."""
    if payload["kind"] == "fp32":
        return fp32_model_from_payload(payload, source)
    if payload["kind"] == "qat":
        return load_qat_model(payload, source)
    raise ModelFileError(f"{source}: unknown checkpoint kind {payload['kind']!r}")


def load_model(path: str | os.PathLike) -> nn.Module:
    """Any runnable model stored in a qdr checkpoint (``kind`` fp32 or qat), in eval mode."""
    return model_from_payload(read_checkpoint(path), str(path))


def reconfigure_checkpoint(
    src: str | os.PathLike, dst: str | os.PathLike, changes: dict[str, Any]
) -> dict[str, Any]:
    """Copy the checkpoint ``src`` (fp32 or qat) to ``dst`` with EFMConfig fields changed that keep
    the weights as they are (e.g. ``context_crop``): every stored tensor must load into the new
    architecture exactly, so a change that adds, drops or reshapes a tensor is refused. The change
    is recorded in ``meta["reconfigured"]``. Returns the new config."""
    payload = read_checkpoint(src)
    try:
        config = EFMConfig.from_dict({**payload["model"], **changes}).to_dict()
    except Exception as exc:
        raise ModelFileError(f"{src}: cannot apply {changes} ({exc})") from exc
    changed = {**payload, "model": config}
    try:
        model_from_payload(changed, str(src))  # loads strictly: every tensor must fit
    except ModelFileError as exc:
        details = [line.strip() for line in str(exc.__cause__ or exc).splitlines()[1:] if line.strip()]
        first = f"{len(details)} problems, first: {details[0]}" if details else str(exc)
        raise ModelFileError(f"{src}: {changes} does not fit the stored weights ({first})") from exc
    meta = dict(payload.get("meta", {}))
    meta["reconfigured"] = [*meta.get("reconfigured", []), {k: str(v) for k, v in changes.items()}]
    save_checkpoint(dst, {**changed, "meta": meta})
    return config
