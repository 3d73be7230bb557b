"""YAML files become frozen dataclasses: unknown keys are errors; values are converted by field type
(PyYAML reads ``2e-4`` as a string)."""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from qdr_core.errors import ConfigError

T = TypeVar("T")


def _convert(value: Any, kind: Any, name: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is typing.Union or str(origin) == "types.UnionType":
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if value is None else _convert(value, args[0], name)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected a boolean, got {value!r}")
    if kind in (int, float, str):
        try:
            return kind(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}") from exc
    return value


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from ``values``, converting by field type; unknown keys raise."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {sorted(unknown)}; known: {sorted(known)}")
    return cls(**{k: _convert(v, hints[k], k) for k, v in values.items()})


def load_yaml(cls: type[T], path: str | os.PathLike, **overrides: Any) -> T:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return from_dict(cls, {**data, **{k: v for k, v in overrides.items() if v is not None}})


def add_dataclass_arguments(
    parser: Any,
    cls: type,
    skip: set[str] | frozenset[str] = frozenset(),
    choices: dict[str, list[str]] | None = None,
) -> None:
    """One ``--field-name`` flag per field of dataclass ``cls`` (minus ``skip``), default None so
    that only flags given on the command line override the dataclass defaults."""
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        kind = {"int": int, "float": float}.get(str(field.type), str)
        parser.add_argument(
            f"--{field.name.replace('_', '-')}", dest=field.name, type=kind,
            choices=(choices or {}).get(field.name), help=f"default {field.default}",
        )  # fmt: skip


def dataclass_overrides(args: Any, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` that ``args`` (an argparse namespace) sets to something other than None."""
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if getattr(args, f.name, None) is not None
    }
