"""Read an ONNX file's ``metadata_props`` (and count its weights) without the ``onnx`` package.

The TensorRT runtime needs the model's ``size_multiple`` (how its inputs are padded) but must start
on a Jetson that has neither torch nor onnx installed; its ONNX parser does not expose metadata.
ModelProto keeps ``metadata_props`` as field 14 (``StringStringEntryProto``: key = 1, value = 2),
so a few lines of protobuf wire-format reading suffice.
"""

from __future__ import annotations

import os

from qdr_core.errors import ModelFileError

_METADATA_FIELD = 14
_GRAPH_FIELD = 7
# GraphProto: initializer = 5, sparse_initializer = 15.
_WEIGHT_FIELDS = (5, 15)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes):
    """(field number, wire type, value) of each top-level field; length-delimited values as bytes."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated field")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _read(path: str | os.PathLike) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def count_weights(path: str | os.PathLike) -> int:
    """Weight tensors (initializers) of the ONNX model's main graph: 0 for an empty placeholder."""
    try:
        count = 0
        for number, wire, value in _fields(_read(path)):
            if number == _GRAPH_FIELD and wire == 2:
                count += sum(1 for n, w, _ in _fields(value) if n in _WEIGHT_FIELDS and w == 2)
        return count
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot read the ONNX graph ({type(exc).__name__}: {exc})") from exc


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """``metadata_props`` of the ONNX model at ``path`` as a dict (later keys win)."""
    try:
        data = _read(path)
        meta: dict[str, str] = {}
        for number, wire, value in _fields(data):
            if number != _METADATA_FIELD or wire != 2:
                continue
            entry = {n: v for n, w, v in _fields(value) if w == 2}
            meta[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
        return meta
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: cannot read ONNX metadata ({type(exc).__name__}: {exc})") from exc
