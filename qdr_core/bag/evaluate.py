"""``qdr bag eval`` offline mode: restore every frame of a bag, score it, write the restored bag.

With a clean topic (a bag from ``qdr bag make``) frames are paired by ``header.stamp`` and scored
with PSNR / SSIM exactly as ``qdr eval`` scores them (float restored output against the decoded
clean frame). A bag recorded on a robot has no clean topic: then no-reference statistics
(brightness, contrast, sharpness, colourfulness) of input and output are reported instead.
Optionally a person detector runs on every frame (clean detections are the reference).
Frames with a clean partner also feed the temporal metrics (``qdr_core.temporal``: warping error of
input, output and clean clip, and flicker), frame after frame in the order they are scored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from qdr_core.bag.io import (
    CLEAN_TOPIC,
    IMAGE_TOPIC,
    INFO_TOPIC,
    INFO_TYPE,
    RESTORED_TOPIC,
    BagImage,
    BagReader,
    BagWriter,
    decode_or_error,
    image_message,
    topic_name,
)
from qdr_core.errors import DataError
from qdr_core.image_encodings import output_encoding_for
from qdr_core.metrics import halo_in, halo_regions, mean_scores, score_restoration
from qdr_core.temporal import TemporalMeter


def no_reference_stats(rgb: np.ndarray) -> dict[str, float]:
    """Statistics that need no reference: mean luma, RMS contrast, Laplacian variance (sharpness,
    which also rises with noise), Hasler-Suesstrunk colourfulness."""
    import cv2

    luma = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    return {
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        "sharpness": float(cv2.Laplacian(luma, cv2.CV_32F).var()),
        "colorfulness": float(colourful),
    }


def percentiles_ms(values_s: list[float]) -> dict[str, float | None]:
    if not values_s:
        return {"mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    ms = np.asarray(values_s, np.float64) * 1000.0
    return {
        "mean": float(ms.mean()),
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }


def pick_indices(count: int, k: int) -> list[int]:
    """``k`` frame indices spread evenly over ``count`` frames (for the report's grid)."""
    if count <= 0 or k <= 0:
        return []
    return sorted({round(x) for x in np.linspace(0, count - 1, min(k, count))})


def to_u8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255.0 + 0.5).astype(np.uint8)


