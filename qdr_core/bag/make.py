"""``qdr bag make``: a bag of degraded frames + clean reference + camera info from images or video."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qdr_core.bag.io import (
    BAG_ENCODINGS,
    CLEAN_TOPIC,
    FRAME_ID,
    IMAGE_TOPIC,
    INFO_TOPIC,
    BagWriter,
    camera_info_message,
    image_message,
)
from qdr_core.data.clips import ClipDegrader
from qdr_core.data.degrade import check_task
from qdr_core.data.imageio import list_images, read_rgb
from qdr_core.errors import DataError


def frames_from_images(
    folder: str | os.PathLike, max_frames: int | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """(name, float RGB) of the images in ``folder``, sorted by name."""
    files = list_images(folder)
    for path in files[:max_frames] if max_frames else files:
        yield path.name, read_rgb(path)


def frames_from_video(
    path: str | os.PathLike, max_frames: int | None = None, stride: int = 1
) -> Iterator[tuple[str, np.ndarray]]:
    """(``frame_<index>``, float RGB) of every ``stride``-th frame of a video file."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise DataError(f"video not found: {path}")
    if stride < 1:
        raise DataError(f"stride must be >= 1, got {stride}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"cannot open video (corrupt or unsupported codec): {path}")
    index = produced = 0
    try:
        while max_frames is None or produced < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            if index % stride == 0:
                yield (
                    f"frame_{index:05d}",
                    cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / np.float32(255),
                )
                produced += 1
            index += 1
    finally:
        cap.release()
    if produced == 0:
        raise DataError(f"no frames could be read from {path}")


def quantize(image: np.ndarray) -> np.ndarray:
    """Float RGB -> the float values an 8-bit image message decodes to (``image_encodings.decode``
    scales by 1/255 the same way, so the two agree bit for bit)."""
    u8 = (np.clip(image, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    return np.multiply(u8, np.float32(1.0 / 255.0), dtype=np.float32)


def make_bag(
    task: str,
    frames: Iterator[tuple[str, np.ndarray]],
    output: str | os.PathLike,
    rate: float = 10.0,
    encoding: str = "rgb8",
    storage: str = "sqlite3",
    seed: int = 0,
    frame_id: str = FRAME_ID,
    start_ns: int | None = None,
    per_frame_severity: bool = False,
    condition: str | None = None,
) -> dict:
    """Write degraded, clean and camera_info messages for each frame; returns a summary dict.

    The frames are one clip, degraded coherently (``data.clips.ClipDegrader``): the task's eval
    severity (or ``condition``, e.g. ``"fog:medium+rain:mild"``) is drawn once from ``seed``, the
    noise is new in each frame. ``per_frame_severity`` draws frame ``i``'s severity from
    ``eval_rng(seed, i)`` instead, as ``qdr eval`` does for stills (the bag then flickers by
    construction). Frame ``i`` is stamped ``start_ns + i / rate``; the clean frame carries the same stamp.
    """
    check_task(task)
    degrader = ClipDegrader(condition or task, seed, coherent=not per_frame_severity)
    if not rate > 0:
        raise DataError(f"rate must be > 0 Hz, got {rate}")
    if encoding not in BAG_ENCODINGS:
        raise DataError(f"encoding {encoding!r} is not one of {', '.join(BAG_ENCODINGS)}")
    start = time.time_ns() if start_ns is None else int(start_ns)
    period = 1e9 / rate
    names: list[str] = []
    size = None
    with BagWriter(output, storage) as writer:
        for i, (name, image) in enumerate(frames):
            clean = quantize(image)
            degraded = degrader(i, clean)
            stamp = start + round(i * period)
            height, width = clean.shape[:2]
            size = size or (width, height)
            writer.write(INFO_TOPIC, camera_info_message(width, height, stamp, frame_id), stamp)
            writer.write(IMAGE_TOPIC, image_message(degraded, encoding, stamp, frame_id), stamp)
            writer.write(CLEAN_TOPIC, image_message(clean, encoding, stamp, frame_id), stamp)
            names.append(name)
        if not names:
            raise DataError("no frames to write")
    return {
        "bag": str(output),
        "task": task,
        "seed": seed,
        "degradation": condition or task,
        "coherent": not per_frame_severity,
        "n_frames": len(names),
        "rate_hz": rate,
        "encoding": encoding,
        "storage": storage,
        "frame_id": frame_id,
        "size": list(size or ()),
        "topics": [IMAGE_TOPIC, CLEAN_TOPIC, INFO_TOPIC],
        "frames": names,
    }
