"""Peak memory (RSS) of this process.

``ru_maxrss`` is a process-lifetime peak, so two runtimes or two resolutions measured in one process
would report the larger of the two for both. Each configuration therefore runs in its own
``python -m qdr_core.bench.worker`` (``worker.run_isolated``); inside it the kernel's high-water mark
is reset after imports (``/proc/self/clear_refs``) so the peak covers model load and inference.
"""

from __future__ import annotations

import os
import resource
import sys

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20


def current_rss_mb() -> float:
    """Resident set size now, in MiB (/proc, else ru_maxrss)."""
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
