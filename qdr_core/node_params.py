"""Parameters of the restoration node as a plain, validated dataclass (no ROS here).

The ROS node reads its parameters once into ``NodeParams`` in ``on_configure``; everything that can
be wrong with them is found by ``NodeParams.validated`` and reported as one ConfigError line that
says what to fix. Model paths and QoS names are resolved here too, so they are tested without ROS.

Model selection: ``model_path`` wins when set (absolute, or relative to the package share
directory, then the source tree, then the working directory); when empty the node loads the
shipped model ``models/<task>/<model_variant>.onnx``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from qdr_core.errors import ConfigError, ImageFormatError
from qdr_core.image_encodings import check_output_encoding

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
TASKS = ("lowlight", "haze", "rain", "noise")
MODEL_VARIANTS = ("int8_cpu", "int8_trt", "fp32")
INPUT_TRANSPORTS = ("raw", "compressed")
#: Parameters that take effect while the node is active; every other one needs a reconfigure.
RUNTIME_PARAMS = frozenset({"max_fps", "output_encoding"})


@dataclass(frozen=True)
class QosSpec:
    """A QoS choice in plain values; the node turns it into an rclpy QoSProfile.

    reliability / durability: "reliable", "best_effort", "volatile", "transient_local" or
    "system_default"; "auto" reliability means: match the publishers (input only).
    """

    name: str
    reliability: str
    depth: int
    durability: str = "volatile"


# Named profiles. SENSOR_DATA and SYSTEM_DEFAULT are rclpy's presets; DEFAULT is rclcpp's QoS(10).
QOS_PRESETS: dict[str, QosSpec] = {
    "AUTO": QosSpec("auto", "auto", 1),
    "SENSOR_DATA": QosSpec("SENSOR_DATA", "best_effort", 5),
    "SYSTEM_DEFAULT": QosSpec("SYSTEM_DEFAULT", "system_default", 1, "system_default"),
    "DEFAULT": QosSpec("DEFAULT", "reliable", 10),
    "RELIABLE": QosSpec("RELIABLE", "reliable", 1),
    "BEST_EFFORT": QosSpec("BEST_EFFORT", "best_effort", 1),
}


def parse_qos(name: str, allow_auto: bool) -> QosSpec:
    key = str(name).strip().upper()
    if key not in QOS_PRESETS or (key == "AUTO" and not allow_auto):
        choices = [n for n in QOS_PRESETS if allow_auto or n != "AUTO"]
        raise ConfigError(
            f"unknown QoS {name!r}; choose one of {', '.join(c.lower() if c == 'AUTO' else c for c in choices)}"
        )
    return QOS_PRESETS[key]


def auto_reliability(publisher_reliabilities: Iterable[str]) -> str:
    """The reliability an ``auto`` subscription uses, given the publishers' (as rosbag2 does).

    Best effort if any publisher is best effort (a reliable reader cannot match it); reliable when
    all are reliable or none is known yet: across processes, large frames from a reliable publisher
    reach a best-effort reader only with Fast DDS's large-data transport, but a reliable reader
    always gets them.
    """
    kinds = {r.lower() for r in publisher_reliabilities}
    return "best_effort" if "best_effort" in kinds else "reliable"


@dataclass(frozen=True)
class NodeParams:
    """Validated parameters of ``qdr_restore``. Field docs are the README's parameter table."""

    model_path: str = ""
    task: str = "lowlight"
    model_variant: str = "int8_cpu"
    backend: str = "auto"
    engine_cache_dir: str = ""
    num_threads: int = 0
    parallel_frames: int = 1
    input_qos: str = "auto"
    output_qos: str = "SYSTEM_DEFAULT"
    max_fps: float = 0.0
    output_encoding: str = "same"
    warmup_frames: int = 2
    input_transport: str = "raw"
    diagnostics_period: float = 1.0
    trt_precision: str = "auto"
    dla_core: int = -1
    autostart: bool = False

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> NodeParams:
        """Build from raw values (numbers converted by field type), then validate."""
        unknown = set(values) - set(cls.names())
        if unknown:
            raise ConfigError(f"unknown parameters {sorted(unknown)}; known: {', '.join(cls.names())}")
        converted: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            raw = values[f.name]
            kind = type(f.default)
            try:
                if (kind is bool) != isinstance(raw, bool):
                    raise TypeError  # "true" or 1 for a flag, or a flag for a number, is a typo
                converted[f.name] = kind(raw) if kind is not int else _as_int(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"parameter {f.name}: expected {kind.__name__}, got {raw!r}") from None
        return cls(**converted).validated()

    def validated(self) -> NodeParams:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if not self.model_path:
            if self.task not in TASKS:
                raise ConfigError(f"task {self.task!r} is not one of {', '.join(TASKS)} (or set model_path)")
            if self.model_variant not in MODEL_VARIANTS:
                raise ConfigError(
                    f"model_variant {self.model_variant!r} is not one of {', '.join(MODEL_VARIANTS)}"
                )
        if not 0 <= self.num_threads <= 1024:
            raise ConfigError(f"num_threads must be in 0..1024 (0 = backend default), got {self.num_threads}")
        if not 1 <= self.parallel_frames <= 16:
            raise ConfigError(f"parallel_frames must be in 1..16, got {self.parallel_frames}")
        if not math.isfinite(self.max_fps) or self.max_fps < 0:
            raise ConfigError(f"max_fps must be >= 0 (0 = unlimited), got {self.max_fps}")
        if not 0 <= self.warmup_frames <= 1000:
            raise ConfigError(f"warmup_frames must be in 0..1000, got {self.warmup_frames}")
        if not 0.05 <= self.diagnostics_period <= 60:
            raise ConfigError(f"diagnostics_period must be in 0.05..60 s, got {self.diagnostics_period}")
        if self.input_transport not in INPUT_TRANSPORTS:
            raise ConfigError(
                f"input_transport {self.input_transport!r} is not one of {', '.join(INPUT_TRANSPORTS)}"
            )
        if self.trt_precision not in ("auto", "int8", "fp16", "fp32"):
            raise ConfigError(f"trt_precision {self.trt_precision!r} is not one of auto, int8, fp16, fp32")
        if self.dla_core < -1:
            raise ConfigError(f"dla_core must be -1 (GPU) or a DLA core index, got {self.dla_core}")
        parse_qos(self.input_qos, allow_auto=True)
        parse_qos(self.output_qos, allow_auto=False)
        try:
            check_output_encoding(self.output_encoding)
        except ImageFormatError as exc:
            raise ConfigError(str(exc)) from None
        return self

    def with_changes(self, **changes: Any) -> NodeParams:
        return replace(self, **changes).validated()

    @property
    def model_relpath(self) -> str:
        """The model file as configured (before resolution against the search roots)."""
        return self.model_path or f"models/{self.task}/{self.model_variant}.onnx"


def _as_int(raw: Any) -> int:
    if isinstance(raw, float) and not raw.is_integer():
        raise ValueError(raw)
    return int(raw)


def source_root() -> Path:
    """The source checkout this package runs from (holds models/ and config/ in a dev tree)."""
    return Path(__file__).resolve().parents[1]


def resolve_model_path(model_path: str, search_roots: Iterable[str | os.PathLike]) -> Path:
    """An existing model file for ``model_path``: absolute as given (``~`` expanded); relative
    against each of ``search_roots`` in order, then the working directory.

    Raises:
        ConfigError: nothing exists at any candidate (all are listed).
    """
    path = Path(os.path.expanduser(model_path))
    candidates = (
        [path] if path.is_absolute() else [Path(root) / path for root in search_roots] + [Path.cwd() / path]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"model file {model_path!r} not found (tried {tried}); set model_path to an existing .onnx or .pt"
    )
