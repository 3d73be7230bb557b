"""Node vs bare runtime: what the node's per-frame path costs on top of inference.

Two sources, both reported:

* ``frame_pipeline``: measured here, without ROS — the exact per-frame code the node runs
  (``qdr_core.frame_restore.restore_raw``: decode a ``bgr8`` camera message, infer, encode) timed
  interleaved with bare ``Runtime.infer`` on the same frame. A lower bound on the node's overhead
  (no DDS transport, no executor).
* ``ros_node``: the end-to-end measurement ``qdr_ros.bench`` (``restore_node`` in its own process
  fed by a camera publisher), run as ``python -m qdr_ros.bench --model M --threads T --seconds S
  --rounds R --out TMP`` when the ROS side is installed. It runs at 640x480 only. (A subprocess by
  module name: qdr_core does not import qdr_ros.)
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from qdr_core.bench.frames import frame_uint8
from qdr_core.bench.timing import interleaved

BENCH_MODULE = "qdr_ros.bench"


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


def summarize_node_result(raw: dict[str, Any]) -> dict[str, float | None]:
    """Node / bare ratios from ``qdr_ros.bench``'s JSON (``node_fps``, ``runtime_fps``,
    ``node_fps_ratio``, ``*_latency_ms_p50``, ``added_latency_ms_p50``)."""
    bare_lat = raw["runtime_latency_ms_p50"]
    added = raw["added_latency_ms_p50"]
    return {
        "node_fps": raw["node_fps"],
        "runtime_fps": raw["runtime_fps"],
        "fps_ratio": raw["node_fps_ratio"],
        "node_latency_ms": raw["node_latency_ms_p50"],
        "runtime_latency_ms": bare_lat,
        "added_latency_ms": added,
        "latency_ratio": raw["node_latency_ms_p50"] / bare_lat if bare_lat else None,
        "added_latency_ratio": added / bare_lat if bare_lat else None,
    }


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
    """Run ``python -m qdr_ros.bench`` (its own rclpy node process) when the ROS side is installed;
    ``status`` says what happened. Its JSON goes to a temporary file: the script's own result file is left
    alone. ``transport``: ``large_data`` (the documented setting for 640x480+ frames) or
    ``default`` (Fast DDS's default UDP transport). ``parallel_frames`` / ``node_threads``: the
    node's settings (default: one frame at a time on ``threads`` threads, the lowest latency)."""
    if importlib.util.find_spec("qdr_ros") is None:
        return {"status": "absent", "note": "qdr_ros is not installed: no ROS node measurement"}
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
        try:
            proc = subprocess.run(
                [sys.executable, "-m", BENCH_MODULE, *args], capture_output=True, text=True,
                timeout=timeout_s, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"status": "failed", "note": f"{BENCH_MODULE} timed out after {timeout_s:.0f} s"}
        invocation = f"python -m {BENCH_MODULE} {' '.join(args[:-2])} --out TMP"
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
