"""A bag that goes through the day: clean daylight, dusk, night, rainy night, fog (``qdr demo``).

Each segment degrades the same clean frames with one realistic condition
(``qdr_core.data.degrade.pipeline``); the clean frame is the reference topic with the same stamp,
so restoration can be scored per segment. ``segment_scores`` turns the per-frame rows of an
evaluation back into one line per segment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qdr_core.bag.io import (
    CLEAN_TOPIC,
    FRAME_ID,
    IMAGE_TOPIC,
    INFO_TOPIC,
    BagWriter,
    camera_info_message,
    image_message,
)
from qdr_core.bag.make import quantize
from qdr_core.data.degrade.pipeline import Condition, condition_rng, synthesize
from qdr_core.errors import DataError


@dataclass(frozen=True)
class Segment:
    """One stretch of the day: a name for the report and the condition its frames are degraded with."""

    name: str
    condition: str


#: The demo's day, in order.
DAY: tuple[Segment, ...] = (
    Segment("daylight", "clean"),
    Segment("dusk", "night:mild"),
    Segment("night", "night:strong"),
    Segment("rainy night", "night:strong+rain:medium"),
    Segment("fog", "fog:medium"),
)


def make_day_bag(
    frames: Sequence[np.ndarray],
    output: str | os.PathLike,
    segments: Sequence[Segment] = DAY,
    rate: float = 5.0,
    seed: int = 0,
    start_ns: int | None = None,
) -> dict[str, Any]:
    """Write every frame of ``frames`` (float RGB) under each segment's condition, segment after
    segment, with the clean frame as reference; returns a summary with each segment's frame range."""
    if not frames:
        raise DataError("no frames for the day bag")
    if not rate > 0:
        raise DataError(f"rate must be > 0 Hz, got {rate}")
    conditions = [Condition.parse(s.condition) for s in segments]
    start = time.time_ns() if start_ns is None else int(start_ns)
    height, width = frames[0].shape[:2]
    index, spans = 0, []
    with BagWriter(output, "sqlite3") as writer:
        for segment, condition in zip(segments, conditions):
            first = index
            for image in frames:
                if image.shape[:2] != (height, width):
                    raise DataError(f"frames differ in size: {image.shape[:2]} vs {(height, width)}")
                clean = quantize(image)
                degraded, _ = synthesize(clean, condition, condition_rng(seed, condition, index))
                stamp = start + round(index * 1e9 / rate)
                writer.write(INFO_TOPIC, camera_info_message(width, height, stamp, FRAME_ID), stamp)
                writer.write(IMAGE_TOPIC, image_message(degraded, "rgb8", stamp, FRAME_ID), stamp)
                writer.write(CLEAN_TOPIC, image_message(clean, "rgb8", stamp, FRAME_ID), stamp)
                index += 1
            spans.append(
                {"name": segment.name, "condition": condition.name, "first": first, "last": index - 1}
            )
    return {
        "bag": str(output),
        "n_frames": index,
        "rate_hz": rate,
        "size": [width, height],
        "segments": spans,
    }


def segment_scores(rows: Iterable[dict[str, Any]], spans: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean PSNR / SSIM of the scored rows (``row["index"]`` = frame of the bag) in each segment, and
    the mean ring around bright objects (``metrics.halo``, input and output) over the frames that have
    one (``halo_frames``; None when none has)."""
    rows = [r for r in rows if "psnr_input" in r]
    out = []
    for span in spans:
        mine = [r for r in rows if span["first"] <= r["index"] <= span["last"]]
        entry = {**span, "n_frames": len(mine)}
        for key in ("psnr_input", "psnr_output", "ssim_input", "ssim_output"):
            entry[key] = float(np.mean([r[key] for r in mine])) if mine else None
        ringed = [r for r in mine if r.get("halo") is not None]
        entry["halo_frames"] = len(ringed)
        for key in ("halo_input", "halo"):
            entry[key] = float(np.mean([r[key] for r in ringed])) if ringed else None
        out.append(entry)
    return out
