"""State rules of streaming restoration, without ROS.

A streaming model carries state from the previous frame of one stream. That state only helps when
the previous frame shows (almost) the same scene in the same layout; otherwise it is dropped and the
frame is restored as a still. ``StreamState`` decides which, frame by frame, from what every image
message carries: its stamp, size and encoding.

Rules (each reset counted by reason, for diagnostics):

- ``first``: the first frame of a stream has no state.
- ``size`` / ``encoding``: the resolution or encoding changed (state tensors no longer fit, or the
  colours mean something else).
- ``gap``: more than ``max_gap`` seconds since the previous frame (dropped frames, a paused camera).
- ``backwards``: the stamp went backwards (a bag replayed from its start, a clock reset).
- ``request``: ``reset()`` was called (the node's ``reset`` service).

A repeated stamp (the same frame sent twice) keeps the state: it is not a jump.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from qdr_core.errors import ConfigError
from qdr_core.runtime.stateful import StreamSession

#: Default of the node's ``temporal_max_gap`` parameter (seconds).
DEFAULT_MAX_GAP = 0.5

RESET_REASONS = ("first", "size", "encoding", "gap", "backwards", "request")


@dataclass(frozen=True)
class FrameKey:
    """What the state rules read from one frame: stamp (seconds), size and encoding."""

    stamp: float
    height: int
    width: int
    encoding: str


class StreamState:
    """Per-stream decision "restore as a still (reset)" or "use the carried state".

    Args:
        max_gap: seconds between consecutive stamps above which the state is dropped (> 0).

    ``observe(key)`` returns None when the state may be used, else the reset reason. Thread-safe:
    ``reset()`` may come from a service callback while a worker thread calls ``observe``.
    """

    def __init__(self, max_gap: float = DEFAULT_MAX_GAP) -> None:
        if not max_gap > 0:
            raise ConfigError(f"temporal_max_gap must be > 0 seconds, got {max_gap}")
        self.max_gap = float(max_gap)
        self._lock = threading.Lock()
        self._last: FrameKey | None = None
        self._requested = False
        self.resets: Counter[str] = Counter()

    def reset(self) -> None:
        """Drop the state: the next frame is restored as a still."""
        with self._lock:
            self._requested = True

    def observe(self, key: FrameKey) -> str | None:
        """Record ``key`` as the newest frame; the reason its state must be reset, or None."""
        with self._lock:
            reason = self._reason(key)
            self._last, self._requested = key, False
            if reason is not None:
                self.resets[reason] += 1
            return reason

    def _reason(self, key: FrameKey) -> str | None:
        last = self._last
        if last is None:
            return "first"
        if self._requested:
            return "request"
        if (key.height, key.width) != (last.height, last.width):
            return "size"
        if key.encoding != last.encoding:
            return "encoding"
        if key.stamp < last.stamp:
            return "backwards"
        if key.stamp - last.stamp > self.max_gap:
            return "gap"
        return None

    @property
    def reset_count(self) -> int:
        return sum(self.resets.values())


TEMPORAL_MODES = ("auto", "true", "false")


def resolve_temporal(mode: str, streaming: bool, parallel_frames: int = 1) -> bool:
    """Whether a node restores with temporal state: ``mode`` is the ``temporal`` parameter
    (``auto``: when the model is a streaming one), ``streaming`` whether the loaded model has a
    state input.

    Raises:
        ConfigError: ``true`` with a single-frame model, or temporal state with
            ``parallel_frames > 1`` (the frames of a stream must be restored in order, one at a
            time: each needs the state the previous one left).
    """
    if mode not in TEMPORAL_MODES:
        raise ConfigError(f"temporal {mode!r} is not one of {', '.join(TEMPORAL_MODES)}")
    if mode == "true" and not streaming:
        raise ConfigError(
            "temporal is true but the model is a single-frame one (no state_in input): "
            "load a streaming model or set temporal: auto"
        )
    enabled = streaming and mode != "false"
    if enabled and parallel_frames > 1:
        raise ConfigError(
            f"parallel_frames {parallel_frames} cannot be used with temporal state: each frame needs "
            "the state the previous one left, so frames are restored one at a time; "
            "set parallel_frames: 1 or temporal: false"
        )
    return enabled


class TemporalStreams:
    """The temporal state of every input stream of a node: one ``StreamState`` (the rules) and one
    ``StreamSession`` (the tensors) per stream key (the node uses its image topic).

    Args:
        runtime: the loaded model's runtime.
        enabled: ``resolve_temporal``'s answer; off, every frame is restored as a still.
        max_gap: the ``temporal_max_gap`` parameter.
    """

    def __init__(self, runtime, enabled: bool, max_gap: float = DEFAULT_MAX_GAP) -> None:
        self.runtime, self.enabled, self.max_gap = runtime, enabled, max_gap
        self._streams: dict[str, tuple[StreamState, StreamSession]] = {}
        self._lock = threading.Lock()
        StreamState(max_gap)  # validates max_gap now, not at the first frame

    def frame_runtime(self, stream: str, stamp: float, encoding: str):
        """What restores the next frame of ``stream``: the runtime itself when temporal state is
        off, else a view with ``infer_planes8`` / ``infer`` that applies the state rules (with the
        decoded frame's size) and carries the state."""
        if not self.enabled:
            return self.runtime
        with self._lock:
            if stream not in self._streams:
                self._streams[stream] = (StreamState(self.max_gap), StreamSession(self.runtime))
            state, session = self._streams[stream]
        return _FrameView(state, session, stamp, encoding)

    def for_message(self, stream: str, msg):
        """``frame_runtime`` for an image message (duck-typed ``sensor_msgs`` Image or
        CompressedImage: header stamp, and ``encoding`` or ``format``)."""
        stamp = msg.header.stamp
        encoding = getattr(msg, "encoding", None) or getattr(msg, "format", "")
        return self.frame_runtime(stream, stamp.sec + stamp.nanosec * 1e-9, encoding)

    def reset(self) -> int:
        """Drop the state of every stream; returns how many streams had one."""
        with self._lock:
            streams = list(self._streams.values())
        for state, _ in streams:
            state.reset()
        return len(streams)

    def handle_reset(self, request, response):
        """A ``std_srvs/Trigger`` service handler (duck-typed: no ROS import here)."""
        if not self.enabled:
            response.success, response.message = (
                False,
                "temporal state is off (temporal: false or a single-frame model)",
            )
            return response
        count = self.reset()
        response.success, response.message = (
            True,
            f"state of {count} stream(s) reset: next frame restored as a still",
        )
        return response

    def resets(self) -> Counter[str]:
        """Resets by reason, summed over the streams."""
        total: Counter[str] = Counter()
        with self._lock:
            for state, _ in self._streams.values():
                total.update(state.resets)
        return total

    def report_values(self) -> dict[str, str]:
        """Diagnostics key/values: whether temporal state is on and its resets by reason."""
        resets = self.resets()
        values = {"temporal": "on" if self.enabled else "off", "state_resets": str(sum(resets.values()))}
        values.update({f"state_resets.{r}": str(n) for r, n in sorted(resets.items())})
        return values


class _FrameView:
    """One frame of one stream, restored through the stream's session."""

    def __init__(self, state: StreamState, session: StreamSession, stamp: float, encoding: str) -> None:
        self._state, self._session, self._stamp, self._encoding = state, session, stamp, encoding

    def _reset_for(self, height: int, width: int) -> bool:
        return self._state.observe(FrameKey(self._stamp, height, width, self._encoding)) is not None

    def infer_planes8(self, rgb):
        return self._session.planes8(rgb, reset=self._reset_for(*rgb.shape[:2]))

    def infer(self, image):
        return self._session.infer(image, reset=self._reset_for(*image.shape[:2]))
