"""Benchmark (not a test): qdr_restore end-to-end vs the bare runtime at 640x480.

Bare runtime: ``Runtime.infer_uint8`` on a 640x480 frame in a loop. Node: ``restore_node`` in its
own process (same model, backend and threads; ``qdr_ros.harness``), fed by a camera publisher in
this process at a fixed rate ``--camera-factor`` (1.25) times the bare runtime's FPS of that round:
a camera a little faster than the model, as on a robot, so the node's keep-latest slot always
holds a fresh frame and drops the surplus. FPS = restored frames per second received here. (A
closed loop that sends a frame per restored frame cannot keep the node busy: its camera -> node ->
camera round trip is as long as a frame when inference holds both cores.) Latency: one frame in
flight, header stamp -> restored frame received here; added latency = that minus the bare
inference time. Runtime and node phases alternate (``--rounds``) while the node process stays up,
so a change in background load affects both; the ratio is the median of the per-round ratios.

Transport: ``--transport large_data`` (default) sets ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` in
both processes, the setting docs/ros_node.md tells users to use for 640x480 and larger frames;
``--transport default`` measures Fast DDS's default UDP transport (fragmented 921 kB frames cost
both processes CPU that the two inference threads then miss).

    .venv/bin/python -m qdr_ros.bench [--model m.onnx] [--threads 2]   # or benchmarks/node_vs_runtime.py

Without --model it uses models/lowlight/int8_cpu.onnx if shipped, else a random-weight efm-s export.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sensor_msgs.msg import Image

from qdr_core.paths import source_root
from qdr_core.runtime import load_runtime
from qdr_ros.harness import NodeClient, node_session

H, W = 480, 640
TRANSPORTS = {"large_data": "LARGE_DATA", "default": None}
DEFAULT_OUT = source_root() / "benchmarks" / "results" / "node_vs_runtime.json"


def bare_phase(runtime, seconds: float) -> dict[str, float]:
    frame = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    times = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        runtime.infer_uint8(frame)
        times.append(time.perf_counter() - start)
    return {
        "fps": len(times) / sum(times),
        "latency_ms_p50": 1e3 * float(np.median(times)),
        "frames": len(times),
    }


class _Camera:
    """One Image message, re-stamped (sec = sequence number) and re-sent: a Python camera that
    rebuilt 921 kB per frame would take CPU from the node being measured on a 2-core machine."""

    def __init__(self, client: NodeClient) -> None:
        self.client, self.seq, self.sent = client, 0, {}
        self.msg = Image(height=H, width=W, encoding="rgb8", step=W * 3)
        data = array.array("B")
        data.frombytes(np.random.default_rng(0).integers(0, 256, H * W * 3, dtype=np.uint8).tobytes())
        self.msg.data = data

    def publish(self) -> int:
        self.seq += 1
        self.msg.header.stamp.sec, self.msg.header.stamp.nanosec = self.seq, 0
        self.sent[self.seq] = time.time()
        self.client.image_pub.publish(self.msg)
        return self.seq

    def back(self, seq: int) -> float | None:
        """Receive time of frame ``seq``'s output (seconds), or None."""
        got = self.client.received.get(seq * 1_000_000_000)
        return got[0] * 1e-9 if got else None


def _latency(camera: _Camera, proc, log: Path) -> list[float]:
    client = camera.client
    for _ in range(60):  # discovery, configure and warm-up: probe until a frame comes back
        seq = camera.publish()
        if client.wait(lambda s=seq: camera.back(s) is not None, 1.0):
            break
        if not proc.alive():
            raise RuntimeError(f"node exited; see {log}")
    else:
        raise RuntimeError(f"node did not answer; see {log}")
    time.sleep(1.0)
    latencies = []
    for _ in range(30):  # one frame in flight
        seq = camera.publish()
        if client.wait(lambda s=seq: camera.back(s) is not None, 5.0, period=0.001):
            latencies.append(camera.back(seq) - camera.sent[seq])
    return latencies


