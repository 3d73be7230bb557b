"""``qdr bag eval --live``: replay a bag through the real ``qdr_restore`` lifecycle node.

In the spirit of ros2_benchmark: the node runs in its own process exactly as on a robot (see
``qdr_ros.harness``); this process configures and activates it through its lifecycle services,
publishes the bag's frames on ``image_raw`` + ``camera_info`` at the recorded rate (times
``rate_scale``), records ``restored/image_raw`` and matches every output to its input by
``header.stamp``, which the node passes through.

Each frame is stamped with the wall clock when it is published, so end-to-end latency is
receive time minus stamp (transport both ways + queueing + decode + inference + encode), measured
by one clock in one process. Frames published but never received are dropped; the node's own
counters (lost before its callback, replaced, throttled, rejected, failed) say where. Runs in a
private ROS domain with localhost discovery and a unique namespace so that nothing else on the
machine interferes. Registered for qdr_core as the ``qdr.live`` entry point ``evaluate_bag``.
"""

from __future__ import annotations

import array
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from qdr_core.bag.evaluate import FrameScorer, pair_by_stamp, percentiles_ms, pick_indices, resolve_topics
from qdr_core.bag.io import IMAGE_TOPIC, INFO_TOPIC, INFO_TYPE, BagImage, BagReader, decode_or_error
from qdr_core.errors import DataError, QdrError
from qdr_core.image_encodings import decode
from qdr_core.node.live import LiveOptions
from qdr_core.runtime import auto_backend
from qdr_ros.harness import NodeClient, NodeProcess, node_session, stamp_ns

#: The node's counters reported with a replay (diagnostics ``frames_<name>``).
COUNTERS = ("received", "lost", "throttled", "dropped", "rejected", "failed", "published")


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
            infos[stamp_ns(msg.header.stamp)] = msg
    frames: list[_Frame] = []

    def on_pair(image: BagImage, partner: BagImage | None) -> None:
        if max_frames is None or len(frames) < max_frames:
            frames.append(_Frame(len(frames), image.log_ns, image, partner, infos.get(image.stamp_ns)))

    pair_by_stamp(reader, inp, clean, on_pair)
    frames.sort(key=lambda f: f.log_ns)
    for i, frame in enumerate(frames):
        frame.index = i
    return frames


def _messages(frame: _Frame) -> tuple[Image, CameraInfo | None]:
    img = frame.image
    msg = Image(height=img.height, width=img.width, encoding=img.encoding,
                is_bigendian=int(img.is_bigendian), step=img.step)  # fmt: skip
    msg.header.frame_id = img.frame_id
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(img.data).tobytes())
    msg.data = data
    if frame.info is None:
        return msg, None
    src = frame.info
    info = CameraInfo(height=int(src.height), width=int(src.width), distortion_model=src.distortion_model)
    info.header.frame_id = img.frame_id
    info.d = [float(v) for v in src.d]
    info.k, info.r, info.p = ([float(v) for v in m] for m in (src.k, src.r, src.p))
    info.binning_x, info.binning_y = int(src.binning_x), int(src.binning_y)
    return msg, info


def _publish(client: NodeClient, msg: Image, info: CameraInfo | None) -> int:
    stamp = time.time_ns()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    if info is not None:
        info.header.stamp = msg.header.stamp
    client.send(msg, info or False)
    return stamp


def _start(client: NodeClient, proc: NodeProcess, namespace: str, opts: LiveOptions, say) -> None:
    """Configure and activate the node; wait until our topics and its topics have matched."""
    say("configuring and activating the node")
    for name, timeout in (("configure", opts.startup_timeout), ("activate", 60.0)):
        answer = client.transition(name, timeout, proc.alive)
        if answer is None:
            raise QdrError(f"live replay: lifecycle {name} got no answer; node log:\n{proc.tail()}")
        if not answer:
            raise QdrError(f"live replay: the node refused to {name}; node log:\n{proc.tail()}")
    if not client.wait(lambda: client.matched(namespace), 20.0):
        raise QdrError(f"live replay: the node's topics never matched ours; node log:\n{proc.tail()}")


def _replay(client: NodeClient, proc: NodeProcess, frames: list[_Frame], opts: LiveOptions, say) -> dict:
    messages = [_messages(f) for f in frames]  # built before the clock starts
    for _ in range(opts.warmup):  # first inference at a new frame size is slow; not measured
        stamp = _publish(client, *messages[0])
        client.wait(lambda s=stamp: s in client.received, 30.0)
    client.received.clear()
    say(f"replaying {len(frames)} frames at {opts.rate_scale:g}x the recorded rate")
    sent: dict[int, int] = {}
    start, first_log = time.monotonic(), frames[0].log_ns
    for frame, (msg, info) in zip(frames, messages):
        delay = start + (frame.log_ns - first_log) * 1e-9 / opts.rate_scale - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[_publish(client, msg, info)] = frame.index
        if not proc.alive():
            raise QdrError(f"live replay: the node exited during the replay; node log:\n{proc.tail()}")
    client.wait(lambda: all(s in client.received for s in sent), opts.drain_timeout)
    # The counters after the last frame: the next report is at most diagnostics_period away.
    client.diag = {}
    client.wait(lambda: bool(client.diag) or not proc.alive(), 3.0)
    diagnostics = dict(client.diag)
    for name in ("deactivate", "cleanup"):
        if not client.transition(name, 15.0, proc.alive):
            say(f"warning: live replay: the node did not {name}")
    return {"sent": sent, "received": dict(client.received), "diagnostics": diagnostics}


