"""The node against hostile input and hostile timing, with real rclpy (issue #12): decompression
bombs and oversized frames rejected before decoding, frames lost before the callback counted,
and SIGINT / SIGTERM during configure and while frames flow ending cleanly at once.

The node runs in its own process (qdr_ros.harness); cameras that stream run in a third process.
"""

from __future__ import annotations

import array
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 rclpy is not importable")
pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs is not importable")
pytest.importorskip("lifecycle_msgs.srv", reason="lifecycle_msgs is not importable")
pytest.importorskip("torch", reason="the test model is built with torch")

from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from test_node_core import jpeg_claiming, png_bomb  # noqa: E402

from qdr_core.export.random_model import write_random_model  # noqa: E402
from qdr_ros import harness  # noqa: E402
from qdr_ros.harness import NodeClient, NodeProcess  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOMAIN_ID = harness.private_domain()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_random_model(tmp_path_factory.mktemp("model"), preset="efm-t", seed=5).onnx


def start_node(tmp: Path, domain: int, model: Path, **params) -> NodeProcess:
    values = {"model_path": str(model), "num_threads": 1, "warmup_frames": 1, "diagnostics_period": 0.25}
    path = harness.write_params(tmp / "params.yaml", **{**values, **params})
    return NodeProcess(path, harness.ros_env(domain, tmp), tmp / "node.log")


def counts(diag: dict[str, str]) -> dict[str, int]:
    return {k[len("frames_") :]: int(v) for k, v in diag.items() if k.startswith("frames_")}


def raw_image(h: int, w: int, sec: int) -> Image:
    msg = Image(height=h, width=w, encoding="rgb8", step=w * 3)
    msg.header.stamp.sec = sec
    data = array.array("B")
    data.frombytes(np.random.default_rng(sec).integers(0, 256, h * w * 3, dtype=np.uint8).tobytes())
    msg.data = data
    return msg


def compressed(blob: bytes, sec: int) -> CompressedImage:
    msg = CompressedImage(format="rgb8; png compressed bgr8")
    msg.header.stamp.sec = sec
    msg.data = array.array("B", blob)
    return msg


@pytest.fixture(scope="module")
def session(tmp_path_factory, model):
    tmp = tmp_path_factory.mktemp("node")
    env = harness.ros_env(DOMAIN_ID, tmp)
    os.environ.update({k: v for k, v in env.items() if k.startswith("ROS_")})
    proc = start_node(tmp, DOMAIN_ID, model, input_transport="compressed", autostart=True)
    client = NodeClient(DOMAIN_ID)
    yield proc, client
    client.close()
    proc.stop(signal.SIGKILL)


def test_compressed_bombs_are_rejected_before_decoding(session):
    import cv2

    proc, client = session
    small = cv2.imencode(".png", np.full((24, 32, 3), 60, np.uint8))[1].tobytes()
    assert client.wait(lambda: client.send(compressed(small, 1), info=False) or client.output_for(1, 0.2), 30)
    rss_before = proc.rss_mb()
    before = counts(client.wait_diag(lambda d: True))
    bomb = png_bomb(8000, 8000, rows=64)  # the header says 8000x8000 (192 MB decoded)
    hostile = [bomb, jpeg_claiming(8000, 8000), b"\x00" * 64]
    for sec, blob in enumerate(hostile, start=10):
        client.send(compressed(blob, sec), info=False)
        client.wait(lambda: False, 0.3)  # one at a time: keep-latest would drop a burst
    diag = client.wait_diag(lambda d: counts(d)["rejected"] >= before["rejected"] + 3)
    after = counts(diag)
    assert after["rejected.too_large"] == before.get("rejected.too_large", 0) + 2
    assert after["rejected.unreadable_header"] == before.get("rejected.unreadable_header", 0) + 1
    assert after["failed"] == 0 and proc.alive()
    assert proc.rss_mb() < rss_before + 50  # nothing was decoded or allocated for them
    log = proc.text()
    assert "8000x8000 frame (64.0 MP) is above max_input_pixels" in log
    client.send(compressed(small, 20), info=False)
    assert client.output_for(20) is not None  # still restoring


def test_oversized_raw_frame_is_rejected_and_the_limit_is_a_parameter(session):
    proc, client = session
    assert client.transition("deactivate") and client.transition("cleanup")
    assert client.set_param("input_transport", "raw")[0]
    assert client.set_param("max_input_pixels", 64 * 64)[0]
    assert client.transition("configure") and client.transition("activate")
    assert client.wait(lambda: client.send(raw_image(64, 64, 30)) or client.output_for(30, 0.2), 30)
    before = counts(client.wait_diag(lambda d: True))
    client.send(raw_image(64, 65, 31))  # one pixel column over the limit
    diag = client.wait_diag(lambda d: counts(d)["rejected"] > before["rejected"])
    assert counts(diag)["rejected.too_large"] == before.get("rejected.too_large", 0) + 1
    assert diag["max_input_pixels"] == "4096"
    assert client.output_for(31, timeout=1.0) is None and proc.alive()


BURST_CAMERA = textwrap.dedent(
    """
    import array, json, sys, time
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    count = int(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node("burst_camera")
    pub = node.create_publisher(Image, "image_raw", QoSProfile(depth=count, reliability=ReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)
    msg = Image(height=240, width=320, encoding="rgb8", step=960)
    data = array.array("B")
    data.frombytes(np.random.default_rng(0).integers(0, 256, 240 * 960, dtype=np.uint8).tobytes())
    msg.data = data
    msg.header.stamp.sec = 1999  # a first frame alone: the node's baseline for this publisher
    pub.publish(msg)
    time.sleep(1.0)
    for i in range(count):  # as fast as it goes: far faster than the node takes them
        msg.header.stamp.sec = 2000 + i
        pub.publish(msg)
    time.sleep(1.0)
    msg.header.stamp.sec = 2000 + count  # a last frame after a pause: it reaches the callback
    pub.publish(msg)
    time.sleep(1.0)
    print(json.dumps({"sent": count + 2}))
    """
)


