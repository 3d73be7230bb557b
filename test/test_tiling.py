"""Overlapping tiles: the plan covers every pixel once within the budget, tiled output equals the
whole-frame output for a model whose receptive field fits the overlap, on both frame paths (float
``infer`` and the node's uint8 ``infer_planes8`` / ``restore_raw``), odd sizes included."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from qdr_core.errors import ConfigError
from qdr_core.frame_restore import restore_raw
from qdr_core.runtime import DEFAULT_TILE_PIXELS, load_runtime
from qdr_core.runtime.onnxruntime_backend import OnnxRuntime
from qdr_core.runtime.tiling import needs_tiling, plan_tiles

MODELS = Path(__file__).resolve().parents[1] / "models"
LOWLIGHT = MODELS / "lowlight" / "int8_cpu.onnx"


@pytest.mark.parametrize(
    ("height", "width", "multiple", "budget", "overlap"),
    [
        (203, 301, 4, 100 * 100, 16),
        (768, 1024, 128, 384 * 384, 64),
        (5, 9, 4, 16, 8),
        (3000, 4000, 4, 2e6, 64),
    ],
)
def test_plan_covers_each_pixel_once_on_the_model_grid(height, width, multiple, budget, overlap) -> None:
    tiles = plan_tiles(height, width, multiple, budget, overlap)
    hits = np.zeros((height, width), np.int32)
    step = -(-max(overlap, 2 * multiple) // multiple) * multiple
    for tile in tiles:
        hits[tile.core] += 1
        (sy, sx), (cy, cx) = tile.source, tile.crop
        assert sy.start % multiple == 0 and sx.start % multiple == 0  # the down-sampling grid lines up
        # Overlap on every inner side, clamped at the frame's edges.
        assert tile.core[0].start - sy.start == min(step, tile.core[0].start)
        assert tile.core[1].start - sx.start == min(step, tile.core[1].start)
        assert sy.stop - tile.core[0].stop == min(step, height - tile.core[0].stop)
        assert (cy.stop - cy.start, cx.stop - cx.start) == (
            tile.core[0].stop - tile.core[0].start,
            tile.core[1].stop - tile.core[1].start,
        )
        core_min = multiple + 2 * step  # the smallest tile the plan makes, whatever the budget
        assert (sy.stop - sy.start) * (sx.stop - sx.start) <= max(budget, core_min**2) * 1.1
    assert (hits == 1).all()


def test_no_tiling_below_the_budget() -> None:
    assert not needs_tiling(1080, 1920, 4, DEFAULT_TILE_PIXELS)
    assert needs_tiling(3000, 4000, 4, DEFAULT_TILE_PIXELS)
    assert not needs_tiling(3000, 4000, 4, math.inf)


class RecordingRuntime(OnnxRuntime):
    """The real onnxruntime session, remembering the largest batch it was given."""

    largest = 0
    tallest = widest = 0

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self.largest = max(self.largest, batch.shape[2] * batch.shape[3])
        self.tallest, self.widest = max(self.tallest, batch.shape[2]), max(self.widest, batch.shape[3])
        return super()._run(batch)


@pytest.mark.parametrize(("height", "width"), [(203, 301), (184, 260)])
def test_tiled_equals_whole_on_both_frame_paths(height, width) -> None:
    rng = np.random.default_rng(height)
    rgb8 = rng.integers(0, 256, (height, width, 3), np.uint8)
    runtime = RecordingRuntime(LOWLIGHT, num_threads=1)
    runtime.set_tiling(math.inf)
    whole = runtime.infer(rgb8.astype(np.float32) / 255)
    whole8 = runtime.infer_planes8(rgb8)
    assert runtime.largest == round(height / 4 + 0.49) * 4 * round(width / 4 + 0.49) * 4
    runtime.largest = 0
    runtime.set_tiling(200 * 200, 64)
    assert len(runtime._tiles(height, width)) >= 4
    tiled = runtime.infer(rgb8.astype(np.float32) / 255)
    tiled8 = runtime.infer_planes8(rgb8)
    assert runtime.largest <= 200 * 200
    # The shipped lowlight model's receptive field fits in 64 px of overlap: identical results.
    np.testing.assert_array_equal(tiled, whole)
    for a, b in zip(tiled8, whole8):
        np.testing.assert_array_equal(a, b)


def test_the_node_frame_path_tiles(tmp_path) -> None:
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 256, (200, 300, 3), np.uint8)
    bgr = np.ascontiguousarray(rgb8[..., ::-1])
    with load_runtime(LOWLIGHT, num_threads=1, tile_pixels=math.inf) as whole_rt:
        whole = restore_raw(whole_rt, 200, 300, "bgr8", 900, bgr.tobytes())
    with load_runtime(LOWLIGHT, num_threads=1, tile_pixels=192 * 192, tile_overlap=64) as tiled_rt:
        assert len(tiled_rt._tiles(200, 300)) > 1
        tiled = restore_raw(tiled_rt, 200, 300, "bgr8", 900, bgr.tobytes())
    assert (tiled.height, tiled.width, tiled.encoding) == (whole.height, whole.width, "bgr8")
    assert bytes(tiled.data) == bytes(whole.data)


def test_a_context_model_tiles_with_its_pyramids_reach() -> None:
    """The haze model (a cropping context pyramid: size multiple 32, deepest cell 128 px) tiles
    too, with tiles overlapping by two deepest cells (256 px), not two size multiples; its
    whole-frame context makes tiles differ a little (docs/performance.md has the measured PSNR
    cost), never in shape or range."""
    image = np.random.default_rng(1).random((300, 420, 3), dtype=np.float32)
    with load_runtime(MODELS / "haze" / "int8_cpu.onnx", num_threads=1, tile_pixels=600 * 600) as runtime:
        assert (runtime.size_multiple, runtime.context_cell) == (32, 128)
        assert runtime.tile_geometry() == (128, 256)  # as when it padded frames to 128
        tiles = runtime._tiles(300, 1200)
        assert len(tiles) > 1
        first = tiles[0]
        assert first.source[1].stop - first.core[1].stop >= 256
        out = runtime.infer(image)
    assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(("pixels", "overlap"), [(0, 64), (-5, 64), ("big", 64), (1e6, -1), (1e6, 1.5)])
def test_bad_tile_settings_are_config_errors(pixels, overlap) -> None:
    with pytest.raises(ConfigError, match="tile_"):
        load_runtime(LOWLIGHT, num_threads=1, tile_pixels=pixels, tile_overlap=overlap)


def test_a_profile_maximum_tiles_frames_beyond_it() -> None:
    """A TensorRT engine accepts at most its profile's max (H, W): larger frames run in tiles that
    fit it, whatever the pixel budget."""
    assert plan_tiles(1080, 3840, 4, math.inf, 64, max_shape=(1088, 1920))
    image = np.random.default_rng(2).random((150, 420, 3), dtype=np.float32)
    runtime = RecordingRuntime(LOWLIGHT, num_threads=1)
    runtime.set_tiling(math.inf)
    whole = runtime.infer(image)
    runtime.max_tile_shape = (160, 256)
    tiles = runtime._tiles(150, 420)
    assert tiles is not None and len(tiles) >= 4
    runtime.tallest = runtime.widest = 0
    tiled = runtime.infer(image)
    assert runtime.tallest <= 160 and runtime.widest <= 256
    np.testing.assert_array_equal(tiled, whole)
