"""Each degradation does what its physics says, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest

from qdr_core.data.degrade import TASKS, degrade, eval_rng
from qdr_core.data.degrade.haze import HazeRange, depth_proxy, haze
from qdr_core.data.degrade.lowlight import LowLightRange, lowlight
from qdr_core.data.degrade.noise import NoiseRange, noise
from qdr_core.data.degrade.rain import RainRange, line_kernel, rain
from qdr_core.data.sources import skimage_photo
from qdr_core.errors import ConfigError


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skimage_photo("astronaut", max_side=128)


@pytest.mark.parametrize("task", TASKS)
def test_output_is_8bit_rgb_in_range_and_seeded(photo, task) -> None:
    a = degrade(task, photo, eval_rng(7, 3), split="eval")
    b = degrade(task, photo, eval_rng(7, 3), split="eval")
    c = degrade(task, photo, eval_rng(7, 4), split="eval")
    assert a.shape == photo.shape and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_allclose(a * 255, np.round(a * 255), atol=1e-3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_lowlight_darkens_and_adds_noise(photo) -> None:
    dark = lowlight(photo, np.random.default_rng(0))
    assert dark.mean() < 0.5 * photo.mean()
    # Same exposure without noise: the difference is the sensor noise, larger in brighter areas.
    ranges = LowLightRange(exposure=(0.1, 0.1), gamma=(1, 1), photons=(300, 300), read_noise=(0.001, 0.001))
    a, b = (
        lowlight(photo, np.random.default_rng(1), ranges),
        lowlight(photo, np.random.default_rng(2), ranges),
    )
    assert np.abs(a - b).mean() > 1 / 255


def test_haze_lowers_contrast_and_lifts_toward_airlight(photo) -> None:
    hazy = haze(photo, np.random.default_rng(0), HazeRange(beta=(2.0, 2.0), airlight=(0.9, 0.9), tint=0.0))
    assert hazy.std() < 0.6 * photo.std()
    assert hazy.mean() > photo.mean()
    black = haze(
        np.zeros((32, 32, 3), np.float32),
        np.random.default_rng(0),
        HazeRange(beta=(2.0, 2.0), airlight=(0.9, 0.9), tint=0.0),
    )
    t_max = np.exp(-2.0 * 0.1)
    assert black.max() <= 0.9 * (1 - np.exp(-2.0)) + 1 / 255
    assert black.min() >= 0.9 * (1 - t_max) - 1 / 255


def test_haze_depth_proxy_range(photo) -> None:
    d = depth_proxy(photo, np.random.default_rng(0))
    assert d.shape == photo.shape[:2]
    assert d.min() == pytest.approx(0.1, abs=1e-4) and d.max() == pytest.approx(1.0, abs=1e-4)


def test_rain_only_brightens_and_streaks_follow_the_angle(photo) -> None:
    ranges = RainRange(angle=(0.0, 0.0), layers=(1, 1), veil=(0.0, 0.0), density=(0.004, 0.004))
    rainy = rain(photo, np.random.default_rng(0), ranges)
    diff = (rainy - photo).mean(axis=2)
    assert diff.min() >= -1 / 255
    assert (diff > 0.05).mean() > 0.02
    # Vertical streaks: neighbours along the column agree far more than along the row.
    vertical = np.corrcoef(diff[:-1].ravel(), diff[1:].ravel())[0, 1]
    horizontal = np.corrcoef(diff[:, :-1].ravel(), diff[:, 1:].ravel())[0, 1]
    assert vertical > horizontal + 0.3


def test_line_kernel_is_vertical_at_zero_degrees() -> None:
    k = line_kernel(9, 0.0)
    assert k.shape == (9, 9)
    assert k[:, 4].min() > 0.9 and k[:, 0].max() < 1e-6


def test_noise_sigma_matches() -> None:
    grey = np.full((256, 256, 3), 0.5, np.float32)
    noisy = noise(grey, np.random.default_rng(0), NoiseRange(sigma=(25 / 255, 25 / 255)))
    assert (noisy - grey).std() == pytest.approx(25 / 255, rel=0.03)
    assert abs((noisy - grey).mean()) < 1e-3
    assert degrade("noise", grey, eval_rng(0, 0), split="eval").std() == pytest.approx(25 / 255, rel=0.03)


def test_unknown_task_is_a_config_error(photo) -> None:
    with pytest.raises(ConfigError, match="unknown task"):
        degrade("snow", photo, np.random.default_rng(0))
