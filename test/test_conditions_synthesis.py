"""The realistic condition synthesis: each stage does what its physics says; the pipeline composes them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qdr_core.data.degrade.common import (
    SEVERITIES,
    fast_linear_to_srgb,
    fast_srgb_to_linear,
    level_of,
    linear_to_srgb,
    quantize8,
    srgb_to_linear,
)
from qdr_core.data.degrade.fog import FogParams, depth_map, fog
from qdr_core.data.degrade.jpeg import JpegParams, jpeg
from qdr_core.data.degrade.night import Lamp, NightParams, illumination, lamp_radiance, night
from qdr_core.data.degrade.pipeline import (
    EFFECTS,
    MIXTURES,
    Condition,
    ConditionMix,
    condition_rng,
    synthesize,
)
from qdr_core.data.degrade.rainfall import LensDrop, RainfallParams, StreakLayer, rainfall, streak_kernel
from qdr_core.data.degrade.sensor import ResponseParams, SensorParams, response, sensor
from qdr_core.data.sources import skimage_photo
from qdr_core.errors import ConfigError


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skimage_photo("astronaut", max_side=128)


def texture(h: int = 96, w: int = 96, seed: int = 0) -> np.ndarray:
    """Linear RGB white-noise texture around mid-grey: contrast is easy to measure anywhere."""
    return (0.2 + 0.6 * np.random.default_rng(seed).random((h, w, 3))).astype(np.float32)


# --- night ---------------------------------------------------------------------------------------


def test_night_level_spans_near_normal_to_very_dark() -> None:
    rng = np.random.default_rng(0)
    mild = [NightParams.sample(rng, 0.0).exposure for _ in range(20)]
    strong = [NightParams.sample(rng, 1.0).exposure for _ in range(20)]
    assert min(mild) > 0.6  # dusk: nearly a day's exposure
    assert max(strong) < 0.01  # ~7 stops down


def test_lamps_saturate_at_the_core_and_glow_falls_off() -> None:
    lamp = Lamp(0.5, 0.5, 0.2, 0.3, core_radius=3.0, glow_radius=30.0, glow_gain=0.5, colour=(1.0, 0.8, 0.5))
    params = NightParams(exposure=0.02, lamps=(lamp,))
    lit = night(texture(101, 101), np.random.default_rng(0), params)
    assert lit[50, 50].min() >= 1.0  # the core is over full well: it will clip to white
    profile = lamp_radiance((101, 101), params)[50, 54:95, 0]  # outside the core, going right
    assert np.all(np.diff(profile) < 0)  # glow decreases with distance
    assert profile[-1] < 0.1 * profile[0]
    # ... and reaches the sensor as a saturated spot with a halo.
    out = quantize8(
        response(sensor(lit, np.random.default_rng(1), SensorParams(photons=1e5)), ResponseParams())
    )
    assert out[50, 50].min() == 1.0 and out[50, 70].mean() < 1.0


def test_light_pools_and_vignetting_make_illumination_uneven() -> None:
    params = NightParams(exposure=0.05, vignette=0.5, lamps=(Lamp(0.25, 0.5, 0.1, 0.8, 0, 0, 0, (1, 1, 1)),))
    light = illumination((64, 128), params)[..., 1]
    assert light[32, 32] > 10 * light[32, 100]  # under the lamp vs. beside it
    no_lamp = illumination((64, 128), dataclasses.replace(params, lamps=()))[..., 1]
    assert no_lamp[32, 64] > no_lamp[0, 0]  # corners darker
    assert no_lamp[0, 0] == pytest.approx(0.05 * 0.5, rel=0.05)


# --- fog -----------------------------------------------------------------------------------------


def test_fog_contrast_falls_with_depth() -> None:
    scene = texture(120, 120)
    vertical_only = FogParams(beta=2.0, cue_weights=(1.0, 0.0, 0.0, 0.0), airlight=(0.8, 0.8, 0.8))
    foggy = fog(scene, np.random.default_rng(0), vertical_only)
    # Top rows are far: their remaining contrast (texture std) is lower than the near bottom rows'.
    far, near = foggy[:20].std() / scene[:20].std(), foggy[-20:].std() / scene[-20:].std()
    assert far < 0.4 * near
    assert foggy[:20].mean() == pytest.approx(0.8, abs=0.1)  # far is mostly airlight


def test_fog_is_patchy_and_the_airlight_has_a_gradient() -> None:
    flat = np.full((96, 96, 3), 0.2, np.float32)
    homogeneous = FogParams(beta=1.0, patchiness=0.0, cue_weights=(0.0, 0.0, 0.0, 0.0))
    patchy = dataclasses.replace(homogeneous, patchiness=0.8, patch_scale=0.3)
    # Constant depth (no cue): only the density field can make the veil vary.
    assert np.ptp(fog(flat, np.random.default_rng(0), homogeneous)) < 1e-5
    assert np.ptp(fog(flat, np.random.default_rng(0), patchy)) > 0.05
    graded = fog(flat, np.random.default_rng(0), dataclasses.replace(homogeneous, beta=10.0, gradient=0.3))
    assert graded[0].mean() > graded[-1].mean() + 0.05


@pytest.mark.parametrize("cue", range(4))
def test_every_depth_cue_gives_a_normalised_depth(cue) -> None:
    weights = tuple(float(i == cue) for i in range(4))
    d = depth_map(texture(64, 80), np.random.default_rng(0), FogParams(cue_weights=weights))
    assert d.shape == (64, 80)
    assert d.min() == pytest.approx(0.1, abs=1e-3) and d.max() == pytest.approx(1.0, abs=1e-3)


# --- rain ----------------------------------------------------------------------------------------


def streak_angle(light: np.ndarray) -> float:
    """Dominant streak direction (degrees clockwise from vertical): the principal axis of the
    autocorrelation's central peak, which for sparse streaks is the shape of one streak."""
    f = np.fft.fft2(light - light.mean())
    auto = np.fft.fftshift(np.real(np.fft.ifft2(f * np.conj(f))))
    ys, xs = np.nonzero(auto > 0.5 * auto.max())
    w = auto[ys, xs]
    x, y = xs - np.average(xs, weights=w), ys - np.average(ys, weights=w)
    cxx, cyy, cxy = (w * x * x).sum(), (w * y * y).sum(), (w * x * y).sum()
    # Long axis from +x, y pointing down. A streak at angle a runs along (sin a, -cos a), whose axis
    # angle is a - 90 (mod 180).
    axis = 0.5 * np.degrees(np.arctan2(2 * cxy, cxx - cyy))
    return float((axis + 180.0) % 180.0 - 90.0)


