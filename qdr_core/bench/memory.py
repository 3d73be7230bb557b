"""Peak memory (RSS) and isolated measurements: one subprocess per configuration.

``ru_maxrss`` is a process-lifetime peak, so two runtimes or two resolutions measured in one process
would report the larger of the two for both. Each configuration therefore runs in its own
``python -m qdr_core.bench.worker``; inside it the kernel's high-water mark is reset after imports
(``/proc/self/clear_refs``) so the peak covers model load and inference.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from typing import Any

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20


def current_rss_mb() -> float:
    """Resident set size now, in MiB (psutil where installed, else /proc, else ru_maxrss)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        pass
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE_MB
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak RSS in MiB since start or since ``reset_peak_rss`` (VmHWM), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024  # bytes on macOS, KiB on Linux


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark of this process (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def run_isolated(cfg: dict[str, Any], timeout_s: float = 300.0) -> dict[str, Any]:
    """Run one worker configuration in a fresh interpreter; returns its result dict (``ok`` False
    with ``error`` when it failed or timed out)."""
    from qdr_core.bench.worker import RESULT_PREFIX

    env = dict(os.environ)
    threads = int(cfg.get("threads", 0))
    if threads > 0:
        # Keep OpenMP / MKL pools (torch) at the requested size instead of one thread per CPU.
        env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "qdr_core.bench.worker"],
            input=json.dumps(cfg),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout_s:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"ok": False, "error": f"worker exited {proc.returncode}: {' | '.join(tail)}"}