class FrameScorer:
    """Per-frame metrics shared by the offline and live modes (one row per frame)."""

    def __init__(self, detector: Any | None = None, grid_indices: list[int] | None = None) -> None:
        self.detector = detector
        self.grid_indices = set(grid_indices or [])
        self.rows: list[dict[str, Any]] = []
        self.grid: list[dict[str, Any]] = []
        self.detections: dict[str, list] = {"clean": [], "degraded": [], "restored": []}
        self.temporal = TemporalMeter()

    def add(
        self,
        index: int,
        stamp: int,
        degraded: np.ndarray,
        restored: np.ndarray,
        clean: np.ndarray | None,
        **extra: Any,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {"index": index, "stamp_ns": stamp, **extra}
        if clean is not None:
            row.update(score_restoration(clean, degraded, restored))
            regions = halo_regions(degraded)
            row.update(halo_input=halo_in(regions, clean, degraded), halo=halo_in(regions, clean, restored))
            self.temporal.add(stamp, clean, restored, degraded)
        else:
            self.temporal.reset_motion()
            row["input_stats"] = no_reference_stats(degraded)
            row["output_stats"] = no_reference_stats(restored)
            row["mean_abs_change"] = float(np.abs(restored - degraded).mean())
        if self.detector is not None:
            d_in, d_out = self.detector.detect(degraded), self.detector.detect(restored)
            self.detections["degraded"].append(d_in)
            self.detections["restored"].append(d_out)
            row["persons_input"] = len(d_in.above(0.5))
            row["persons_output"] = len(d_out.above(0.5))
            if clean is not None:
                d_clean = self.detector.detect(clean)
                self.detections["clean"].append(d_clean)
                row["persons_clean"] = len(d_clean.above(0.5))
        if index in self.grid_indices:
            self.grid.append({
                "index": index, "degraded": to_u8(degraded), "restored": to_u8(restored),
                "clean": None if clean is None else to_u8(clean),
            })  # fmt: skip
        self.rows.append(row)
        return row

    def summary(self) -> dict[str, Any]:
        rows = self.rows
        out: dict[str, Any] = {"n_frames": len(rows)}
        scored = [r for r in rows if "psnr_input" in r]
        if scored:
            out.update(mean_scores(scored))
            out["psnr_gain"] = out["psnr_output"] - out["psnr_input"]
            out["n_scored"] = len(scored)
            temporal = self.temporal.result()
            if temporal["n_pairs"]:
                out.update({k: v for k, v in temporal.items() if k != "n_frames"})
        unscored = [r for r in rows if "input_stats" in r]
        if unscored:
            keys = unscored[0]["input_stats"].keys()
            out["no_reference"] = {
                side: {k: float(np.mean([r[f"{side}_stats"][k] for r in unscored])) for k in keys}
                for side in ("input", "output")
            }
            out["no_reference"]["mean_abs_change"] = float(np.mean([r["mean_abs_change"] for r in unscored]))
        if self.detector is not None:
            out["detection"] = self.detection_summary()
        return out

    def detection_summary(self) -> dict[str, Any]:
        from qdr_core.detect import REFERENCE_SCORE, detection_ap

        dets = self.detections
        result: dict[str, Any] = {"detector": self.detector.name, "reference_score": REFERENCE_SCORE}
        if dets["clean"] and len(dets["clean"]) == len(dets["degraded"]):
            result["degraded"] = detection_ap(dets["clean"], dets["degraded"])
            result["restored"] = detection_ap(dets["clean"], dets["restored"])
            ap_in, ap_out = result["degraded"]["ap50"], result["restored"]["ap50"]
            if ap_in is not None and ap_out is not None:
                result["ap50_gain"] = ap_out - ap_in
        result["persons_input"] = int(sum(len(d.above(REFERENCE_SCORE)) for d in dets["degraded"]))
        result["persons_output"] = int(sum(len(d.above(REFERENCE_SCORE)) for d in dets["restored"]))
        return result


def pair_by_stamp(
    reader: BagReader,
    input_topic: str,
    clean_topic: str | None,
    on_pair: Callable[[BagImage, BagImage | None], None],
) -> tuple[int, int]:
    """Call ``on_pair(input, clean)`` for each input frame, in log-time order, with the clean frame
    of the same stamp (None without a clean topic). Returns (pairs, input frames with no partner)."""
    topics = [input_topic] + ([clean_topic] if clean_topic else [])
    pending_in: dict[int, BagImage] = {}
    pending_clean: dict[int, BagImage] = {}
    pairs = 0
    for image in reader.images(topics):
        if clean_topic is None:
            on_pair(image, None)
            pairs += 1
        else:
            is_input = image.topic == input_topic
            mine, other = (pending_in, pending_clean) if is_input else (pending_clean, pending_in)
            partner = other.pop(image.stamp_ns, None)
            if partner is None:
                mine[image.stamp_ns] = image
            else:
                on_pair(*((image, partner) if is_input else (partner, image)))
                pairs += 1
    for image in sorted(pending_in.values(), key=lambda im: im.log_ns):
        on_pair(image, None)
    return pairs, len(pending_in)


def resolve_topics(reader: BagReader, input_topic: str, clean_topic: str | None) -> tuple[str, str | None]:
    """Check the input topic; ``clean_topic`` None means: use ``/camera/image_clean`` if present,
    an empty string means: no clean topic; an explicit name must exist."""
    inp = reader.require(input_topic)
    if clean_topic is None:
        return inp, (reader.require(CLEAN_TOPIC) if reader.has_topic(CLEAN_TOPIC) else None)
    if clean_topic == "":
        return inp, None
    clean = reader.require(clean_topic)
    if clean == inp:
        raise DataError(f"the input and clean topics are the same ({inp})")
    return inp, clean


def evaluate_bag_offline(
    bag: str | os.PathLike,
    runtime: Any,
    output_bag: str | os.PathLike | None = None,
    input_topic: str = IMAGE_TOPIC,
    clean_topic: str | None = None,
    detector: Any | None = None,
    grid_frames: int = 3,
    max_frames: int | None = None,
    storage: str = "sqlite3",
    overwrite: bool = False,
) -> tuple[dict[str, Any], FrameScorer]:
    """Restore every frame of ``bag`` with ``runtime``; returns (result dict, scorer with grid/rows).

    ``output_bag`` appears only once the whole bag was restored (built under a temporary name).
    """
    bag = Path(bag)
    with BagReader(bag) as reader:
        inp, clean = resolve_topics(reader, input_topic, clean_topic)
        n_input = reader.count(inp)
        scorer = FrameScorer(detector, pick_indices(min(n_input, max_frames or n_input), grid_frames))
        infer_s: list[float] = []
        writer = BagWriter(output_bag, storage, overwrite=overwrite) if output_bag else None
        index = 0

        class _Done(Exception):
            pass

        def on_pair(image: BagImage, partner: BagImage | None) -> None:
            nonlocal index
            if max_frames is not None and index >= max_frames:
                raise _Done
            degraded = decode_or_error(image, bag)
            reference = decode_or_error(partner, bag) if partner is not None else None
            _check_same_shape(bag, image.stamp_ns, (inp, degraded), (clean, reference))
            start = time.perf_counter()
            restored = runtime.infer(degraded)
            elapsed = time.perf_counter() - start
            infer_s.append(elapsed)
            if writer is not None:
                encoding = output_encoding_for(image.encoding)
                writer.write(
                    RESTORED_TOPIC,
                    image_message(restored, encoding, image.stamp_ns, image.frame_id),
                    image.log_ns,
                )
            scorer.add(index, image.stamp_ns, degraded, restored, reference, infer_ms=1000 * elapsed)
            index += 1

        try:
            try:
                _, unmatched = pair_by_stamp(reader, inp, clean, on_pair)
            except _Done:
                unmatched = 0
            if index == 0:
                raise DataError(f"bag {bag}: no frames on {inp}")
            if writer is not None:
                _copy_camera_info(reader, writer)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
    timing = percentiles_ms(infer_s)
    result = {
        "mode": "offline",
        "bag": str(bag),
        "input_topic": inp,
        "clean_topic": clean,
        "model": str(getattr(runtime, "model_path", "")),
        "backend": getattr(runtime, "name", ""),
        "output_bag": str(output_bag) if output_bag else None,
        "unmatched_frames": unmatched if clean else 0,
        **scorer.summary(),
        "infer_ms": timing,
        "fps": 1000.0 / timing["mean"] if timing["mean"] else None,
        "frames": scorer.rows,
    }
    return result, scorer


def _check_same_shape(bag: Path, stamp_ns: int, degraded: tuple, reference: tuple) -> None:
    """A paired clean frame must be the degraded frame's size; each argument is (topic, array)."""
    (inp, image), (clean, ref) = degraded, reference
    if ref is not None and ref.shape != image.shape:
        raise DataError(
            f"bag {bag}: frame at stamp {stamp_ns} is {image.shape} on {inp} but {ref.shape} on {clean}"
        )


def _copy_camera_info(reader: BagReader, writer: BagWriter) -> None:
    """Carry the input bag's camera_info messages over to the restored bag unchanged."""
    if not reader.has_topic(INFO_TOPIC):
        return
    for topic, msgtype, log_ns, raw in reader.raw_messages([INFO_TOPIC]):
        if msgtype == INFO_TYPE:
            writer.write_raw(topic, msgtype, raw, log_ns)


__all__ = ["FrameScorer", "evaluate_bag_offline", "no_reference_stats", "topic_name"]
