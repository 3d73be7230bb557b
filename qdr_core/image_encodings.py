"""sensor_msgs/Image buffers <-> numpy RGB, without ROS.

The node hands the fields of an ``Image`` (height, width, encoding, is_bigendian, step, data) to
``decode`` and gets the frame's RGB plus the alpha channel, if any; ``encode`` / ``encode_planes``
turn the restored RGB back into a buffer in the output encoding.

Reading is zero-copy: ``raw_view`` is a strided numpy view of the message's own bytes that honours
``step`` padding and ``is_bigendian``. An 8-bit frame stays 8-bit (``Decoded.rgb8``, a view; bgr8 is
the same bytes read backwards): the runtime converts it to its float batch in one pass per channel
(``Runtime.infer_planes8``), which is what a node running at camera rate wants. 16-bit frames
decode to float (``Decoded.rgb``).

Output encoding rule (``output_encoding: same``): an encoding that carries full-resolution colour or
grey is kept (rgb8, bgr8, rgba8 / bgra8 with the input's alpha passed through, mono8, mono16).
Chroma-subsampled YUV 4:2:2 and Bayer mosaics are published as ``rgb8``: re-subsampling or
re-mosaicking would throw away the colour detail the model just restored, and every consumer
(rviz, image_view, detectors) reads rgb8. Compressed input is published as the raw encoding named
in its ``format`` field ("rgb8; jpeg compressed bgr8" -> rgb8), else rgb8.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from qdr_core.errors import ImageFormatError


@dataclass(frozen=True)
class EncodingInfo:
    """Layout of one ROS encoding: samples per pixel in the buffer, sample dtype, colour kind."""

    channels: int
    dtype: str  # numpy base dtype of one sample ("u1", "u2")
    kind: str  # "rgb", "bgr", "rgba", "bgra", "mono", "yuv", "bayer"

    @property
    def bytes_per_pixel(self) -> int:
        return self.channels * np.dtype(self.dtype).itemsize


ENCODINGS: dict[str, EncodingInfo] = {
    "rgb8": EncodingInfo(3, "u1", "rgb"),
    "bgr8": EncodingInfo(3, "u1", "bgr"),
    "rgba8": EncodingInfo(4, "u1", "rgba"),
    "bgra8": EncodingInfo(4, "u1", "bgra"),
    "mono8": EncodingInfo(1, "u1", "mono"),
    "mono16": EncodingInfo(1, "u2", "mono"),
    # YUV 4:2:2, two bytes per pixel. ROS "yuv422" is UYVY; "yuv422_yuy2" is YUYV. Newer
    # sensor_msgs also names them "uyvy" and "yuyv".
    "yuv422": EncodingInfo(2, "u1", "yuv"),
    "uyvy": EncodingInfo(2, "u1", "yuv"),
    "yuv422_yuy2": EncodingInfo(2, "u1", "yuv"),
    "yuyv": EncodingInfo(2, "u1", "yuv"),
    "bayer_rggb8": EncodingInfo(1, "u1", "bayer"),
    "bayer_bggr8": EncodingInfo(1, "u1", "bayer"),
    "bayer_gbrg8": EncodingInfo(1, "u1", "bayer"),
    "bayer_grbg8": EncodingInfo(1, "u1", "bayer"),
}

#: Encodings ``encode`` can write (an explicit ``output_encoding`` must be one of them).
OUTPUT_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16")

# OpenCV names a Bayer pattern by the 2x2 block starting at the second row and column, so ROS
# rggb is OpenCV "BG" (the mapping cv_bridge uses; checked by a test on a synthetic mosaic).
_BAYER_CODES = {
    "bayer_rggb8": "COLOR_BayerBG2RGB",
    "bayer_bggr8": "COLOR_BayerRG2RGB",
    "bayer_gbrg8": "COLOR_BayerGR2RGB",
    "bayer_grbg8": "COLOR_BayerGB2RGB",
}
_YUV_CODES = {
    "yuv422": "COLOR_YUV2RGB_UYVY",
    "uyvy": "COLOR_YUV2RGB_UYVY",
    "yuv422_yuy2": "COLOR_YUV2RGB_YUY2",
    "yuyv": "COLOR_YUV2RGB_YUY2",
}
_SCALE = {"u1": np.float32(1.0 / 255.0), "u2": np.float32(1.0 / 65535.0)}


@dataclass
class Decoded:
    """An input frame ready for a runtime.

    Attributes:
        encoding: the input's encoding (for compressed input: the raw encoding it stood for).
        alpha: HxW alpha samples of rgba8 / bgra8 input (a view of the message), else None.
        rgb8: 8-bit frames: HxWx3 uint8 RGB, usually a strided view of the message (bgr8 read
            backwards, mono8 broadcast to three channels); None for 16-bit frames.
        rgb_float: 16-bit frames: HxWx3 float32 RGB in [0, 1]; for 8-bit frames filled on first
            use of ``rgb``.
    """

    encoding: str
    alpha: np.ndarray | None = None
    rgb8: np.ndarray | None = None
    rgb_float: np.ndarray | None = None

    @property
    def rgb(self) -> np.ndarray:
        """HxWx3 float32 RGB in [0, 1] (may be a read-only broadcast view for mono input)."""
        if self.rgb_float is None:
            self.rgb_float = _to_float(self.rgb8, "u1")
        return self.rgb_float


@dataclass
class Encoded:
    """Fields of an output ``sensor_msgs/Image`` (``data`` is a contiguous uint8 array)."""

    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int
    data: np.ndarray


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - opencv is a dependency of the node
        raise ImageFormatError("this encoding needs OpenCV: pip install opencv-python-headless") from exc
    return cv2


def encoding_info(encoding: str) -> EncodingInfo:
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise ImageFormatError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(sorted(ENCODINGS))}"
        ) from None


def raw_view(
    height: int, width: int, encoding: str, step: int, data: object, is_bigendian: bool = False
) -> np.ndarray:
    """A zero-copy HxWxC view of an Image's bytes (C = samples per pixel in the buffer).

    Raises:
        ImageFormatError: unknown encoding, empty image, ``step`` too small, data too short, or a
            layout the encoding forbids (odd width for YUV 4:2:2).
    """
    info = encoding_info(encoding)
    if height <= 0 or width <= 0:
        raise ImageFormatError(f"empty image: {width}x{height} ({encoding})")
    row_bytes = width * info.bytes_per_pixel
    if step < row_bytes:
        raise ImageFormatError(
            f"step {step} is less than width * bytes per pixel = {width} * {info.bytes_per_pixel} = {row_bytes} "
            f"({encoding})"
        )
    if info.kind == "yuv" and width % 2:
        raise ImageFormatError(f"{encoding} needs an even width (two pixels share chroma), got {width}")
    try:
        buffer = np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise ImageFormatError(f"image data is not a byte buffer ({type(data).__name__})") from exc
    needed = step * height
    if buffer.size < needed:
        raise ImageFormatError(
            f"image data has {buffer.size} bytes, but step * height = {step} * {height} = {needed} are needed"
        )
    rows = buffer[:needed].reshape(height, step)[:, :row_bytes]
    if info.dtype != "u1":
        order = ">" if is_bigendian else "<"
        # A byte-order-aware dtype reads big-endian mono16 without a byte-swapping copy.
        rows = rows.view(np.dtype(order + info.dtype))
    return rows.reshape(height, width, info.channels)


def _to_float(samples: np.ndarray, dtype: str) -> np.ndarray:
    return np.multiply(samples, _SCALE[dtype], dtype=np.float32)


def decode(
    height: int, width: int, encoding: str, step: int, data: object, is_bigendian: bool = False
) -> Decoded:
    """An Image's fields -> float32 RGB in [0, 1] (+ alpha). See ``raw_view`` for the errors."""
    info = encoding_info(encoding)
    view = raw_view(height, width, encoding, step, data, is_bigendian)
    alpha = None
    if info.kind == "rgb":
        colour = view
    elif info.kind == "bgr":
        colour = view[..., ::-1]
    elif info.kind in ("rgba", "bgra"):
        colour = view[..., :3] if info.kind == "rgba" else view[..., 2::-1]
        alpha = view[..., 3]
    elif info.kind == "mono":
        colour = np.broadcast_to(view[..., :1], (height, width, 3))
    else:
        cv2 = _cv2()
        code = getattr(cv2, (_YUV_CODES if info.kind == "yuv" else _BAYER_CODES)[encoding])
        # OpenCV wants contiguous rows; a padded step makes this the one copy on these paths.
        source = np.ascontiguousarray(view if info.kind == "yuv" else view[..., 0])
        colour = cv2.cvtColor(source, code)
    if colour.dtype == np.uint8:
        return Decoded(encoding, alpha, rgb8=colour)
    return Decoded(encoding, alpha, rgb_float=_to_float(colour, info.dtype))


