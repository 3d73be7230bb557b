"""One camera frame through a runtime: message fields in, message fields out.

The node and its tests both call these, so "the node's output equals the runtime's output for that
frame" is checked against the exact code path the node runs.
"""

from __future__ import annotations

from qdr_core.image_encodings import (
    Decoded,
    Encoded,
    decode,
    decode_compressed,
    encode,
    encode_planes,
    output_encoding_for,
)
from qdr_core.runtime.base import Runtime


def restore_decoded(runtime: Runtime, decoded: Decoded, output_encoding: str = "same") -> Encoded:
    """8-bit frames stay 8-bit around the model (``infer_planes8``); 16-bit ones go through float."""
    encoding = output_encoding_for(decoded.encoding, output_encoding)
    if decoded.rgb8 is not None:
        return encode_planes(runtime.infer_planes8(decoded.rgb8), encoding, decoded.alpha)
    return encode(runtime.infer(decoded.rgb), encoding, decoded.alpha)


def restore_raw(
    runtime: Runtime,
    height: int,
    width: int,
    encoding: str,
    step: int,
    data: object,
    is_bigendian: bool = False,
    output_encoding: str = "same",
) -> Encoded:
    """Restore a sensor_msgs/Image given by its fields. Raises ImageFormatError for a bad frame."""
    return restore_decoded(
        runtime, decode(height, width, encoding, step, data, is_bigendian), output_encoding
    )


def restore_compressed(runtime: Runtime, fmt: str, data: object, output_encoding: str = "same") -> Encoded:
    """Restore a sensor_msgs/CompressedImage; the result is a raw image (see image_encodings)."""
    return restore_decoded(runtime, decode_compressed(fmt, data), output_encoding)


def restore_message(runtime: Runtime, msg: object, output_encoding: str = "same") -> Encoded:
    """Restore an image message, duck-typed: a CompressedImage (``format``, ``data``) or an Image
    (``height``, ``width``, ``encoding``, ``step``, ``data``, ``is_bigendian``); no ROS import here."""
    if hasattr(msg, "format"):
        return restore_compressed(runtime, msg.format, msg.data, output_encoding)
    return restore_raw(runtime, msg.height, msg.width, msg.encoding, msg.step, msg.data,
                       bool(msg.is_bigendian), output_encoding)  # fmt: skip
