"""Timing harness: warm-up, then N timed calls; median, p95 and the spread.

The median is the headline number (robust to a scheduler hiccup); p95 is what a real-time loop has
to budget for. ``interleaved`` times several functions in alternation so that a ratio between them
is measured under the same background load, which matters on a shared machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Statistics of ``n`` timed calls, in milliseconds."""

    median_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    n: int

    @property
    def fps(self) -> float:
        return 1000.0 / self.median_ms if self.median_ms > 0 else float("inf")

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "fps": self.fps}

    @classmethod
    def from_seconds(cls, samples: list[float]) -> Timing:
        if not samples:
            raise ValueError("no timing samples")
        ms = np.asarray(samples, dtype=np.float64) * 1000.0
        stats = (np.median(ms), np.percentile(ms, 95), ms.mean(), ms.min(), ms.max())
        return cls(*(float(x) for x in stats), n=int(ms.size))


def measure(
    fn: Callable[[], object],
    warmup: int = 3,
    repeats: int = 20,
    min_seconds: float = 0.0,
    max_seconds: float = 60.0,
) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then at least ``repeats`` times (and for at least
    ``min_seconds``, at most ``max_seconds`` once ``repeats`` is reached)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if len(samples) >= repeats and (elapsed >= min_seconds or elapsed >= max_seconds):
            break
    return Timing.from_seconds(samples)


def interleaved(
    fns: Mapping[str, Callable[[], object]], warmup: int = 3, repeats: int = 20
) -> dict[str, Timing]:
    """Time each function in round-robin order (A B C A B C ...), so that background load hits all of
    them alike; returns one ``Timing`` per name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats):
        # Alternate the order each round so no function always runs right after the same other one.
        names = list(fns) if i % 2 == 0 else list(reversed(fns))
        for name in names:
            t0 = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - t0)
    return {name: Timing.from_seconds(s) for name, s in samples.items()}


def interleaved_models(
    paths: Mapping[str, str], image: np.ndarray, threads: int, warmup: int, repeats: int
) -> dict[str, Timing]:
    """``interleaved`` over onnxruntime sessions of ``paths`` (name -> model file), each on ``image``."""
    from qdr_core.runtime import load_runtime

    runtimes = {
        name: load_runtime(p, backend="onnxruntime", num_threads=threads) for name, p in paths.items()
    }
    try:
        return interleaved(
            {name: (lambda r=r: r.infer(image)) for name, r in runtimes.items()}, warmup, repeats
        )
    finally:
        for runtime in runtimes.values():
            runtime.close()
