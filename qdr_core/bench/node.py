"""Node vs bare runtime: what the node's per-frame path costs on top of inference.

Two sources, both reported:

* ``frame_pipeline``: measured here, without ROS — the exact per-frame code the node runs
  (``qdr_core.frame_restore.restore_raw``: decode a ``bgr8`` camera message, infer, encode) timed
  interleaved with bare ``Runtime.infer`` on the same frame. A lower bound on the node's overhead
  (no DDS transport, no executor).
* ``ros_node``: the node engineer's end-to-end measurement ``benchmarks/node_vs_runtime.py``
  (``restore_node`` in its own process fed by a camera publisher), picked up when the script exists
  and run as ``node_vs_runtime.py --model M --threads T --seconds S --rounds R --out TMP``. It runs
  at 640x480 only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from qdr_core.bench.frames import frame_uint8
from qdr_core.bench.timing import interleaved

_REPO = Path(__file__).resolve().parents[2]
SCRIPT = _REPO / "benchmarks" / "node_vs_runtime.py"


def frame_pipeline(model: str, width: int, height: int, threads: int, repeats: int = 20) -> dict[str, Any]:
    """Node per-frame path vs bare inference, interleaved on one loaded runtime."""
    from qdr_core.frame_restore import restore_raw
    from qdr_core.runtime import load_runtime

    rgb = frame_uint8(height, width)
    bgr = rgb[..., ::-1].copy()
    message_data = bgr.tobytes()  # what a sensor_msgs/Image carries
    image = rgb.astype("float32") / 255.0
    with load_runtime(model, backend="onnxruntime", num_threads=threads) as rt:
        t = interleaved(
            {
                "bare": lambda: rt.infer(image),
                "pipeline": lambda: restore_raw(rt, height, width, "bgr8", width * 3, message_data),
            },
            warmup=3,
            repeats=repeats,
        )
    bare, pipe = t["bare"], t["pipeline"]
    return {
        "model": model, "width": width, "height": height, "threads": threads, "encoding": "bgr8",
        "bare": bare.as_dict(), "pipeline": pipe.as_dict(),
        "fps_ratio": pipe.fps / bare.fps,
        "added_latency_ms": pipe.median_ms - bare.median_ms,
        "latency_ratio": pipe.median_ms / bare.median_ms,
        "added_latency_ratio": (pipe.median_ms - bare.median_ms) / bare.median_ms,
    }  # fmt: skip


def _find(d: Any, *words: str, prefix: str = "") -> float | None:
    """First numeric value whose flattened key contains every word (case-insensitive)."""
    if isinstance(d, dict):
        for key, value in d.items():
            found = _find(value, *words, prefix=f"{prefix}.{key}".lower())
            if found is not None:
                return found
        return None
    if isinstance(d, (int, float)) and not isinstance(d, bool) and all(w in prefix for w in words):
        return float(d)
    return None


def _get(d: Any, *path: str) -> float | None:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return float(d) if isinstance(d, (int, float)) and not isinstance(d, bool) else None


def _first(d: Any, *paths: tuple[str, ...]) -> float | None:
    for path in paths:
        value = _get(d, *path)
        if value is not None:
            return value
    return None


def summarize_node_result(raw: dict[str, Any]) -> dict[str, float | None]:
    """Node / bare ratios from node_vs_runtime.py's JSON (``runtime.fps``, ``node.fps``,
    ``*.latency_ms_p50``, ``node_fps_ratio``); other layouts are searched by key words."""
    node_fps = _first(raw, ("node", "fps"), ("node_fps",)) or _find(raw, "node", "fps")
    bare_fps = _first(raw, ("runtime", "fps"), ("runtime_fps",)) or _find(raw, "bare", "fps")
    node_lat = _first(raw, ("node", "latency_ms_p50"), ("node_latency_ms_p50",)) or _find(
        raw, "node", "latency"
    )
    bare_lat = _first(
        raw, ("runtime", "latency_ms_p50"), ("runtime_latency_ms_p50",), ("runtime_ms_p50",)
    ) or _find(raw, "bare", "latency")
    fps_ratio = _get(raw, "node_fps_ratio") or (node_fps / bare_fps if node_fps and bare_fps else None)
    summary = {
        "node_fps": node_fps,
        "runtime_fps": bare_fps,
        "fps_ratio": fps_ratio,
        "node_latency_ms": node_lat,
        "runtime_latency_ms": bare_lat,
        "added_latency_ms": _get(raw, "added_latency_ms_p50")
        or (node_lat - bare_lat if node_lat and bare_lat else None),
        "latency_ratio": node_lat / bare_lat if node_lat and bare_lat else None,
    }
    summary["added_latency_ratio"] = (
        summary["added_latency_ms"] / bare_lat
        if summary["added_latency_ms"] is not None and bare_lat
        else None
    )
    return summary


def ros_node(
    model: str,
    threads: int,
    seconds: float = 8.0,
    rounds: int = 3,
    timeout_s: float = 600.0,
    transport: str = "large_data",
    parallel_frames: int = 1,
    node_threads: int | None = None,
) -> dict[str, Any]:
    """Run benchmarks/node_vs_runtime.py (its own rclpy node process) when it exists; ``status``
    says what happened. Its JSON goes to a temporary file: the script's own result file is left
    alone. ``transport``: ``large_data`` (the documented setting for 640x480+ frames) or
    ``default`` (Fast DDS's default UDP transport). ``parallel_frames`` / ``node_threads``: the
    node's settings (default: one frame at a time on ``threads`` threads, the lowest latency)."""
    if not SCRIPT.is_file():
        return {
            "status": "absent",
            "note": f"{SCRIPT} not found: the ROS node measurement is picked up once it exists",
        }
    with tempfile.TemporaryDirectory(prefix="qdr_bench_node_") as tmp:
        out = Path(tmp) / "node_vs_runtime.json"
        args = [
            "--model",
            model,
            "--threads",
            str(threads),
            "--seconds",
            str(seconds),
            "--rounds",
            str(rounds),
            "--transport",
            transport,
            "--parallel-frames",
            str(parallel_frames),
            *(["--node-threads", str(node_threads)] if node_threads is not None else []),
            "--out",
            str(out),
        ]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")])),
        }
        try:
            proc = subprocess.run(
                [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=_REPO, env=env,
                timeout=timeout_s, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"status": "failed", "note": f"{SCRIPT} timed out after {timeout_s:.0f} s"}
        invocation = f"python {SCRIPT.relative_to(_REPO)} {' '.join(args[:-2])} --out TMP"
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return {
                "status": "failed",
                "invocation": invocation,
                "note": f"exit {proc.returncode}",
                "stderr_tail": tail,
            }
        raw = json.loads(out.read_text())
    return {
        "status": "measured",
        "invocation": invocation,
        "transport": transport,
        "parallel_frames": parallel_frames,
        "node_threads": threads if node_threads is None else node_threads,
        "summary": summarize_node_result(raw),
        "raw": raw,
    }