def output_encoding_for(input_encoding: str, requested: str = "same") -> str:
    """The encoding a restored frame is published in (see the module docstring for the rule)."""
    if requested and requested != "same":
        check_output_encoding(requested)
        return requested
    if input_encoding in OUTPUT_ENCODINGS:
        return input_encoding
    return "rgb8"


def check_output_encoding(encoding: str) -> str:
    if encoding != "same" and encoding not in OUTPUT_ENCODINGS:
        raise ImageFormatError(
            f"output_encoding {encoding!r} is not supported; use 'same' or one of {', '.join(OUTPUT_ENCODINGS)}"
        )
    return encoding


def _to_samples(values: np.ndarray, dtype: str) -> np.ndarray:
    scale = 255.0 if dtype == "u1" else 65535.0
    scaled = np.clip(values, 0.0, 1.0) * np.float32(scale)
    scaled += np.float32(0.5)  # round, not truncate
    return scaled.astype(np.dtype(dtype))


def encode(rgb: np.ndarray, encoding: str, alpha: np.ndarray | None = None) -> Encoded:
    """Float RGB in [0, 1] -> an Image buffer in ``encoding`` (one of OUTPUT_ENCODINGS).

    ``alpha`` (HxW uint8) is written into rgba8 / bgra8 output; without it alpha is opaque (255).
    mono16 is written in this machine's byte order and ``is_bigendian`` says which.
    """
    if encoding not in OUTPUT_ENCODINGS:
        check_output_encoding(encoding)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageFormatError(f"expected HxWx3 RGB, got shape {rgb.shape}")
    height, width = rgb.shape[:2]
    info = ENCODINGS[encoding]
    if info.kind == "mono":
        cv2 = _cv2()
        grey = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2GRAY)
        pixels = _to_samples(grey, info.dtype)[..., None]
    else:
        colour = _to_samples(rgb, "u1")
        if info.kind in ("bgr", "bgra"):
            colour = colour[..., ::-1]
        if info.kind in ("rgba", "bgra"):
            pixels = np.empty((height, width, 4), np.uint8)
            pixels[..., :3] = colour
            pixels[..., 3] = 255 if alpha is None else alpha
        else:
            pixels = np.ascontiguousarray(colour)
    big = info.dtype != "u1" and sys.byteorder == "big"
    data = np.ascontiguousarray(pixels).reshape(-1).view(np.uint8)
    return Encoded(height, width, encoding, big, width * info.bytes_per_pixel, data)


