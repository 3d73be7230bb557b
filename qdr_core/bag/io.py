"""ROS 2 bags of camera frames with the ``rosbags`` library (no ROS installation needed).

Topic layout written by ``qdr bag make`` and read by ``qdr bag eval``:

* ``/camera/image_raw`` (sensor_msgs/msg/Image): the degraded frames, what a robot records;
* ``/camera/image_clean`` (sensor_msgs/msg/Image): the clean reference, same stamps;
* ``/camera/camera_info`` (sensor_msgs/msg/CameraInfo): one per frame, same stamps;
* ``/camera/image_restored`` (sensor_msgs/msg/Image): written by ``qdr bag eval``.

All three share ``header.frame_id`` and ``header.stamp``; the bag's log time equals the stamp.
Every failure to read a bag becomes a ``DataError`` that names the bag and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qdr_core.errors import DataError, ImageFormatError
from qdr_core.image_encodings import decode, encode

IMAGE_TOPIC = "/camera/image_raw"
CLEAN_TOPIC = "/camera/image_clean"
INFO_TOPIC = "/camera/camera_info"
RESTORED_TOPIC = "/camera/image_restored"
FRAME_ID = "camera_optical_frame"
IMAGE_TYPE = "sensor_msgs/msg/Image"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
STORAGES = ("sqlite3", "mcap")
BAG_ENCODINGS = ("rgb8", "bgr8")


def topic_name(topic: str) -> str:
    """Bag topics are absolute: ``camera/image_raw`` -> ``/camera/image_raw``."""
    topic = topic.strip()
    return topic if topic.startswith("/") else "/" + topic


@lru_cache(maxsize=1)
def typestore() -> Any:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


@dataclass
class BagImage:
    """One sensor_msgs/Image read from a bag (``data`` is the message's uint8 buffer)."""

    topic: str
    log_ns: int
    stamp_ns: int
    frame_id: str
    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int
    data: np.ndarray

    def rgb(self) -> np.ndarray:
        """Float32 RGB in [0, 1]; ImageFormatError names a malformed frame."""
        return decode(self.height, self.width, self.encoding, self.step, self.data, self.is_bigendian).rgb


def stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _header(stamp: int, frame_id: str) -> Any:
    types = typestore().types
    time = types["builtin_interfaces/msg/Time"](sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000)
    return types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def image_message(rgb: np.ndarray, encoding: str, stamp: int, frame_id: str) -> Any:
    """A sensor_msgs/Image (rosbags class) of float RGB [0, 1] or uint8 RGB in ``encoding``."""
    image = rgb.astype(np.float32) * np.float32(1 / 255) if rgb.dtype == np.uint8 else rgb
    enc = encode(image, encoding)
    return typestore().types[IMAGE_TYPE](
        header=_header(stamp, frame_id),
        height=enc.height,
        width=enc.width,
        encoding=enc.encoding,
        is_bigendian=int(enc.is_bigendian),
        step=enc.step,
        data=enc.data,
    )


def camera_info_message(width: int, height: int, stamp: int, frame_id: str) -> Any:
    """A plausible pinhole CameraInfo (about 64 degree horizontal field of view, no distortion)."""
    types = typestore().types
    f, cx, cy = 0.8 * width, (width - 1) / 2.0, (height - 1) / 2.0
    return types[INFO_TYPE](
        header=_header(stamp, frame_id),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5, np.float64),
        k=np.array([f, 0, cx, 0, f, cy, 0, 0, 1], np.float64),
        r=np.eye(3, dtype=np.float64).reshape(-1),
        p=np.array([f, 0, cx, 0, 0, f, cy, 0, 0, 0, 1, 0], np.float64),
        binning_x=0,
        binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )


