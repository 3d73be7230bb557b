"""qdr_core.node without ROS: the parameter table and what is generated from it, the frame-size
limit read from PNG/JPEG headers, lost-frame counting, one-line errors, interruptible opening of
the runtime, and the worker letting go of frames."""

from __future__ import annotations

import gc
import struct
import sys
import threading
import time
import weakref
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from qdr_core.errors import ConfigError
from qdr_core.node.frame_size import FrameRejected, check_compressed, check_raw, compressed_size
from qdr_core.node.health import StreamStats
from qdr_core.node.params import (
    BY_NAME,
    PARAMETERS,
    RUNTIME_PARAMS,
    NodeParams,
    render_config,
    render_table,
    replace_table,
    resolve_model_path,
    runtime_change_error,
)
from qdr_core.node.runtime import Cancelled, call_interruptibly, one_line, open_runtime
from qdr_core.node.stream import KeepLatestWorker, SequenceGaps

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- parameter table


def test_config_and_readme_are_generated_from_the_table():
    assert (REPO / "config" / "restore.yaml").read_text() == render_config()
    for doc in ("README.md", "docs/ros_node.md"):
        text = (REPO / doc).read_text()
        assert replace_table(text) == text, f"{doc}: parameter table is stale: run scripts/param_table.py"
    assert all(f"| `{p.name}` |" in render_table() for p in PARAMETERS)


def test_config_file_values_are_the_table_defaults():
    params = yaml.safe_load(render_config())["qdr_restore"]["ros__parameters"]
    assert list(params) == [p.name for p in PARAMETERS] == list(NodeParams.names())
    assert NodeParams.from_mapping(params) == NodeParams()
    for p in PARAMETERS:
        assert params[p.name] == p.default and type(params[p.name]) is p.kind


def test_table_ranges_are_what_validation_enforces():
    for p in PARAMETERS:
        if p.kind is int and p.high is not None:
            NodeParams.from_mapping({p.name: int(p.high)})
            with pytest.raises(ConfigError, match=p.name):
                NodeParams.from_mapping({p.name: int(p.high) + 1})
        if p.low is not None:
            with pytest.raises(ConfigError, match=p.name):
                NodeParams.from_mapping({p.name: p.kind(p.low) - (1 if p.kind is int else 0.01)})
        if p.choices and p.check is None:
            with pytest.raises(ConfigError, match=p.name):
                NodeParams.from_mapping({p.name: "no-such-choice"})


def test_runtime_changes_use_the_same_conversion():
    params = NodeParams()
    assert params.with_changes(max_fps=15).max_fps == 15.0  # an int for a float, as from YAML
    with pytest.raises(ConfigError, match="expected float"):
        params.with_changes(max_fps=True)
    with pytest.raises(ConfigError, match="output_encoding"):
        params.with_changes(output_encoding="bayer_rggb8")
    assert runtime_change_error(["max_fps", "output_encoding"], "active") is None
    reason = runtime_change_error(["backend", "max_fps"], "active")
    assert reason.startswith("backend cannot change while the node is active")
    assert {p.name for p in PARAMETERS if p.runtime} == RUNTIME_PARAMS


def test_max_input_pixels_default_admits_4k():
    limit = BY_NAME["max_input_pixels"].default
    check_raw(3840, 2160, limit)
    check_raw(4096, 2160, limit)
    with pytest.raises(FrameRejected) as info:
        check_raw(8000, 8000, limit)
    assert info.value.reason == "too_large" and "8000x8000" in str(info.value)


def test_model_path_that_is_a_directory_says_so(tmp_path):
    (tmp_path / "models").mkdir()
    with pytest.raises(ConfigError, match="is a directory") as info:
        resolve_model_path(str(tmp_path / "models"), [])
    assert "not found" not in str(info.value)