def _run_node(frames: list[_Frame], model: Path, opts: LiveOptions, say) -> tuple[dict, int, Path]:
    log_dir = Path(opts.log_dir) if opts.log_dir else Path(tempfile.mkdtemp(prefix="qdr-live-"))
    namespace = f"/qdr_replay_{os.getpid()}_{random.randint(0, 99999)}"
    params = {"model_path": str(model), "backend": opts.backend, "num_threads": int(opts.num_threads),
              "input_qos": "RELIABLE", "output_qos": "RELIABLE", "warmup_frames": 2,
              "diagnostics_period": 1.0, **opts.extra_params}  # fmt: skip
    session = node_session(
        log_dir, params, namespace, opts.domain_id, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST"
    )
    say(f"starting the qdr_restore node (namespace {namespace}); log {log_dir / 'node.log'}")
    with session as (proc, client):
        if not client.wait(
            lambda: client.change.service_is_ready() or not proc.alive(), opts.startup_timeout
        ):
            raise QdrError(
                f"live replay: the node's lifecycle service did not come up within {opts.startup_timeout:.0f} s; "
                f"node log:\n{proc.tail()}"
            )
        _start(client, proc, namespace, opts, say)
        result = _replay(client, proc, frames, opts, say)
    return result, proc.proc.returncode, log_dir / "node.log"


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
    model = Path(model).resolve()
    if not model.is_file():
        raise DataError(f"model not found: {model}")
    bag = Path(bag)
    with BagReader(bag) as reader:
        inp, clean = resolve_topics(reader, input_topic, clean_topic)
        frames = _load_frames(reader, inp, clean, opts.max_frames)
    if not frames:
        raise DataError(f"bag {bag}: no frames on {inp}")
    decode_or_error(frames[0].image, bag)  # a malformed first frame fails here, not inside the node
    result, code, log = _run_node(frames, model, opts, say)
    # The grid is spread over the frames that came back: an overloaded node drops frames.
    back = sorted(index for stamp, index in result["sent"].items() if stamp in result["received"])
    scorer = FrameScorer(detector, [back[i] for i in pick_indices(len(back), grid_frames)])
    latencies = _score(scorer, frames, result, bag)
    live = {
        "mode": "live", "bag": str(bag), "input_topic": inp, "clean_topic": clean, "model": str(model),
        "backend": result["diagnostics"].get("backend") or _backend_name(model, opts.backend),
        "rate_scale": opts.rate_scale,
        **_rates(result["sent"], result["received"]),
        "node_counters": _counters(result["diagnostics"]),
        "latency_ms": percentiles_ms(latencies),
        "latencies_ms": [round(v * 1000, 3) for v in latencies],
        "node_diagnostics": result["diagnostics"], "node_exit_code": code, "node_log": str(log),
        **scorer.summary(),
        "frames": scorer.rows,
    }  # fmt: skip
    return live, scorer


def _score(scorer: FrameScorer, frames: list[_Frame], result: dict, bag: Path) -> list[float]:
    by_index = {f.index: f for f in frames}
    latencies = []
    for stamp, index in sorted(result["sent"].items()):
        out = result["received"].get(stamp)
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
    return latencies


def _rates(sent: dict[int, int], received: dict[int, tuple[int, Any]]) -> dict[str, Any]:
    pub_times = sorted(sent)
    recv_times = sorted(received[s][0] for s in sent if s in received)
    n_sent, n_recv = len(sent), len(recv_times)
    replay_s = (pub_times[-1] - pub_times[0]) * 1e-9 if n_sent > 1 else 0.0
    out_s = (recv_times[-1] - recv_times[0]) * 1e-9 if n_recv > 1 else 0.0
    return {
        "frames_sent": n_sent,
        "frames_received": n_recv,
        "frames_dropped": n_sent - n_recv,
        "drop_rate": (n_sent - n_recv) / n_sent if n_sent else 0.0,
        "input_fps": (n_sent - 1) / replay_s if replay_s > 0 else None,
        "throughput_fps": (n_recv - 1) / out_s if out_s > 0 else None,
    }


def _counters(diagnostics: dict[str, str]) -> dict[str, int]:
    """The node's frame counters (and rejections by reason) from its last diagnostics report."""
    out = {name: int(diagnostics[f"frames_{name}"]) for name in COUNTERS if f"frames_{name}" in diagnostics}
    for key, value in diagnostics.items():
        if key.startswith("frames_rejected."):
            out[key[len("frames_") :]] = int(value)
    return out


def _backend_name(model: Path, backend: str) -> str:
    try:
        return auto_backend(model) if backend == "auto" else backend
    except QdrError:
        return backend