@pytest.mark.parametrize("angle", [-25.0, 0.0, 15.0, 30.0])
def test_streaks_are_oriented_at_the_sampled_angle(angle) -> None:
    layer = StreakLayer(density=0.003, length=25, width=1, blur=0.5, angle=angle, intensity=0.5)
    params = RainfallParams(layers=(layer,))
    dark = np.zeros((160, 160, 3), np.float32)
    light = rainfall(dark, np.random.default_rng(0), params)[..., 0]
    assert streak_angle(light) == pytest.approx(angle, abs=4.0)
    k = streak_kernel(21, 2, angle)
    assert k.max() == 1.0 and k.sum() > 21


def test_rain_adds_light_and_lens_drops_blur_the_scene() -> None:
    scene = texture(128, 128)
    wet = rainfall(scene, np.random.default_rng(0), RainfallParams.sample(np.random.default_rng(0), 0.8))
    assert wet.mean() > scene.mean()
    drop = RainfallParams(drops=(LensDrop(0.5, 0.5, 0.15, 1.0),), drop_blur=0.05)
    through = rainfall(scene, np.random.default_rng(0), drop)
    centre, edge = (slice(54, 74), slice(54, 74)), (slice(0, 20), slice(0, 20))
    assert through[centre].std() < 0.3 * scene[centre].std()  # blurred behind the drop
    np.testing.assert_array_equal(through[edge], scene[edge])  # untouched elsewhere


# --- sensor, response, JPEG ----------------------------------------------------------------------


def test_noise_variance_grows_with_signal() -> None:
    params = SensorParams(photons=200.0, read_noise=0.002, mosaic=False)
    for level in (0.05, 0.2, 0.8):
        flat = np.full((128, 128, 3), level, np.float32)
        measured = (sensor(flat, np.random.default_rng(0), params) - level).std()
        assert measured == pytest.approx(params.std(level), rel=0.05)
    assert params.std(0.8) > 3 * params.std(0.05)


def test_demosaiced_noise_is_spatially_correlated() -> None:
    flat = np.full((128, 128, 3), 0.3, np.float32)

    def neighbour_corr(mosaic: bool) -> float:
        n = (sensor(flat, np.random.default_rng(0), SensorParams(200.0, 0.0, mosaic)) - 0.3)[..., 1]
        return float(np.corrcoef(n[:, :-1].ravel(), n[:, 1:].ravel())[0, 1])

    assert abs(neighbour_corr(False)) < 0.05
    assert neighbour_corr(True) > 0.2


