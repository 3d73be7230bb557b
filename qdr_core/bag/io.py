"""ROS 2 bags of camera frames with the ``rosbags`` library (no ROS installation needed).

Topic layout written by ``qdr bag make`` and read by ``qdr bag eval``:

* ``/camera/image_raw`` (sensor_msgs/msg/Image): the degraded frames, what a robot records;
* ``/camera/image_clean`` (sensor_msgs/msg/Image): the clean reference, same stamps;
* ``/camera/camera_info`` (sensor_msgs/msg/CameraInfo): one per frame, same stamps;
* ``/camera/image_restored`` (sensor_msgs/msg/Image): written by ``qdr bag eval``.

All three share ``header.frame_id`` and ``header.stamp``; the bag's log time equals the stamp.
Every failure to read a bag becomes a ``DataError`` that names the bag and the problem.

Integrity: rosbags writes MCAP chunks, the data section and the summary with CRC 0 ("not
computed"), so a bag with garbage in the middle of a chunk reads back as slightly wrong frames.
``BagWriter`` therefore fills in every CRC after rosbags closed the file (``seal_mcap``), and
``BagReader`` checks every CRC a file has (``verify_mcap``) and runs SQLite's ``integrity_check``
on sqlite3 storage before reading. A bag is written under a temporary name in the same folder and
renamed when complete: an interrupted or failed run leaves no partial bag behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import struct
import tempfile
import zlib
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


# ----------------------------------------------------------------------------- MCAP CRCs

_MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_FOOTER, _OP_CHUNK, _OP_DATA_END = 0x02, 0x06, 0x0F
_RECORD_HEAD = struct.Struct("<BQ")  # opcode, content length
_CHUNK_HEAD = struct.Struct("<QQQI")  # start time, end time, uncompressed size, uncompressed crc
_FOOTER_SIZE = 1 + 8 + 20  # opcode, length, summary_start, summary_offset_start, summary_crc
_BLOCK = 1 << 20


def _crc_range(f: Any, start: int, stop: int) -> int:
    """CRC32 of bytes [start, stop) of an open file, read in blocks."""
    f.seek(start)
    crc, left = 0, stop - start
    while left > 0:
        block = f.read(min(_BLOCK, left))
        if not block:
            raise ValueError(f"file ends at byte {f.tell()}, expected {stop}")
        crc, left = zlib.crc32(block, crc), left - len(block)
    return crc


def _mcap_records(f: Any, size: int) -> Iterator[tuple[int, int, int]]:
    """(opcode, record offset, content length) of each data-section record, up to and including
    DataEnd; ValueError where a record's length runs past the file."""
    f.seek(0)
    if f.read(len(_MCAP_MAGIC)) != _MCAP_MAGIC:
        raise ValueError("no MCAP magic at the start")
    offset = len(_MCAP_MAGIC)
    while True:
        head = f.read(_RECORD_HEAD.size)
        if len(head) < _RECORD_HEAD.size:
            raise ValueError(f"no DataEnd record (the file ends at byte {offset})")
        opcode, length = _RECORD_HEAD.unpack(head)
        end = offset + _RECORD_HEAD.size + length
        if end > size:
            raise ValueError(f"record 0x{opcode:02x} at byte {offset} runs past the end of the file")
        yield opcode, offset, length
        if opcode == _OP_DATA_END:
            return
        offset = end
        f.seek(offset)


def _chunk_crc(f: Any, offset: int, length: int) -> tuple[int, int]:
    """(stored, computed) uncompressed CRC of the chunk record at ``offset`` (stored 0: none).

    Only uncompressed chunks (what ``BagWriter`` writes) get a computed CRC; a compressed one keeps
    its stored value, which rosbags' reader checks after decompressing.
    """
    f.seek(offset + _RECORD_HEAD.size)
    _, _, uncompressed, stored = _CHUNK_HEAD.unpack(f.read(_CHUNK_HEAD.size))
    (name_len,) = struct.unpack("<I", f.read(4))
    compression = f.read(name_len)
    (records_len,) = struct.unpack("<Q", f.read(8))
    start = f.tell()
    if start + records_len > offset + _RECORD_HEAD.size + length:
        raise ValueError(f"chunk at byte {offset} claims more data than its record holds")
    if compression:
        return stored, stored
    if records_len != uncompressed:
        raise ValueError(f"chunk at byte {offset} holds {records_len} bytes but claims {uncompressed}")
    return stored, _crc_range(f, start, start + records_len)


def _mcap_footer(f: Any, size: int) -> tuple[int, int, int]:
    """(footer offset, summary start, stored summary crc)."""
    footer = size - len(_MCAP_MAGIC) - _FOOTER_SIZE
    if footer < len(_MCAP_MAGIC):
        raise ValueError("too short for an MCAP file")
    f.seek(footer)
    opcode, length, summary_start, _, crc = struct.unpack("<BQQQI", f.read(_FOOTER_SIZE))
    if opcode != _OP_FOOTER or length != 20 or f.read(len(_MCAP_MAGIC)) != _MCAP_MAGIC:
        raise ValueError("no MCAP footer and magic at the end")
    return footer, summary_start, crc


