"""The test session's clean-up of Fast DDS segments that dead ROS processes left behind."""

from __future__ import annotations

from conftest import stale_fastdds_segments


def test_only_segments_nobody_holds_are_stale(tmp_path):
    held, dead, other = (
        tmp_path / "fastdds_port7000",
        tmp_path / "sem.fastdds_port7000_mutex",
        tmp_path / "keep",
    )
    for path in (held, dead, other):
        path.write_bytes(b"\0" * 16)
    with open(held, "rb"):  # a live process (this one) has it open
        stale = stale_fastdds_segments(str(tmp_path))
    assert stale == [str(dead)]
    assert stale_fastdds_segments(str(tmp_path)) == sorted([str(dead), str(held)])


def test_empty_directory_has_nothing_stale(tmp_path):
    assert stale_fastdds_segments(str(tmp_path)) == []