class BagWriter:
    """Write messages to a new ROS 2 bag (format version 9, sqlite3 or MCAP storage)."""

    def __init__(self, path: str | os.PathLike, storage: str = "sqlite3") -> None:
        from rosbags.rosbag2 import Writer, WriterError
        from rosbags.rosbag2.writer import StoragePlugin

        if storage not in STORAGES:
            raise DataError(f"unknown bag storage {storage!r}; choose one of {', '.join(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise DataError(f"output bag {self.path} already exists: remove it or choose another path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        try:
            self._writer.open()
        except WriterError as exc:
            raise DataError(f"cannot create bag {self.path}: {exc}") from exc
        self._connections: dict[str, Any] = {}

    def _connection(self, topic: str, msgtype: str) -> Any:
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
        return self._connections[topic]

    def write(self, topic: str, msg: Any, log_ns: int) -> None:
        conn = self._connection(topic, msg.__msgtype__)
        self._writer.write(conn, log_ns, typestore().serialize_cdr(msg, msg.__msgtype__))

    def write_raw(self, topic: str, msgtype: str, raw: bytes | memoryview, log_ns: int) -> None:
        self._writer.write(self._connection(topic, msgtype), log_ns, raw)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BagReader:
    """Read a ROS 2 bag (folder with metadata.yaml, sqlite3 or MCAP) with errors that name it."""

    def __init__(self, path: str | os.PathLike) -> None:
        from rosbags.rosbag2 import Reader

        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"bag not found: {self.path}")
        if self.path.is_file():
            raise DataError(
                f"{self.path} is a file: a ROS 2 bag is the folder holding metadata.yaml and the storage files"
            )
        if not (self.path / "metadata.yaml").is_file():
            raise DataError(f"{self.path} is not a ROS 2 bag: it has no metadata.yaml")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as exc:  # rosbags raises ReaderError, sqlite3 and mcap errors
            raise DataError(
                f"cannot open bag {self.path} (corrupt or truncated?): {type(exc).__name__}: {exc}"
            ) from exc

    def topics(self) -> dict[str, tuple[str, int]]:
        """topic -> (message type, message count from the bag's metadata)."""
        return {topic: (info.msgtype or "", info.msgcount) for topic, info in self._reader.topics.items()}

    def has_topic(self, topic: str) -> bool:
        return topic_name(topic) in self._reader.topics

    def require(self, topic: str, msgtype: str = IMAGE_TYPE) -> str:
        """The absolute topic name; DataError if it is missing, of another type, or empty."""
        topic = topic_name(topic)
        topics = self.topics()
        if topic not in topics:
            listing = ", ".join(f"{t} ({m})" for t, (m, _) in sorted(topics.items())) or "none"
            raise DataError(f"bag {self.path} has no topic {topic}; its topics: {listing}")
        found, count = topics[topic]
        if found != msgtype:
            raise DataError(f"bag {self.path}: topic {topic} holds {found}, expected {msgtype}")
        if count == 0:
            raise DataError(f"bag {self.path}: topic {topic} has no messages")
        return topic

    def count(self, topic: str) -> int:
        return self.topics().get(topic_name(topic), ("", 0))[1]

    def raw_messages(self, topics: Sequence[str]) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, msgtype, log time ns, serialized bytes) in log-time order."""
        wanted = {topic_name(t) for t in topics}
        connections = [c for c in self._reader.connections if c.topic in wanted]
        try:
            for conn, log_ns, raw in self._reader.messages(connections=connections):
                yield conn.topic, conn.msgtype, log_ns, raw
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"bag {self.path} is corrupt or truncated: {type(exc).__name__}: {exc}") from exc

    def messages(self, topics: Sequence[str]) -> Iterator[tuple[str, int, Any]]:
        """(topic, log time ns, deserialized message) in log-time order."""
        store = typestore()
        for topic, msgtype, log_ns, raw in self.raw_messages(topics):
            try:
                msg = store.deserialize_cdr(raw, msgtype)
            except Exception as exc:
                raise DataError(
                    f"bag {self.path}: a {msgtype} message on {topic} at {log_ns} ns cannot be decoded "
                    f"(truncated or corrupt): {type(exc).__name__}: {exc}"
                ) from exc
            yield topic, log_ns, msg

    def images(self, topics: Sequence[str]) -> Iterator[BagImage]:
        """The sensor_msgs/Image messages of ``topics`` as ``BagImage`` in log-time order."""
        for topic, log_ns, msg in self.messages(topics):
            yield to_bag_image(topic, log_ns, msg)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_bag_image(topic: str, log_ns: int, msg: Any) -> BagImage:
    return BagImage(
        topic=topic,
        log_ns=log_ns,
        stamp_ns=stamp_ns(msg.header.stamp),
        frame_id=msg.header.frame_id,
        height=int(msg.height),
        width=int(msg.width),
        encoding=msg.encoding,
        is_bigendian=bool(msg.is_bigendian),
        step=int(msg.step),
        data=np.asarray(msg.data, dtype=np.uint8),
    )


def decode_or_error(image: BagImage, bag: Path) -> np.ndarray:
    try:
        return image.rgb()
    except ImageFormatError as exc:
        raise DataError(
            f"bag {bag}: frame on {image.topic} at stamp {image.stamp_ns} ns is malformed: {exc}"
        ) from exc
