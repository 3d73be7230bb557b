"""The runtime interface every backend implements, and the pre/post-processing they share.

A backend only turns an NCHW float32 batch into an NCHW float32 batch (``_run``). Everything that
must be identical across backends for their outputs to be comparable — padding to the model's size
multiple, layout, cropping, clipping, uint8 conversion — lives here, once.
"""

from __future__ import annotations

import abc
from types import TracebackType

import cv2
import numpy as np

from qdr_core.errors import ConfigError, ImageFormatError, ModelFileError
from qdr_core.runtime.tiling import (
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_PIXELS,
    needs_tiling,
    plan_tiles,
    tile_overlap_px,
)
from qdr_core.sizes import DEFAULT_SIZE_MULTIPLE, pad_amounts

#: A streaming model's state input and output (the names ``export.onnx_fp32`` gives them; not
#: imported from there, which would pull torch into the torch-free runtimes).
STATE_IN, STATE_OUT = "state_in", "state_out"
_INV_255 = np.float32(1.0 / 255.0)
_SCALE_255 = (255.0, 0.0, 0.0, 0.0)  # an OpenCV scalar: the plane times 255


def pad_image(image: np.ndarray, multiple: int) -> np.ndarray:
    """Pad an HxWxC image at the bottom and right to a multiple of ``multiple``.

    Reflect padding continues the image's texture and brightness into the padded border, so the
    convolutions near the true edge see plausible content. Zero padding would put a black band
    there, which a low-light or dehazing model treats as degraded content and whose response
    bleeds back into the kept pixels through the receptive field. Reflect needs more than ``pad``
    pixels along the axis; tiny images (1..3 px) fall back to replicating the edge pixel.
    Padding only bottom/right keeps cropping to ``[:H, :W]``.
    """
    h, w = image.shape[:2]
    ph, pw = pad_amounts(h, w, multiple)
    if ph == 0 and pw == 0:
        return image
    mode = "reflect" if h > ph and w > pw else "edge"
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)


def check_rgb(image: np.ndarray, dtype: type | None = None) -> None:
    """Raise ImageFormatError unless ``image`` is a non-empty HxWx3 array (of ``dtype`` if given)."""
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageFormatError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageFormatError(f"image has an empty side: shape {image.shape}")
    if dtype is not None and image.dtype != dtype:
        raise ImageFormatError(f"expected dtype {np.dtype(dtype).name}, got {image.dtype.name}")


