"""Image quality metrics on float RGB in [0, 1] (scikit-image implementations)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


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
