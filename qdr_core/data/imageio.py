"""Reading and writing images as float32 RGB in [0, 1] (HxWx3), the one layout qdr_core uses."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from qdr_core.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_rgb(path: str | os.PathLike, max_side: int | None = None) -> np.ndarray:
    """Read an image file as float32 RGB in [0, 1]; grey and alpha images become 3-channel RGB.

    ``max_side`` shrinks (INTER_AREA) so the longer side is at most that many pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path}")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        raise DataError(f"cannot read image (corrupt or unsupported format): {path}")
    if raw.dtype == np.uint16:
        scale = 65535.0
    elif raw.dtype == np.uint8:
        scale = 255.0
    else:
        raise DataError(f"unsupported image sample type {raw.dtype} in {path}")
    if raw.ndim == 2:
        rgb = cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB)
    elif raw.shape[2] == 4:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGB)
    else:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    image = rgb.astype(np.float32) / scale
    if max_side is not None and max(image.shape[:2]) > max_side:
        f = max_side / max(image.shape[:2])
        size = (max(1, round(image.shape[1] * f)), max(1, round(image.shape[0] * f)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_rgb(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write float RGB [0, 1] (or uint8 RGB) as an 8-bit image; the suffix picks the format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = image if image.dtype == np.uint8 else to_uint8(image)
    if not cv2.imwrite(str(path), cv2.cvtColor(data, cv2.COLOR_RGB2BGR)):
        raise DataError(f"cannot write image: {path}")
    return path


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder``, sorted by name; errors name what is wrong."""
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"folder not found: {folder}")
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files
