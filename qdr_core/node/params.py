"""The parameter table of the ``qdr_restore`` node: the one definition of every parameter's name,
type, default, range or choices, description and whether it can change while the node runs.

Everything else comes from ``PARAMETERS``: ``NodeParams`` (the validated dataclass the node reads
once in ``on_configure``), the ROS parameter descriptors, the runtime-change rule, the shipped
``config/restore.yaml`` and the README's parameter table (``render_config`` / ``render_table``;
``scripts/param_table.py`` writes both and a test checks they are current). No ROS here.

Model selection: ``model_path`` wins when set (absolute, or relative to the package share
directory, then the source tree, then the working directory); when empty the node loads the
shipped model ``models/<task>/<model_variant>.onnx``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, make_dataclass, replace
from pathlib import Path
from typing import Any

from qdr_core.errors import ConfigError, ImageFormatError
from qdr_core.image_encodings import OUTPUT_ENCODINGS, check_output_encoding
from qdr_core.tasks import MODEL_TASKS


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


def _check_encoding(value: str) -> None:
    try:
        check_output_encoding(value)
    except ImageFormatError as exc:
        raise ConfigError(str(exc)) from None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Param:
    """One node parameter.

    Args:
        name / kind / default: the ROS parameter (kind: str, int, float or bool).
        note: what it means, for the README table and the ROS descriptor.
        choices: the allowed values (shown in the table; checked unless ``check`` is given).
        low / high: inclusive numeric range (``high`` None: no upper bound).
        runtime: may change while the node is configured (inactive or active).
            A change of the model file (``model_change``) loads the new one beside the old one.
        check: a validator raising ConfigError, for values a plain choice list cannot describe.
        only_without_model_path: checked only when ``model_path`` is empty.
    """

    name: str
    kind: type
    default: Any
    note: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    runtime: bool = False
    check: Callable[[Any], None] | None = field(default=None, compare=False)
    only_without_model_path: bool = False

    @property
    def type_name(self) -> str:
        return {str: "string", int: "int", float: "double", bool: "bool"}[self.kind]

    @property
    def range_text(self) -> str:
        if self.choices:
            return ", ".join(f"`{c}`" for c in self.choices)
        if self.low is not None and self.high is not None:
            return f"{_num(self.low)} … {_num(self.high)}"
        if self.low is not None:
            return f"≥ {_num(self.low)}"
        return ""

    @property
    def description(self) -> str:
        """Range and meaning in one line: the README column and the ROS descriptor text."""
        return "; ".join(t for t in (self.range_text, self.note) if t)

    def validate(self, value: Any) -> None:
        if self.check is not None:
            self.check(value)
        elif self.choices and value not in self.choices:
            hint = " (or set model_path)" if self.only_without_model_path else ""
            raise ConfigError(f"{self.name} {value!r} is not one of {', '.join(self.choices)}{hint}")
        if self.kind in (int, float):
            if self.kind is float and not math.isfinite(value):
                raise ConfigError(f"{self.name} must be a finite number, got {value}")
            low = -math.inf if self.low is None else self.low
            high = math.inf if self.high is None else self.high
            if not low <= value <= high:
                bounds = (
                    f"in {_num(self.low)}..{_num(self.high)}"
                    if self.high is not None
                    else f">= {_num(self.low)}"
                )
                raise ConfigError(f"{self.name} must be {bounds}, got {value}")

    def convert(self, raw: Any) -> Any:
        """``raw`` as this parameter's type: numbers are converted (YAML ``15`` for a float), but a
        flag for a number or a number or string for a flag is a typo."""
        try:
            if (self.kind is bool) != isinstance(raw, bool):
                raise TypeError
            if self.kind is int and isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return self.kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"parameter {self.name}: expected {self.kind.__name__}, got {raw!r}") from None


_QOS_INPUT = tuple(n if n != "AUTO" else "auto" for n in QOS_PRESETS)
_QOS_OUTPUT = ("SYSTEM_DEFAULT", *(n for n in QOS_PRESETS if n not in ("AUTO", "SYSTEM_DEFAULT")))

#: The parameter table, in the order of the README and config/restore.yaml.
PARAMETERS: tuple[Param, ...] = (
    Param("model_path", str, "",
          "`.onnx` or `.pt`; absolute, or relative to the package share dir, then the source tree, "
          "then the working dir. Empty: `models/<task>/stream/<model_variant>.onnx` where it exists and "
          "`temporal` allows it, else `models/<task>/<model_variant>.onnx`", runtime=True),
    Param("task", str, "auto",
          "shipped model to use when `model_path` is empty; `auto`: the all-conditions model",
          choices=MODEL_TASKS, only_without_model_path=True, runtime=True),
    Param("model_variant", str, "int8_cpu",
          "`int8_cpu` (onnxruntime INT8), `int8_trt` (TensorRT QDQ), `fp32` (ONNX FP32)",
          choices=("int8_cpu", "int8_trt", "fp32"), only_without_model_path=True, runtime=True),
    Param("backend", str, "auto",
          "`auto`: `.onnx` → TensorRT if importable and a GPU is visible, else onnxruntime; `.pt` → torch",
          choices=("auto", "tensorrt", "onnxruntime", "torch")),
    Param("engine_cache_dir", str, "",
          "TensorRT engine cache; empty = `<model dir>/.engine_cache`. Engines are keyed by ONNX sha256, "
          "TensorRT version, GPU name, precision, DLA core and shape profile"),
    Param("trt_precision", str, "auto", "`auto`: INT8+FP16 for a QDQ graph, else FP16 (TensorRT only)",
          choices=("auto", "int8", "fp16", "fp32")),
    Param("dla_core", int, -1, "-1 = GPU; a DLA core with GPU fallback (Jetson, TensorRT only)", low=-1, high=16),
    Param("num_threads", int, 0, "CPU inference threads, 0 = backend default", low=0, high=1024),
    Param("parallel_frames", int, 1,
          "frames restored at once (onnxruntime, torch; TensorRT: 1). 1 = lowest latency; on an N-core CPU, "
          "N with `num_threads: 1` = most frames per second (see Performance)", low=1, high=16),
    Param("temporal", str, "auto",
          "restore with the previous frame's state (streaming models); `auto`: on when the model has a "
          "state input, and with `model_path` empty the task's shipped streaming file is loaded where "
          "there is one (and `parallel_frames` is 1). Temporal state needs `parallel_frames: 1`", choices=("auto", "true", "false")),
    Param("temporal_max_gap", float, 0.5,
          "seconds between frames above which the state is dropped (the frame is restored as a still)",
          low=0.001, high=3600),
    Param("input_qos", str, "auto",
          "`auto` subscribes best effort if any publisher is best effort, else reliable",
          choices=_QOS_INPUT, check=lambda v: parse_qos(v, allow_auto=True)),
    Param("output_qos", str, "SYSTEM_DEFAULT", "REP-2003: sensor-data publishers use the system default",
          choices=_QOS_OUTPUT, check=lambda v: parse_qos(v, allow_auto=False)),
    Param("input_transport", str, "raw", "`raw`: `image_raw`; `compressed`: `image_raw/compressed`",
          choices=("raw", "compressed")),
    Param("max_fps", float, 0.0, "frames restored per second, 0 = unlimited (an integer is accepted)",
          low=0, runtime=True),
    Param("output_encoding", str, "same", "`same`: the input's (rgb8 for YUV/Bayer/compressed)",
          choices=("same", *OUTPUT_ENCODINGS), runtime=True, check=_check_encoding),
    Param("max_input_pixels", int, 4096 * 2160,
          "larger frames are rejected before decoding (compressed: by their PNG/JPEG header); "
          "the default admits 4K (4096x2160) cameras", low=1, high=1 << 30),
    Param("warmup_frames", int, 2, "inferences on a blank 640x480 frame during configure", low=0, high=1000),
    Param("diagnostics_period", float, 1.0, "seconds between /diagnostics reports", low=0.05, high=60),
    Param("autostart", bool, False,
          "configure + activate at startup (for `ros2 run` without a lifecycle manager)"),
)  # fmt: skip
BY_NAME: dict[str, Param] = {p.name: p for p in PARAMETERS}
#: Parameters that take effect while the node is active; every other one needs a reconfigure.
RUNTIME_PARAMS = frozenset(p.name for p in PARAMETERS if p.runtime)


class _ParamMethods:
    """Behaviour of ``NodeParams`` (its fields are made from ``PARAMETERS``)."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> NodeParams:
        """Build from raw values (numbers converted by type), then validate."""
        unknown = set(values) - set(BY_NAME)
        if unknown:
            raise ConfigError(f"unknown parameters {sorted(unknown)}; known: {', '.join(BY_NAME)}")
        return cls(**{name: BY_NAME[name].convert(raw) for name, raw in values.items()}).validated()

    def validated(self) -> NodeParams:
        for param in PARAMETERS:
            if param.only_without_model_path and self.model_path:
                continue
            param.validate(getattr(self, param.name))
        return self

    def with_changes(self, **changes: Any) -> NodeParams:
        """A copy with ``changes`` (raw values, converted like ``from_mapping``), validated."""
        unknown = set(changes) - set(BY_NAME)
        if unknown:
            raise ConfigError(f"unknown parameters {sorted(unknown)}")
        converted = {name: BY_NAME[name].convert(raw) for name, raw in changes.items()}
        return replace(self, **converted).validated()

    @property
    def model_candidates(self) -> tuple[str, ...]:
        """The model files these parameters name, preferred first (before resolution against the
        search roots): ``model_path`` when set; else the task's shipped streaming file
        (``models/<task>/stream/<model_variant>.onnx``) where ``temporal`` may use one (``true``,
        or ``auto`` with ``parallel_frames: 1``), then its single-frame file (not for ``true``)."""
        if self.model_path:
            return (self.model_path,)
        single = f"models/{shipped_model(self.task, self.model_variant)}"
        stream = f"models/{shipped_model(self.task, self.model_variant, streaming=True)}"
        if self.temporal == "true":
            return (stream,)
        if self.temporal == "auto" and self.parallel_frames == 1:
            return (stream, single)
        return (single,)

    @property
    def model_relpath(self) -> str:
        """The model as configured, for messages: the candidates joined by " or "."""
        return " or ".join(self.model_candidates)


