"""Training and evaluation pairs (degraded, clean) as float32 RGB arrays in [0, 1].

``SyntheticPairs`` degrades random crops of clean photos on the fly (a new degradation every
sample); ``ConditionPairs`` does the same with the realistic conditions of
``qdr_core.data.degrade.pipeline`` (clean frames, single effects and mixtures) after a photometric
augmentation of the clean photo; ``PairedFolder`` reads LOL / RESIDE / Rain100 / SIDD-style input +
target folders; ``fixed_eval_pairs`` builds a seeded, order-independent evaluation set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qdr_core.data.degrade import check_task, degrade, eval_rng
from qdr_core.data.degrade.common import fast_linear_to_srgb, fast_srgb_to_linear
from qdr_core.data.degrade.jpeg import JpegParams, jpeg
from qdr_core.data.degrade.pipeline import Condition, ConditionMix, condition_rng, synthesize
from qdr_core.data.imageio import list_images, read_rgb
from qdr_core.errors import DataError


def random_crop_flip(images: Sequence[np.ndarray], patch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The same random ``patch`` x ``patch`` crop, flip and 90-degree turn of every image given."""
    h, w = images[0].shape[:2]
    if h < patch or w < patch:
        pad = ((0, max(0, patch - h)), (0, max(0, patch - w)), (0, 0))
        images = [np.pad(im, pad, mode="reflect") for im in images]
        h, w = images[0].shape[:2]
    y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
    flip, turns = bool(rng.integers(2)), int(rng.integers(4))
    out = []
    for im in images:
        crop = im[y : y + patch, x : x + patch]
        if flip:
            crop = crop[:, ::-1]
        out.append(np.ascontiguousarray(np.rot90(crop, turns)))
    return out


#: Degradations whose look depends on the whole frame: haze's depth proxy spans the frame (top far,
#: bottom near), so a hazed 128-pixel crop would hold the full near-to-far range that a crop of a
#: hazed frame never shows. These are synthesised on the whole photo, then cropped.
WHOLE_FRAME_TASKS = frozenset({"haze"})


