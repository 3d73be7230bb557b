"""Clips: short runs of consecutive clean frames, and their coherent degradation.

A camera stream is not a bag of stills: the weather and the exposure of one clip stay (or drift
slowly), the sensor noise is new in every frame, rain falls. This module gives

* the clip sources: the opencv-doc videos split by time into train and evaluation parts
  (``VIDEO_PARTS``, the one definition of that split), and clips made from still photos by a
  simulated camera motion (``camera_motion``: a smooth random homography trajectory plus a small
  per-frame shake);
* ``ClipDegrader``: one clip's degradation, a benchmark task (``lowlight`` ...) or a realistic
  condition (``"fog:medium+rain:mild"``), with the parameters drawn once per clip (or drifting
  linearly over it with ``drift``), fresh noise per frame and moving rain streaks; with
  ``coherent=False`` every frame draws its own severity, as stills do.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from qdr_core.data.datasets import random_crop_flip
from qdr_core.data.degrade import EVAL_RANGES, TRAIN_RANGES, degrade, eval_rng
from qdr_core.data.degrade.common import SEVERITIES, level_of, uniform
from qdr_core.data.degrade.pipeline import Condition, FramePlan, condition_rng, synthesize
from qdr_core.data.sources import MAX_SIDE, OPENCV_DATA, frame_rgb, photos
from qdr_core.errors import DataError
from qdr_core.runtime.motion import MotionAligner
from qdr_core.tasks import TASKS


@dataclass(frozen=True)
class VideoPart:
    """Frames ``[start, stop)`` of an opencv-doc video (``stop`` None: to the end) and their split."""

    video: str
    start: int
    stop: int | None
    split: str

    @property
    def path(self) -> Path:
        return OPENCV_DATA / self.video


#: The videos split by time. vtest.avi is evaluation only: its stills are the ``other`` split
#: (``sources.VTEST_FRAMES``), spread over the whole video. tree.avi is training only: its stills at
#: 0, 30 and 60 (of the 68 frames OpenCV decodes) are in ``train_all``. Megamind.avi (270 frames,
#: 24 fps) trains on its first 7.5 s and is scored on the last 3.75 s.
VIDEO_PARTS: tuple[VideoPart, ...] = (
    VideoPart("vtest.avi", 0, None, "eval"),
    VideoPart("Megamind.avi", 0, 180, "train"),
    VideoPart("Megamind.avi", 180, None, "eval"),
    VideoPart("tree.avi", 0, None, "train"),
)
CLIP_SPLITS = ("train", "eval")


@dataclass
class Clip:
    """Consecutive clean frames (float32 RGB in [0, 1]) and where they come from."""

    name: str
    frames: list[np.ndarray]


def read_frames(path: str | Path, start: int, count: int, max_side: int = MAX_SIDE) -> list[np.ndarray]:
    """``count`` consecutive frames of a video from frame ``start`` (fewer if it ends first)."""
    path = Path(path)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"cannot open video {path} (run `make data` for the opencv-doc videos)")
    frames: list[np.ndarray] = []
    try:
        index = 0
        if start > 0 and cap.set(cv2.CAP_PROP_POS_FRAMES, start):
            index = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
        while len(frames) < count:
            ok, bgr = cap.read()
            if not ok:
                break
            if index >= start:
                frames.append(frame_rgb(bgr, max_side))
            index += 1
    finally:
        cap.release()
    if not frames:
        raise DataError(f"no frames from {start} on in {path}")
    return frames


@dataclass(frozen=True)
class CameraMotion:
    """A hand-held or vehicle camera's slow motion over a photo, as a homography per frame.

    Args:
        margin: fraction of each side cropped away, the room the motion moves in.
        shift: peak translation, fraction of the output's longer side.
        rotation: peak roll, degrees.
        zoom: peak relative change of scale.
        tilt: peak perspective terms (a pan / tilt seen as a keystone), per pixel.
        cycles: (min, max) oscillations of each parameter over the clip.
        jitter: std of the per-frame shake, pixels.
    """

    margin: float = 0.12
    shift: float = 0.05
    rotation: float = 2.0
    zoom: float = 0.04
    tilt: float = 1e-4
    cycles: tuple[float, float] = (0.15, 0.6)
    jitter: float = 0.25


def _trajectory(
    rng: np.random.Generator, n: int, amplitude: float, cycles: tuple[float, float]
) -> np.ndarray:
    """A smooth random curve over ``n`` frames in [-amplitude, amplitude]: two slow sines."""
    t = np.arange(n, dtype=np.float64) / max(n, 1)
    curve = sum(
        weight * np.sin(2 * np.pi * rng.uniform(*cycles) * t + rng.uniform(0, 2 * np.pi))
        for weight in (0.7, 0.3)
    )
    return amplitude * curve


def camera_motion(
    image: np.ndarray, n_frames: int, rng: np.random.Generator, motion: CameraMotion = CameraMotion()
) -> list[np.ndarray]:
    """``n_frames`` views of ``image`` seen by a moving camera, each the photo's central crop."""
    h, w = image.shape[:2]
    oh, ow = round(h * (1 - 2 * motion.margin)), round(w * (1 - 2 * motion.margin))
    if oh < 8 or ow < 8:
        raise DataError(f"photo of {w}x{h} is too small for a camera-motion clip")
    side = max(ow, oh)
    tx, ty = (_trajectory(rng, n_frames, motion.shift * side, motion.cycles) for _ in range(2))
    roll = np.radians(_trajectory(rng, n_frames, motion.rotation, motion.cycles))
    scale = 1.0 + _trajectory(rng, n_frames, motion.zoom, motion.cycles)
    px, py = (_trajectory(rng, n_frames, motion.tilt, motion.cycles) for _ in range(2))
    shake = rng.normal(0.0, motion.jitter, size=(n_frames, 2))
    cx, cy = (ow - 1) / 2, (oh - 1) / 2
    centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    frames = []
    for t in range(n_frames):
        c, s = scale[t] * np.cos(roll[t]), scale[t] * np.sin(roll[t])
        move = np.array([[c, -s, tx[t] + shake[t, 0]], [s, c, ty[t] + shake[t, 1]], [px[t], py[t], 1.0]])
        to_photo = np.array([[1, 0, w / 2 - 0.5], [0, 1, h / 2 - 0.5], [0, 0, 1]], np.float64)
        output_to_photo = to_photo @ move @ centre  # output pixel -> photo pixel
        frames.append(
            cv2.warpPerspective(
                image,
                output_to_photo,
                (ow, oh),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT,
            )
        )
    return frames