class Runtime(abc.ABC):
    """A loaded restoration model that maps RGB [0, 1] images to restored RGB [0, 1] images.

    Attributes:
        name: backend name (``onnxruntime``, ``torch``, ``tensorrt``).
        model_path: the file the model was loaded from.
        num_threads: CPU threads requested (0 = the backend's default).
        size_multiple: H and W the model accepts must divide by this; ``infer`` pads to it.
        metadata: free-form key/value strings stored with the model (ONNX ``metadata_props``).
        concurrent: ``infer`` may be called from several threads at once.
        signature: the input/output shapes and weight count the backend read from the file
            (``contract.ModelSignature``), None when it cannot tell before running.
        tile_pixels / tile_overlap: frames larger than ``tile_pixels`` run in overlapping tiles
            (``tiling``); set with ``set_tiling``.
        streaming: the model carries state between frames (``state_in`` / ``state_out``);
            ``infer`` restores a still (the empty state), ``runtime.stateful.StreamSession`` a stream.
        state_channels / state_stride: a streaming model's state of an HxW padded frame is
            ``1 x state_channels x H/state_stride x W/state_stride``.
    """

    name: str = "base"
    #: Whether ``infer`` may run on several threads at once (a node's ``parallel_frames``).
    concurrent: bool = False

    def __init__(self, model_path: str, num_threads: int = 0) -> None:
        if num_threads < 0:
            raise ValueError(f"num_threads must be >= 0, got {num_threads}")
        self.model_path = str(model_path)
        self.num_threads = int(num_threads)
        self.size_multiple = DEFAULT_SIZE_MULTIPLE
        #: Frame pixels per cell of the model's deepest level (metadata ``context_cell``; 0 when
        #: not given, then the size multiple stands in): tiles are laid out on it and overlap by
        #: at least two of them.
        self.context_cell = 0
        self.metadata: dict[str, str] = {}
        self.signature = None
        self.tile_pixels: float = DEFAULT_TILE_PIXELS
        self.tile_overlap = DEFAULT_TILE_OVERLAP
        #: Largest (H, W) one run accepts (a TensorRT profile's maximum); larger frames are tiled.
        self.max_tile_shape: tuple[int, int] | None = None
        self.streaming = False
        self.state_channels = 0
        self.state_stride = 1
        #: Every element of a stream's first state (``empty_state``).
        self.state_fill = 0.0
        self._closed = False

    def set_tiling(
        self, tile_pixels: float = DEFAULT_TILE_PIXELS, overlap: int = DEFAULT_TILE_OVERLAP
    ) -> None:
        """Restore frames above ``tile_pixels`` pixels in tiles overlapping by ``overlap`` pixels
        (``math.inf``: always whole)."""
        if not (isinstance(tile_pixels, (int, float)) and tile_pixels > 0):
            raise ConfigError(f"tile_pixels must be a positive number of pixels, got {tile_pixels!r}")
        if not (isinstance(overlap, int) and overlap >= 0):
            raise ConfigError(f"tile_overlap must be an integer >= 0, got {overlap!r}")
        self.tile_pixels, self.tile_overlap = tile_pixels, overlap

    def _tiles(self, h: int, w: int):
        if not needs_tiling(h, w, self.size_multiple, self.tile_pixels, self.max_tile_shape):
            return None
        return plan_tiles(h, w, self.tile_unit, self.tile_pixels, self.tile_overlap, self.max_tile_shape)

    @property
    def tile_unit(self) -> int:
        """What tile cores are multiples of: the model's reach. A cropping context pyramid's cell
        (``context_cell``, 128 px) exceeds its size multiple (32), and its tiles need the same
        cores and overlap (two cells) as when it padded frames to 128."""
        return max(self.size_multiple, self.context_cell)

    def tile_geometry(self) -> tuple[int, int]:
        """``(unit, overlap)`` of this model's tiles: cores are multiples of ``tile_unit`` and read
        ``overlap`` pixels beyond them."""
        return self.tile_unit, tile_overlap_px(self.tile_overlap, self.tile_unit)

    def _read_shape_metadata(self) -> None:
        """``size_multiple`` and ``context_cell`` from ``self.metadata``; an out-of-range value is
        kept out here so that the model contract (``check_size_multiple``) rejects it."""
        for key in ("size_multiple", "context_cell"):
            raw = self.metadata.get(key, "")
            if raw.strip().isdigit() and int(raw) > 0:
                setattr(self, key, int(raw))

    @abc.abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a contiguous 1x3xHxW float32 batch (H, W multiples of size_multiple);
        return a 1x3xHxW float32 array (not yet clipped)."""

    def _run_state(self, batch: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A streaming model's run: ``(output, state_out)`` for ``batch`` and the previous state."""
        raise ConfigError(
            f"{self.model_path} is a single-frame model: it carries no state ({self.name} runtime)"
        )

    @property
    def state_align(self) -> str:
        """How a streaming model's state is brought to the next frame: ``flow`` (its previous
        output, warped by optical flow; ``runtime.motion``) or ``""`` (fed back as is)."""
        return self.metadata.get("state_align", "")

    def state_shape(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The state's shape for a ``height x width`` padded frame."""
        return (1, self.state_channels, height // self.state_stride, width // self.state_stride)

    def empty_state(self, height: int, width: int) -> np.ndarray:
        """The state of the first frame of a stream (``height x width``: the padded frame): zeros,
        or ``state_fill`` (a model whose state is its output: ``EFM.state_fill``)."""
        return np.full(self.state_shape(height, width), self.state_fill, np.float32)

    def _stream_metadata(self) -> tuple[int, float]:
        """``(state_stride, state_fill)`` of a streaming model file, from its metadata; read once,
        at load."""
        stride = self.metadata.get("state_stride", "")
        if not stride.strip().isdigit() or int(stride) < 1:
            raise ModelFileError(f"{self.model_path}: streaming model without state_stride metadata")
        text = self.metadata.get("state_fill", "0")
        try:
            fill = float(text)
        except ValueError:
            fill = float("nan")
        if not np.isfinite(fill) or abs(fill) > 1.0:
            raise ModelFileError(f"{self.model_path}: bad state_fill metadata {text!r} (a number in [-1, 1])")
        return int(stride), fill

    def _release(self) -> None:  # noqa: B027 - optional hook, most backends free by refcount
        """Free backend resources; called once by ``close``."""

    @property
    def closed(self) -> bool:
        return self._closed

    def infer(self, image: np.ndarray) -> np.ndarray:
        """Restore one HxWx3 RGB image in [0, 1] (any H, W >= 1); returns HxWx3 float32 in [0, 1]."""
        if self._closed:
            raise RuntimeError(f"{self.name} runtime for {self.model_path} is closed")
        check_rgb(image)
        h, w = image.shape[:2]
        tiles = self._tiles(h, w)
        if tiles is not None:
            result = np.empty((h, w, 3), np.float32)
            for tile in tiles:
                result[tile.core] = self._infer_whole(image[tile.source])[tile.crop]
        else:
            result = self._infer_whole(image)
        # The exported graph ends with the global residual Add and is deliberately unclamped.
        np.clip(result, 0.0, 1.0, out=result)
        return result

    def _infer_whole(self, image: np.ndarray) -> np.ndarray:
        """One HxWx3 image through the model in one run; unclipped HxWx3 float32."""
        h, w = image.shape[:2]
        padded = pad_image(np.ascontiguousarray(image, dtype=np.float32), self.size_multiple)
        out = self._run_checked(hwc_to_nchw(padded), h, w)
        return nchw_to_hwc(out[0, :, :h, :w])

    def infer_uint8(self, rgb: np.ndarray) -> np.ndarray:
        """Restore one HxWx3 uint8 RGB image; returns HxWx3 uint8 RGB (rounded, not truncated)."""
        return cv2.merge(self.infer_planes8(rgb))

    def infer_planes8(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Restore one HxWx3 uint8 RGB image (any strides: a view of a bgr8 or rgba8 message
        works); returns its restored R, G, B planes (HxW uint8 each).

        The frame path of a node: each channel goes from the message's bytes into the float batch
        in one pass, and each output plane from the float output to uint8 in one (saturating,
        rounding) pass, instead of a float HxWx3 image in between.
        """
        check_rgb(rgb, np.uint8)
        h, w = rgb.shape[:2]
        tiles = self._tiles(h, w)
        if tiles is None:
            return self._planes8_whole(rgb)
        # Only the uint8 output planes have the frame's size; float buffers have the tile's.
        planes = [np.empty((h, w), np.uint8) for _ in range(3)]
        for tile in tiles:
            for plane, part in zip(planes, self._planes8_whole(rgb[tile.source])):
                plane[tile.core] = part[tile.crop]
        return planes

    def _planes8_whole(self, rgb: np.ndarray) -> list[np.ndarray]:
        h, w = rgb.shape[:2]
        ph, pw = pad_amounts(h, w, self.size_multiple)
        if ph or pw:
            rgb = pad_image(rgb, self.size_multiple)
        batch = np.empty((1, 3, h + ph, w + pw), np.float32)
        for c in range(3):
            np.multiply(rgb[..., c], _INV_255, out=batch[0, c])
        out = self._run_checked(batch, h, w)
        return [cv2.multiply(out[0, c, :h, :w], _SCALE_255, dtype=cv2.CV_8U) for c in range(3)]

    def _run_checked(self, batch: np.ndarray, h: int, w: int) -> np.ndarray:
        """``_run`` with its output checked to cover the ``h`` x ``w`` frame; float32."""
        out = self._run(batch)
        if out.ndim != 4 or out.shape[:2] != (1, 3) or out.shape[2] < h or out.shape[3] < w:
            raise RuntimeError(f"{self.name}: model returned shape {out.shape} for input {batch.shape}")
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_path={self.model_path!r}, num_threads={self.num_threads})"


def hwc_to_nchw(image: np.ndarray) -> np.ndarray:
    """HxWx3 float32 -> contiguous 1x3xHxW float32.

    OpenCV's SIMD channel split writes straight into the three planes of the batch: about half the
    time of numpy's strided transpose copy (0.3 vs 0.5 ms at 640x480), which a node pays per frame.
    """
    batch = np.empty((1, 3, *image.shape[:2]), np.float32)
    planes = [batch[0, c] for c in range(3)]
    written = cv2.split(image, planes)
    if not all(np.may_share_memory(a, b) for a, b in zip(written, planes)):  # pragma: no cover
        batch[0] = np.stack(written)  # OpenCV allocated instead of writing in place
    return batch


def nchw_to_hwc(planes: np.ndarray) -> np.ndarray:
    """3xHxW float32 (any strides within a row) -> contiguous HxWx3 float32 (OpenCV's SIMD merge)."""
    return cv2.merge([np.ascontiguousarray(p) if p.strides[-1] != p.itemsize else p for p in planes])


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8 with rounding (truncation would darken every frame by half a level)."""
    scaled = np.clip(image, 0.0, 1.0) * np.float32(255.0)
    scaled += np.float32(0.5)
    return scaled.astype(np.uint8)
