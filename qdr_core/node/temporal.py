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
