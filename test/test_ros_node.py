"""The qdr_restore node against the real rclpy wheels: no ROS mocks.

The node runs in a subprocess started with a params file derived from config/restore.yaml (what
the launch file uses); a test node in this process drives its lifecycle services, publishes camera
frames and reads /diagnostics. A second group runs the camera in its own process at 640x480, the
case where Fast DDS's default transport loses best-effort frames.
"""

from __future__ import annotations

import array
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="ROS 2 rclpy is not importable (pip install -r requirements-ros.txt)"
)
pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs is not importable")
pytest.importorskip("lifecycle_msgs.srv", reason="lifecycle_msgs is not importable")
pytest.importorskip("diagnostic_msgs.msg", reason="diagnostic_msgs is not importable")
pytest.importorskip("torch", reason="the test model is built with torch")

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from qdr_core.export.random_model import write_random_model  # noqa: E402
from qdr_core.frame_restore import restore_raw  # noqa: E402
from qdr_core.image_encodings import ENCODINGS, output_encoding_for  # noqa: E402
from qdr_core.runtime import load_runtime  # noqa: E402
from qdr_ros import harness  # noqa: E402
from qdr_ros.harness import NodeClient, NodeProcess  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOMAIN_ID = harness.private_domain()
LARGE_DATA = {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}


def write_params(path: Path, model: Path, **overrides: object) -> Path:
    """Default parameters (what config/restore.yaml holds) with the test model and overrides."""
    values = {"model_path": str(model), "num_threads": 1, "warmup_frames": 1, "diagnostics_period": 0.25}
    return harness.write_params(path, **{**values, **overrides})


