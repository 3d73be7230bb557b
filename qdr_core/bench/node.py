"""Node vs bare runtime: what the node's per-frame path costs on top of inference.

Two sources, both reported:

* ``frame_pipeline``: measured here, without ROS — the exact per-frame code the node runs
  (``qdr_core.frame_restore.restore_raw``: decode a ``bgr8`` camera message, infer, encode) timed
  interleaved with bare ``Runtime.infer`` on the same frame. A lower bound on the node's overhead
  (no DDS transport, no executor).
* ``ros_node``: the node engineer's end-to-end measurement ``benchmarks/node_vs_runtime.py``
  (rclpy node, publisher, subscriber), picked up when the script exists. It is run as a subprocess
  with ``--model M --width W --height H --threads T --json OUT``; if it rejects those arguments it
  is run with ``--json OUT`` alone, then bare, and the newest
  ``benchmarks/results/node_vs_runtime*.json`` it wrote is read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from qdr_core.bench.frames import frame_uint8
from qdr_core.bench.timing import interleaved

_REPO = Path(__file__).resolve().parents[2]
SCRIPT = _REPO / "benchmarks" / "node_vs_runtime.py"
RESULTS = _REPO / "benchmarks" / "results"


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


def summarize_node_result(raw: dict[str, Any]) -> dict[str, float | None]:
    """The ratios from whatever keys node_vs_runtime.py used (node / bare|runtime, fps / latency)."""
    node_fps = _find(raw, "node", "fps")
    bare_fps = _find(raw, "runtime", "fps") or _find(raw, "bare", "fps")
    node_lat = _find(raw, "node", "latency")
    bare_lat = _find(raw, "runtime", "latency") or _find(raw, "bare", "latency")
    return {
        "node_fps": node_fps,
        "runtime_fps": bare_fps,
        "fps_ratio": _find(raw, "fps_ratio") or (node_fps / bare_fps if node_fps and bare_fps else None),
        "node_latency_ms": node_lat,
        "runtime_latency_ms": bare_lat,
        "latency_ratio": _find(raw, "latency_ratio")
        or (node_lat / bare_lat if node_lat and bare_lat else None),
    }


def ros_node(model: str, width: int, height: int, threads: int, timeout_s: float = 300.0) -> dict[str, Any]:
    """Run benchmarks/node_vs_runtime.py when it exists; ``status`` says what happened."""
    if not SCRIPT.is_file():
        return {
            "status": "absent",
            "note": f"{SCRIPT} not found: the ROS node measurement is picked up once it exists",
        }
    results = RESULTS
    results.mkdir(parents=True, exist_ok=True)
    out = results / f".node_vs_runtime_bench_{os.getpid()}.json"
    start = time.time()
    attempts = [
        [
            "--model",
            model,
            "--width",
            str(width),
            "--height",
            str(height),
            "--threads",
            str(threads),
            "--json",
            str(out),
        ],
        ["--json", str(out)],
        [],
    ]
    log = []
    for args in attempts:
        try:
            proc = subprocess.run(
                [sys.executable, str(SCRIPT), *args],
                capture_output=True,
                text=True,
                cwd=_REPO,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"status": "failed", "note": f"{SCRIPT} timed out after {timeout_s:.0f} s"}
        log.append(f"{' '.join(args) or '(no args)'} -> exit {proc.returncode}")
        if proc.returncode == 0:
            break
    else:
        return {
            "status": "failed",
            "note": "; ".join(log),
            "stderr_tail": proc.stderr.strip().splitlines()[-5:],
        }
    candidates = [out] if out.is_file() else []
    candidates += sorted(
        (p for p in results.glob("node_vs_runtime*.json") if p.stat().st_mtime >= start),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    if not candidates:
        return {
            "status": "failed",
            "note": f"{SCRIPT} ran ({log[-1]}) but wrote no JSON the bench could find",
        }
    raw = json.loads(candidates[0].read_text())
    if candidates[0] == out:
        out.unlink()
    return {
        "status": "measured",
        "invocation": log[-1],
        "source": str(candidates[0]),
        "summary": summarize_node_result(raw),
        "raw": raw,
    }
