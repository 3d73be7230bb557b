"""Streaming mechanics of a real-time node, without ROS: keep-latest hand-off to a worker thread,
frame-rate limiting, rate and latency statistics.

A camera produces frames at its own pace; a restoration model may be slower. Queueing frames would
only add latency (each output older than the last), so the node keeps one slot: the newest frame
replaces an unprocessed one, and the replaced frame is counted as dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
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
    """Frame counts since the node was configured; every frame that does not come out is in one.

    received: frames that reached the callback; lost: sent by a publisher but never reached the
    callback (gaps in the publisher's sequence numbers: replaced in the subscription's keep-last
    queue or lost in transport); throttled: skipped by max_fps; dropped: replaced in the slot by a
    newer frame before processing; rejected: malformed or too large (by reason in
    ``rejected_by_reason``); failed: inference or publishing errors; published: restored frames sent.
    """

    received: int = 0
    lost: int = 0
    throttled: int = 0
    dropped: int = 0
    rejected: int = 0
    failed: int = 0
    published: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1

    def as_dict(self) -> dict[str, int]:
        """The totals (without the per-reason split)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rejected_by_reason"}

    def copy(self) -> StreamCounters:
        return replace(self, rejected_by_reason=dict(self.rejected_by_reason))


class SequenceGaps:
    """Messages a subscription never saw, from the publishers' sequence numbers.

    DDS numbers each publisher's samples 1, 2, 3 ...; a reader that gets 7 after 4 missed two. That
    is the one honest count of frames replaced in a keep-last-1 reader queue: Fast DDS reports no
    ``message_lost`` event for them (it reports only transport losses, which show as gaps too).
    The first sample of a publisher sets its baseline; an older or repeated number counts nothing.
    """

    def __init__(self, max_publishers: int = 64) -> None:
        self._last: dict[bytes, int] = {}
        self._max = max_publishers

    def observe(self, publisher: bytes, sequence: int | None) -> int:
        """Record ``sequence`` from ``publisher``; returns how many were skipped since the last."""
        if sequence is None or sequence <= 0:
            return 0  # the RMW does not number samples
        last = self._last.get(publisher)
        if last is None and len(self._last) >= self._max:
            self._last.pop(next(iter(self._last)))
        if last is None or sequence > last:
            self._last[publisher] = sequence
        return sequence - last - 1 if last is not None and sequence > last else 0

    def reset(self) -> None:
        self._last.clear()


class KeepLatestWorker(Generic[T]):
    """Run ``handler(item)`` on one background thread; ``submit`` never blocks; newest item wins.

    With ``then``, the work is a two-stage pipeline: ``handler`` returns a result (None: nothing to
    pass on) and ``then(result)`` runs on a second thread, in order. A node restores frame n+1 while
    frame n is being serialised and published, so the model's threads never wait for a publish. At
    most one result per first-stage thread waits between the stages: a slow second stage holds the
    first one back instead of piling up frames.

    ``workers`` > 1 runs that many first-stage threads on the same slot (frames restored in
    parallel: more frames per second on a multi-core CPU, each frame no faster). Results reach
    ``then`` in the order their items were taken; one that finishes after a newer one was passed
    on is dropped (counted in ``late``) rather than sent out of order.

    ``handler`` and ``then`` exceptions are passed to ``on_error`` (with the item or the result) and
    the worker keeps going: one bad frame must never stop a camera pipeline.
    """

    def __init__(
        self,
        handler: Callable[[T], object],
        on_error: Callable[[object, BaseException], None] | None = None,
        name: str = "keep-latest-worker",
        then: Callable[[object], None] | None = None,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if workers > 1 and then is None:
            raise ValueError("workers > 1 needs a `then` stage (it puts the results back in order)")
        self._workers = workers
        self._handler = handler
        self._on_error = on_error
        self._name = name
        self._then = then
        self._slot: LatestSlot[T] = LatestSlot()
        self._threads: list[threading.Thread] = []
        self._then_thread: threading.Thread | None = None
        self._results: queue.Queue = queue.Queue(maxsize=workers)
        self._busy_count = 0
        self._count_lock = threading.Lock()
        self._taken = 0
        self._then_busy = threading.Event()
        self.dropped = 0
        self.late = 0

    def start(self) -> None:
        if self._threads:
            raise RuntimeError(f"{self._name} already started")
        self._slot = LatestSlot()
        self._threads = [
            threading.Thread(target=self._loop, name=f"{self._name}-{i}" if i else self._name, daemon=True)
            for i in range(self._workers)
        ]
        if self._then is not None:
            self._results = queue.Queue(maxsize=self._workers)
            self._then_thread = threading.Thread(
                target=self._then_loop, name=f"{self._name}-out", daemon=True
            )
            self._then_thread.start()
        for thread in self._threads:
            thread.start()

    def submit(self, item: T) -> bool:
        """Hand over ``item``; returns False when it replaced a pending one (counted in ``dropped``)."""
        if self._slot.put(item):
            self.dropped += 1
            return False
        return True

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def busy(self) -> bool:
        return self._busy_count > 0 or self._then_busy.is_set() or not self._results.empty()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop after the item in progress (a pending one is discarded, a finished result is still
        passed on); True if the threads ended."""
        threads, self._threads = self._threads, []
        then_thread, self._then_thread = self._then_thread, None
        self._slot.close()
        ended = True
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            ended = ended and not thread.is_alive()
        if then_thread is not None:
            self._results.put(_STOP)
            then_thread.join(timeout)
            ended = ended and not then_thread.is_alive()
        return ended

    def _loop(self) -> None:
        slot = self._slot
        while not slot.closed:
            item = slot.take(timeout=0.5)
            if item is None:
                continue
            with self._count_lock:
                self._busy_count += 1
                order = self._taken
                self._taken += 1
            try:
                result = self._handler(item)
            except Exception as exc:
                result = None
                if self._on_error is not None:
                    self._on_error(item, exc)
            finally:
                with self._count_lock:
                    self._busy_count -= 1
            if result is not None and self._then is not None:
                self._results.put((order, result))
            # A frame can be hundreds of MB: hold no reference while waiting for the next one.
            item = result = None

    def _then_loop(self) -> None:
        results = self._results
        newest = -1
        while True:
            entry = results.get()
            if entry is _STOP:
                return
            order, result = entry
            if order < newest:
                self.late += 1
                entry = result = None
                continue
            newest = order
            self._then_busy.set()
            try:
                self._then(result)
            except Exception as exc:
                if self._on_error is not None:
                    self._on_error(result, exc)
            finally:
                self._then_busy.clear()
            entry = result = None  # see _loop: nothing big stays referenced between frames


_STOP = object()
