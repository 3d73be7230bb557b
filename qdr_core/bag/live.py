"""``qdr bag eval --live``: replay a bag through the real ``qdr_restore`` lifecycle node.

In the spirit of ros2_benchmark: the node runs in its own process exactly as on a robot
(``python -m qdr_ros.restore_node --ros-args --params-file ...``); this process configures and
activates it through its lifecycle services, publishes the bag's frames on ``image_raw`` +
``camera_info`` at the recorded rate (times ``rate_scale``), records ``restored/image_raw`` and
matches every output to its input by ``header.stamp``, which the node passes through.

Each frame is stamped with the wall clock when it is published, so end-to-end latency is
receive time minus stamp (transport both ways + queueing + decode + inference + encode), measured
by one clock in one process. Frames published but never received are dropped (the node keeps only
the newest frame when inference is slower than the camera). Runs in a private ROS domain with
localhost discovery and a unique namespace so that nothing else on the machine interferes.
"""

from __future__ import annotations

import array
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qdr_core.bag.evaluate import FrameScorer, pair_by_stamp, percentiles_ms, pick_indices, resolve_topics
from qdr_core.bag.io import IMAGE_TOPIC, INFO_TOPIC, INFO_TYPE, BagImage, BagReader, decode_or_error
from qdr_core.errors import BackendUnavailableError, DataError, QdrError
from qdr_core.image_encodings import decode

# lifecycle_msgs/msg/Transition ids
_CONFIGURE, _CLEANUP, _ACTIVATE, _DEACTIVATE = 1, 2, 3, 4


def rclpy_available() -> str | None:
    """None when live mode can run here, else the reason it cannot."""
    try:
        import lifecycle_msgs.srv  # noqa: F401
        import rclpy  # noqa: F401
        import sensor_msgs.msg  # noqa: F401
    except Exception as exc:  # ImportError, or a ROS install whose C libraries fail to load
        return f"rclpy / ROS 2 messages are not importable ({type(exc).__name__}: {exc})"
    return None


@dataclass
class LiveOptions:
    """Settings of a live replay.

    Args:
        rate_scale: replay speed relative to the recording (2.0 = twice as fast).
        backend / num_threads: passed to the node's parameters.
        warmup: frames sent (and awaited) before the measured replay; not counted.
        startup_timeout: seconds to wait for the node's lifecycle services.
        drain_timeout: seconds to wait for outstanding outputs after the last frame.
        log_dir: where the node's log and params file go (default: a temp folder).
        domain_id: ROS domain for the replay (default: a random private one).
    """

    rate_scale: float = 1.0
    backend: str = "auto"
    num_threads: int = 0
    warmup: int = 2
    startup_timeout: float = 90.0
    drain_timeout: float = 10.0
    log_dir: str | None = None
    domain_id: int | None = None
    max_frames: int | None = None
    extra_params: dict[str, Any] = field(default_factory=dict)


def _source_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _write_params(path: Path, model: Path, opts: LiveOptions) -> None:
    import yaml

    params = {
        "model_path": str(model),
        "backend": opts.backend,
        "num_threads": int(opts.num_threads),
        "input_qos": "RELIABLE",
        "output_qos": "RELIABLE",
        "warmup_frames": 2,
        "diagnostics_period": 1.0,
        "autostart": False,
        **opts.extra_params,
    }
    # The wildcard applies to the node under the replay's private namespace.
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))


