"""Benchmark (not a test): qdr_restore end-to-end vs the bare runtime at 640x480.

Bare runtime: ``Runtime.infer_uint8`` on a 640x480 frame in a loop. Node: ``restore_node`` in its
own process (same model, backend and threads), fed by a camera publisher in this process at a fixed
rate ``--camera-factor`` (1.25) times the bare runtime's FPS of that round: a camera a little faster
than the model, as on a robot, so the node's keep-latest slot always holds a fresh frame and drops
the surplus. FPS = restored frames per second received here. (A closed loop that sends a frame per
restored frame cannot keep the node busy: its camera -> node -> camera round trip is as long as a
frame when inference holds both cores.) Latency: one frame in
flight, header stamp -> restored frame received here; added latency = that minus the bare
inference time. Runtime and node phases alternate (``--rounds``) while the node process stays up,
so a change in background load affects both; the ratio is the median of the per-round ratios.

Transport: ``--transport large_data`` (default) sets ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` in
both processes, the setting docs/ros_node.md tells users to use for 640x480 and larger frames;
``--transport default`` measures Fast DDS's default UDP transport (fragmented 921 kB frames cost
both processes CPU that the two inference threads then miss).

    PYTHONPATH=. .venv/bin/python benchmarks/node_vs_runtime.py [--model m.onnx] [--threads 2]

Without --model it uses models/lowlight/int8_cpu.onnx if shipped, else a random-weight efm-s export.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from qdr_core.runtime import load_runtime  # noqa: E402

H, W = 480, 640


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


TRANSPORTS = {"large_data": "LARGE_DATA", "default": None}


def node_run(
    model: Path,
    backend: str,
    threads: int,
    seconds: float,
    rounds: int,
    tmp: Path,
    transport: str,
    camera_factor: float = 1.25,
    parallel_frames: int = 1,
    node_threads: int | None = None,
) -> dict:
    # Fast DDS reads the variable when a participant is created: set it before rclpy.init, and
    # for the node process alike (both sides must agree or they do not talk at all).
    os.environ.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    if TRANSPORTS[transport]:
        os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = TRANSPORTS[transport]
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    domain = random.randint(100, 200)
    config = yaml.safe_load((REPO / "config" / "restore.yaml").read_text())
    config["qdr_restore"]["ros__parameters"].update(
        model_path=str(model),
        backend=backend,
        num_threads=threads if node_threads is None else node_threads,
        parallel_frames=parallel_frames,
        autostart=True,
        warmup_frames=3,
    )
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(config))
    env = {**os.environ, "ROS_DOMAIN_ID": str(domain), "PYTHONPATH": str(REPO)}  # transport set above
    log = (tmp / "node.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "qdr_ros.restore_node", "--ros-args", "--params-file", str(params)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("bench_camera", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(Image, "image_raw", qos)
    received: list[tuple[int, float]] = []
    # The camera and the recorder stand in for C++ drivers and tools, so they are kept cheap: the
    # restored frames arrive serialized (raw=True; the stamp's seconds are read from the CDR bytes
    # after the 4-byte encapsulation header) and one Image message is re-stamped and re-sent. A
    # Python camera that rebuilt and deserialized 921 kB per frame would take CPU from the node
    # being measured on a 2-core machine.
    node.create_subscription(
        Image,
        "restored/image_raw",
        lambda raw: received.append((int.from_bytes(raw[4:8], "little", signed=True), time.time())),
        qos,
        raw=True,
    )
    frame = np.random.default_rng(0).integers(0, 256, H * W * 3, dtype=np.uint8).tobytes()
    sent: dict[int, float] = {}
    msg = Image(height=H, width=W, encoding="rgb8", step=W * 3)
    data = array.array("B")
    data.frombytes(frame)
    msg.data = data

    def publish(seq: int) -> None:
        now = time.time()
        msg.header.stamp.sec, msg.header.stamp.nanosec = seq, 0
        sent[seq] = now
        pub.publish(msg)

    def spin_until(predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not predicate():
            executor.spin_once(timeout_sec=0.005)
        return predicate()

    try:
        seq = 0
        # Wait for discovery, configure and warm-up: probe until a frame comes back.
        while not received:
            seq += 1
            publish(seq)
            spin_until(lambda: bool(received), 1.0)
            if proc.poll() is not None or seq > 60:
                raise RuntimeError(f"node did not answer; see {tmp / 'node.log'}")
        spin_until(lambda: False, 1.0)

        # Latency: one frame in flight.
        latencies = []
        for _ in range(30):
            seq += 1
            count = len(received)
            publish(seq)
            spin_until(lambda count=count: len(received) > count, 5.0)
            if received[-1][0] == seq:
                latencies.append(received[-1][1] - sent[seq])

        # Throughput, alternating with the bare runtime in this process while the node idles, so
        # both see the same background load (this machine's cores are shared).
        pairs = []
        with load_runtime(model, backend=backend, num_threads=threads) as runtime:
            bare_phase(runtime, 1.0)
            for _ in range(rounds):
                bare = bare_phase(runtime, seconds)
                spin_until(lambda: False, 0.5)
                camera_hz = camera_factor * bare["fps"]
                period = 1.0 / camera_hz
                start_count, start = len(received), time.monotonic()
                end, next_frame, sent_frames = start + seconds, start, 0
                while (now := time.monotonic()) < end:
                    if now >= next_frame:
                        seq += 1
                        sent_frames += 1
                        publish(seq)
                        next_frame += period
                    executor.spin_once(timeout_sec=max(0.0, min(next_frame - time.monotonic(), 0.005)))
                node_fps = (len(received) - start_count) / (time.monotonic() - start)
                spin_until(lambda: False, 1.0)  # let the last frame arrive
                pairs.append(
                    {
                        "runtime_fps": bare["fps"],
                        "runtime_ms_p50": bare["latency_ms_p50"],
                        "camera_hz": camera_hz,
                        "frames_sent": sent_frames,
                        "node_fps": node_fps,
                    }
                )
    finally:
        executor.remove_node(node)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        log.close()
    return {
        "rounds": pairs,
        "latency_ms_p50": 1e3 * float(np.median(latencies)),
        "latency_ms_p95": 1e3 * float(np.percentile(latencies, 95)),
        "exit_code": proc.returncode,
    }


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "node_vs_runtime.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model, model_note = args.model, "given"
        shipped = REPO / "models" / "lowlight" / "int8_cpu.onnx"
        if model is None and shipped.is_file():
            model, model_note = shipped, "shipped lowlight int8_cpu"
        elif model is None:
            from qdr_core.runtime.testing import write_random_model

            model, model_note = (
                write_random_model(tmp, preset="efm-s", seed=0).onnx,
                "random-weight efm-s FP32 export",
            )
        node = node_run(
            model,
            args.backend,
            args.threads,
            args.seconds,
            args.rounds,
            tmp,
            args.transport,
            args.camera_factor,
            args.parallel_frames,
            args.node_threads,
        )

    rounds = node.pop("rounds")
    ratios = [r["node_fps"] / r["runtime_fps"] for r in rounds]
    runtime_ms = float(np.median([r["runtime_ms_p50"] for r in rounds]))
    result = {
        "resolution": f"{W}x{H}",
        "model": model_note,
        "backend": args.backend,
        "num_threads": args.threads,
        "node_num_threads": args.threads if args.node_threads is None else args.node_threads,
        "node_parallel_frames": args.parallel_frames,
        "transport": args.transport,
        "camera_factor": args.camera_factor,
        "fastdds_builtin_transports": TRANSPORTS[args.transport] or "(unset: Fast DDS default, UDPv4 + SHM)",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "rounds": rounds,
        "runtime_fps": float(np.median([r["runtime_fps"] for r in rounds])),
        "node_fps": float(np.median([r["node_fps"] for r in rounds])),
        "node_fps_ratio": float(np.median(ratios)),
        "runtime_latency_ms_p50": runtime_ms,
        "node_latency_ms_p50": node["latency_ms_p50"],
        "node_latency_ms_p95": node["latency_ms_p95"],
        "added_latency_ms_p50": node["latency_ms_p50"] - runtime_ms,
        "node_exit_code": node["exit_code"],
        "note": "node latency: header stamp -> restored frame received by a subscriber in another "
        "process; runtime and node phases alternate so both see the same background load",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