# ----------------------------------------------------------------------------- frame headers


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int, height: int, rows: int | None = None) -> bytes:
    """A valid PNG of ``width`` x ``height`` black RGB pixels: kilobytes that decode to gigabytes
    (``rows``: only that many rows of pixel data, a truncated file with the same header)."""
    z = zlib.compressobj(9)
    row = bytes(1 + width * 3)  # filter byte 0 + black pixels
    parts = [z.compress(row) for _ in range(height if rows is None else rows)]
    idat = b"".join(parts) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is rewritten to claim ``width`` x ``height``."""
    cv2 = pytest.importorskip("cv2")
    _, blob = cv2.imencode(".jpg", np.full((16, 24, 3), 90, np.uint8))
    data = bytearray(blob.tobytes())
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_header_sizes_of_real_images():
    cv2 = pytest.importorskip("cv2")
    image = np.zeros((37, 54, 3), np.uint8)
    for ext in (".png", ".jpg"):
        _, blob = cv2.imencode(ext, image)
        assert compressed_size(blob.tobytes()) == (54, 37)
    progressive = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    assert compressed_size(progressive.tobytes()) == (54, 37)


def test_png_bomb_is_rejected_from_its_header():
    bomb = png_bomb(8000, 8000)
    assert len(bomb) < 300_000  # ~190 kB that would decode to 192 MB of RGB
    assert compressed_size(bomb) == (8000, 8000)
    with pytest.raises(FrameRejected) as info:
        check_compressed(bomb, BY_NAME["max_input_pixels"].default)
    assert info.value.reason == "too_large"
    assert check_compressed(png_bomb(64, 32), 10_000) == (64, 32)


def test_jpeg_header_and_unreadable_frames():
    with pytest.raises(FrameRejected) as info:
        check_compressed(jpeg_claiming(8000, 8000), 8_847_360)
    assert info.value.reason == "too_large"
    for junk in (b"", b"GIF89a" + bytes(20), b"\xff\xd8\xff\xd9", png_bomb(10, 10)[:20]):
        with pytest.raises(FrameRejected) as info:
            check_compressed(junk, 8_847_360)
        assert info.value.reason == "unreadable_header"


# ----------------------------------------------------------------------------- counting


def test_sequence_gaps_count_lost_frames_per_publisher():
    gaps = SequenceGaps()
    assert gaps.observe(b"a", 5) == 0  # first sample: the baseline
    assert gaps.observe(b"a", 6) == 0
    assert gaps.observe(b"a", 10) == 3
    assert gaps.observe(b"b", 1) == 0 and gaps.observe(b"b", 3) == 1
    assert gaps.observe(b"a", 9) == 0 and gaps.observe(b"a", 11) == 0  # late sample: nothing counted twice
    assert gaps.observe(b"a", None) == 0  # an RMW without sequence numbers
    gaps.reset()
    assert gaps.observe(b"a", 20) == 0


def test_health_reports_rejections_by_reason_and_losses():
    stats = StreamStats()
    stats.record_received(time.monotonic(), lost=2)
    stats.counters.reject("too_large")
    report = stats.report("active")
    assert report.level == 1 and "too_large" in report.message and "lost" in report.message
    assert report.values["frames_lost"] == "2" and report.values["frames_rejected.too_large"] == "1"
    assert stats.report("inactive").level == 0  # nothing new since the last report


def test_worker_lets_go_of_a_frame_once_it_is_done():
    class Frame:
        pass

    done = threading.Event()
    worker = KeepLatestWorker(lambda item: done.set() or ("restored", item is not None), then=lambda r: None)
    worker.start()
    frame = Frame()
    ref = weakref.ref(frame)
    worker.submit(frame)
    del frame
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while ref() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert ref() is None, "the worker keeps the last frame alive while it waits for the next"
    assert worker.stop()


# ----------------------------------------------------------------------------- errors, opening


def test_one_line_drops_warnings_and_environment_paths():
    text = (
        f"{sys.prefix}/lib/python3/site-packages/torch/serialization.py:1: UserWarning: weights_only\n"
        f"  warnings.warn(\n"
        f"failed to load {sys.prefix}/lib/thing.so\nsecond line"
    )
    line = one_line(text)
    assert "\n" not in line and sys.prefix not in line and "UserWarning" not in line
    assert line == "failed to load <env>/lib/thing.so; second line"


def test_call_interruptibly_gives_up_at_once():
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        call_interruptibly(lambda: release.wait(30), cancelled=lambda: time.monotonic() - started > 0.2)
    assert time.monotonic() - started < 1.0
    release.set()
    assert call_interruptibly(lambda: 42, cancelled=lambda: False) == 42
    with pytest.raises(ZeroDivisionError):
        call_interruptibly(lambda: 1 / 0, cancelled=lambda: False)


@pytest.fixture(scope="module")
def tiny_model() -> Path:
    return REPO / "models" / "lowlight" / "int8_cpu.onnx"  # shipped; no torch needed


def test_open_runtime_warm_up_is_interruptible(tiny_model):
    params = NodeParams(model_path=str(tiny_model), backend="onnxruntime", num_threads=1, warmup_frames=1000)
    started = time.monotonic()
    with pytest.raises(Cancelled):
        open_runtime(params, [], cancelled=lambda: time.monotonic() - started > 0.5)
    assert time.monotonic() - started < 5.0  # 1000 frames would take half a minute or more
    opened = open_runtime(params.with_changes(warmup_frames=1), [])
    assert opened.model_file == tiny_model and opened.runtime.name == "onnxruntime"
    opened.runtime.close()


def test_open_runtime_errors_are_one_line(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model\n" * 10)
    for path, words in (
        (broken, "broken.onnx"),
        (tmp_path, "is a directory"),
        (tmp_path / "x.onnx", "not found"),
    ):
        with pytest.raises(ConfigError) as info:
            open_runtime(NodeParams(model_path=str(path), backend="onnxruntime"), [])
        message = str(info.value)
        assert "\n" not in message and words in message and sys.prefix not in message, message


def test_the_node_core_imports_no_ros():
    import subprocess

    code = (
        "import sys, qdr_core.node.params, qdr_core.node.runtime, qdr_core.node.health, qdr_core.node.live, "
        "qdr_core.node.frame_size, qdr_core.commands.demo, qdr_core.commands.bag, qdr_core.bench.node; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'qdr_ros', 'sensor_msgs')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_task_with_a_shipped_streaming_model_restores_with_temporal_state_by_default():
    repo = Path(__file__).resolve().parents[1]
    params = NodeParams(task="noise", backend="onnxruntime", num_threads=1, warmup_frames=1)
    opened = open_runtime(params, [repo])
    try:
        assert opened.model_file == repo / "models/noise/stream/int8_cpu.onnx"
        assert opened.temporal and opened.runtime.streaming
    finally:
        opened.runtime.close()
    for still in (params.with_changes(temporal="false"), params.with_changes(parallel_frames=2)):
        opened = open_runtime(still, [repo])
        try:
            assert opened.model_file == repo / "models/noise/int8_cpu.onnx"
            assert not opened.temporal and not opened.runtime.streaming
        finally:
            opened.runtime.close()
