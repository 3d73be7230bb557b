"""The one scoring function, the task list and the source root."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qdr_core.errors import ConfigError
from qdr_core.metrics import SCORE_KEYS, Scores, mean_scores, score, score_restoration
from qdr_core.paths import source_root
from qdr_core.tasks import TASKS, check_task


def _image(seed: int, shape=(24, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_score_matches_the_definitions() -> None:
    clean = _image(0)
    noisy = np.clip(clean + 0.1 * (_image(1) - 0.5), 0, 1)
    scores = score(clean, noisy)
    mse = float(np.mean((clean.astype(np.float64) - noisy) ** 2))
    assert scores.psnr == pytest.approx(10 * np.log10(1.0 / mse), rel=1e-9)
    assert 0.0 < scores.ssim < 1.0
    assert scores.as_dict() == {"psnr": scores.psnr, "ssim": scores.ssim}
    same = score(clean, clean)
    assert same.psnr == float("inf") and same.ssim == pytest.approx(1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        scores.psnr = 0.0  # type: ignore[misc]


def test_score_clips_to_the_unit_range() -> None:
    clean = _image(2)
    assert score(clean, clean + 2.0) == score(clean, np.ones_like(clean))
    assert isinstance(score(clean, clean * 0.5), Scores)


def test_score_restoration_and_means() -> None:
    clean, degraded = _image(3), _image(4)
    restored = 0.5 * (clean + degraded)
    row = score_restoration(clean, degraded, restored)
    assert tuple(row) == SCORE_KEYS
    assert row["psnr_output"] > row["psnr_input"]
    assert row["psnr_input"] == score(clean, degraded).psnr
    assert row["ssim_output"] == score(clean, restored).ssim
    other = score_restoration(clean, restored, clean * 0.9)
    means = mean_scores([{**row, "name": "a"}, other])
    assert means == {k: pytest.approx((row[k] + other[k]) / 2) for k in SCORE_KEYS}
    # Input scores measured once and passed in are used as given (the ablation scores many models).
    assert score_restoration(clean, degraded, restored, score(clean, degraded)) == row
    assert score_restoration(clean, degraded, restored, Scores(1.0, 0.5))["psnr_input"] == 1.0


def test_one_task_list() -> None:
    from qdr_core.data.degrade import TASKS as degrade_tasks

    assert TASKS == ("lowlight", "haze", "rain", "noise")
    assert degrade_tasks is TASKS
    assert check_task("rain") == "rain"
    with pytest.raises(ConfigError, match="lowlight, haze, rain, noise"):
        check_task("snow")


def test_source_root_holds_the_package_and_the_shipped_models() -> None:
    root = source_root()
    assert (root / "qdr_core" / "paths.py").is_file()
    assert (root / "models").is_dir()


def _lamp_scene(size: int = 96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grey textured frame with a saturated disc (a lamp / white object) in the middle: the clean
    frame, the input (the same), and each pixel's distance to the disc's edge."""
    rng = np.random.default_rng(0)
    clean = np.clip(0.4 + 0.05 * rng.standard_normal((size, size, 3)), 0, 0.8).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    distance = np.hypot(yy - size / 2, xx - size / 2) - 6
    clean[distance <= 0] = 1.0
    return clean, clean.copy(), distance


def test_halo_finds_dark_rings_and_glows_but_not_global_shifts() -> None:
    from qdr_core.metrics import halo

    clean, degraded, distance = _lamp_scene()
    assert halo(clean, degraded, clean) == pytest.approx(0.0, abs=1e-6)
    near = ((distance > 0) & (distance < 12))[..., None]
    dark_ring = np.where(near, clean - 20 / 255, clean)
    glow = np.where(near, clean + 20 / 255, clean)
    assert halo(clean, degraded, dark_ring) < -10
    assert halo(clean, degraded, glow) > 10
    # A frame darker everywhere outside the bright region has no ring.
    darker = np.where(distance[..., None] > 0, clean - 20 / 255, clean)
    assert halo(clean, degraded, darker) == pytest.approx(0.0, abs=0.3)


def test_halo_needs_a_bright_region() -> None:
    from qdr_core.metrics import halo

    clean, _, _ = _lamp_scene()
    dim = np.clip(clean, 0, 0.8)
    assert halo(dim, dim, dim) is None
    hot_pixel = dim.copy()
    hot_pixel[10, 10] = 1.0  # one saturated pixel of noise is not a lamp
    assert halo(dim, hot_pixel, dim) is None