def make_image(
    encoding: str, h: int, w: int, sec: int, pad: int = 0, big: bool = False, seed: int = 0
) -> Image:
    info = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    if info.dtype == "u2":
        samples = rng.integers(0, 65536, (h, w * info.channels)).astype(">u2" if big else "<u2")
        rows = samples.view(np.uint8).reshape(h, -1)
    else:
        rows = rng.integers(0, 256, (h, w * info.channels), dtype=np.uint8)
    rows = np.concatenate([rows, np.full((h, pad), 7, np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(big), step=rows.shape[1])
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, 123456789
    msg.header.frame_id = f"camera_{sec}"
    data = array.array("B")
    data.frombytes(rows.tobytes())
    msg.data = data
    return msg


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_random_model(tmp_path_factory.mktemp("model"), preset="efm-t", seed=11).onnx


@pytest.fixture(scope="module")
def reference(model):
    with load_runtime(model, backend="onnxruntime", num_threads=1) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def node_proc(tmp_path_factory, model):
    tmp = tmp_path_factory.mktemp("node")
    env = harness.ros_env(DOMAIN_ID, tmp)
    os.environ.update({k: v for k, v in env.items() if k.startswith("ROS_")})  # for the client
    proc = NodeProcess(write_params(tmp / "params.yaml", model), env, tmp / "node.log")
    yield proc
    proc.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def client(node_proc):
    c = NodeClient(DOMAIN_ID)
    yield c
    c.close()


# ----------------------------------------------------------------------------- lifecycle + frames

ENCODING_CASES = [
    ("rgb8", 0, False),
    ("rgb8", 5, False),  # step padding
    ("bgr8", 0, False),
    ("rgba8", 4, False),
    ("bgra8", 0, False),
    ("mono8", 3, False),
    ("mono16", 0, False),
    ("mono16", 2, True),  # big-endian, padded
    ("yuv422", 0, False),
    ("yuv422_yuy2", 8, False),
    ("bayer_rggb8", 0, False),
    ("bayer_bggr8", 1, False),
    ("bayer_gbrg8", 0, False),
    ("bayer_grbg8", 0, False),
]


def test_configure_and_activate(client):
    assert client.state() == "unconfigured"
    assert client.transition("configure")
    assert client.state() == "inactive"
    # Inactive: no subscription yet, so nothing comes out.
    client.send(make_image("rgb8", 8, 8, sec=1))
    assert not client.wait(lambda: client.images, 1.0)
    assert client.transition("activate")
    assert client.state() == "active"
    # Discovery of the new subscription takes a moment: resend until the pipe is open.
    assert client.wait(lambda: client.send(make_image("rgb8", 8, 8, sec=2)) or client.images, 20.0)
    diag = client.wait_diag(lambda d: d.get("state") == "active")
    assert diag["backend"] == "onnxruntime"
    assert diag["input_reliability"] == "reliable"  # auto matched our reliable publisher


@pytest.mark.parametrize(("encoding", "pad", "big"), ENCODING_CASES)
def test_every_encoding_round_trips(client, reference, encoding, pad, big):
    sec = 100 + ENCODING_CASES.index((encoding, pad, big))
    h, w = (37, 54) if "yuv" not in encoding else (21, 54)
    msg = make_image(encoding, h, w, sec=sec, pad=pad, big=big, seed=sec)
    client.send(msg)
    out = client.output_for(sec)
    assert out is not None, f"no restored frame for {encoding}"
    assert (out.height, out.width) == (h, w)
    assert out.encoding == output_encoding_for(encoding)
    assert out.header.stamp.sec == sec and out.header.stamp.nanosec == 123456789
    assert out.header.frame_id == f"camera_{sec}"
    assert client.wait(lambda: any(i.header.stamp.sec == sec for i in client.infos), 5.0)
    info = next(i for i in client.infos if i.header.stamp.sec == sec)
    assert info.header.frame_id == f"camera_{sec}" and info.distortion_model == "plumb_bob"
    expected = restore_raw(reference, h, w, encoding, msg.step, msg.data, big)
    assert (out.step, bool(out.is_bigendian)) == (expected.step, expected.is_bigendian)
    dtype = np.dtype(">u2" if out.is_bigendian else "<u2") if out.encoding == "mono16" else np.uint8
    got = np.frombuffer(out.data, np.uint8).view(dtype).astype(np.int64)
    want = expected.data.view(dtype).astype(np.int64)
    assert np.abs(got - want).max() <= 1  # same ONNX, same thread count: equal up to rounding


def test_runtime_parameters(client):
    ok, reason = client.set_param("backend", "torch")
    assert not ok and "cannot change while the node is active" in reason
    ok, reason = client.set_param("output_encoding", "yuv422")
    assert not ok and "output_encoding" in reason
    assert client.set_param("output_encoding", "bgr8")[0]
    client.send(make_image("rgb8", 12, 16, sec=300))
    out = client.output_for(300)
    assert out is not None and out.encoding == "bgr8"
    assert client.set_param("output_encoding", "same")[0]
    assert client.set_param("max_fps", 2)[0]  # an integer is accepted for a float parameter
    assert client.wait_diag(lambda d: d["max_fps"] == "2")
    assert client.set_param("max_fps", 0.0)[0]


def _restored(out: Image) -> np.ndarray:
    return np.frombuffer(out.data, np.uint8).astype(np.int64)


def _expected(runtime, msg: Image) -> np.ndarray:
    return restore_raw(runtime, msg.height, msg.width, msg.encoding, msg.step, msg.data).data.astype(np.int64)


def test_model_switch_while_streaming(client, model, reference, tmp_path):
    """Issue #13: a runtime model change loads the new model beside the old one; the camera's frames
    keep coming out during the load, and the frames after it are restored by the new model."""
    other = write_random_model(tmp_path, preset="efm-t", seed=12).onnx
    sent: list[int] = []
    stop = threading.Event()

    def camera() -> None:
        for sec in range(1000, 1400):
            if stop.is_set():
                return
            client.send(make_image("rgb8", 24, 32, sec=sec, seed=sec % 5), info=False)
            sent.append(sec)
            time.sleep(0.05)  # 20 fps

    thread = threading.Thread(target=camera)
    thread.start()
    try:
        assert client.wait(lambda: len(sent) >= 10, 10.0)
        ok, reason = client.set_param("model_path", str(other))
        switched_at = sent[-1]
        assert ok, reason
        assert client.wait(lambda: len(sent) and sent[-1] >= switched_at + 10, 10.0)
    finally:
        stop.set()
        thread.join()
    assert client.output_for(sent[-1]) is not None
    outs = sorted(m.header.stamp.sec for m in client.images if 1000 <= m.header.stamp.sec < 1400)
    gaps = np.diff(outs)
    print("model switch: frames sent", len(sent), "restored", len(outs), "largest gap", gaps.max())
    assert gaps.max() <= 5, f"outputs stopped for {gaps.max()} frames during the switch"
    with load_runtime(other, backend="onnxruntime", num_threads=1) as new:
        last = next(m for m in client.images if m.header.stamp.sec == sent[-1])
        msg = make_image("rgb8", 24, 32, sec=sent[-1], seed=sent[-1] % 5)
        assert np.abs(_restored(last) - _expected(new, msg)).max() <= 1
        assert np.abs(_restored(last) - _expected(reference, msg)).max() > 1  # not the old model
    assert client.wait_diag(lambda d: d["model_path"] == str(other))
    assert client.set_param("model_path", str(model))[0]
    assert client.wait_diag(lambda d: d["model_path"] == str(model))


def test_model_that_fails_to_load_is_rejected_and_old_kept(client, model, reference, node_proc, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    cases = {"/nonexistent/other.onnx": "not found", str(broken): "broken.onnx"}
    for path, message in cases.items():
        ok, reason = client.set_param("model_path", path)
        assert not ok and message in reason and f"{model} kept" in reason, reason
        assert "\n" not in reason
    assert client.wait_diag(lambda d: d["model_path"] == str(model) and d["state"] == "active")
    msg = make_image("rgb8", 24, 32, sec=1500, seed=3)
    client.send(msg, info=False)
    out = client.output_for(1500)
    assert out is not None and np.abs(_restored(out) - _expected(reference, msg)).max() <= 1
    assert node_proc.alive()


def test_task_and_variant_switch_to_shipped_models(client, model):
    """``task``/``model_variant`` pick ``models/<task>/stream/<variant>.onnx`` where a streaming
    model is shipped (``temporal: auto``: the state turns on), else ``models/<task>/<variant>.onnx``;
    a missing one is rejected."""
    assert client.set_param("model_path", "")[0]  # the shipped default model
    assert client.set_param("task", "haze")[0]
    assert client.wait_diag(
        lambda d: d["model_path"].endswith("models/haze/stream/int8_cpu.onnx") and d["temporal"] == "on"
    )
    assert client.set_param("model_variant", "fp32")[0]
    assert client.wait_diag(lambda d: d["model_path"].endswith("models/haze/stream/fp32.onnx"))
    ok, reason = client.set_param("task", "auto")
    if (REPO / "models/auto/fp32.onnx").exists():  # no streaming all-conditions model: a still one
        assert ok and client.wait_diag(
            lambda d: d["model_path"].endswith("models/auto/fp32.onnx") and d["temporal"] == "off"
        )
    else:
        assert not ok and "models/auto/fp32.onnx not loaded" in reason and "haze/fp32.onnx kept" in reason
    ok, reason = client.set_param("task", "fog")
    assert not ok and "task 'fog' is not one of" in reason
    client.send(make_image("rgb8", 24, 32, sec=1600), info=False)
    assert client.output_for(1600) is not None
    assert client.set_param("model_path", str(model))[0]


def _counts(diag: dict[str, str]) -> dict[str, int]:
    return {k[len("frames_") :]: int(v) for k, v in diag.items() if k.startswith("frames_")}


def test_malformed_frames_are_counted_and_survived(client, node_proc):
    before = _counts(client.wait_diag(lambda d: True))
    bad = [
        make_image("rgb8", 8, 8, sec=400),
        make_image("rgb8", 8, 8, sec=401),
        make_image("rgb8", 8, 8, sec=402),
        make_image("rgb8", 8, 8, sec=403),
    ]
    bad[0].data = array.array("B", bytes(10))  # data shorter than step * height
    bad[1].width = 0
    bad[2].encoding = "rgb16"
    bad[3].step = 5  # less than width * 3
    for msg in bad:
        client.send(msg, info=False)
        client.wait(lambda: False, 0.3)  # one at a time: keep-latest would drop a burst
    diag = client.wait_diag(lambda d: _counts(d)["rejected"] >= before["rejected"] + 4)
    assert _counts(diag)["rejected"] == before["rejected"] + 4
    assert diag["state"] == "active" and node_proc.alive()
    client.send(make_image("rgb8", 8, 8, sec=410))
    assert client.output_for(410) is not None  # still restoring


def test_flood_keeps_latest(client, node_proc):
    # Round trip of one 640x480 frame (an upper bound of its processing time), then a flood at 5x.
    times = []
    for sec in range(500, 503):
        start = time.monotonic()
        client.send(make_image("rgb8", 480, 640, sec=sec))
        assert client.output_for(sec) is not None
        times.append(time.monotonic() - start)
    period = float(np.median(times)) / 5
    rss_before = node_proc.rss_mb()
    before = _counts(client.wait_diag(lambda d: True))
    frames = [make_image("rgb8", 480, 640, sec=600 + i, seed=i % 4) for i in range(60)]
    for msg in frames:
        sent = time.monotonic()
        client.send(msg, info=False)
        client.wait(lambda sent=sent: time.monotonic() - sent >= period, period, period=0.001)
    assert client.output_for(659) is not None, "the newest frame of the flood was not processed"

    def settled(d: dict[str, str]) -> bool:
        c = _counts(d)
        handled = c["published"] + c["dropped"] + c["throttled"] + c["rejected"] + c["failed"]
        # The node's reader keeps only the newest sample too, so not all 60 need reach the callback:
        # every flood frame is either received or counted lost (on a fast machine most are lost).
        flood = c["received"] + c["lost"] - before["received"] - before["lost"]
        return c["received"] > before["received"] and flood >= 60 and c["received"] == handled

    after = _counts(client.wait_diag(settled, timeout=20))
    print("flood counters before", before, "after", after, "period_ms", period * 1e3)
    published = after["published"] - before["published"]
    dropped = after["dropped"] - before["dropped"]
    lost = after["lost"] - before["lost"]
    assert dropped + lost > 0 and published < 60  # the flood was thinned, not queued
    assert after["rejected"] == before["rejected"] and after["failed"] == 0
    outputs = [m.header.stamp.sec for m in client.images if 600 <= m.header.stamp.sec < 700]
    assert outputs == sorted(outputs)  # never an older frame after a newer one
    assert node_proc.alive() and node_proc.rss_mb() < rss_before + 150


def test_compressed_transport_after_reconfigure(client):
    import cv2

    assert client.transition("deactivate")
    assert client.transition("cleanup")
    assert client.set_param("input_transport", "compressed")[0]
    assert client.transition("configure")
    assert client.transition("activate")
    rgb = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    _, blob = cv2.imencode(".png", rgb[..., ::-1])

    def send(sec: int) -> None:
        msg = CompressedImage(format="rgb8; png compressed bgr8")
        msg.header.stamp.sec, msg.header.frame_id = sec, "compressed"
        msg.data = array.array("B", blob.tobytes())
        client.send(msg, info=False)

    assert client.wait(lambda: send(700) or client.output_for(700, timeout=0.2), 20.0)
    out = client.output_for(700)
    assert (out.encoding, out.height, out.width, out.header.frame_id) == ("rgb8", 24, 32, "compressed")
    assert client.transition("deactivate")
    assert client.transition("cleanup")
    assert client.set_param("input_transport", "raw")[0]


def test_parallel_frames_restore_in_order(client, reference):
    # Left unconfigured by the previous test: two frames at once, one thread each.
    assert client.state() == "unconfigured"
    assert client.set_param("parallel_frames", 2)[0]
    assert client.transition("configure")
    assert client.transition("activate")
    first = make_image("rgb8", 64, 96, sec=750, seed=750)
    assert client.wait(lambda: client.send(first) or client.output_for(750, timeout=0.2), 20.0)
    start = len(client.images)
    frames = [make_image("bgr8", 64, 96, sec=751 + i, seed=751 + i) for i in range(12)]
    for msg in frames:
        client.send(msg)
        client.wait(lambda: False, 0.01)
    client.wait(lambda: any(m.header.stamp.sec == 762 for m in client.images), 20.0)
    outs = client.images[start:]
    stamps = [m.header.stamp.sec for m in outs]
    assert stamps and stamps[-1] == 762
    assert stamps == sorted(stamps)  # never out of order, whichever worker finished first
    for out in outs:
        msg = frames[out.header.stamp.sec - 751]
        expected = restore_raw(reference, 64, 96, "bgr8", msg.step, msg.data)
        diff = np.abs(np.frombuffer(out.data, np.uint8).astype(int) - expected.data.astype(int))
        assert diff.max() <= 1
    assert client.transition("deactivate")
    assert client.transition("cleanup")
    assert client.set_param("parallel_frames", 1)[0]


def test_contract_violations_fail_configure_in_one_line(client, model, node_proc, tmp_path):
    """A model file that loads but cannot restore a frame (issue #12) fails configure with the
    model contract's line; the node lives on and configures once the parameter is fixed."""
    from qdr_core.export.random_model import write_conv_onnx

    assert client.state() == "unconfigured"
    bad = {
        "output has 1 channel(s)": write_conv_onnx(tmp_path / "one_channel.onnx", out_channels=1),
        "size_multiple='100000'": write_conv_onnx(
            tmp_path / "huge.onnx", metadata={"size_multiple": "100000"}
        ),
    }
    for message, path in bad.items():
        assert client.set_param("model_path", str(path))[0]
        assert not client.transition("configure")
        assert client.state() == "unconfigured" and node_proc.alive()
        assert message in node_proc.log.read_text()
    assert client.set_param("model_path", str(model))[0]


def test_bad_model_path_fails_configure_and_recovers(client, model, node_proc):
    assert client.state() == "unconfigured"
    assert client.set_param("model_path", "/nonexistent/model.onnx")[0]
    assert not client.transition("configure")
    assert client.state() == "unconfigured" and node_proc.alive()
    assert "not found" in node_proc.log.read_text()
    assert client.set_param("model_path", str(model))[0]
    assert client.transition("configure")
    assert client.transition("activate")
    assert client.wait(
        lambda: client.send(make_image("bgr8", 8, 8, sec=800)) or client.output_for(800, 0.2), 20
    )


def test_deactivate_cleanup_shutdown_and_clean_exit(client, node_proc):
    assert client.transition("deactivate")
    assert client.state() == "inactive"
    count = len(client.images)
    client.send(make_image("rgb8", 8, 8, sec=900))
    assert not client.wait(lambda: len(client.images) > count, 1.0)
    assert client.transition("cleanup")
    assert client.state() == "unconfigured"
    assert client.transition("shutdown")
    assert client.state() == "finalized"
    code, log = node_proc.stop(signal.SIGINT)
    assert code == 0, log
    assert "Traceback" not in log, log


# ----------------------------------------------------------------------------- separate camera process

CAMERA = textwrap.dedent(
    """
    import array, json, sys, time
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    reliability, count = sys.argv[1], int(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node("camera_process")
    policy = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    pub = node.create_publisher(Image, "image_raw", QoSProfile(depth=5, reliability=policy))
    outputs = []
    node.create_subscription(
        Image, "restored/image_raw", outputs.append, QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    )
    frame = np.random.default_rng(0).integers(0, 256, 480 * 640 * 3, dtype=np.uint8)

    def publish(sec):
        msg = Image(height=480, width=640, encoding="rgb8", step=640 * 3)
        msg.header.stamp.sec = sec
        msg.header.frame_id = "separate_camera"
        data = array.array("B")
        data.frombytes(frame.tobytes())
        msg.data = data
        pub.publish(msg)
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)

    # Probe until the first restored frame comes back: discovery and the node's QoS match are done.
    deadline = time.monotonic() + 60
    while not outputs and time.monotonic() < deadline:
        publish(1)
    for i in range(count):
        publish(1000 + i)
    end = time.monotonic() + 5
    while time.monotonic() < end and len({m.header.stamp.sec for m in outputs}) < count + 1:
        rclpy.spin_once(node, timeout_sec=0.05)
    ok = [m for m in outputs if (m.height, m.width, m.header.frame_id) == (480, 640, "separate_camera")]
    restored = len({m.header.stamp.sec for m in ok if m.header.stamp.sec >= 1000})
    print(json.dumps({"sent": count, "restored": restored, "probe_ok": bool(ok)}))
    """
)


@pytest.mark.parametrize(
    ("reliability", "transport_env"),
    [
        ("reliable", {}),  # the defaults: a reliable camera with the stock transport
        ("best_effort", LARGE_DATA),  # a SENSOR_DATA camera: needs LARGE_DATA on both sides
    ],
    ids=["reliable-camera-default-transport", "best-effort-camera-large-data"],
)
def test_camera_in_separate_process_640x480(tmp_path, model, reliability, transport_env):
    # A domain away from the client's.
    env = harness.ros_env(harness.private_domain(), tmp_path, **transport_env)
    params = write_params(tmp_path / "params.yaml", model, autostart=True)
    node = NodeProcess(params, env, tmp_path / "node.log")
    camera_script = tmp_path / "camera.py"
    camera_script.write_text(CAMERA)
    try:
        result = subprocess.run(
            [sys.executable, str(camera_script), reliability, "8"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        code, log = node.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in log, log
    # auto input QoS matched the camera (at activation, or by the re-check once it appeared).
    matched = ("(reliable)" in log) if reliability == "reliable" else ("best_effort" in log)
    assert matched and ("publishers now reliable" not in log), log
    # One 0.3 s gap per frame is far above efm-t's processing time: every reliable frame comes back.
    # Best effort may lose a frame when the machine is loaded (seen once in a full-suite run beside
    # training jobs); without LARGE_DATA it delivers none, which is what this guards against.
    minimum = report["sent"] if reliability == "reliable" else report["sent"] - 2
    assert report["restored"] >= minimum, (report, log)


def test_private_domains_are_safe_and_never_shared_between_workers(monkeypatch):
    """Each pytest-xdist worker draws from its own part of the domain ids that stay clear of Linux's
    ephemeral ports (1..101), without repeating one until its part is used up."""
    drawn = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
        monkeypatch.setattr(harness, "_domain_pool", [])
        drawn[worker] = [harness.private_domain() for _ in range(50)]
    for ids in drawn.values():
        assert len(set(ids)) == 50 and all(1 <= d <= 101 for d in ids)
    assert not set(drawn["gw0"]) & set(drawn["gw1"])
