"""The one harness that runs ``qdr_restore`` as on a robot and talks to it: the node in its own
process (``python -m qdr_ros.restore_node --ros-args --params-file ...``) in a private ROS domain,
and a client node in this process that drives its lifecycle, sets parameters, publishes camera
frames and records the restored frames by ``header.stamp`` (which the node passes through) and
its /diagnostics. Used by live bag replay (``qdr_ros.live``), the node benchmark
(``qdr_ros.bench``) and the tests.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from qdr_core.node.params import NodeParams
from qdr_core.paths import source_root

NODE = "qdr_restore"
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
TRANSITIONS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "cleanup": Transition.TRANSITION_CLEANUP,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
    "shutdown": Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
}
# Left to the caller: settings that decide whether two processes talk at all.
_DROPPED_ENV = ("FASTDDS_BUILTIN_TRANSPORTS", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY")


#: Domain ids whose DDS ports stay clear of Linux's ephemeral port range (ROS 2 docs, "The
#: ROS_DOMAIN_ID"): 1..101 (0, the default, is left to the user's own system).
_SAFE_DOMAINS = range(1, 102)
_domain_pool: list[int] = []


def private_domain() -> int:
    """A ROS domain id for a private run, so that parallel runs do not meet: from the safe range,
    split between pytest-xdist workers (two workers never share one), and cycled in a shuffled order
    within a process (the last run's participants, a node still shutting down, are not met)."""
    if not _domain_pool:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        index = int(worker[2:]) if worker[2:].isdigit() else 0
        count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1))
        share = max(1, len(_SAFE_DOMAINS) // count)
        start = _SAFE_DOMAINS.start + (index % count) * share
        _domain_pool.extend(random.sample(range(start, start + share), share))
    return _domain_pool.pop()


def ros_env(domain: int, log_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for the node process (and, its ROS_* part, for this process's client).

    Discovery and transport variables of the caller are dropped unless given in ``extra``: with
    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, best-effort 640x480 frames were lost even over
    LARGE_DATA (3 of 8 here)."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(
        ROS_DOMAIN_ID=str(domain),
        ROS_LOG_DIR=str(log_dir / "ros_log"),
        PYTHONPATH=os.pathsep.join(p for p in (str(source_root()), os.environ.get("PYTHONPATH", "")) if p),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def write_params(path: Path, **overrides: Any) -> Path:
    """A params file with every parameter at its default and ``overrides``; the wildcard key
    applies it to the node under any namespace."""
    values = {name: getattr(NodeParams(), name) for name in NodeParams.names()}
    values.update(overrides)
    NodeParams.from_mapping(values)  # a typo in a harness must fail here, not inside the node
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
    return path


class NodeProcess:
    """``python -m qdr_ros.restore_node --ros-args --params-file ...`` with its log captured."""

    def __init__(self, params: Path, env: Mapping[str, str], log: Path, namespace: str = "") -> None:
        self.log = log
        self._handle = log.open("w")
        cmd = [sys.executable, "-m", "qdr_ros.restore_node", "--ros-args", "--params-file", str(params)]
        if namespace:
            cmd += ["-r", f"__ns:={namespace}"]
        self.proc = subprocess.Popen(cmd, env=dict(env), stdout=self._handle, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> tuple[int, str]:
        """Send ``sig``; returns (exit status, log). Kills it only if it hangs."""
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._handle.close()
        return self.proc.returncode, self.text()


def stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class NodeClient:
    """This process's side: lifecycle and parameter clients of ``namespace``/qdr_restore, camera
    publishers, and recorders of the restored frames (by stamp) and the node's /diagnostics.

    A thread spins the client's node; ``wait`` polls a predicate meanwhile. ``raw_outputs``
    records only (stamp, receive time) from the serialized message: a Python recorder that
    deserialized 921 kB per frame would take CPU from the node being measured.
    """

    def __init__(
        self, domain: int, namespace: str = "", raw_outputs: bool = False, camera_depth: int = 10
    ) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        ns = namespace or "/"
        self.node = rclpy.create_node("qdr_harness_client", namespace=ns, context=self.context)
        target = f"{namespace}/{NODE}"
        self.change = self.node.create_client(ChangeState, f"{target}/change_state")
        self.get = self.node.create_client(GetState, f"{target}/get_state")
        self.set_params = self.node.create_client(SetParameters, f"{target}/set_parameters")
        camera = QoSProfile(depth=camera_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(Image, "image_raw", camera)
        self.compressed_pub = self.node.create_publisher(CompressedImage, "image_raw/compressed", RELIABLE)
        self.info_pub = self.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
        self.images: list[Image] = []
        self.infos: list[CameraInfo] = []
        self.received: dict[int, tuple[int, Image | None]] = {}
        self.diag: dict[str, str] = {}
        self._lock = threading.Lock()
        on_image = self._on_raw if raw_outputs else self._on_image
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Image, "restored/image_raw", on_image, qos, raw=raw_outputs)
        self.node.create_subscription(CameraInfo, "restored/camera_info", self.infos.append, RELIABLE)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, name="qdr-harness-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._spinning and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.01)
            except Exception:  # the context shut down while spinning
                break

    def _on_image(self, msg: Image) -> None:
        now = time.time_ns()  # first thing: the receive time is what latency is measured to
        with self._lock:
            self.received.setdefault(stamp_ns(msg.header.stamp), (now, msg))
            self.images.append(msg)

    def _on_raw(self, data: bytes) -> None:
        now = time.time_ns()
        # CDR: a 4-byte encapsulation header, then header.stamp.sec (int32), .nanosec (uint32).
        sec = int.from_bytes(data[4:8], "little", signed=True)
        nanosec = int.from_bytes(data[8:12], "little")
        with self._lock:
            self.received.setdefault(sec * 1_000_000_000 + nanosec, (now, None))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(NODE):
                self.diag = {kv.key: kv.value for kv in status.values}

    @staticmethod
    def wait(predicate: Callable[[], Any], timeout: float, period: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(period)
        return bool(predicate())

    def call(
        self, client: Any, request: Any, timeout: float = 60.0, alive: Callable[[], bool] = lambda: True
    ):
        """The service's response, or None when it does not answer within ``timeout`` (or the node
        process is gone: ``alive``)."""
        if not self.wait(lambda: client.service_is_ready() or not alive(), timeout) or not alive():
            return None
        future = client.call_async(request)
        self.wait(lambda: future.done() or not alive(), timeout, period=0.005)
        return future.result() if future.done() else None

    def transition(
        self, name: str, timeout: float = 60.0, alive: Callable[[], bool] = lambda: True
    ) -> bool | None:
        """True / False as the node answers ``name`` (configure, activate ...); None: no answer."""
        request = ChangeState.Request(transition=Transition(id=TRANSITIONS[name]))
        response = self.call(self.change, request, timeout, alive)
        return None if response is None else bool(response.success)

    def state(self) -> str:
        response = self.call(self.get, GetState.Request())
        return "" if response is None else response.current_state.label

    def set_param(self, name: str, value: Any) -> tuple[bool, str]:
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        response = self.call(self.set_params, request)
        assert response is not None, f"{self.set_params.srv_name} did not answer"
        return response.results[0].successful, response.results[0].reason

    def wait_diag(self, predicate: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> dict[str, str]:
        """The next diagnostics report that satisfies ``predicate``; AssertionError if none comes."""
        self.diag = {}
        ok = self.wait(lambda: bool(self.diag) and predicate(self.diag), timeout)
        assert ok, {k: v for k, v in self.diag.items() if not k.startswith("model")}
        return self.diag

    def send(self, msg: Image | CompressedImage, info: CameraInfo | bool | None = True) -> None:
        """Publish ``msg`` (and a camera_info with its header: ``info`` True, or the one given)."""
        if info is True:
            info = CameraInfo(
                header=msg.header, height=getattr(msg, "height", 0), width=getattr(msg, "width", 0)
            )
            info.distortion_model = "plumb_bob"
        if info:
            self.info_pub.publish(info)
        (self.compressed_pub if isinstance(msg, CompressedImage) else self.image_pub).publish(msg)

    def output_for(self, sec: int, timeout: float = 20.0) -> Image | None:
        def find() -> Image | None:
            with self._lock:
                return next((m for m in self.images if m.header.stamp.sec == sec), None)

        self.wait(lambda: find() is not None, timeout)
        return find()

    def matched(self, topic_prefix: str = "") -> bool:
        """Our camera publisher and the node's output publisher see each other."""
        restored = f"{topic_prefix}/restored/image_raw"
        return self.image_pub.get_subscription_count() > 0 and self.node.count_publishers(restored) > 0

    def close(self) -> None:
        self._spinning = False
        self._thread.join(timeout=5)
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@contextmanager
def node_session(
    log_dir: Path,
    params: Mapping[str, Any],
    namespace: str = "",
    domain: int | None = None,
    raw_outputs: bool = False,
    camera_depth: int = 10,
    **env: str,
) -> Iterator[tuple[NodeProcess, NodeClient]]:
    """Start the node (``params`` over the defaults) and a client in a private domain; stop both
    (the node with SIGINT) on exit. ``env``: extra environment for both sides (e.g.
    FASTDDS_BUILTIN_TRANSPORTS, which both processes must agree on)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    domain = private_domain() if domain is None else domain
    node_env = ros_env(domain, log_dir, **env)
    proc = NodeProcess(
        write_params(log_dir / "params.yaml", **params), node_env, log_dir / "node.log", namespace
    )
    client = None
    # Discovery and transport settings are read from the environment when the participant starts.
    ours = {k: v for k, v in node_env.items() if k.startswith(("ROS_", "FASTDDS_"))}
    saved = {k: os.environ.get(k) for k in (*ours, *_DROPPED_ENV)}
    try:
        for k in _DROPPED_ENV:
            os.environ.pop(k, None)
        os.environ.update(ours)
        client = NodeClient(domain, namespace, raw_outputs, camera_depth)
        yield proc, client
    finally:
        if client is not None:
            client.close()
        proc.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
