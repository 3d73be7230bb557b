"""Streaming mechanics of a real-time node, without ROS: keep-latest hand-off to a worker thread,
frame-rate limiting, rate and latency statistics.

A camera produces frames at its own pace; a restoration model may be slower. Queueing frames would
only add latency (each output older than the last), so the node keeps one slot: the newest frame
replaces an unprocessed one, and the replaced frame is counted as dropped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-item mailbox: ``put`` never blocks and overwrites; ``take`` waits for an item."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False

    def put(self, item: T) -> bool:
        """Store ``item``; returns True when it replaced one nobody took (a dropped frame)."""
        with self._cond:
            replaced = self._full
            self._item, self._full = item, True
            self._cond.notify()
        return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, or None on timeout or once closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def clear(self) -> bool:
        """Forget a pending item; True if there was one."""
        with self._cond:
            had, self._item, self._full = self._full, None, False
            return had

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class RateLimiter:
    """Admit at most ``max_fps`` events per second (0 = unlimited).

    The schedule advances by whole periods from the last admitted time rather than from "now", so a
    30 Hz camera limited to 15 fps admits every other frame instead of drifting below 15.
    """

    def __init__(self, max_fps: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._next = 0.0
        self.max_fps = max_fps

    @property
    def max_fps(self) -> float:
        return self._max_fps

    @max_fps.setter
    def max_fps(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"max_fps must be >= 0, got {value}")
        with self._lock:
            self._max_fps = float(value)
            self._next = 0.0

    def admit(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._max_fps <= 0:
                return True
            period = 1.0 / self._max_fps
            # Jitter tolerance: a frame up to 10 % of a period early still counts as on time.
            if now + 0.1 * period < self._next:
                return False
            # After a long gap, restart the schedule at "now" instead of bursting to catch up.
            self._next = max(self._next + period, now + 0.9 * period) if self._next else now + period
            return True


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            # Rate over the window, not between first and last event: a stalled stream decays to 0.
            span = max(now - self._times[0], self._times[-1] - self._times[0])
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


class LatencyWindow:
    """Percentiles of the last ``size`` latency samples (seconds)."""

    def __init__(self, size: int = 300) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile ``q`` in [0, 100]; None without samples."""
        with self._lock:
            ordered = sorted(self._samples)
        if not ordered:
            return None
        rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
        return ordered[rank - 1]

    def __len__(self) -> int:
        return len(self._samples)

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()


@dataclass
class StreamCounters:
    """Frame counts since the node was configured.

    received: frames that arrived; throttled: skipped by max_fps; dropped: replaced in the slot by a
    newer frame before processing; rejected: malformed (bad size, step, encoding ...); failed:
    inference or publishing errors; published: restored frames sent.
    """

    received: int = 0
    throttled: int = 0
    dropped: int = 0
    rejected: int = 0
    failed: int = 0
    published: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class KeepLatestWorker(Generic[T]):
    """Run ``handler(item)`` on one background thread; ``submit`` never blocks; newest item wins.

    ``handler`` exceptions are passed to ``on_error`` and the worker keeps going: one bad frame must
    never stop a camera pipeline.
    """

    def __init__(
        self,
        handler: Callable[[T], None],
        on_error: Callable[[T, BaseException], None] | None = None,
        name: str = "keep-latest-worker",
    ) -> None:
        self._handler = handler
        self._on_error = on_error
        self._name = name
        self._slot: LatestSlot[T] = LatestSlot()
        self._thread: threading.Thread | None = None
        self._busy = threading.Event()
        self.dropped = 0

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self._name} already started")
        self._slot = LatestSlot()
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Hand over ``item``; returns False when it replaced a pending one (counted in ``dropped``)."""
        if self._slot.put(item):
            self.dropped += 1
            return False
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop after the item in progress (a pending one is discarded); True if the thread ended."""
        thread, self._thread = self._thread, None
        self._slot.close()
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _loop(self) -> None:
        slot = self._slot
        while not slot.closed:
            item = slot.take(timeout=0.5)
            if item is None:
                continue
            self._busy.set()
            try:
                self._handler(item)
            except Exception as exc:
                if self._on_error is not None:
                    self._on_error(item, exc)
            finally:
                self._busy.clear()
