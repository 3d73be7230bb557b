"""Coherent clips: parameters kept (or drifting) over a clip, fresh noise, moving rain, camera motion."""

import itertools

import numpy as np
import pytest

from qdr_core.data.clips import (
    VIDEO_PARTS,
    CameraMotion,
    ClipDegrader,
    camera_motion,
    degrade_clip,
)
from qdr_core.data.degrade.pipeline import Condition, synthesize
from qdr_core.errors import ConfigError, DataError
from qdr_core.temporal import mean_luma, temporal_metrics


def scene(h: int = 64, w: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([0.2 + 0.6 * xx / w, 0.3 + 0.4 * yy / h, np.full_like(xx, 0.5)], axis=2)


def static_clip(n: int = 6) -> list[np.ndarray]:
    return [scene() for _ in range(n)]


@pytest.mark.parametrize("spec", ["lowlight", "noise", "rain", "night:strong", "sensor:0.8"])
def test_a_clip_keeps_its_severity_and_draws_fresh_noise(spec):
    clip = degrade_clip(static_clip(), spec, seed=3)
    assert not np.array_equal(clip[0], clip[1])  # noise / streaks are new in each frame
    lumas = [mean_luma(f) for f in clip]
    per_frame = [ClipDegrader(spec, 3, coherent=False)(t, f) for t, f in enumerate(static_clip())]
    # the clip's brightness holds still; frames drawn as stills jump between severities
    assert np.std(lumas) < 0.5 * np.std([mean_luma(f) for f in per_frame]) + 0.3


@pytest.mark.parametrize("spec", ["haze", "fog:medium"])
def test_a_noiseless_condition_is_the_same_on_every_frame_of_a_static_clip(spec):
    clip = degrade_clip(static_clip(4), spec, seed=1)
    assert all(np.array_equal(clip[0], f) for f in clip[1:])


def test_clips_are_reproducible_and_seeded():
    a, b = (
        degrade_clip(static_clip(3), "fog:medium+rain:mild", 5),
        degrade_clip(static_clip(3), "fog:medium+rain:mild", 5),
    )
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = degrade_clip(static_clip(3), "fog:medium+rain:mild", 6)
    assert not np.array_equal(a[0], c[0])


def test_rain_streaks_fall_between_frames():
    # fresh streaks would give a new pattern; falling ones are the first frame's, moved down
    degrader = ClipDegrader("rain:strong", seed=2, rain_step=0.5)
    frames = [degrader.with_record(t, scene()) for t in range(3)]
    falls = [next(s for s in rec["stages"] if s["effect"] == "rain")["params"]["fall"] for _, rec in frames]
    assert falls == [0.0, 0.5, 1.0]
    rain0 = next(s for s in frames[0][1]["stages"] if s["effect"] == "rain")["params"]
    rain1 = next(s for s in frames[1][1]["stages"] if s["effect"] == "rain")["params"]
    assert rain0["layers"] == rain1["layers"] and rain0["drops"] == rain1["drops"]
    assert not np.array_equal(frames[0][0], frames[1][0])


def test_drift_moves_the_level_across_the_band():
    clip = degrade_clip(static_clip(5), "fog:strong", seed=0, drift=True)
    lumas = [mean_luma(f) for f in clip]
    distance = [np.abs(f - scene()).mean() for f in clip]
    assert all(b > a for a, b in itertools.pairwise(distance)), (distance, lumas)  # fog thickens
    task = degrade_clip(static_clip(5), "lowlight", seed=0, drift=True)
    assert np.std([mean_luma(f) for f in task]) > 0.1
    with pytest.raises(DataError, match="length"):
        ClipDegrader("fog:mild", drift=True)


def test_a_still_is_synthesised_as_before_the_clip_plan():
    # the default plan draws everything from the one generator, in the order it always did
    out, record = synthesize(scene(), Condition.parse("fog:medium+rain:mild"), np.random.default_rng(4))
    again, _ = synthesize(scene(), Condition.parse("fog:medium+rain:mild"), np.random.default_rng(4))
    assert np.array_equal(out, again)
    assert [s["effect"] for s in record["stages"]] == ["fog", "rain"]


def test_unknown_spec_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown effect"):
        ClipDegrader("smog:mild")


def test_camera_motion_is_smooth_and_measurable():
    rng = np.random.default_rng(0)
    photo = np.random.default_rng(1).random((80, 96, 3), dtype=np.float32)
    import cv2

    photo = cv2.GaussianBlur(photo, (0, 0), 1.5)
    frames = camera_motion(photo, 6, rng, CameraMotion(margin=0.15))
    assert len(frames) == 6 and frames[0].shape == (56, 67, 3)
    steps = [np.abs(a - b).mean() for a, b in itertools.pairwise(frames)]
    assert max(steps) > 0  # it moves
    result = temporal_metrics([(t, f, f) for t, f in enumerate(frames)])
    assert result["valid_fraction"] > 0.8  # small, smooth motion: the flow follows it
    still = camera_motion(photo, 3, rng, CameraMotion(shift=0, rotation=0, zoom=0, tilt=0, jitter=0))
    assert np.allclose(still[0], still[2])


def test_video_split_keeps_vtest_for_evaluation():
    vtest = [p for p in VIDEO_PARTS if p.video == "vtest.avi"]
    assert [p.split for p in vtest] == ["eval"]  # its stills are the `other` split
    for video in {p.video for p in VIDEO_PARTS}:
        parts = sorted((p for p in VIDEO_PARTS if p.video == video), key=lambda p: p.start)
        assert parts[0].start == 0 and parts[-1].stop is None
        assert all(a.stop == b.start for a, b in itertools.pairwise(parts))  # no gap, no overlap


def test_a_task_clip_records_its_collapsed_ranges():
    degrader = ClipDegrader("lowlight", seed=2)
    (_, first), (_, second) = degrader.with_record(0, scene()), degrader.with_record(1, scene())
    assert first == second and first["task"] == "lowlight"
    lo, hi = first["ranges"]["exposure"]
    assert lo == hi and 0.04 <= lo <= 0.2