def test_frames_lost_before_the_callback_are_counted(session, tmp_path):
    proc, client = session
    assert client.set_param("max_input_pixels", 8_847_360)[0] is False  # not while active
    assert client.transition("deactivate") and client.transition("cleanup")
    assert client.set_param("max_input_pixels", 8_847_360)[0]
    assert client.transition("configure") and client.transition("activate")
    before = counts(client.wait_diag(lambda d: True))
    script = tmp_path / "camera.py"
    script.write_text(BURST_CAMERA)
    env = harness.ros_env(DOMAIN_ID, tmp_path)
    result = subprocess.run([sys.executable, str(script), "200"], env=env, capture_output=True, text=True,
                            timeout=90)  # fmt: skip
    assert result.returncode == 0, result.stderr
    sent = json.loads(result.stdout.strip().splitlines()[-1])["sent"]

    def settled(d: dict[str, str]) -> bool:
        c = counts(d)
        return c["received"] + c["lost"] - before["received"] - before["lost"] >= sent

    after = counts(client.wait_diag(settled, timeout=20))
    received, lost = after["received"] - before["received"], after["lost"] - before["lost"]
    print("burst of", sent, "received", received, "lost", lost)
    # Every frame is accounted for: it reached the callback, or it is counted as lost before it.
    assert received + lost == sent and lost > 0 and received >= 2
    assert proc.alive()


STREAM_CAMERA = textwrap.dedent(
    """
    import array, sys, time
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("stream_camera")
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(Image, "image_raw", reliable)
    outputs = []
    node.create_subscription(Image, "restored/image_raw", outputs.append, reliable)
    msg = Image(height=120, width=160, encoding="rgb8", step=480)
    data = array.array("B")
    data.frombytes(np.random.default_rng(0).integers(0, 256, 120 * 480, dtype=np.uint8).tobytes())
    msg.data = data
    seq, flowing = 0, False
    while True:  # 30 Hz until killed
        seq += 1
        msg.header.stamp.sec = seq
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=1 / 30)
        if outputs and not flowing:
            flowing = True
            print("flowing", flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_frames_flow_exits_cleanly(tmp_path, model, sig):
    domain = harness.private_domain()
    node = start_node(tmp_path, domain, model, autostart=True)
    script = tmp_path / "camera.py"
    script.write_text(STREAM_CAMERA)
    camera = subprocess.Popen([sys.executable, str(script)], env=harness.ros_env(domain, tmp_path),
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert camera.stdout.readline().strip() == "flowing", node.tail()
        time.sleep(0.5)
        started = time.monotonic()
        code, log = node.stop(sig)
        elapsed = time.monotonic() - started
    finally:
        camera.kill()
        camera.wait()
    print(f"{sig.name} while streaming: exit {code} in {elapsed:.2f} s")
    assert code == 0 and "Traceback" not in log and "[ERROR]" not in log, log
    # The time is a figure (printed), not a target checked here: ~0.5 s on this shared 2-core
    # machine, most of it the interpreter's own exit; the bound only tells "at once" from "after
    # the frame in flight and a drain".
    assert elapsed < 3.0, log


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_a_long_configure_exits_at_once(tmp_path, model, sig):
    domain = harness.private_domain()
    node = start_node(tmp_path, domain, model, warmup_frames=1000)  # many seconds of warm-up
    saved = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    client = NodeClient(domain)
    try:
        assert client.wait(client.change.service_is_ready, 30), node.tail()
        client.change.call_async(
            ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CONFIGURE))
        )
        time.sleep(1.5)  # well inside the warm-up
        assert node.alive()
        started = time.monotonic()
        code, log = node.stop(sig)
        elapsed = time.monotonic() - started
    finally:
        client.close()
        os.environ.pop("ROS_DOMAIN_ID")
        if saved is not None:
            os.environ["ROS_DOMAIN_ID"] = saved
    print(f"{sig.name} during configure: exit {code} in {elapsed:.2f} s")
    assert code == 0 and "Traceback" not in log and "[ERROR]" not in log, log
    assert "configured:" not in log  # it was still configuring
    # A figure, printed (0.4 to 0.95 s here, loaded); before, SIGTERM waited for all 1000 warm-up
    # frames (15.5 s with a real model). The bound only tells "at once" from "when configure ends".
    assert elapsed < 3.0, log


def test_benchmark_json_is_what_qdr_bench_reads():
    from qdr_core.bench.node import summarize_node_result
    from qdr_ros.bench import parse_args, summary

    rounds = [
        {"runtime_fps": 30.0, "runtime_ms_p50": 33.0, "camera_hz": 37.5, "frames_sent": 300, "node_fps": 27.0}
    ]
    node = {"rounds": rounds, "latency_ms_p50": 40.0, "latency_ms_p95": 45.0, "exit_code": 0}
    raw = json.loads(json.dumps(summary(parse_args([]), "given", node)))
    s = summarize_node_result(raw)
    assert s["fps_ratio"] == pytest.approx(0.9) and s["added_latency_ms"] == pytest.approx(7.0)
    assert s["latency_ratio"] == pytest.approx(40 / 33)