def test_response_identity_is_srgb_and_curves_stay_monotonic() -> None:
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(response(x, ResponseParams()), linear_to_srgb(x), atol=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = response(x, ResponseParams.sample(rng, float(rng.random())))
        assert np.all(np.diff(y) >= 0) and y[0] >= 0 and y[-1] <= 1


def test_jpeg_quality_sets_the_error() -> None:
    im = quantize8(skimage_photo("astronaut", max_side=128))
    err = {q: np.abs(jpeg(im, None, JpegParams(q)) - im).mean() for q in (30, 90)}
    assert err[30] > 1.5 * err[90] > 0


def test_fast_transfer_curves_match_the_exact_ones() -> None:
    x = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    np.testing.assert_allclose(fast_srgb_to_linear(x), srgb_to_linear(x), atol=1e-4)
    np.testing.assert_allclose(fast_linear_to_srgb(x), linear_to_srgb(x), atol=1e-3)


# --- the pipeline --------------------------------------------------------------------------------


def test_clean_condition_is_the_identity(photo) -> None:
    out, record = synthesize(photo, Condition.parse("clean"), np.random.default_rng(0))
    np.testing.assert_array_equal(out, photo)
    assert record == {"condition": "clean", "stages": []}


@pytest.mark.parametrize(
    "text", [*(f"{e}:{s}" for e in EFFECTS for s in SEVERITIES), *map("+".join, MIXTURES)]
)
def test_every_condition_is_seeded_8bit_and_recorded(photo, text) -> None:
    cond = Condition.parse(text)
    a, rec = synthesize(photo, cond, condition_rng(3, cond, 1))
    b, _ = synthesize(photo, cond, condition_rng(3, cond, 1))
    c, _ = synthesize(photo, cond, condition_rng(3, cond, 2))
    assert a.shape == photo.shape and a.dtype == np.float32
    np.testing.assert_allclose(a * 255, np.round(a * 255), atol=1e-3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    named = [s["effect"] for s in rec["stages"] if not s["implied"]]
    assert named == [e for e, _ in cond.effects]
    assert not np.array_equal(a, quantize8(photo))


def test_mixtures_apply_effects_in_physical_order(photo) -> None:
    cond = Condition.parse("rain:mild+night:strong+fog:medium")  # given out of order
    assert [e for e, _ in cond.effects] == ["fog", "rain", "night"]
    _, record = synthesize(photo, cond, condition_rng(0, cond, 0))
    order = [s["effect"] for s in record["stages"]]
    assert order == ["fog", "rain", "night", "sensor", "response", "jpeg"]
    # Fog before night: the airlight is dimmed by the night's exposure. The other order would leave
    # a bright veil over a dark scene.
    fog_p, night_p = FogParams(beta=2.0), NightParams(exposure=0.02)
    lin = srgb_to_linear(photo)
    rng = np.random.default_rng(0)
    physical = night(fog(lin, rng, fog_p), rng, night_p)
    reversed_ = fog(night(lin, rng, night_p), np.random.default_rng(0), fog_p)
    assert physical.mean() < 0.1 < reversed_.mean()


def test_night_implies_sensor_noise_and_a_curve_unless_named(photo) -> None:
    _, rec = synthesize(photo, Condition.parse("night:medium"), np.random.default_rng(0))
    stages = {s["effect"]: s for s in rec["stages"]}
    assert stages["sensor"]["implied"] and stages["response"]["implied"] and stages["jpeg"]["implied"]
    _, rec = synthesize(photo, Condition.parse("night:medium+sensor:0.0+jpeg:0.0"), np.random.default_rng(0))
    stages = {s["effect"]: s for s in rec["stages"]}
    assert not stages["sensor"]["implied"] and stages["sensor"]["level"] == 0.0
    assert stages["jpeg"]["params"]["quality"] >= 90


def test_severity_levels_order_the_damage(photo) -> None:
    def error(text: str) -> float:
        cond = Condition.parse(text)
        return float(
            np.mean(
                [
                    np.abs(synthesize(photo, cond, condition_rng(0, cond, i))[0] - photo).mean()
                    for i in range(4)
                ]
            )
        )

    for effect in ("fog", "rain", "night", "sensor"):
        mild, strong = error(f"{effect}:mild"), error(f"{effect}:strong")
        assert mild < strong, effect


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("snow:mild", "unknown effect"),
        ("fog:extreme", "unknown severity"),
        ("fog:1.5", "outside"),
        ("fog:mild+fog:strong", "twice"),
    ],
)
def test_bad_conditions_are_config_errors(text, message) -> None:
    with pytest.raises(ConfigError, match=message):
        Condition.parse(text)


def test_level_of_draws_inside_the_band() -> None:
    rng = np.random.default_rng(0)
    for name, (lo, hi) in SEVERITIES.items():
        assert all(lo <= level_of(name, rng) <= hi for _ in range(50))
    assert level_of(0.42, rng) == 0.42


def test_the_training_mix_has_clean_frames_singles_and_every_mixture() -> None:
    rng = np.random.default_rng(0)
    drawn = [ConditionMix().sample(rng) for _ in range(600)]
    kinds = [tuple(e for e, _ in c.effects) for c in drawn]
    assert 0.1 < kinds.count(()) / len(kinds) < 0.2
    assert set(MIXTURES) <= set(kinds)
    levels = [lvl for c in drawn for _, lvl in c.effects]
    assert min(levels) < 0.05 and max(levels) > 0.95  # from barely-there to strong
