"""sensor_msgs/Image field conversions, without ROS: round trips, step padding, endianness, errors."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

from qdr_core.errors import ImageFormatError
from qdr_core.image_encodings import (
    ENCODINGS,
    OUTPUT_ENCODINGS,
    check_output_encoding,
    decode,
    decode_compressed,
    encode,
    encode_planes,
    output_encoding_for,
    raw_view,
)

RNG = np.random.default_rng(0)


def pack(pixels: np.ndarray, pad: int = 0) -> tuple[int, bytes]:
    """HxWxC sample array -> (step, bytes) with ``pad`` junk bytes at the end of every row."""
    h = pixels.shape[0]
    rows = np.ascontiguousarray(pixels).view(np.uint8).reshape(h, -1)
    junk = np.full((h, pad), 0xAB, np.uint8)
    return rows.shape[1] + pad, np.concatenate([rows, junk], axis=1).tobytes()


def random_pixels(h: int, w: int, c: int, dtype=np.uint8) -> np.ndarray:
    top = 255 if dtype == np.uint8 else 65535
    return RNG.integers(0, top + 1, (h, w, c)).astype(dtype)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
@pytest.mark.parametrize("pad", [0, 3, 64])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 7), (48, 64)])
def test_8bit_round_trip_is_exact(encoding, pad, h, w):
    info = ENCODINGS[encoding]
    pixels = random_pixels(h, w, info.channels)
    step, data = pack(pixels, pad)
    decoded = decode(h, w, encoding, step, data)
    assert decoded.rgb.shape == (h, w, 3) and decoded.rgb.dtype == np.float32
    out = encode(decoded.rgb, output_encoding_for(encoding), decoded.alpha)
    assert out.encoding == encoding and out.step == w * info.channels and not out.is_bigendian
    np.testing.assert_array_equal(out.data.reshape(h, w, info.channels), pixels)


def test_channel_order():
    rgb = random_pixels(3, 4, 3)
    step, data = pack(rgb[..., ::-1])  # the same picture stored as bgr8
    decoded = decode(3, 4, "bgr8", step, data)
    np.testing.assert_allclose(decoded.rgb, rgb / 255, atol=1e-7)
    bgra = np.concatenate([rgb[..., ::-1], random_pixels(3, 4, 1)], axis=2)
    step, data = pack(bgra)
    decoded = decode(3, 4, "bgra8", step, data)
    np.testing.assert_allclose(decoded.rgb, rgb / 255, atol=1e-7)
    np.testing.assert_array_equal(decoded.alpha, bgra[..., 3])
    # Converting across encodings keeps the picture: bgr8 in, rgba8 out (alpha opaque).
    out = encode(decode(3, 4, "bgr8", *pack(rgb[..., ::-1])).rgb, "rgba8")
    pixels = out.data.reshape(3, 4, 4)
    np.testing.assert_array_equal(pixels[..., :3], rgb)
    assert (pixels[..., 3] == 255).all()


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("pad", [0, 2, 5])
def test_mono16_honours_endianness_and_round_trips(big, pad):
    values = random_pixels(6, 9, 1, np.uint16)
    stored = values.astype(">u2" if big else "<u2")
    step, data = pack(stored, pad)
    decoded = decode(6, 9, "mono16", step, data, is_bigendian=big)
    np.testing.assert_allclose(decoded.rgb[..., 1], values[..., 0] / 65535, rtol=1e-6)
    out = encode(decoded.rgb, "mono16")
    native = out.data.view(">u2" if out.is_bigendian else "<u2").reshape(6, 9)
    np.testing.assert_array_equal(native, values[..., 0])
    assert out.step == 18


def test_mono_output_is_luminance():
    rgb = np.zeros((1, 3, 3), np.float32)
    rgb[0, 0] = (1, 0, 0)
    rgb[0, 1] = (0, 1, 0)
    rgb[0, 2] = (0, 0, 1)
    grey = encode(rgb, "mono8").data
    np.testing.assert_array_equal(grey, [76, 150, 29])  # BT.601 weights 0.299, 0.587, 0.114


def test_raw_view_is_zero_copy_and_honours_step():
    pixels = random_pixels(4, 5, 3)
    step, data = pack(pixels, 7)
    buffer = array.array("B", data)  # what rclpy hands a callback
    view = raw_view(4, 5, "rgb8", step, buffer)
    assert np.shares_memory(view, np.frombuffer(buffer, np.uint8))
    np.testing.assert_array_equal(view, pixels)
    big = raw_view(2, 3, "mono16", 8, bytes(16), is_bigendian=True)
    assert big.dtype == np.dtype(">u2") and big.shape == (2, 3, 1)


def _yuv_bytes(y: np.ndarray, u: np.ndarray, v: np.ndarray, order: str) -> np.ndarray:
    """Pack planes (Y: HxW, U/V: HxW/2) into UYVY or YUYV HxWx2."""
    h, w = y.shape
    out = np.empty((h, w, 2), np.uint8)
    out[..., 1 if order == "uyvy" else 0] = y
    chroma = np.empty((h, w), np.uint8)
    chroma[:, 0::2], chroma[:, 1::2] = u, v
    out[..., 0 if order == "uyvy" else 1] = chroma
    return out


@pytest.mark.parametrize("pad", [0, 6])
def test_yuv422_both_byte_orders(pad):
    h, w = 4, 8
    y = RNG.integers(16, 236, (h, w)).astype(np.uint8)
    u = RNG.integers(16, 240, (h, w // 2)).astype(np.uint8)
    v = RNG.integers(16, 240, (h, w // 2)).astype(np.uint8)
    uyvy = _yuv_bytes(y, u, v, "uyvy")
    yuyv = _yuv_bytes(y, u, v, "yuyv")
    a = decode(h, w, "yuv422", *pack(uyvy, pad))
    b = decode(h, w, "yuv422_yuy2", *pack(yuyv, pad))
    np.testing.assert_array_equal(a.rgb, b.rgb)
    expected = cv2.cvtColor(uyvy, cv2.COLOR_YUV2RGB_UYVY) / 255
    np.testing.assert_allclose(a.rgb, expected, atol=1e-6)
    assert output_encoding_for("yuv422") == "rgb8"
    # Neutral chroma is grey.
    grey = decode(h, w, "uyvy", *pack(_yuv_bytes(y, np.full_like(u, 128), np.full_like(v, 128), "uyvy")))
    assert np.abs(grey.rgb[..., 0] - grey.rgb[..., 2]).max() < 1e-6


@pytest.mark.parametrize(
    ("encoding", "red_at"),
    [("bayer_rggb8", (0, 0)), ("bayer_bggr8", (1, 1)), ("bayer_gbrg8", (1, 0)), ("bayer_grbg8", (0, 1))],
)
def test_bayer_patterns_are_mapped_right(encoding, red_at):
    # A mosaic where only the red sites are lit must demosaic to red, whatever the pattern.
    mosaic = np.zeros((8, 8, 1), np.uint8)
    mosaic[red_at[0] :: 2, red_at[1] :: 2] = 200
    decoded = decode(8, 8, encoding, *pack(mosaic, 4))
    centre = decoded.rgb[3:5, 3:5].reshape(-1, 3).mean(axis=0)
    assert centre[0] > 0.7 and centre[1] < 0.05 and centre[2] < 0.05, centre
    assert output_encoding_for(encoding) == "rgb8"


def test_random_layouts_round_trip():
    # A property test by hand: random sizes, paddings and encodings, exact round trip.
    for _ in range(60):
        encoding = RNG.choice(["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16"])
        info = ENCODINGS[encoding]
        h, w, pad = (int(v) for v in RNG.integers(1, 40, 3))
        pad *= info.bytes_per_pixel // info.channels  # mono16 rows stay whole samples
        pixels = random_pixels(h, w, info.channels, np.uint16 if info.dtype == "u2" else np.uint8)
        step, data = pack(pixels, int(pad))
        decoded = decode(h, w, encoding, step, data, is_bigendian=False)
        out = encode(decoded.rgb, encoding, decoded.alpha)
        np.testing.assert_array_equal(out.data.view(pixels.dtype).reshape(pixels.shape), pixels)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"data": bytes(10)}, "step \\* height"),
        ({"width": 0}, "empty image"),
        ({"height": 0}, "empty image"),
        ({"encoding": "rgb16"}, "unsupported encoding 'rgb16'"),
        ({"encoding": "32FC1"}, "unsupported encoding"),
        ({"step": 11}, "step 11 is less than"),
        ({"encoding": "yuv422", "width": 3, "step": 6}, "even width"),
        ({"data": 12345}, "not a byte buffer"),
    ],
)
def test_malformed_frames_are_rejected_with_a_reason(fields, message):
    base = {"height": 4, "width": 4, "encoding": "rgb8", "step": 12, "data": bytes(48)}
    base.update(fields)
    with pytest.raises(ImageFormatError, match=message):
        decode(**base)


def test_output_encoding_choice():
    assert output_encoding_for("bgra8") == "bgra8"
    assert output_encoding_for("mono16") == "mono16"
    assert output_encoding_for("bayer_rggb8", "bgr8") == "bgr8"
    assert output_encoding_for("rgb8", "mono8") == "mono8"
    assert check_output_encoding("same") == "same"
    for bad in ("yuv422", "bayer_rggb8", "rgb16", ""):
        with pytest.raises(ImageFormatError, match="output_encoding"):
            check_output_encoding(bad)
    assert set(OUTPUT_ENCODINGS) <= set(ENCODINGS)


@pytest.mark.parametrize(("ext", "fmt"), [(".png", "rgb8; png compressed bgr8"), (".jpg", "jpeg")])
def test_compressed_input(ext, fmt):
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[..., 0] = 220  # red
    ok, blob = cv2.imencode(ext, rgb[..., ::-1])
    assert ok
    decoded = decode_compressed(fmt, blob.tobytes())
    assert decoded.encoding == "rgb8"
    assert decoded.rgb.shape == (16, 24, 3)
    assert abs(decoded.rgb[..., 0].mean() - 220 / 255) < 0.02 and decoded.rgb[..., 2].mean() < 0.02
    ok, blob = cv2.imencode(".png", np.full((4, 4), 65535, np.uint16))
    grey = decode_compressed("mono16; png compressed mono16", blob.tobytes())
    assert grey.encoding == "mono16" and np.allclose(grey.rgb, 1.0)


def test_compressed_garbage_is_rejected():
    with pytest.raises(ImageFormatError, match="cannot decode"):
        decode_compressed("jpeg", b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageFormatError, match="no data"):
        decode_compressed("jpeg", b"")


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_eight_bit_frames_decode_to_views_of_the_message(encoding):
    h, w, c = 5, 7, {"mono8": 1, "rgba8": 4, "bgra8": 4}.get(encoding, 3)
    raw = RNG.integers(0, 256, (h, w, c)).astype(np.uint8)
    step, data = pack(raw, 3)
    buffer = np.frombuffer(data, np.uint8)
    decoded = decode(h, w, encoding, step, buffer)
    assert decoded.rgb8 is not None and decoded.rgb8.dtype == np.uint8
    assert np.shares_memory(decoded.rgb8, buffer)  # zero-copy, step padding honoured
    # The float view of the same frame is what the 8-bit one says, scaled.
    np.testing.assert_allclose(decoded.rgb, decoded.rgb8 / 255.0, atol=1e-7)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16"])
def test_encode_planes_matches_encode(encoding):
    rgb8 = RNG.integers(0, 256, (6, 9, 3)).astype(np.uint8)
    alpha = RNG.integers(0, 256, (6, 9)).astype(np.uint8)
    planes = [np.ascontiguousarray(rgb8[..., c]) for c in range(3)]
    fast = encode_planes(planes, encoding, alpha)
    slow = encode(rgb8.astype(np.float32) / 255, encoding, alpha)
    assert (fast.height, fast.width, fast.encoding, fast.step) == (
        slow.height,
        slow.width,
        slow.encoding,
        slow.step,
    )
    # Same bytes (mono8: OpenCV's integer vs float grey conversion may differ by one level).
    tolerance = 1 if encoding == "mono8" else 0
    diff = np.abs(fast.data.view(np.uint8).astype(int) - slow.data.view(np.uint8).astype(int))
    assert diff.max() <= tolerance
