"""The frame-size limit, checked before anything is decoded or allocated.

A 203 kB PNG can decode to 8000x8000 (a decompression bomb); restoring one raw frame costs about
100 MB per megapixel. The node therefore reads the size a frame claims — the message's ``width`` x
``height``, or a compressed image's PNG IHDR / JPEG SOF header, parsed here in a few bytes without
decoding — and rejects it when it is above ``max_input_pixels``.
"""

from __future__ import annotations

import struct

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); not DHT (C4), JPG (C8),
# DAC (CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: no length field


class FrameRejected(Exception):
    """A frame the node will not restore; ``reason`` is the counter it goes to."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def png_size(data: memoryview) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None if ``data`` is not a PNG."""
    if len(data) < 24 or bytes(data[:8]) != _PNG_SIGNATURE or bytes(data[12:16]) != b"IHDR":
        return None
    width, height = struct.unpack(">II", bytes(data[16:24]))
    return width, height


def jpeg_size(data: memoryview) -> tuple[int, int] | None:
    """(width, height) from a JPEG's first SOF segment, or None if there is none."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i = 2
    while i + 3 < n:
        if data[i] != 0xFF:
            return None  # not at a marker: corrupt
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            return None
        if marker in _SOF:
            if i + 9 > n:
                return None
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            return width, height
        i += 2 + length
    return None


def compressed_size(data: object) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG buffer declares, read from its header only."""
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    return png_size(view) or jpeg_size(view)


def check_raw(width: int, height: int, max_pixels: int) -> None:
    """Raises FrameRejected("too_large") when a ``width`` x ``height`` frame is above the limit."""
    if width * height > max_pixels:
        raise FrameRejected(
            "too_large",
            f"{width}x{height} frame ({width * height / 1e6:.1f} MP) is above max_input_pixels "
            f"{max_pixels} ({max_pixels / 1e6:.1f} MP)",
        )


def check_compressed(data: object, max_pixels: int) -> tuple[int, int]:
    """The size a compressed frame declares, if it is within the limit.

    Raises:
        FrameRejected: "unreadable_header" (not a PNG or JPEG whose size can be read without
            decoding it) or "too_large".
    """
    size = compressed_size(data)
    if size is None:
        raise FrameRejected(
            "unreadable_header", "compressed frame is not a PNG or JPEG whose header gives its size"
        )
    width, height = size
    if width == 0 or height == 0:
        raise FrameRejected("unreadable_header", f"compressed frame header says {width}x{height}")
    check_raw(width, height, max_pixels)
    return size


def check_size(msg: object, max_pixels: int) -> None:
    """The limit for a ``sensor_msgs`` Image (``width``, ``height``) or CompressedImage (``format``,
    ``data``); raises FrameRejected."""
    if hasattr(msg, "format"):
        check_compressed(msg.data, max_pixels)
    else:
        check_raw(msg.width, msg.height, max_pixels)
