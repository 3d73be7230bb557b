"""Overlapping tiles: restore a frame of any size with memory bounded by the tile, not the frame.

A runtime's working memory grows with the frame it computes (onnxruntime: about 100 MB per
megapixel for the EFMs, and its arena keeps the peak until the session closes). Frames with more
pixels than a runtime's ``tile_pixels`` are therefore cut into tiles whose computed area, overlap
included, stays within that budget. Each tile reads ``overlap`` extra pixels on every inner side and
only its core is kept (a hard crop, no blending): with an overlap wider than the network's receptive
field the core equals the whole-frame result. Tile origins sit on multiples of the model's
``size_multiple``, so the down-sampling grid of every tile lines up with the whole frame's.

Models with a whole-frame context (the haze model's pyramid down to 1/128) see less context per
tile, so their tiles are not exact; docs/performance.md lists the measured difference per task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: About 2 MP: a 1920x1080 frame is still computed whole; anything larger is tiled.
DEFAULT_TILE_PIXELS = 1920 * 1088
#: Pixels each tile reads beyond its core on every inner side: enough for the receptive field of the
#: shipped lowlight / rain / noise models (tiled output is bit-identical). The plan raises it to at
#: least two tile units (``Runtime.tile_geometry``) and rounds it up to one.
DEFAULT_TILE_OVERLAP = 64


@dataclass(frozen=True)
class Tile:
    """One tile: ``core`` is the part of the frame it writes, ``source`` the part it reads,
    ``crop`` the core's position inside the source (all (rows, cols) slices)."""

    core: tuple[slice, slice]
    source: tuple[slice, slice]
    crop: tuple[slice, slice]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def needs_tiling(
    height: int, width: int, multiple: int, tile_pixels: float, max_shape: tuple[int, int] | None = None
) -> bool:
    """Whether a frame's padded area exceeds the budget, or a padded side exceeds ``max_shape``."""
    padded_h, padded_w = _round_up(height, multiple), _round_up(width, multiple)
    too_big = max_shape is not None and (padded_h > max_shape[0] or padded_w > max_shape[1])
    return padded_h * padded_w > tile_pixels or too_big


def tile_overlap_px(overlap: int, multiple: int) -> int:
    """The overlap tiles actually read: at least two ``multiple``s, rounded up to one."""
    return _round_up(max(int(overlap), 2 * multiple), multiple)


def plan_tiles(
    height: int,
    width: int,
    multiple: int,
    tile_pixels: float,
    overlap: int,
    max_shape: tuple[int, int] | None = None,
) -> list[Tile]:
    """Tiles covering a ``height`` x ``width`` frame, each reading at most about ``tile_pixels``
    and at most ``max_shape`` (rows, cols; a TensorRT engine's profile maximum) where given.

    The budget is never smaller than one size multiple of core plus the overlap on both sides; a
    tiny budget therefore gives many small tiles, not an error.
    """
    # A model's receptive field grows with its depth, and so does its size multiple: the haze model's
    # context pyramid (multiple 128) needs 256 px of overlap to stay within 0.03 dB of whole frames.
    # (A cropping pyramid's size multiple is smaller than its reach: ``Runtime._tiles`` passes its
    # ``context_cell`` as ``multiple``.)
    overlap = tile_overlap_px(overlap, multiple)
    side = math.isqrt(int(min(tile_pixels, height * width)))
    core = max((side - 2 * overlap) // multiple * multiple, multiple)
    core_rows = core_cols = core
    if max_shape is not None:
        core_rows = min(core, max((max_shape[0] - 2 * overlap) // multiple * multiple, multiple))
        core_cols = min(core, max((max_shape[1] - 2 * overlap) // multiple * multiple, multiple))
    rows, cols = math.ceil(height / core_rows), math.ceil(width / core_cols)
    # Spread the frame evenly over the tiles instead of leaving a thin last row or column.
    core_h = _round_up(math.ceil(height / rows), multiple)
    core_w = _round_up(math.ceil(width / cols), multiple)
    tiles = []
    for y0 in range(0, height, core_h):
        y1 = min(height, y0 + core_h)
        sy0, sy1 = max(0, y0 - overlap), min(height, y1 + overlap)
        for x0 in range(0, width, core_w):
            x1 = min(width, x0 + core_w)
            sx0, sx1 = max(0, x0 - overlap), min(width, x1 + overlap)
            tiles.append(
                Tile(
                    core=(slice(y0, y1), slice(x0, x1)),
                    source=(slice(sy0, sy1), slice(sx0, sx1)),
                    crop=(slice(y0 - sy0, y1 - sy0), slice(x0 - sx0, x1 - sx0)),
                )
            )
    return tiles