class SyntheticPairs:
    """Endless (degraded, clean) training crops from clean photos.

    Args:
        task: degradation to synthesise.
        images: clean float32 RGB images.
        patch: crop size (a multiple of the model's size multiple).
        seed: seeds the crop / degradation stream; sample ``i`` is reproducible.
        whole_frame: degrade the whole photo, then crop (default: for ``WHOLE_FRAME_TASKS``), so
            training crops look like crops of the degraded frames the model meets at test time.
    """

    def __init__(
        self,
        task: str,
        images: Sequence[np.ndarray],
        patch: int = 96,
        seed: int = 0,
        whole_frame: bool | None = None,
    ) -> None:
        if not images:
            raise DataError("SyntheticPairs needs at least one clean image")
        self.task = check_task(task)
        self.images = list(images)
        self.patch = patch
        self.seed = seed
        self.whole_frame = self.task in WHOLE_FRAME_TASKS if whole_frame is None else whole_frame
        # Sample big photos more often: every pixel is equally likely to be in a crop.
        areas = np.array([im.shape[0] * im.shape[1] for im in self.images], np.float64)
        self.weights = areas / areas.sum()

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, index])
        clean = self.images[int(rng.choice(len(self.images), p=self.weights))]
        if self.whole_frame:
            degraded = degrade(self.task, clean, rng, split="train")
            degraded_crop, crop = random_crop_flip([degraded, clean], self.patch, rng)
            return degraded_crop, crop
        (crop,) = random_crop_flip([clean], self.patch, rng)
        return degrade(self.task, crop, rng, split="train"), crop

    def batch(self, index: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` as NCHW float32 arrays (degraded, clean)."""
        pairs = [self.sample(index * batch_size + k) for k in range(batch_size)]
        degraded = np.stack([p[0] for p in pairs]).transpose(0, 3, 1, 2)
        clean = np.stack([p[1] for p in pairs]).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(degraded), np.ascontiguousarray(clean)


@dataclass(frozen=True)
class Photometric:
    """A photometric augmentation of a clean photo: the photos are few, their looks need not be.

    Args:
        white_balance: per-channel gains in linear light (normalised to keep green at 1).
        exposure: stops added in linear light (clipped at white).
        jpeg_quality: re-encode at this quality (None: not re-encoded).
    """

    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exposure: float = 0.0
    jpeg_quality: int | None = None

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Photometric:
        r, b = (float(v) for v in np.exp(rng.uniform(-0.15, 0.15, size=2)))
        quality = int(rng.integers(70, 96)) if rng.random() < 0.5 else None
        return cls(white_balance=(r, 1.0, b), exposure=float(rng.uniform(-0.7, 0.4)), jpeg_quality=quality)


def photometric(image: np.ndarray, rng: np.random.Generator, params: Photometric) -> np.ndarray:
    """``image`` (sRGB, [0, 1]) with ``params``' white balance, exposure and JPEG applied."""
    gains = np.asarray(params.white_balance, np.float32) * np.float32(2.0**params.exposure)
    out = fast_linear_to_srgb(fast_srgb_to_linear(image) * gains)
    if params.jpeg_quality is not None:
        out = jpeg(out, rng, JpegParams(params.jpeg_quality))
    return out


class ConditionPairs:
    """Endless (degraded, clean) training crops under realistic conditions (``ConditionMix``).

    Each sample: a photo (area-weighted), a window of it, a photometric augmentation (the clean
    target), a condition synthesised on the whole window (fog's depth and night's lamps span the
    window, as they span a frame), then the same random crop / flip of both. With a ``bench`` share
    in the mix, that share of samples gets one of the paper's benchmark degradations on the window
    instead (record ``{"benchmark_task": task}``), so one model also learns today's benchmark rows.

    Args:
        images: clean float32 RGB images.
        patch: crop size.
        seed: sample ``i`` is reproducible from (seed, i).
        mix: how often clean frames, single effects and mixtures come (default ``ConditionMix()``).
        window: side of the window the condition is synthesised on (None: the whole photo; smaller
            is faster, but compresses the depth range of fog into the window).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        patch: int = 96,
        seed: int = 0,
        mix: ConditionMix | None = None,
        window: int | None = 384,
    ) -> None:
        if not images:
            raise DataError("ConditionPairs needs at least one clean image")
        if window is not None and window < patch:
            raise DataError(f"window {window} is smaller than the patch {patch}")
        self.images = list(images)
        self.patch, self.seed, self.window = patch, seed, window
        self.mix = mix if mix is not None else ConditionMix()
        areas = np.array([im.shape[0] * im.shape[1] for im in self.images], np.float64)
        self.weights = areas / areas.sum()

    def sample_with_record(self, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """(degraded, clean, record of the condition's sampled parameters) for sample ``index``."""
        rng = np.random.default_rng([self.seed, index])
        image = self.images[int(rng.choice(len(self.images), p=self.weights))]
        if self.window is not None:
            h, w = image.shape[:2]
            wh, ww = min(self.window, h), min(self.window, w)
            y, x = int(rng.integers(0, h - wh + 1)), int(rng.integers(0, w - ww + 1))
            image = image[y : y + wh, x : x + ww]
        clean = photometric(image, rng, Photometric.sample(rng))
        task = self.mix.sample_benchmark(rng)
        if task is not None:
            degraded, record = degrade(task, clean, rng, split="train"), {"benchmark_task": task}
        else:
            degraded, record = synthesize(clean, self.mix.sample(rng), rng)
        d, c = random_crop_flip([degraded, clean], self.patch, rng)
        return d, c, record

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        d, c, _ = self.sample_with_record(index)
        return d, c

    batch = SyntheticPairs.batch


class SpecialistPairs:
    """A specialist's realistic training mix (``data: realistic``): with probability ``benchmark``
    its paper degradation (``SyntheticPairs``), otherwise its realistic condition ``effect`` at a
    uniform level or, ``clean`` of all samples, a clean frame (``ConditionPairs`` with that one
    effect). The model keeps its benchmark skill, learns the condition a robot meets and learns to
    leave a good frame alone."""

    def __init__(
        self,
        task: str,
        effect: str,
        images: Sequence[np.ndarray],
        patch: int = 96,
        seed: int = 0,
        benchmark: float = 0.3,
        clean: float = 0.2,
    ) -> None:
        if not 0.0 <= benchmark < 1.0 or not 0.0 <= clean <= 1.0 - benchmark:
            raise DataError(
                f"need 0 <= benchmark < 1 and 0 <= clean <= 1 - benchmark, got {benchmark}, {clean}"
            )
        self.seed, self.benchmark = seed, benchmark
        self.bench = SyntheticPairs(task, images, patch, seed)
        share = clean / (1.0 - benchmark)
        self.real = ConditionPairs(
            images, patch, seed + 1, ConditionMix(clean=share, single=1.0 - share, effects=(effect,))
        )

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        u = np.random.default_rng([self.seed, index, 1]).random()
        return (self.bench if u < self.benchmark else self.real).sample(index)

    batch = SyntheticPairs.batch


class PairedFolder:
    """Pairs from an input folder and a target folder whose files match by name (stem).

    Raises ``DataError`` naming the problem: a missing or empty folder, names without a partner,
    an unreadable image, or a pair whose sizes differ.
    """

    def __init__(self, input_dir: str | os.PathLike, target_dir: str | os.PathLike) -> None:
        inputs = {p.stem: p for p in list_images(input_dir)}
        targets = {p.stem: p for p in list_images(target_dir)}
        only_in, only_tg = sorted(set(inputs) - set(targets)), sorted(set(targets) - set(inputs))
        if only_in or only_tg:
            raise DataError(
                f"input and target names do not match: {len(only_in)} only in {input_dir} "
                f"(e.g. {only_in[:3]}), {len(only_tg)} only in {target_dir} (e.g. {only_tg[:3]})"
            )
        self.names = sorted(inputs)
        self.inputs = [inputs[n] for n in self.names]
        self.targets = [targets[n] for n in self.names]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        degraded, clean = read_rgb(self.inputs[i]), read_rgb(self.targets[i])
        if degraded.shape != clean.shape:
            raise DataError(
                f"pair {self.names[i]!r}: input {degraded.shape} and target {clean.shape} differ in size"
            )
        return degraded, clean


class PairedFolderPairs:
    """Random training crops from a ``PairedFolder`` (real paired data instead of synthesis)."""

    def __init__(self, folder: PairedFolder, patch: int = 96, seed: int = 0) -> None:
        self.pairs = [folder[i] for i in range(len(folder))]
        self.patch = patch
        self.seed = seed

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, index])
        degraded, clean = self.pairs[int(rng.integers(len(self.pairs)))]
        d, c = random_crop_flip([degraded, clean], self.patch, rng)
        return d, c

    batch = SyntheticPairs.batch


def fixed_eval_pairs(
    task: str, images: Sequence[np.ndarray], seed: int, names: Sequence[str] | None = None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, degraded, clean) for each image, degraded with eval severities from ``(seed, index)``."""
    names = list(names) if names is not None else [f"{i:04d}" for i in range(len(images))]
    return [
        (n, degrade(task, im, eval_rng(seed, i), split="eval"), im)
        for i, (n, im) in enumerate(zip(names, images))
    ]


#: The fixed conditions an ``auto`` training run validates on (one of each effect, two mixtures).
AUTO_VAL_CONDITIONS: tuple[str, ...] = (
    "night:medium",
    "fog:medium",
    "rain:medium",
    "sensor:medium",
    "fog:medium+rain:medium",
    "rain:medium+night:medium",
)


def fixed_condition_pairs(
    conditions: Sequence[str], images: Sequence[np.ndarray], seed: int, names: Sequence[str] | None = None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, degraded, clean) for each condition and image, seeded by (seed, condition, index)."""
    names = list(names) if names is not None else [f"{i:04d}" for i in range(len(images))]
    pairs = []
    for text in conditions:
        cond = Condition.parse(text)
        for i, (n, im) in enumerate(zip(names, images)):
            degraded, _ = synthesize(im, cond, condition_rng(seed, cond, i))
            pairs.append((f"{cond.name}/{n}", degraded, im))
    return pairs


def load_folder_images(
    folder: str | os.PathLike, max_side: int | None = None
) -> tuple[list[str], list[np.ndarray]]:
    files = list_images(folder)
    return [p.name for p in files], [read_rgb(p, max_side=max_side) for p in files]


__all__ = [
    "ConditionPairs",
    "PairedFolder",
    "PairedFolderPairs",
    "SyntheticPairs",
    "fixed_condition_pairs",
    "fixed_eval_pairs",
    "load_folder_images",
    "photometric",
    "random_crop_flip",
]
