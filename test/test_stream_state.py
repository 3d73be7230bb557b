"""Streaming restoration without ROS: the state rules, the node's temporal decision at configure and
its per-stream state (qdr_core.node.temporal)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from qdr_core.errors import ConfigError
from qdr_core.node.params import NodeParams
from qdr_core.node.runtime import open_runtime
from qdr_core.node.temporal import (
    DEFAULT_MAX_GAP,
    FrameKey,
    StreamState,
    TemporalStreams,
    resolve_temporal,
)
from qdr_core.runtime import load_runtime


def key(stamp: float, h: int = 48, w: int = 64, enc: str = "rgb8") -> FrameKey:
    return FrameKey(stamp, h, w, enc)


def test_first_frame_is_a_still_then_state_is_used():
    s = StreamState()
    assert s.observe(key(10.0)) == "first"
    assert s.observe(key(10.033)) is None
    assert s.observe(key(10.066)) is None
    assert s.resets == {"first": 1}


def test_repeated_stamp_keeps_state():
    s = StreamState()
    s.observe(key(1.0))
    assert s.observe(key(1.0)) is None


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        (key(1.1, h=96), "size"),
        (key(1.1, w=32), "size"),
        (key(1.1, enc="bgr8"), "encoding"),
        (key(1.0 + DEFAULT_MAX_GAP + 0.01), "gap"),
        (key(0.5), "backwards"),
    ],
)
def test_each_rule_resets_and_state_resumes_after(second, reason):
    s = StreamState()
    s.observe(key(1.0))
    assert s.observe(second) == reason
    # The frame that caused the reset is the new reference: the next one continues from it.
    follow = FrameKey(second.stamp + 0.03, second.height, second.width, second.encoding)
    assert s.observe(follow) is None
    assert s.resets[reason] == 1 and s.reset_count == 2


def test_gap_at_the_limit_keeps_state_and_the_limit_is_a_parameter():
    s = StreamState(max_gap=0.5)
    s.observe(key(1.0))
    assert s.observe(key(1.5)) is None
    wide = StreamState(max_gap=5.0)
    wide.observe(key(1.0))
    assert wide.observe(key(4.0)) is None


def test_reset_request_applies_to_the_next_frame_only():
    s = StreamState()
    s.observe(key(1.0))
    s.reset()
    assert s.observe(key(1.03)) == "request"
    assert s.observe(key(1.06)) is None


@pytest.mark.parametrize("gap", [0.0, -1.0, float("nan")])
def test_bad_gap_is_refused(gap):
    with pytest.raises(ConfigError, match="temporal_max_gap"):
        StreamState(max_gap=gap)


# ----------------------------------------------------------------------------- node side


@pytest.fixture(scope="module")
def stream_model(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from qdr_core.export.random_model import write_random_model

    return write_random_model(tmp_path_factory.mktemp("stream"), preset="efm-t-stream", seed=3).onnx


@pytest.fixture(scope="module")
def still_model(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from qdr_core.export.random_model import write_random_model

    return write_random_model(tmp_path_factory.mktemp("still"), preset="efm-t", seed=3).onnx


def test_resolve_temporal_rules():
    assert resolve_temporal("auto", streaming=True) is True
    assert resolve_temporal("auto", streaming=False) is False
    assert resolve_temporal("false", streaming=True) is False
    assert resolve_temporal("false", streaming=True, parallel_frames=4) is False
    with pytest.raises(ConfigError, match="single-frame"):
        resolve_temporal("true", streaming=False)
    with pytest.raises(ConfigError, match="parallel_frames 2 cannot be used with temporal state"):
        resolve_temporal("auto", streaming=True, parallel_frames=2)


def test_configure_refuses_parallel_frames_with_temporal_state(stream_model, still_model):
    params = NodeParams(model_path=str(stream_model), num_threads=1, warmup_frames=1)
    opened = open_runtime(params)
    assert opened.temporal
    opened.runtime.close()
    with pytest.raises(ConfigError, match="set parallel_frames: 1 or temporal: false"):
        open_runtime(params.with_changes(parallel_frames=2))
    assert not open_runtime(params.with_changes(parallel_frames=2, temporal="false")).temporal
    with pytest.raises(ConfigError, match="single-frame"):
        open_runtime(NodeParams(model_path=str(still_model), temporal="true", warmup_frames=0))


class Msg:
    """The fields of an image message ``for_message`` reads (the ROS type is tested in test_ros_temporal)."""

    def __init__(self, stamp: float, encoding: str = "rgb8") -> None:
        sec = int(stamp)
        self.header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=round((stamp - sec) * 1e9)))
        self.encoding = encoding


def test_temporal_streams_per_stream_state_and_reset(stream_model):
    runtime = load_runtime(str(stream_model), backend="onnxruntime")
    streams = TemporalStreams(runtime, enabled=True)
    frame = (np.random.default_rng(0).random((24, 40, 3)) * 255).astype(np.uint8)
    still = runtime.infer_uint8(frame)

    def run(stream: str, stamp: float) -> np.ndarray:
        return np.dstack(streams.for_message(stream, Msg(stamp)).infer_planes8(frame))

    np.testing.assert_array_equal(run("a", 1.0), still)
    assert np.abs(run("a", 1.1).astype(int) - still).max() > 0
    np.testing.assert_array_equal(run("b", 1.1), still)  # another stream starts from its own first frame
    response = streams.handle_reset(None, SimpleNamespace(success=False, message=""))
    assert response.success and "2 stream(s)" in response.message
    np.testing.assert_array_equal(run("a", 1.2), still)
    assert streams.resets() == {"first": 2, "request": 1}
    assert streams.report_values()["state_resets"] == "3"
    off = TemporalStreams(runtime, enabled=False)
    assert off.for_message("a", Msg(1.0)) is runtime
    assert not off.handle_reset(None, SimpleNamespace(success=True, message="")).success
