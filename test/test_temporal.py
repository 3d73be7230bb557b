"""Streaming restoration: the ROS-free state rules (qdr_core.node.temporal)."""

from __future__ import annotations

import pytest

from qdr_core.errors import ConfigError
from qdr_core.node.temporal import DEFAULT_MAX_GAP, FrameKey, StreamState


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
