"""Temporal metrics on clips with known answers: static, shifted, brightness jitter."""

import numpy as np
import pytest

from qdr_core.temporal import TemporalMeter, mean_luma, optical_flow, temporal_metrics


def texture(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth random texture in [0.2, 0.8] (flow finds it; no clipping when brightened)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 2.0)
    base = (base - base.min()) / np.ptp(base)
    return (0.2 + 0.6 * base).astype(np.float32)


def shifted_clip(n: int = 6, step: int = 2, size: int = 64) -> list[np.ndarray]:
    """A camera panning right by ``step`` pixels a frame over a fixed texture."""
    big = texture(size, size + n * step)
    return [big[:, t * step : t * step + size].copy() for t in range(n)]


def test_static_clip_restored_perfectly_has_no_warping_error_or_flicker():
    frame = texture(64, 64)
    result = temporal_metrics([(t, frame, frame.copy()) for t in range(5)])
    assert result["n_pairs"] == 4
    assert result["warp_error_clean"] == pytest.approx(0.0, abs=1e-4)
    assert result["warp_error_output"] == pytest.approx(0.0, abs=1e-4)
    assert result["flicker_output"] == pytest.approx(0.0, abs=1e-6)


def test_flow_recovers_a_known_translation():
    a, b = shifted_clip(2, step=3)[:2]
    flow = optical_flow(b, a)  # frame t to t-1: content sits 3 px to the right in t-1
    centre = flow[16:48, 16:48]
    assert np.median(centre[..., 0]) == pytest.approx(3.0, abs=0.25)
    assert np.median(centre[..., 1]) == pytest.approx(0.0, abs=0.25)


def test_shifted_clip_warps_onto_itself_and_flags_frame_to_frame_changes():
    clean = shifted_clip()
    offsets = [0.0, 0.04, 0.0, 0.04, 0.0, 0.04]  # restored frames alternate by 0.04 = 10.2 levels
    restored = [c + o for c, o in zip(clean, offsets)]
    result = temporal_metrics([(t, c, r, c) for t, (c, r) in enumerate(zip(clean, restored))])
    assert result["warp_error_clean"] < 1.0  # the floor: interpolation and flow error only
    assert result["warp_error_input"] == pytest.approx(result["warp_error_clean"], abs=1e-6)
    assert result["warp_error_output"] == pytest.approx(0.04 * 255, abs=1.0)
    assert 0.5 < result["valid_fraction"] <= 1.0  # the columns entering the view are excluded


def test_flicker_equals_the_std_of_a_brightness_jitter():
    clean = shifted_clip(8)
    jitter = np.random.default_rng(1).normal(0.0, 0.02, size=8).astype(np.float32)
    restored = [c + j for c, j in zip(clean, jitter)]
    result = temporal_metrics([(t, c, r) for t, (c, r) in enumerate(zip(clean, restored))])
    assert result["flicker_output"] == pytest.approx(float(np.std(jitter)) * 255, rel=1e-3)


def test_frames_are_taken_in_stamp_order():
    clean = shifted_clip()
    in_order = temporal_metrics([(t, c, c) for t, c in enumerate(clean)])
    shuffled = temporal_metrics([(t, c, c) for t, c in reversed(list(enumerate(clean)))])
    assert shuffled == in_order


def test_a_gap_is_not_compared():
    clean = shifted_clip(4)
    meter = TemporalMeter()
    meter.add(0, clean[0], clean[0])
    meter.add(1, clean[1], clean[1])
    meter.reset_motion()
    meter.add(5, clean[3], clean[3])
    assert meter.result()["n_pairs"] == 1


def test_mismatched_frames_are_rejected():
    with pytest.raises(ValueError, match="one size"):
        TemporalMeter().add(0, np.zeros((8, 8, 3), np.float32), np.zeros((8, 9, 3), np.float32))


def test_mean_luma_is_in_8_bit_levels():
    assert mean_luma(np.full((4, 4, 3), 0.5, np.float32)) == pytest.approx(127.5, rel=1e-5)
