"""The node's ROS-free parts: parameters, QoS names, model paths, keep-latest worker, rates, latency,
and the frame path the node runs (qdr_core.frame_restore)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from qdr_core.errors import ConfigError, ImageFormatError
from qdr_core.frame_restore import restore_compressed, restore_raw
from qdr_core.node.params import (
    QOS_PRESETS,
    RUNTIME_PARAMS,
    NodeParams,
    auto_reliability,
    parse_qos,
    resolve_model_candidates,
    resolve_model_path,
)
from qdr_core.node.stream import (
    KeepLatestWorker,
    LatencyWindow,
    LatestSlot,
    RateLimiter,
    RateMeter,
    StreamCounters,
)
from qdr_core.paths import source_root

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- parameters


def test_shipped_config_matches_node_params():
    params = yaml.safe_load((REPO / "config" / "restore.yaml").read_text())["qdr_restore"]["ros__parameters"]
    assert set(params) == set(NodeParams.names())
    parsed = NodeParams.from_mapping(params)
    assert parsed.model_candidates == ("models/auto/stream/int8_cpu.onnx", "models/auto/int8_cpu.onnx")
    # no streaming all-conditions model is shipped: the default loads the single-frame one
    assert resolve_model_candidates(parsed.model_candidates, [REPO]) == REPO / "models/auto/int8_cpu.onnx"
    assert parsed.input_qos == "auto"


def test_numbers_are_converted_by_field_type():
    params = NodeParams.from_mapping({"max_fps": 15, "num_threads": 2.0, "diagnostics_period": "0.5"})
    assert params.max_fps == 15.0 and isinstance(params.max_fps, float)
    assert params.num_threads == 2 and isinstance(params.num_threads, int)
    assert params.diagnostics_period == 0.5


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": "openvino"}, "backend 'openvino'"),
        ({"task": "snow"}, "task 'snow'"),
        ({"model_variant": "int4"}, "model_variant"),
        ({"num_threads": -1}, "num_threads"),
        ({"num_threads": 1.5}, "expected int"),
        ({"max_fps": -3}, "max_fps"),
        ({"max_fps": float("nan")}, "max_fps"),
        ({"warmup_frames": -1}, "warmup_frames"),
        ({"input_qos": "FAST"}, "unknown QoS 'FAST'"),
        ({"output_qos": "auto"}, "unknown QoS 'auto'"),
        ({"output_encoding": "yuv422"}, "output_encoding"),
        ({"input_transport": "theora"}, "input_transport"),
        ({"autostart": "yes"}, "expected bool"),
        ({"max_fps": True}, "expected float"),
        ({"model_pth": "x.onnx"}, "unknown parameters"),
        ({"dla_core": -2}, "dla_core"),
        ({"parallel_frames": 0}, "parallel_frames must be in 1..16"),
        ({"parallel_frames": 17}, "parallel_frames must be in 1..16"),
    ],
)
def test_bad_parameters_say_what_to_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        NodeParams.from_mapping(values)


def test_model_path_skips_task_check():
    assert NodeParams.from_mapping({"model_path": "/m.onnx", "task": "anything"}).model_relpath == "/m.onnx"


def test_runtime_params_and_changes():
    assert {"max_fps", "output_encoding", "task", "model_variant", "model_path"} == RUNTIME_PARAMS
    params = NodeParams().with_changes(max_fps=5.0, output_encoding="bgr8")
    assert params.max_fps == 5.0
    with pytest.raises(ConfigError):
        params.with_changes(output_encoding="bayer_rggb8")


def test_qos_names():
    assert parse_qos("sensor_data", allow_auto=False).reliability == "best_effort"
    assert parse_qos("auto", allow_auto=True).reliability == "auto"
    assert parse_qos("DEFAULT", allow_auto=False).depth == 10
    assert set(QOS_PRESETS) >= {"SENSOR_DATA", "SYSTEM_DEFAULT", "DEFAULT"}
    assert auto_reliability([]) == "reliable"
    assert auto_reliability(["reliable", "reliable"]) == "reliable"
    assert auto_reliability(["reliable", "best_effort"]) == "best_effort"


def test_model_path_resolution(tmp_path, monkeypatch):
    share, src = tmp_path / "share", tmp_path / "src"
    (share / "models" / "haze").mkdir(parents=True)
    (src / "models" / "haze").mkdir(parents=True)
    (src / "models" / "haze" / "fp32.onnx").write_bytes(b"x")
    rel = "models/haze/fp32.onnx"
    assert resolve_model_path(rel, [share, src]) == src / rel
    (share / rel).write_bytes(b"x")
    assert resolve_model_path(rel, [share, src]) == share / rel  # the installed share dir wins
    absolute = tmp_path / "abs.onnx"
    absolute.write_bytes(b"x")
    assert resolve_model_path(str(absolute), [share]) == absolute
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("abs.onnx", [share]) == tmp_path / "abs.onnx"
    with pytest.raises(ConfigError, match=r"not found.*tried"):
        resolve_model_path("models/rain/int8_cpu.onnx", [share, src])
    assert (source_root() / "qdr_core").is_dir()


def test_a_tasks_streaming_file_is_preferred_where_temporal_state_may_be_used():
    stream, single = "models/noise/stream/int8_trt.onnx", "models/noise/int8_trt.onnx"
    params = NodeParams(task="noise", model_variant="int8_trt")
    assert params.model_candidates == (stream, single)  # the default, temporal: auto
    assert params.with_changes(temporal="true").model_candidates == (stream,)
    assert params.with_changes(temporal="false").model_candidates == (single,)
    assert params.with_changes(parallel_frames=2).model_candidates == (single,)  # auto: state would refuse
    assert params.with_changes(model_path="/m.onnx").model_candidates == ("/m.onnx",)
    assert params.model_relpath == f"{stream} or {single}"


def test_model_candidates_resolve_to_the_first_file_that_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the working directory is the last search root
    root = tmp_path / "share"
    stream, single = NodeParams(task="rain").model_candidates
    (root / single).parent.mkdir(parents=True)
    (root / single).write_bytes(b"x")
    assert resolve_model_candidates((stream, single), [root]) == root / single  # no streaming file: the still
    (root / stream).parent.mkdir(parents=True)
    (root / stream).write_bytes(b"x")
    assert resolve_model_candidates((stream, single), [root]) == root / stream
    with pytest.raises(ConfigError, match=r"'models/auto/int8_cpu.onnx' not found"):
        resolve_model_candidates(NodeParams().model_candidates, [root])  # names the fallback


# ----------------------------------------------------------------------------- streaming


def test_latest_slot_keeps_newest_and_counts_replacements():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.take(0.1) == 2
    assert slot.take(0.01) is None
    slot.put(3)
    assert slot.clear() is True
    slot.close()
    assert slot.take(1.0) is None


def test_keep_latest_worker_processes_newest_and_survives_errors():
    release = threading.Event()
    seen: list[int] = []
    errors: list[int] = []

    def handler(item: int) -> None:
        if item == 0:
            release.wait(5)
        if item == 13:
            raise ValueError("bad frame")
        seen.append(item)

    worker = KeepLatestWorker(handler, lambda item, exc: errors.append(item))
    worker.start()
    worker.submit(0)
    deadline = time.monotonic() + 5
    while not worker.busy and time.monotonic() < deadline:
        time.sleep(0.001)
    for i in range(1, 11):  # a flood while the worker is busy: only the newest survives
        worker.submit(i)
    release.set()
    deadline = time.monotonic() + 5
    while 10 not in seen and time.monotonic() < deadline:
        time.sleep(0.005)
    assert seen == [0, 10]
    assert worker.dropped == 9
    worker.submit(13)
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.005)
    assert errors == [13]
    worker.submit(20)
    deadline = time.monotonic() + 5
    while 20 not in seen and time.monotonic() < deadline:
        time.sleep(0.005)
    assert seen[-1] == 20 and worker.running
    assert worker.stop(2.0) and not worker.running


def test_rate_limiter_halves_a_30hz_stream_to_15():
    limiter = RateLimiter(15.0)
    admitted = sum(limiter.admit(i / 30.0) for i in range(300))
    assert admitted == 150
    limiter.max_fps = 0
    assert all(limiter.admit(i / 1000) for i in range(100))
    with pytest.raises(ValueError):
        limiter.max_fps = -1


def test_rate_limiter_does_not_burst_after_a_gap():
    limiter = RateLimiter(10.0)
    assert limiter.admit(0.0)
    assert limiter.admit(100.0)
    assert not limiter.admit(100.01)


def test_rate_meter_and_latency_window():
    meter = RateMeter(window_s=2.0)
    for i in range(21):
        meter.tick(i * 0.05)
    assert meter.rate(1.0) == pytest.approx(20.0)
    assert meter.rate(10.0) == 0.0  # a stalled stream decays to zero
    window = LatencyWindow(size=100)
    assert window.percentile(50) is None
    for ms in range(1, 101):
        window.add(ms / 1000)
    assert window.percentile(50) == pytest.approx(0.050)
    assert window.percentile(95) == pytest.approx(0.095)
    for _ in range(100):
        window.add(1.0)  # old samples fall out of the window
    assert window.percentile(50) == 1.0
    assert StreamCounters(received=3).as_dict()["received"] == 3


# ----------------------------------------------------------------------------- frame path


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    pytest.importorskip("torch")
    from qdr_core.export.random_model import write_random_model
    from qdr_core.runtime import load_runtime

    files = write_random_model(tmp_path_factory.mktemp("m"), seed=3)
    with load_runtime(files.onnx, backend="onnxruntime", num_threads=1) as rt:
        yield rt


def test_restore_raw_keeps_size_and_encoding(runtime):
    rgba = np.random.default_rng(0).integers(0, 256, (9, 11, 4), dtype=np.uint8)
    padded = np.concatenate([rgba.reshape(9, -1), np.zeros((9, 4), np.uint8)], axis=1)
    out = restore_raw(runtime, 9, 11, "rgba8", 48, padded.tobytes())
    assert (out.height, out.width, out.encoding, out.step) == (9, 11, "rgba8", 44)
    pixels = out.data.reshape(9, 11, 4)
    np.testing.assert_array_equal(pixels[..., 3], rgba[..., 3])  # alpha passes through
    expected = runtime.infer_uint8(np.ascontiguousarray(rgba[..., :3]))
    assert np.abs(pixels[..., :3].astype(int) - expected).max() <= 1
    assert (
        restore_raw(runtime, 9, 11, "rgba8", 48, padded.tobytes(), output_encoding="mono8").encoding
        == "mono8"
    )
    with pytest.raises(ImageFormatError):
        restore_raw(runtime, 9, 11, "rgba8", 40, padded.tobytes())


def test_restore_compressed(runtime):
    import cv2

    _, blob = cv2.imencode(".png", np.full((8, 8, 3), 90, np.uint8))
    out = restore_compressed(runtime, "bgr8; png compressed bgr8", blob.tobytes())
    assert (out.encoding, out.height, out.width) == ("bgr8", 8, 8)


def test_two_stage_worker_overlaps_the_stages_in_order():
    started: list[int] = []
    second_started = threading.Event()
    published: list[int] = []
    errors: list[object] = []

    def restore(item: int) -> int:
        started.append(item)
        if item == 2:
            second_started.set()
        return item * 10

    def publish(result: int) -> None:
        if result == 10:
            # Frame 1 is being published: frame 2 must be restored meanwhile, not after.
            assert second_started.wait(5)
        if result == 30:
            raise RuntimeError("publish failed")
        published.append(result)

    worker = KeepLatestWorker(restore, lambda item, exc: errors.append(item), then=publish)
    worker.start()
    worker.submit(1)
    deadline = time.monotonic() + 5
    while 1 not in started and time.monotonic() < deadline:
        time.sleep(0.001)
    worker.submit(2)
    deadline = time.monotonic() + 5
    while len(published) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert published == [10, 20] and errors == []
    worker.submit(3)
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.005)
    assert errors == [30] and worker.running  # a failed publish is reported; the worker goes on
    worker.submit(4)
    deadline = time.monotonic() + 5
    while 4 not in started and time.monotonic() < deadline:
        time.sleep(0.001)
    assert worker.stop(5.0) and not worker.running
    assert published[-1] == 40  # a frame restored before stop is still published


def test_parallel_workers_restore_concurrently_and_publish_in_order():
    both_running = threading.Barrier(2, timeout=5)
    published: list[int] = []
    slow_first = threading.Event()

    def restore(item: int) -> int:
        if item in (1, 2):
            both_running.wait()  # frames 1 and 2 are restored at the same time, or this times out
        if item == 1:
            slow_first.wait(5)  # frame 1 finishes after frame 2
        return item

    def publish(result: int) -> None:
        published.append(result)
        if result == 2:
            slow_first.set()

    with pytest.raises(ValueError, match="then"):
        KeepLatestWorker(restore, workers=2)
    worker = KeepLatestWorker(restore, then=publish, workers=2)
    worker.start()
    worker.submit(1)
    deadline = time.monotonic() + 5
    while not worker.busy and time.monotonic() < deadline:
        time.sleep(0.001)
    worker.submit(2)
    deadline = time.monotonic() + 5
    while worker.late == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    # Frame 2 went out first; frame 1, older and later, was dropped instead of sent out of order.
    assert published == [2] and worker.late == 1
    worker.submit(3)
    deadline = time.monotonic() + 5
    while 3 not in published and time.monotonic() < deadline:
        time.sleep(0.005)
    assert published == [2, 3]
    assert worker.stop(5.0) and not worker.running