def seal_mcap(path: str | os.PathLike) -> None:
    """Write the chunk, data-section and summary CRCs into an MCAP file rosbags left at 0."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        data_end = None
        for opcode, offset, length in list(_mcap_records(f, size)):
            if opcode == _OP_CHUNK:
                _, crc = _chunk_crc(f, offset, length)
                f.seek(offset + _RECORD_HEAD.size + _CHUNK_HEAD.size - 4)
                f.write(struct.pack("<I", crc))
            elif opcode == _OP_DATA_END:
                data_end = offset
        crc = _crc_range(f, 0, data_end)
        f.seek(data_end + _RECORD_HEAD.size)
        f.write(struct.pack("<I", crc))
        footer, summary_start, _ = _mcap_footer(f, size)
        if summary_start:
            crc = _crc_range(f, summary_start, footer + _FOOTER_SIZE - 4)
            f.seek(footer + _FOOTER_SIZE - 4)
            f.write(struct.pack("<I", crc))


def verify_mcap(path: str | os.PathLike) -> None:
    """Check every CRC an MCAP file carries (chunks, data section, summary); a stored 0 means "not
    computed" (the MCAP spec) and is skipped. Raises ValueError naming the first damaged part."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        for opcode, offset, length in list(_mcap_records(f, size)):
            if opcode == _OP_CHUNK:
                stored, computed = _chunk_crc(f, offset, length)
                if stored and stored != computed:
                    raise ValueError(f"the chunk at byte {offset} fails its CRC check")
            elif opcode == _OP_DATA_END:
                f.seek(offset + _RECORD_HEAD.size)
                (stored,) = struct.unpack("<I", f.read(4))
                if stored and stored != _crc_range(f, 0, offset):
                    raise ValueError("the data section fails its CRC check")
        footer, summary_start, stored = _mcap_footer(f, size)
        if summary_start and stored and stored != _crc_range(f, summary_start, footer + _FOOTER_SIZE - 4):
            raise ValueError("the summary section fails its CRC check")


def verify_sqlite(path: str | os.PathLike) -> None:
    """SQLite's own structural check (it has no data checksums). Raises ValueError."""
    try:
        connection = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
        try:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"SQLite cannot read it ({exc})") from exc
    problems = [" ".join(str(r[0]).split()) for r in rows if r and r[0] != "ok"]
    if problems:
        raise ValueError(f"SQLite integrity_check: {'; '.join(problems[:3])}")


def verify_bag_files(bag: Path, files: Sequence[Path]) -> None:
    """DataError naming the bag and file unless every storage file passes its integrity check."""
    for path in files:
        check = verify_mcap if path.suffix == ".mcap" else verify_sqlite if path.suffix == ".db3" else None
        if check is None or not path.is_file():
            continue
        try:
            check(path)
        except (OSError, ValueError, struct.error) as exc:
            raise DataError(f"bag {bag} is corrupt or truncated: {path.name}: {exc}") from exc


def remove_bag(path: str | os.PathLike) -> None:
    """Delete a previous output bag; only a folder that is a bag (has metadata.yaml) is deleted."""
    path = Path(path)
    if not path.exists():
        return
    if not (path.is_dir() and (path / "metadata.yaml").is_file()):
        raise DataError(f"{path} exists and is not a ROS 2 bag: not overwriting it")
    shutil.rmtree(path)


class BagWriter:
    """Write messages to a new ROS 2 bag (format version 9, sqlite3 or MCAP storage).

    The bag is built in a hidden temporary folder next to ``path`` and moved to ``path`` by
    ``close``; ``abort`` (or leaving the ``with`` block by an exception) deletes it instead. With
    ``overwrite`` an existing bag at ``path`` is replaced only once the new one is complete.
    """

    def __init__(self, path: str | os.PathLike, storage: str = "sqlite3", overwrite: bool = False) -> None:
        from rosbags.rosbag2 import Writer, WriterError
        from rosbags.rosbag2.writer import StoragePlugin

        if storage not in STORAGES:
            raise DataError(f"unknown bag storage {storage!r}; choose one of {', '.join(STORAGES)}")
        self.path = Path(path)
        self.storage = storage
        self.overwrite = overwrite
        if self.path.exists() and not overwrite:
            raise DataError(f"output bag {self.path} already exists: remove it or choose another path")
        if self.path.exists() and not (self.path / "metadata.yaml").is_file():
            raise DataError(f"{self.path} exists and is not a ROS 2 bag: not overwriting it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Same folder, so the final rename stays on one file system; the inner folder carries the
        # final name because rosbags names the storage file after it.
        self._staging = Path(
            tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent)
        )
        self._building = self._staging / self.path.name
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self._building, version=9, storage_plugin=plugin)
        try:
            self._writer.open()
        except WriterError as exc:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise DataError(f"cannot create bag {self.path}: {exc}") from exc
        self._connections: dict[str, Any] = {}
        self._done = False

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
        """Finish the bag (CRCs included) and move it to ``path``."""
        if self._done:
            return
        self._done = True
        try:
            self._writer.close()
            for storage_file in self._building.glob("*.mcap"):
                seal_mcap(storage_file)
            if self.overwrite:
                remove_bag(self.path)
            os.replace(self._building, self.path)
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)

    def abort(self) -> None:
        """Drop the unfinished bag: nothing appears at ``path``."""
        if self._done:
            return
        self._done = True
        # The bag is being discarded: an error closing it is moot.
        with contextlib.suppress(Exception):
            self._writer.close()
        shutil.rmtree(self._staging, ignore_errors=True)

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


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
        # Checked before rosbags reads them: it would take a damaged chunk's bytes as messages.
        verify_bag_files(self.path, sorted(self.path.iterdir()))
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