class _NodeProcess:
    def __init__(self, params: Path, namespace: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._handle = log.open("w")
        cmd = [
            sys.executable,
            "-m",
            "qdr_ros.restore_node",
            "--ros-args",
            "--params-file",
            str(params),
            "-r",
            f"__ns:={namespace}",
        ]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._handle, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._handle.close()
        return self.proc.returncode


@dataclass
class _Frame:
    index: int
    log_ns: int
    image: BagImage
    clean: BagImage | None
    info: Any | None


def _load_frames(reader: BagReader, inp: str, clean: str | None, max_frames: int | None) -> list[_Frame]:
    infos: dict[int, Any] = {}
    if reader.has_topic(INFO_TOPIC) and reader.topics()[INFO_TOPIC][0] == INFO_TYPE:
        for _, _, msg in reader.messages([INFO_TOPIC]):
            infos[int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)] = msg
    frames: list[_Frame] = []

    def on_pair(image: BagImage, partner: BagImage | None) -> None:
        if max_frames is None or len(frames) < max_frames:
            frames.append(_Frame(len(frames), image.log_ns, image, partner, infos.get(image.stamp_ns)))

    pair_by_stamp(reader, inp, clean, on_pair)
    frames.sort(key=lambda f: f.log_ns)
    for i, frame in enumerate(frames):
        frame.index = i
    return frames


def evaluate_bag_live(
    bag: str | os.PathLike,
    model: str | os.PathLike,
    input_topic: str = IMAGE_TOPIC,
    clean_topic: str | None = None,
    options: LiveOptions | None = None,
    detector: Any | None = None,
    grid_frames: int = 3,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], FrameScorer]:
    """Replay ``bag`` through the real node running ``model``; returns (result dict, scorer)."""
    opts = options or LiveOptions()
    say = progress or (lambda _msg: None)
    if not opts.rate_scale > 0:
        raise DataError(f"rate scale must be > 0, got {opts.rate_scale}")
    reason = rclpy_available()
    if reason:
        raise BackendUnavailableError(f"live replay needs ROS 2: {reason}")
    model = Path(model).resolve()
    if not model.is_file():
        raise DataError(f"model not found: {model}")
    bag = Path(bag)
    with BagReader(bag) as reader:
        inp, clean = resolve_topics(reader, input_topic, clean_topic)
        frames = _load_frames(reader, inp, clean, opts.max_frames)
    if not frames:
        raise DataError(f"bag {bag}: no frames on {inp}")
    for frame in frames[:1]:  # a malformed first frame fails here, not inside the node
        decode_or_error(frame.image, bag)

    import tempfile

    log_dir = Path(opts.log_dir) if opts.log_dir else Path(tempfile.mkdtemp(prefix="qdr-live-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    namespace = f"/qdr_replay_{os.getpid()}_{random.randint(0, 99999)}"
    domain = opts.domain_id if opts.domain_id is not None else random.randint(120, 220)
    ros_vars = {
        "ROS_DOMAIN_ID": str(domain),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOG_DIR": str(log_dir / "ros_log"),
    }
    env = {**os.environ, **ros_vars, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_source_root()), os.environ.get("PYTHONPATH", "")) if p
    )
    params = log_dir / "params.yaml"
    _write_params(params, model, opts)

    saved_env = {k: os.environ.get(k) for k in ros_vars}
    os.environ.update(ros_vars)  # discovery settings are read from the environment at init
    say(
        f"starting the qdr_restore node (namespace {namespace}, ROS domain {domain}); log {log_dir / 'node.log'}"
    )
    node_proc = _NodeProcess(params, namespace, env, log_dir / "node.log")
    replay = None
    try:
        replay = _Replay(namespace, domain)
        result = replay.run(frames, opts, node_proc, say)
    finally:
        if replay is not None:
            replay.close()
        code = node_proc.stop()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    sent, received = result["sent"], result["received"]
    scorer = FrameScorer(detector, pick_indices(len(frames), grid_frames))
    by_index = {f.index: f for f in frames}
    latencies = []
    for stamp, (index, _pub_ns) in sorted(sent.items(), key=lambda kv: kv[1][0]):
        out = received.get(stamp)
        if out is None:
            continue
        recv_ns, msg = out
        latencies.append((recv_ns - stamp) * 1e-9)
        frame = by_index[index]
        degraded = decode_or_error(frame.image, bag)
        restored = decode(msg.height, msg.width, msg.encoding, msg.step, msg.data, bool(msg.is_bigendian)).rgb
        reference = decode_or_error(frame.clean, bag) if frame.clean is not None else None
        scorer.add(index, frame.image.stamp_ns, degraded, np.ascontiguousarray(restored), reference,
                   latency_ms=(recv_ns - stamp) * 1e-6)  # fmt: skip
    pub_times = sorted(p for _, p in sent.values())
    recv_times = sorted(r for r, _ in (received[s] for s in sent if s in received))
    n_sent, n_recv = len(sent), len(recv_times)
    replay_s = (pub_times[-1] - pub_times[0]) * 1e-9 if n_sent > 1 else 0.0
    out_s = (recv_times[-1] - recv_times[0]) * 1e-9 if n_recv > 1 else 0.0
    summary = scorer.summary()
    live = {
        "mode": "live",
        "bag": str(bag),
        "input_topic": inp,
        "clean_topic": clean,
        "model": str(model),
        "backend": result["diagnostics"].get("backend") or _backend_name(model, opts.backend),
        "rate_scale": opts.rate_scale,
        "frames_sent": n_sent,
        "frames_received": n_recv,
        "frames_dropped": n_sent - n_recv,
        "drop_rate": (n_sent - n_recv) / n_sent if n_sent else 0.0,
        "input_fps": (n_sent - 1) / replay_s if replay_s > 0 else None,
        "throughput_fps": (n_recv - 1) / out_s if out_s > 0 else None,
        "latency_ms": percentiles_ms(latencies),
        "latencies_ms": [round(v * 1000, 3) for v in latencies],
        "node_diagnostics": result["diagnostics"],
        "node_exit_code": code,
        "node_log": str(log_dir / "node.log"),
        **summary,
        "frames": scorer.rows,
    }
    return live, scorer


