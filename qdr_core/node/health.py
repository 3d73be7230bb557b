"""The node's statistics and health report, without ROS: the node turns ``Report`` into one
``diagnostic_msgs/DiagnosticStatus`` (level, message, key/values)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qdr_core.node.params import NodeParams
from qdr_core.node.stream import LatencyWindow, RateMeter, StreamCounters

OK, WARN, ERROR = 0, 1, 2  # DiagnosticStatus levels


@dataclass
class Report:
    level: int
    message: str
    values: dict[str, str]


@dataclass
class StreamStats:
    """Counters, rates and latency windows since the node was configured."""

    counters: StreamCounters = field(default_factory=StreamCounters)
    in_rate: RateMeter = field(default_factory=RateMeter)
    out_rate: RateMeter = field(default_factory=RateMeter)
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    processing: LatencyWindow = field(default_factory=LatencyWindow)
    last_report: StreamCounters = field(default_factory=StreamCounters)

    def record_received(self, now: float, lost: int) -> None:
        """A frame reached the callback at ``now``; ``lost`` of its publisher's never did."""
        self.counters.received += 1
        self.counters.lost += lost
        self.in_rate.tick(now)

    def record_published(self, received: float, latency_s: float) -> None:
        """A restored frame went out; it reached the callback at ``received`` (monotonic)."""
        done = time.monotonic()
        self.counters.published += 1
        self.out_rate.tick(done)
        self.processing.add(done - received)
        self.latency.add(latency_s)

    def health(self, counters: StreamCounters, state: str, in_rate: float) -> tuple[int, list[str]]:
        """Level and problems since the last report (failures are errors; rejections, losses
        and a silent input while active are warnings)."""
        last = self.last_report
        level, problems = OK, []
        if counters.failed > last.failed:
            level = ERROR
            problems.append("inference failing")
        if counters.rejected > last.rejected:
            level = max(level, WARN)
            reasons = sorted(
                r for r, n in counters.rejected_by_reason.items() if n > last.rejected_by_reason.get(r, 0)
            )
            problems.append(f"frames rejected ({', '.join(reasons)})")
        if counters.lost > last.lost:
            level = max(level, WARN)
            problems.append("frames lost before the callback")
        if state == "active" and in_rate == 0.0:
            level = max(level, WARN)
            problems.append("no input frames")
        return level, problems

    def report(
        self,
        state: str,
        params: NodeParams | None = None,
        pending_dropped: int = 0,
        runtime: Any | None = None,
        model_file: str = "",
        input_topic: str = "",
        input_reliability: str = "",
        temporal: Any | None = None,
    ) -> Report:
        """The report since the last one; ``pending_dropped``: the running worker's drops, not yet
        folded into the counters; ``temporal``: the node's ``TemporalStreams`` (its resets)."""
        counters = self.counters.copy()
        counters.dropped += pending_dropped
        in_rate, out_rate = self.in_rate.rate(), self.out_rate.rate()
        level, problems = self.health(counters, state, in_rate)
        self.last_report = counters
        metadata = dict(runtime.metadata) if runtime is not None else {}
        model_name = ""
        if model_file:
            model = Path(model_file)
            model_name = metadata.get("name") or f"{model.parent.name}/{model.stem}"
        values = {
            "state": state,
            "backend": runtime.name if runtime is not None else "",
            "model": model_name,
            "model_path": model_file,
            "input_topic": input_topic,
            "input_reliability": input_reliability,
            "input_rate_hz": f"{in_rate:.2f}",
            "output_rate_hz": f"{out_rate:.2f}",
            **{f"frames_{k}": str(v) for k, v in counters.as_dict().items()},
            **{f"frames_rejected.{k}": str(v) for k, v in sorted(counters.rejected_by_reason.items())},
            "latency_p50_ms": _ms(self.latency, 50),
            "latency_p95_ms": _ms(self.latency, 95),
            "processing_p50_ms": _ms(self.processing, 50),
            "processing_p95_ms": _ms(self.processing, 95),
            "max_fps": f"{params.max_fps:g}" if params is not None else "",
            "max_input_pixels": str(params.max_input_pixels) if params is not None else "",
            "output_encoding": params.output_encoding if params is not None else "same",
        }
        values.update({f"model_meta.{k}": str(v) for k, v in sorted(metadata.items())[:12]})
        if temporal is not None:
            values.update(temporal.report_values())
        message = "; ".join(problems) or f"restoring at {out_rate:.1f} fps"
        return Report(level, message, values)


def _ms(window: LatencyWindow, q: float) -> str:
    value = window.percentile(q)
    return "nan" if value is None else f"{value * 1e3:.2f}"