def encode_planes(planes: list[np.ndarray], encoding: str, alpha: np.ndarray | None = None) -> Encoded:
    """Restored 8-bit R, G, B planes (HxW uint8 each) -> an Image buffer in ``encoding``.

    The planes are interleaved once, straight into the output channel order (OpenCV's merge);
    mono16 output goes through ``encode``'s float path.
    """
    if encoding not in OUTPUT_ENCODINGS:
        check_output_encoding(encoding)
    info = ENCODINGS[encoding]
    if info.dtype != "u1":
        return encode(_to_float(np.stack(planes, axis=-1), "u1"), encoding, alpha)
    cv2 = _cv2()
    height, width = planes[0].shape
    if info.kind == "mono":
        pixels = cv2.cvtColor(cv2.merge(planes), cv2.COLOR_RGB2GRAY)
    else:
        ordered = list(planes) if info.kind in ("rgb", "rgba") else list(planes[::-1])
        if info.kind in ("rgba", "bgra"):
            ordered.append(
                np.full((height, width), 255, np.uint8) if alpha is None else np.ascontiguousarray(alpha)
            )
        pixels = cv2.merge(ordered)
    data = np.ascontiguousarray(pixels).reshape(-1)
    return Encoded(height, width, encoding, False, width * info.bytes_per_pixel, data)


def decode_compressed(fmt: str, data: object) -> Decoded:
    """A sensor_msgs/CompressedImage (``format``, ``data``) -> float RGB [0, 1] (+ alpha).

    ``format`` is image_transport's ``"<raw encoding>; <codec> compressed <encoding>"`` or a bare
    codec name (``jpeg``); the raw encoding, if named, becomes ``Decoded.encoding``.
    """
    cv2 = _cv2()
    try:
        buffer = np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise ImageFormatError(f"compressed data is not a byte buffer ({type(data).__name__})") from exc
    if buffer.size == 0:
        raise ImageFormatError("compressed image has no data")
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageFormatError(f"cannot decode compressed image (format {fmt!r}, {buffer.size} bytes)")
    named = fmt.split(";")[0].strip() if ";" in fmt else ""
    encoding = named if named in OUTPUT_ENCODINGS else "rgb8"
    alpha = None
    if image.ndim == 2:
        colour = np.broadcast_to(image[..., None], (*image.shape, 3))
    elif image.shape[2] == 4:
        colour, alpha = image[..., 2::-1], image[..., 3]
        if image.dtype == np.uint16:
            alpha = (alpha >> 8).astype(np.uint8)
    else:
        colour = image[..., 2::-1]
    if colour.dtype == np.uint8:
        return Decoded(encoding, alpha, rgb8=colour)
    return Decoded(encoding, alpha, rgb_float=_to_float(colour, "u2"))