NodeParams = make_dataclass(
    "NodeParams",
    [(p.name, p.kind, field(default=p.default)) for p in PARAMETERS],
    bases=(_ParamMethods,),
    frozen=True,
)
NodeParams.__module__ = __name__
NodeParams.__doc__ = "Validated parameters of ``qdr_restore``; one field per row of ``PARAMETERS``."


def model_change(old: NodeParams, new: NodeParams) -> bool:
    """Whether going from ``old`` to ``new`` needs another model loaded."""
    return old.model_candidates != new.model_candidates


def runtime_change_error(names: Iterable[str], state: str) -> str | None:
    """Why parameters ``names`` cannot change now (the node is configured, in ``state``), or None."""
    fixed = [n for n in names if n in BY_NAME and n not in RUNTIME_PARAMS]
    if not fixed:
        return None
    return (
        f"{', '.join(fixed)} cannot change while the node is {state}: deactivate and cleanup, set it, "
        f"then configure again (changeable now: {', '.join(sorted(RUNTIME_PARAMS))})"
    )


# ----------------------------------------------------------------------------- generated files

TABLE_BEGIN = "<!-- parameter table: generated by scripts/param_table.py from qdr_core/node/params.py -->"
TABLE_END = "<!-- end of parameter table -->"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '""' if value == "" else value
    return repr(value)


