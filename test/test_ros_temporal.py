"""The qdr_restore node with a streaming model, against the real rclpy wheels: the state carries
from frame to frame, resets on a stamp that goes backwards, a resolution change and the ``~/reset``
service, and the published frames are those the same sequence gives through ``TemporalStreams``."""

from __future__ import annotations

import array
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 rclpy is not importable (pip install -r requirements-ros.txt)")
pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs is not importable")
pytest.importorskip("std_srvs.srv", reason="std_srvs is not importable (pip install -r requirements-ros.txt)")
pytest.importorskip("torch", reason="the test model is built with torch")

from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from qdr_core.export.random_model import write_random_model
from qdr_core.frame_restore import restore_raw
from qdr_core.node.temporal import TemporalStreams
from qdr_core.runtime import load_runtime
from qdr_ros.harness import node_session, stamp_ns


def frame(h: int, w: int, sec: int, nanosec: int) -> Image:
    pixels = (np.random.default_rng(h * w).random((h, w, 3)) * 255).astype(np.uint8)
    msg = Image(height=h, width=w, encoding="rgb8", step=3 * w)
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    msg.header.frame_id = "camera"
    msg.data = array.array("B", pixels.tobytes())
    return msg


def restore(run, msg: Image) -> bytes:
    return bytes(restore_raw(run, msg.height, msg.width, msg.encoding, msg.step, msg.data).data)


@pytest.fixture(scope="module", params=["efm-t-stream", "efm-t-recur"])
def model(request, tmp_path_factory) -> Path:
    """Both streaming designs: a bottleneck state, and the previous output the session aligns by flow."""
    return write_random_model(tmp_path_factory.mktemp("model"), preset=request.param, seed=5).onnx


def test_node_state_resets_on_stamp_jump_resolution_change_and_service(model, tmp_path):
    # (frame, reset reason or None when the state carries), sent one at a time, in order.
    sequence = [
        (frame(24, 32, 100, 0), "first"),
        (frame(24, 32, 100, 100_000_000), None),
        (frame(24, 32, 100, 200_000_000), None),
        (frame(24, 32, 99, 0), "backwards"),  # a replayed bag starts again
        (frame(24, 32, 99, 100_000_000), None),
        (frame(32, 48, 99, 200_000_000), "size"),
        (frame(32, 48, 99, 300_000_000), None),
        (frame(32, 48, 99, 400_000_000), "request"),  # after the ~/reset call
    ]
    runtime = load_runtime(str(model), backend="onnxruntime", num_threads=1)
    reference = TemporalStreams(runtime, enabled=True)
    expected = [restore(reference.for_message("camera", msg), msg) for msg, _ in sequence[:-1]]
    reference.reset()
    expected.append(restore(reference.for_message("camera", sequence[-1][0]), sequence[-1][0]))
    stills = [restore(runtime, msg) for msg, _ in sequence]
    for (_, reason), out, still in zip(sequence, expected, stills):
        assert (out == still) == (reason is not None)  # the state matters for this model
    params = {"model_path": str(model), "num_threads": 1, "warmup_frames": 1, "diagnostics_period": 0.25}
    with node_session(tmp_path / "node", params) as (proc, client):
        assert client.transition("configure", alive=proc.alive), proc.tail()
        assert client.transition("activate", alive=proc.alive), proc.tail()
        reset = client.node.create_client(Trigger, "/qdr_restore/reset")
        # Discovery: until the pipe is open, frames are lost. The warm-up frames' stamp is 99 s
        # before the sequence: a gap > temporal_max_gap, so they leave no state behind.
        warm = frame(24, 32, 1, 0)
        assert client.wait(lambda: client.send(warm) or client.images, 20.0), proc.tail()
        for k, (msg, reason) in enumerate(sequence):
            if reason == "request":
                response = client.call(reset, Trigger.Request(), alive=proc.alive)
                assert response is not None and response.success, proc.tail()
            client.send(msg)
            key = stamp_ns(msg.header.stamp)
            assert client.wait(lambda key=key: key in client.received, 20.0), f"frame {k}: {proc.tail()}"
            got = bytes(client.received[key][1].data)
            assert got == expected[k], f"frame {k} ({reason}): not the reference stream's output"
        diag = client.wait_diag(lambda d: d.get("state_resets.request") == "1")
        assert diag["temporal"] == "on"
        # The warm-up frames' "first" (a repeated stamp keeps the state), the gap after them, then
        # the sequence's resets.
        assert diag["state_resets.backwards"] == diag["state_resets.size"] == "1"
        assert diag["state_resets.first"] == "1" and diag["state_resets.gap"] == "1"