def _throughput_round(camera: _Camera, runtime, seconds: float, camera_factor: float) -> dict:
    bare = bare_phase(runtime, seconds)
    time.sleep(0.5)
    camera_hz = camera_factor * bare["fps"]
    period = 1.0 / camera_hz
    start_count, start = len(camera.client.received), time.monotonic()
    end, next_frame, sent_frames = start + seconds, start, 0
    while (now := time.monotonic()) < end:
        if now >= next_frame:
            camera.publish()
            sent_frames += 1
            next_frame += period
        time.sleep(max(0.0, min(next_frame - time.monotonic(), 0.005)))
    node_fps = (len(camera.client.received) - start_count) / (time.monotonic() - start)
    time.sleep(1.0)  # let the last frame arrive
    return {"runtime_fps": bare["fps"], "runtime_ms_p50": bare["latency_ms_p50"], "camera_hz": camera_hz,
            "frames_sent": sent_frames, "node_fps": node_fps}  # fmt: skip


def node_run(model: Path, args: argparse.Namespace, tmp: Path) -> dict:
    params = {"model_path": str(model), "backend": args.backend, "autostart": True, "warmup_frames": 3,
              "num_threads": args.threads if args.node_threads is None else args.node_threads,
              "parallel_frames": args.parallel_frames}  # fmt: skip
    transport = TRANSPORTS[args.transport]
    env = {"FASTDDS_BUILTIN_TRANSPORTS": transport} if transport else {}
    with node_session(tmp, params, raw_outputs=True, camera_depth=2, **env) as (proc, client):
        camera = _Camera(client)
        latencies = _latency(camera, proc, tmp / "node.log")
        with load_runtime(model, backend=args.backend, num_threads=args.threads) as runtime:
            bare_phase(runtime, 1.0)
            rounds = [
                _throughput_round(camera, runtime, args.seconds, args.camera_factor)
                for _ in range(args.rounds)
            ]
    return {
        "rounds": rounds,
        "latency_ms_p50": 1e3 * float(np.median(latencies)),
        "latency_ms_p95": 1e3 * float(np.percentile(latencies, 95)),
        "exit_code": proc.proc.returncode,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transport", choices=sorted(TRANSPORTS), default="large_data")
    parser.add_argument(
        "--camera-factor", type=float, default=1.25, help="camera rate / bare runtime FPS of the round"
    )
    parser.add_argument(
        "--parallel-frames", type=int, default=1, help="the node's parallel_frames (1 = lowest latency)"
    )
    parser.add_argument(
        "--node-threads", type=int, default=None, help="the node's num_threads (default: --threads)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def summary(args: argparse.Namespace, model_note: str, node: dict) -> dict:
    rounds = node["rounds"]
    runtime_ms = float(np.median([r["runtime_ms_p50"] for r in rounds]))
    return {
        "resolution": f"{W}x{H}", "model": model_note, "backend": args.backend, "num_threads": args.threads,
        "node_num_threads": args.threads if args.node_threads is None else args.node_threads,
        "node_parallel_frames": args.parallel_frames, "transport": args.transport,
        "camera_factor": args.camera_factor,
        "fastdds_builtin_transports": TRANSPORTS[args.transport] or "(unset: Fast DDS default, UDPv4 + SHM)",
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "rounds": rounds,
        "runtime_fps": float(np.median([r["runtime_fps"] for r in rounds])),
        "node_fps": float(np.median([r["node_fps"] for r in rounds])),
        "node_fps_ratio": float(np.median([r["node_fps"] / r["runtime_fps"] for r in rounds])),
        "runtime_latency_ms_p50": runtime_ms,
        "node_latency_ms_p50": node["latency_ms_p50"], "node_latency_ms_p95": node["latency_ms_p95"],
        "added_latency_ms_p50": node["latency_ms_p50"] - runtime_ms,
        "node_exit_code": node["exit_code"],
        "note": "node latency: header stamp -> restored frame received by a subscriber in another "
        "process; runtime and node phases alternate so both see the same background load",
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model, model_note = args.model, "given"
        shipped = source_root() / "models" / "lowlight" / "int8_cpu.onnx"
        if model is None and shipped.is_file():
            model, model_note = shipped, "shipped lowlight int8_cpu"
        elif model is None:
            from qdr_core.export.random_model import write_random_model

            model = write_random_model(tmp, preset="efm-s", seed=0).onnx
            model_note = "random-weight efm-s FP32 export"
        result = summary(args, model_note, node_run(model, args, tmp / "node"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