def render_table() -> str:
    """The README's parameter table (Markdown), between its markers."""
    rows = [
        TABLE_BEGIN,
        "",
        "| Name | Type | Default | Range / values | Runtime-changeable |",
        "|---|---|---|---|---|",
    ]
    for p in PARAMETERS:
        default = f"`{_literal(p.default)}`"
        rows.append(
            f"| `{p.name}` | {p.type_name} | {default} | {p.description} | {'**yes**' if p.runtime else 'no'} |"
        )
    return "\n".join([*rows, "", TABLE_END])


def render_config() -> str:
    """config/restore.yaml: every parameter at its default, its range as the comment."""
    lines = [
        "# Parameters of the qdr_restore node, generated by scripts/param_table.py from",
        "# qdr_core/node/params.py (the README's parameter table explains each one).",
        "# Used by launch/restore.launch.py and by `restore_node --ros-args --params-file config/restore.yaml`.",
        "qdr_restore:",
        "  ros__parameters:",
    ]
    for p in PARAMETERS:
        value = f"{p.name}: {_literal(p.default)}"
        comment = " | ".join(p.choices) if p.choices else p.range_text.replace("…", "..").replace("≥", ">=")
        lines.append(f"    {value:<32s}# {comment}" if comment else f"    {value}")
    return "\n".join(lines) + "\n"


def replace_table(readme: str) -> str:
    """``readme`` with its parameter table (between the markers) regenerated."""
    start, end = readme.find(TABLE_BEGIN), readme.find(TABLE_END)
    if start < 0 or end < start:
        raise ConfigError("README has no parameter table markers")
    return readme[:start] + render_table() + readme[end + len(TABLE_END) :]


# ----------------------------------------------------------------------------- model files


def shipped_model(task: str, variant: str, streaming: bool = False) -> str:
    """A task's shipped model file, relative to the models folder: ``<task>/<variant>.onnx``, or
    its streaming model ``<task>/stream/<variant>.onnx`` (shipped only when it met issue #14's
    criteria; docs/streaming.md, "Shipping")."""
    return f"{task}/stream/{variant}.onnx" if streaming else f"{task}/{variant}.onnx"


def resolve_model_candidates(candidates: Sequence[str], search_roots: Iterable[str | os.PathLike]) -> Path:
    """The existing model file of the first of ``candidates`` (``NodeParams.model_candidates``) that
    resolves (``resolve_model_path``).

    Raises:
        ConfigError: none resolves (the last one's reason: the fallback, the single-frame file).
    """
    roots = list(search_roots)
    last: ConfigError | None = None
    for candidate in candidates:
        try:
            return resolve_model_path(candidate, roots)
        except ConfigError as exc:
            last = exc
    raise last or ConfigError("no model file to load")


def resolve_model_path(model_path: str, search_roots: Iterable[str | os.PathLike]) -> Path:
    """An existing model file for ``model_path``: absolute as given (``~`` expanded); relative
    against each of ``search_roots`` in order, then the working directory.

    Raises:
        ConfigError: nothing exists at any candidate (all are listed), or it is a directory.
    """
    path = Path(os.path.expanduser(model_path))
    candidates = (
        [path] if path.is_absolute() else [Path(root) / path for root in search_roots] + [Path.cwd() / path]
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    folders = [c for c in candidates if c.is_dir()]
    if folders:
        raise ConfigError(
            f"model_path {model_path!r} is a directory ({folders[0]}); set it to an .onnx or .pt file"
        )
    tried = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"model file {model_path!r} not found (tried {tried}); set model_path to an existing .onnx or .pt"
    )