def video_clips(split: str, n_frames: int, max_side: int = MAX_SIDE) -> list[Clip]:
    """One clip of ``n_frames`` from the start of each video part of ``split``."""
    if split not in CLIP_SPLITS:
        raise DataError(f"unknown clip split {split!r}; choose {', '.join(CLIP_SPLITS)}")
    out = []
    for part in (p for p in VIDEO_PARTS if p.split == split):
        count = n_frames if part.stop is None else min(n_frames, part.stop - part.start)
        out.append(Clip(f"{part.video}@{part.start}", read_frames(part.path, part.start, count, max_side)))
    return out


def photo_clips(
    split: str, n_frames: int, seed: int = 0, max_side: int = MAX_SIDE, motion: CameraMotion | None = None
) -> list[Clip]:
    """A camera-motion clip of each photo of ``split`` (``sources.photos``), motion seeded by name;
    ``motion=FAST_PAN`` gives the fast-pan clips (named ``~pan``)."""
    out = []
    tag = "motion" if motion is None else "pan"
    for photo in photos(split):
        rng = np.random.default_rng([seed, zlib.crc32(photo.name.encode())])
        frames = camera_motion(photo.load(max_side), n_frames, rng, motion or CameraMotion())
        out.append(Clip(f"{photo.name}~{tag}", frames))
    return out


def fixed_ranges(ranges: Any, rng: np.random.Generator, end: np.random.Generator | None, u: float) -> Any:
    """A benchmark task's severity ranges collapsed to one point (what ``uniform`` then returns
    without drawing): each range drawn from ``rng``, or ``u`` of the way to a draw from ``end``."""
    changes: dict[str, Any] = {}
    for f in fields(ranges):
        value = getattr(ranges, f.name)
        if f.name.endswith("_prob"):
            changes[f.name] = 1.0 if rng.random() < value else 0.0
        elif isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
            point = int(rng.integers(value[0], value[1] + 1))
            changes[f.name] = (point, point)
        elif isinstance(value, tuple) and len(value) == 2:
            a = uniform(rng, value)
            point = a if end is None else a + (uniform(end, value) - a) * u
            changes[f.name] = (point, point)
    return replace(ranges, **changes)