def _backend_name(model: Path, backend: str) -> str:
    from qdr_core.runtime import auto_backend

    try:
        return auto_backend(model) if backend == "auto" else backend
    except QdrError:
        return backend


class _Replay:
    """This process's side of the replay: lifecycle client, camera publisher, output recorder."""

    def __init__(self, namespace: str, domain: int) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from lifecycle_msgs.srv import ChangeState
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        self.rclpy = rclpy
        self.namespace = namespace
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("qdr_bag_replay", namespace=namespace, context=self.context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.Image, self.CameraInfo, self.ChangeState = Image, CameraInfo, ChangeState
        self.image_pub = self.node.create_publisher(Image, "image_raw", reliable)
        self.info_pub = self.node.create_publisher(CameraInfo, "camera_info", reliable)
        self.received: dict[int, tuple[int, Any]] = {}
        self.diagnostics: dict[str, str] = {}
        self._lock = threading.Lock()
        self.node.create_subscription(
            Image,
            "restored/image_raw",
            self._on_image,
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
        )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.change = self.node.create_client(ChangeState, f"{namespace}/qdr_restore/change_state")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, name="qdr-replay-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._spinning and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.01)
            except Exception:  # shutdown while spinning
                break

    def _on_image(self, msg: Any) -> None:
        now = time.time_ns()  # first thing: the receive time is what latency is measured to
        stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        with self._lock:
            self.received.setdefault(stamp, (now, msg))

    def _on_diag(self, msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith("qdr_restore"):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.005)
        return bool(predicate())

    def transition(
        self, transition_id: int, name: str, node_proc: _NodeProcess, timeout: float = 60.0
    ) -> None:
        from lifecycle_msgs.msg import Transition

        request = self.ChangeState.Request()
        request.transition = Transition(id=transition_id)
        future = self.change.call_async(request)
        if not self._wait(lambda: future.done() or not node_proc.alive(), timeout) or not future.done():
            raise QdrError(f"live replay: lifecycle {name} got no answer; node log:\n{node_proc.tail()}")
        if not future.result().success:
            raise QdrError(f"live replay: the node refused to {name}; node log:\n{node_proc.tail()}")

    def _message(self, frame: _Frame) -> tuple[Any, Any | None]:
        img = frame.image
        msg = self.Image(
            height=img.height,
            width=img.width,
            encoding=img.encoding,
            is_bigendian=int(img.is_bigendian),
            step=img.step,
        )
        msg.header.frame_id = img.frame_id
        data = array.array("B")
        data.frombytes(np.ascontiguousarray(img.data).tobytes())
        msg.data = data
        info = None
        if frame.info is not None:
            src = frame.info
            info = self.CameraInfo(
                height=int(src.height), width=int(src.width), distortion_model=src.distortion_model
            )
            info.header.frame_id = img.frame_id
            info.d = [float(v) for v in src.d]
            info.k = [float(v) for v in src.k]
            info.r = [float(v) for v in src.r]
            info.p = [float(v) for v in src.p]
            info.binning_x, info.binning_y = int(src.binning_x), int(src.binning_y)
        return msg, info

    def _publish(self, msg: Any, info: Any | None) -> int:
        stamp = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        if info is not None:
            info.header.stamp = msg.header.stamp
            self.info_pub.publish(info)
        self.image_pub.publish(msg)
        return stamp

    def run(
        self, frames: list[_Frame], opts: LiveOptions, node_proc: _NodeProcess, say: Callable[[str], None]
    ) -> dict:
        if not self.change.wait_for_service(timeout_sec=0.0):
            ok = self._wait(
                lambda: self.change.service_is_ready() or not node_proc.alive(), opts.startup_timeout
            )
            if not ok or not node_proc.alive():
                raise QdrError(
                    f"live replay: the node's lifecycle service did not come up within {opts.startup_timeout:.0f} s; "
                    f"node log:\n{node_proc.tail()}"
                )
        say("configuring and activating the node")
        self.transition(_CONFIGURE, "configure", node_proc, opts.startup_timeout)
        self.transition(_ACTIVATE, "activate", node_proc)
        restored_topic = f"{self.namespace}/restored/image_raw"
        if not self._wait(
            lambda: (
                self.image_pub.get_subscription_count() > 0 and self.node.count_publishers(restored_topic) > 0
            ),
            20.0,
        ):
            raise QdrError(
                f"live replay: the node's topics never matched ours; node log:\n{node_proc.tail()}"
            )
        messages = [self._message(f) for f in frames]  # built before the clock starts
        for _ in range(opts.warmup):  # first inference at a new frame size is slow; not measured
            stamp = self._publish(*messages[0])
            self._wait(lambda s=stamp: s in self.received, 30.0)
        with self._lock:
            self.received.clear()
        say(f"replaying {len(frames)} frames at {opts.rate_scale:g}x the recorded rate")
        sent: dict[int, tuple[int, int]] = {}
        start = time.monotonic()
        first_log = frames[0].log_ns
        for frame, (msg, info) in zip(frames, messages):
            target = start + (frame.log_ns - first_log) * 1e-9 / opts.rate_scale
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            stamp = self._publish(msg, info)
            sent[stamp] = (frame.index, stamp)
            if not node_proc.alive():
                raise QdrError(
                    f"live replay: the node exited during the replay; node log:\n{node_proc.tail()}"
                )
        self._wait(lambda: all(s in self.received for s in sent), opts.drain_timeout)
        time.sleep(0.05)
        diagnostics = dict(self.diagnostics)
        try:
            self.transition(_DEACTIVATE, "deactivate", node_proc, 15.0)
            self.transition(_CLEANUP, "cleanup", node_proc, 15.0)
        except QdrError as exc:
            say(f"warning: {exc}")
        with self._lock:
            received = dict(self.received)
        return {"sent": sent, "received": received, "diagnostics": diagnostics}

    def close(self) -> None:
        self._spinning = False
        self._thread.join(timeout=5)
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
