"""The demo's day-long bag, its per-segment scores and the crops around bright spots (issue #13)."""

from __future__ import annotations

import numpy as np
import pytest

from qdr_core.bag.day import DAY, Segment, make_day_bag, segment_scores
from qdr_core.bag.evaluate import evaluate_bag_offline
from qdr_core.export.random_model import write_conv_onnx
from qdr_core.report.crops import bright_crops, brightest_spot, crop_box
from qdr_core.runtime import load_runtime


def frames(n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.uniform(0.2, 0.8, (40, 56, 3)).astype(np.float32) for _ in range(n)]


def test_day_bag_segments_in_order_and_scored_per_segment(tmp_path):
    made = make_day_bag(frames(), tmp_path / "bag", rate=10.0, start_ns=10**18)
    assert made["n_frames"] == 2 * len(DAY)
    assert [s["name"] for s in made["segments"]] == ["daylight", "dusk", "night", "rainy night", "fog"]
    assert [(s["first"], s["last"]) for s in made["segments"]] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    model = write_conv_onnx(tmp_path / "identity.onnx")
    with load_runtime(model, backend="onnxruntime", num_threads=1) as runtime:
        result, _ = evaluate_bag_offline(tmp_path / "bag", runtime, grid_frames=len(DAY))
    scores = segment_scores(result["frames"], made["segments"])
    assert [s["n_frames"] for s in scores] == [2] * len(DAY)
    assert scores[0]["psnr_input"] == float("inf")  # daylight is the clean frame itself
    night, dusk, fog = scores[2], scores[1], scores[4]
    assert np.isfinite(night["psnr_input"]) and night["psnr_input"] < dusk["psnr_input"]
    assert np.isfinite(fog["psnr_input"])


def test_segment_scores_ignore_rows_outside_and_unscored():
    spans = [{"name": "a", "condition": "clean", "first": 0, "last": 1}]
    rows = [
        {"index": 0, "psnr_input": 10.0, "psnr_output": 20.0, "ssim_input": 0.1, "ssim_output": 0.2},
        {"index": 1, "psnr_input": 12.0, "psnr_output": 22.0, "ssim_input": 0.3, "ssim_output": 0.4},
        {"index": 2, "psnr_input": 99.0, "psnr_output": 99.0, "ssim_input": 1.0, "ssim_output": 1.0},
        {"index": 1, "input_stats": {}},
    ]
    (score,) = segment_scores(rows, spans)
    assert score["n_frames"] == 2 and score["psnr_input"] == 11.0 and score["psnr_output"] == 21.0
    assert score["halo"] is None and score["halo_frames"] == 0  # no frame had a bright region
    (empty,) = segment_scores([], [{**spans[0], "name": "b"}])
    assert empty["n_frames"] == 0 and empty["psnr_output"] is None
    rows[0].update(halo_input=30.0, halo=-8.0)
    rows[1].update(halo_input=None, halo=None)
    (ringed,) = segment_scores(rows, spans)
    assert (ringed["halo_frames"], ringed["halo_input"], ringed["halo"]) == (1, 30.0, -8.0)


def test_bag_rows_measure_the_ring_around_a_lamp(tmp_path):
    """A frame with a lamp whose restoration darkens the ring around it: the bag row says so."""
    from qdr_core.bag.evaluate import FrameScorer

    clean = np.full((96, 96, 3), 0.4, np.float32)
    yy, xx = np.mgrid[0:96, 0:96]
    distance = np.hypot(yy - 48, xx - 48) - 6
    degraded = clean.copy()
    degraded[distance <= 0] = 1.0
    restored = np.where(((distance > 0) & (distance < 12))[..., None], degraded - 0.1, degraded)
    row = FrameScorer().add(0, 0, degraded, restored, clean)
    assert row["halo"] < -15 and row["halo_input"] == pytest.approx(0.0, abs=1e-4)


def test_crops_centre_on_the_lamp():
    image = np.full((120, 160, 3), 30, np.uint8)
    image[80:86, 20:26] = 255  # a lamp near the lower-left corner
    image[10, 150] = 255  # one hot pixel: brighter than its surroundings but not a blob
    row, col = brightest_spot(image)
    assert 80 <= row <= 86 and 20 <= col <= 26
    rows, cols = crop_box((row, col), image.shape, 72)
    assert (rows.stop - rows.start, cols.stop - cols.start) == (72, 72) and cols.start == 0
    cell = {"index": 3, "degraded": image, "restored": image // 2, "clean": image}
    crops = bright_crops([cell], size=72, scale=2)
    assert crops.shape == (144, 3 * 144, 3)
    assert crops[:, 144:288].mean() < crops[:, :144].mean()  # the output column is the restored crop
    assert bright_crops([]) is None


def test_custom_segments(tmp_path):
    made = make_day_bag(frames(1), tmp_path / "bag", [Segment("haze", "fog:strong")], rate=5.0)
    assert made["segments"] == [{"name": "haze", "condition": "fog:strong", "first": 0, "last": 0}]