class ClipPlan(FramePlan):
    """Frame ``t`` of a clip under a condition: the levels and parameters of the clip (the same
    generators every frame), drifting over the clip when ``drift``, fresh sensor noise per frame,
    rain streaks that fall ``rain_step`` streak lengths a frame."""

    def __init__(self, key: list[int], t: int, n_frames: int | None, drift: bool, rain_step: float) -> None:
        self.key, self.t, self.drift, self.rain_step = key, t, drift, rain_step
        self.u = t / max((n_frames or 1) - 1, 1)

    def _fixed(self, *parts: str) -> np.random.Generator:
        return np.random.default_rng([*self.key, *(zlib.crc32(p.encode()) for p in parts)])

    def level(self, effect: str, severity: str | float, rng: np.random.Generator) -> float:
        if self.drift and isinstance(severity, str):
            lo, hi = SEVERITIES[severity]
            return lo + (hi - lo) * self.u
        return level_of(severity, self._fixed("level", effect))

    def rng(self, effect: str, part: str, rng: np.random.Generator) -> np.random.Generator:
        if effect == "sensor" and part == "apply":
            return np.random.default_rng([*self.key, zlib.crc32(b"noise"), self.t])
        return self._fixed(effect, part)

    def params(self, effect: str, params: Any) -> Any:
        return replace(params, fall=params.fall + self.t * self.rain_step) if effect == "rain" else params


