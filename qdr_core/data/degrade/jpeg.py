"""JPEG: the 8x8 block and chroma-subsampling artefacts of a camera's or a transport's compression."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from qdr_core.data.degrade.common import lerp


@dataclass(frozen=True)
class JpegParams:
    """Args: quality: the encoder's 1-100 quality (OpenCV / libjpeg, 4:2:0 chroma)."""

    quality: int = 95

    @classmethod
    def sample(cls, rng: np.random.Generator, level: float) -> JpegParams:
        return cls(quality=int(np.clip(round(lerp((95, 35), level) + rng.uniform(-5, 5)), 10, 100)))


def jpeg(srgb: np.ndarray, rng: np.random.Generator, params: JpegParams) -> np.ndarray:
    """Encode and decode display-referred RGB in [0, 1]; the result is on 8-bit levels."""
    del rng
    bgr = cv2.cvtColor(np.round(np.clip(srgb, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(params.quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 BGR image
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
