"""Checkpoint files: a plain dict of tensors and primitives, loaded with ``weights_only=True``.

Model files are untrusted input: nothing here unpickles code. The key names below are an API that
the runtimes, the exporters and the shipped models rely on.

Layout::

    {"format": "qdr-checkpoint", "version": 1, "kind": "fp32" | "qat",
     "model": {EFMConfig fields}, "state_dict": {...}, "meta": {task, preset, step, ...}}
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from qdr_core.errors import ModelFileError
from qdr_core.models.efm import EFM, EFMConfig

FORMAT = "qdr-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write atomically: a crash mid-write never leaves a truncated checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def model_payload(model: EFM, kind: str = "fp32", meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "model": model.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate a checkpoint dict (no code execution: ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt / foreign files
        raise ModelFileError(
            f"{path} is not a readable qdr checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a qdr checkpoint (missing format={FORMAT!r})")
    if payload.get("version") != VERSION:
        raise ModelFileError(f"{path}: unsupported checkpoint version {payload.get('version')!r}")
    for key in ("kind", "model", "state_dict"):
        if key not in payload:
            raise ModelFileError(f"{path}: checkpoint lacks {key!r}")
    return payload


def fp32_model_from_payload(payload: dict[str, Any], source: str = "<payload>") -> EFM:
    """The FP32 EFM of a checkpoint payload (its ``model`` config, its ``state_dict``), in eval mode."""
    try:
        model = EFM(EFMConfig.from_dict(payload["model"]))
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:
        raise ModelFileError(f"{source}: weights do not match the stored architecture ({exc})") from exc
    return model.eval()


def load_fp32_model(path: str | os.PathLike) -> tuple[EFM, dict[str, Any]]:
    """Build the FP32 EFM stored in ``path``; returns ``(model in eval mode, payload)``."""
    payload = read_checkpoint(path)
    return fp32_model_from_payload(payload, str(path)), payload


def init_from(model: EFM, path: str | os.PathLike) -> list[str]:
    """Copy the FP32 weights in ``path`` into ``model``, which may have extra modules (efm-s ->
    efm-s-ctx: its context pyramid keeps its own init). Every stored tensor must exist in ``model``
    with the same shape. Returns the names of the model's tensors that were not in the file."""
    payload = read_checkpoint(path)
    if payload["kind"] != "fp32":
        raise ModelFileError(f"{path}: --init needs an FP32 checkpoint, got kind {payload['kind']!r}")
    own = model.state_dict()
    stored = payload["state_dict"]
    wrong = [k for k, v in stored.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise ModelFileError(
            f"{path}: {len(wrong)} stored tensors do not fit this architecture (e.g. {wrong[:3]})"
        )
    model.load_state_dict({**own, **stored})
    return sorted(set(own) - set(stored))