class ClipDegrader:
    """The degradation of one clip: ``degrader(t, frame)`` degrades frame ``t``.

    Args:
        spec: a benchmark task (``TASKS``, eval or train severities by ``split``) or a condition
            (``Condition.parse`` syntax).
        seed: the clip's seed: the same seed and spec give the same clip.
        n_frames: the clip's length (needed by ``drift``).
        drift: move the parameters linearly over the clip: a task from one draw to another, a
            condition's named severities across their band (fog thickening, dusk falling).
        coherent: False draws every frame's severity anew (``eval_rng(seed, t)``, as stills).
        rain_step: streak lengths the rain falls per frame (conditions).
    """

    def __init__(
        self,
        spec: str,
        seed: int = 0,
        n_frames: int | None = None,
        drift: bool = False,
        coherent: bool = True,
        rain_step: float = 0.5,
        split: str = "eval",
    ) -> None:
        if drift and not n_frames:
            raise DataError("a drifting clip needs its length (n_frames)")
        self.spec, self.seed, self.n_frames = spec, seed, n_frames
        self.drift, self.coherent, self.rain_step, self.split = drift, coherent, rain_step, split
        self.condition = None if spec in TASKS else Condition.parse(spec)
        self.key = [seed, zlib.crc32(spec.encode())]

    def __call__(self, t: int, frame: np.ndarray) -> np.ndarray:
        return self.with_record(t, frame)[0]

    def with_record(self, t: int, frame: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Frame ``t`` degraded, and what was drawn for it (the condition's record, or the task's
        collapsed ranges)."""
        if self.condition is not None:
            if not self.coherent:
                return synthesize(frame, self.condition, condition_rng(self.seed, self.condition, t))
            plan = ClipPlan(self.key, t, self.n_frames, self.drift, self.rain_step)
            return synthesize(frame, self.condition, np.random.default_rng([*self.key, t]), plan)
        if not self.coherent:
            return degrade(self.spec, frame, eval_rng(self.seed, t), split=self.split), {"task": self.spec}
        ranges = (EVAL_RANGES if self.split == "eval" else TRAIN_RANGES)[self.spec]
        end = np.random.default_rng([*self.key, 1]) if self.drift else None
        u = t / max((self.n_frames or 1) - 1, 1)
        point = fixed_ranges(ranges, np.random.default_rng([*self.key, 0]), end, u)
        # Haze has no noise: its depth field must not change between frames either.
        rng = np.random.default_rng([*self.key, 2] if self.spec == "haze" else [*self.key, 3, t])
        image = degrade(self.spec, frame, rng, ranges=point)
        return image, {"task": self.spec, "ranges": asdict(point)}


def degrade_clip(frames: list[np.ndarray], spec: str, seed: int = 0, drift: bool = False) -> list[np.ndarray]:
    """Every frame of a clip degraded coherently (``ClipDegrader``)."""
    degrader = ClipDegrader(spec, seed, n_frames=len(frames), drift=drift)
    return [degrader(t, frame) for t, frame in enumerate(frames)]


#: A fast pan: large, quick translation (tens of pixels a frame at 640 px), the ghosting check of
#: the streaming model (``photo_clips(..., motion=FAST_PAN)``; ``qdr eval --clip-source pans``).
FAST_PAN = CameraMotion(margin=0.3, shift=0.25, rotation=1.0, zoom=0.02, cycles=(0.6, 1.0), jitter=0.5)


class ClipPairs:
    """Endless (degraded, clean) training clips: ``batch(i, n)`` is two ``n x T x 3 x P x P`` arrays.

    A clip is ``n_frames`` frames of one crop window: from a training video part (consecutive
    frames) with probability ``video_prob``, else a camera-motion clip of a ``patch``-size region of
    a still photo (``motion``, or ``FAST_PAN`` with probability ``pan_prob`` so that the model
    learns to fall back to the still path on large motion). Each clip is degraded coherently
    (``ClipDegrader`` with the training ranges). Sample ``i`` depends only on ``(seed, i)``.

    Args:
        task: a benchmark task or a condition.
        images: clean float32 RGB photos.
        videos: clean frame sequences (uint8 or float RGB), each at least ``n_frames`` long.
        flows: also give each clip's frame-to-previous-frame flows, estimated on the degraded
            frames as the runtimes do (``runtime.motion.MotionAligner``; zeros for the first frame),
            for a model that carries its output (``train.stream.carry``).
    """

    def __init__(
        self,
        task: str,
        images: list[np.ndarray],
        videos: list[list[np.ndarray]] | None = None,
        patch: int = 96,
        n_frames: int = 5,
        seed: int = 0,
        video_prob: float = 0.25,
        pan_prob: float = 0.15,
        motion: CameraMotion = CameraMotion(shift=0.08, cycles=(0.3, 1.0), jitter=0.5),
        flows: bool = False,
    ) -> None:
        if not images:
            raise DataError("ClipPairs needs at least one clean photo")
        if n_frames < 2:
            raise DataError(f"a training clip needs >= 2 frames, got {n_frames}")
        self.task, self.images, self.patch, self.n_frames, self.seed = task, images, patch, n_frames, seed
        self.videos = [v for v in (videos or []) if len(v) >= n_frames]
        self.video_prob = video_prob if self.videos else 0.0
        self.pan_prob, self.motion, self.flows = pan_prob, motion, flows
        areas = np.array([im.shape[0] * im.shape[1] for im in images], np.float64)
        self.weights = areas / areas.sum()

    def _photo_clip(self, rng: np.random.Generator) -> list[np.ndarray]:
        image = self.images[int(rng.choice(len(self.images), p=self.weights))]
        motion = FAST_PAN if rng.random() < self.pan_prob else self.motion
        side = int(np.ceil(self.patch / (1 - 2 * motion.margin))) + 2
        (region,) = random_crop_flip([image], side, rng)
        frames = camera_motion(region, self.n_frames, rng, motion)
        return [f[: self.patch, : self.patch] for f in frames]

    def _video_clip(self, rng: np.random.Generator) -> list[np.ndarray]:
        video = self.videos[int(rng.integers(len(self.videos)))]
        start = int(rng.integers(0, len(video) - self.n_frames + 1))
        frames = random_crop_flip(video[start : start + self.n_frames], self.patch, rng)
        return [f.astype(np.float32) / 255.0 if f.dtype == np.uint8 else f for f in frames]

    def sample(self, index: int) -> tuple[np.ndarray, ...]:
        """Clip ``index``: degraded and clean, ``T x P x P x 3`` float32 (and with ``flows``,
        ``T x P x P x 2``)."""
        rng = np.random.default_rng([self.seed, index])
        clean = self._video_clip(rng) if rng.random() < self.video_prob else self._photo_clip(rng)
        degrader = ClipDegrader(self.task, int(rng.integers(2**31)), self.n_frames, split="train")
        degraded = [degrader(t, frame) for t, frame in enumerate(clean)]
        out = (np.stack(degraded).astype(np.float32), np.stack(clean).astype(np.float32))
        if not self.flows:
            return out
        flows = np.zeros((*out[0].shape[:3], 2), np.float32)
        aligner = MotionAligner()  # the runtime's own motion estimate, frame by frame
        for t, frame in enumerate(out[0]):
            flow = aligner.observe(np.moveaxis(frame, 2, 0))
            if flow is not None:
                flows[t] = flow
        return (*out, flows)

    def batch(self, index: int, batch_size: int) -> tuple[np.ndarray, ...]:
        """Batch ``index``: degraded and clean ``N x T x 3 x P x P`` float32 (and with ``flows``,
        ``N x T x 2 x P x P``)."""
        samples = [self.sample(index * batch_size + i) for i in range(batch_size)]
        return tuple(
            np.ascontiguousarray(np.stack([p[k] for p in samples]).transpose(0, 1, 4, 2, 3))
            for k in range(len(samples[0]))
        )


def training_videos(max_side: int = 320) -> list[list[np.ndarray]]:
    """Every frame of the training video parts (``VIDEO_PARTS``), uint8 RGB, longer side <= ``max_side``."""
    out = []
    for part in (p for p in VIDEO_PARTS if p.split == "train"):
        count = 10**6 if part.stop is None else part.stop - part.start
        frames = read_frames(part.path, part.start, count, max_side)
        out.append([np.round(f * 255).astype(np.uint8) for f in frames])
    return out
