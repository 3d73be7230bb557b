"""What a benchmark ran on. Every JSON result carries this: a number without its machine and load
average cannot be compared with anything."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from typing import Any

# ISA features that decide which int8 kernels onnxruntime / oneDNN can use.
_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")
_PACKAGES = ("onnxruntime", "onnxruntime-gpu", "torch", "numpy", "opencv-python-headless", "tensorrt")


def _cpuinfo() -> tuple[str, set[str], int | None]:
    """CPU model, ISA flags and physical cores (distinct package/core ids; None where not told)."""
    model, flags, cores, package = platform.processor() or platform.machine(), set(), set(), None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = (x.strip() for x in line.partition(":"))
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value
                elif key == "flags" and not flags:
                    flags = set(value.split())
                elif key == "physical id":
                    package = value
                elif key == "core id":
                    cores.add((package, value))
    except OSError:
        pass
    return model, flags, len(cores) or None


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def gpus() -> list[str]:
    """``name, driver`` of each NVIDIA GPU nvidia-smi lists (empty without one): GPU rows are
    meaningless without the card they ran on."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return []
    query = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def machine_info() -> dict[str, Any]:
    model, flags, cores = _cpuinfo()
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "physical_cores": cores,
        "isa": sorted(f for f in _ISA_FLAGS if f in flags),
        "gpus": gpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {p: v for p in _PACKAGES if (v := _version(p)) is not None},
        "loadavg": load_average(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def load_note(loadavg: list[float], cpus: int | None) -> str:
    """One line that says whether timings were taken on a busy machine."""
    if not loadavg or not cpus:
        return "load average unknown"
    busy = loadavg[0] > 0.5
    state = "under load: other processes competed for the CPU, timings are noisy" if busy else "idle machine"
    return f"load average {loadavg[0]:.2f} on {cpus} CPUs ({state})"
