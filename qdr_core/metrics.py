"""Image quality of a restored frame: the one scoring function every evaluation uses.

``score`` measures one image against its reference; ``score_restoration`` scores the degraded input
and the restored output against the clean frame (the ``psnr_input`` / ``psnr_output`` /
``ssim_input`` / ``ssim_output`` keys of every report); ``mean_scores`` averages those rows. Float
RGB in [0, 1], scikit-image implementations.
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


def mean_scores(rows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The mean of each of ``SCORE_KEYS`` over per-frame rows (rows may carry other keys too)."""
    rows = list(rows)
    return {key: float(np.mean([row[key] for row in rows])) for key in SCORE_KEYS}
