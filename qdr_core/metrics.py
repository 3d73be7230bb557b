"""Image quality of a restored frame: the one scoring function every evaluation uses.

``score`` measures one image against its reference; ``score_restoration`` scores the degraded input
and the restored output against the clean frame (the ``psnr_input`` / ``psnr_output`` /
``ssim_input`` / ``ssim_output`` keys of every report); ``mean_scores`` averages those rows. Float
RGB in [0, 1], scikit-image implementations. ``halo`` measures the ring a model leaves around bright
objects (a dark ring, or a glow it kept or grew), which PSNR over the whole frame hardly sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

#: The per-frame keys of ``score_restoration``, in report order.
SCORE_KEYS: tuple[str, ...] = ("psnr_input", "psnr_output", "ssim_input", "ssim_output")


@dataclass(frozen=True)
class Scores:
    """PSNR (dB) and SSIM of one image against its reference."""

    psnr: float
    ssim: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """PSNR in dB of HxWx3 ``image`` against ``reference``; both clipped to [0, 1]."""
    ref, img = np.clip(reference, 0, 1).astype(np.float64), np.clip(image, 0, 1).astype(np.float64)
    if np.array_equal(ref, img):
        return float("inf")
    return float(peak_signal_noise_ratio(ref, img, data_range=1.0))


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """SSIM (Gaussian window, as in Wang et al. 2004) over RGB channels."""
    ref, img = np.clip(reference, 0, 1).astype(np.float64), np.clip(image, 0, 1).astype(np.float64)
    return float(
        structural_similarity(
            ref,
            img,
            data_range=1.0,
            channel_axis=2,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def score(reference: np.ndarray, image: np.ndarray) -> Scores:
    """PSNR and SSIM of ``image`` against ``reference`` (HxWx3 float RGB, clipped to [0, 1])."""
    return Scores(psnr=psnr(reference, image), ssim=ssim(reference, image))


def score_restoration(
    clean: np.ndarray, degraded: np.ndarray, restored: np.ndarray, before: Scores | None = None
) -> dict[str, float]:
    """The ``SCORE_KEYS`` of one frame: the degraded input and the restored output against ``clean``.

    ``before``: the input's scores when already known (``score(clean, degraded)``), so that scoring
    many models on one set measures each input once.
    """
    before = before if before is not None else score(clean, degraded)
    after = score(clean, restored)
    return {
        "psnr_input": before.psnr,
        "psnr_output": after.psnr,
        "ssim_input": before.ssim,
        "ssim_output": after.ssim,
    }


#: A light source or bright object: input luma at or above this (8-bit 250), at least ``HALO_MIN_AREA``
#: pixels after a 3x3 opening (a hot pixel of noise is not a lamp).
HALO_SATURATION = 250 / 255
HALO_MIN_AREA = 4
#: The ring: pixels more than ``HALO_RING[0]`` and at most ``HALO_RING[1]`` pixels from a bright region.
HALO_RING = (3, 15)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


#: What ``halo`` measures, for the tables that print it.
HALO_NOTE = (
    f"mean luma error {HALO_RING[0]}-{HALO_RING[1]} px around the input's saturated regions minus the rest "
    "of the frame's, 8-bit levels; negative = a dark ring, positive = a glow kept or grown, 0 = as right as "
    "the rest"
)


def halo_regions(degraded: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(ring, rest) boolean masks of ``halo`` for an input frame, or None when it has no bright
    region or the ring or the rest is empty. Depends on the input only: made once per frame, it
    measures the input and every model's output (``halo_in``)."""
    import cv2

    luma_in = degraded.astype(np.float32) @ _LUMA
    bright = (luma_in >= HALO_SATURATION).astype(np.uint8)
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    if int(bright.sum()) < HALO_MIN_AREA:
        return None

    def grown(radius: int) -> np.ndarray:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return cv2.dilate(bright, disk).astype(bool)

    inner, outer = grown(HALO_RING[0]), grown(HALO_RING[1])
    ring, rest = outer & ~inner, ~outer
    if not ring.any() or not rest.any():
        return None
    return ring, rest


def halo_in(
    regions: tuple[np.ndarray, np.ndarray] | None, clean: np.ndarray, output: np.ndarray
) -> float | None:
    """``halo`` of ``output`` within ``halo_regions(degraded)`` (None where those are None)."""
    if regions is None:
        return None
    ring, rest = regions
    error = (np.clip(output, 0, 1).astype(np.float32) - np.clip(clean, 0, 1).astype(np.float32)) @ _LUMA
    return float(255.0 * (error[ring].mean() - error[rest].mean()))


def halo(clean: np.ndarray, degraded: np.ndarray, restored: np.ndarray) -> float | None:
    """The ring a restoration leaves around the input's bright regions, in 8-bit luma levels.

    Bright regions: input luma >= ``HALO_SATURATION`` (lamp cores, a white object, sky), opened
    3x3, at least ``HALO_MIN_AREA`` pixels. The ring: ``HALO_RING`` pixels around them. The value is
    the mean signed luma error (restored - clean) in the ring minus its mean over the rest of the
    frame (the bright regions and the ring excluded), so a frame that is darker or brighter
    everywhere does not count: negative = a dark ring, positive = a glow left or grown, 0 = the ring
    is as right as the rest. None when the input has no bright region or the ring or the rest is empty.
    """
    return halo_in(halo_regions(degraded), clean, restored)


def mean_scores(rows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The mean of each of ``SCORE_KEYS`` over per-frame rows (rows may carry other keys too)."""
    rows = list(rows)
    return {key: float(np.mean([row[key] for row in rows])) for key in SCORE_KEYS}
