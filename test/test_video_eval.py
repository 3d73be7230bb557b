"""Clip evaluation: ``evaluate_clips`` and ``qdr eval --video`` on a tiny video and a random model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from clip_helpers import panning_frames as shared_panning_frames

from qdr_core.cli import main
from qdr_core.data.clips import Clip, ClipDegrader, read_frames
from qdr_core.evaluate import TEMPORAL_KEYS, evaluate_clips
from qdr_core.export.random_model import write_random_model
from qdr_core.runtime import load_runtime
from qdr_core.temporal import temporal_metrics


def panning_frames(n: int = 6, size: int = 48) -> list[np.ndarray]:
    return shared_panning_frames(n, size)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_random_model(tmp_path_factory.mktemp("model") / "m", preset="efm-t", seed=3).onnx


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "pan.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (48, 48))
    for frame in panning_frames(8):
        writer.write(cv2.cvtColor((frame * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_evaluate_clips_scores_frames_and_time(model):
    clip = Clip("pan", panning_frames())
    with load_runtime(model, backend="onnxruntime") as runtime:
        result = evaluate_clips(runtime, [clip], "noise", seed=1)
        restored = [
            runtime.infer(f)
            for f in (ClipDegrader("noise", 1000, 6)(t, c) for t, c in enumerate(clip.frames))
        ]
    assert result["n_clips"] == 1 and result["n_frames"] == 6 and len(result["clips"][0]["frames"]) == 6
    for key in ("psnr_input", "psnr_output", "ssim_input", "ssim_output", *TEMPORAL_KEYS):
        assert np.isfinite(result[key]), key
    # the same numbers as the temporal metrics of the same clip, computed directly
    degraded = [ClipDegrader("noise", 1000, 6)(t, c) for t, c in enumerate(clip.frames)]
    direct = temporal_metrics(
        [(t, c, r, d) for t, (c, r, d) in enumerate(zip(clip.frames, restored, degraded))]
    )
    for key in TEMPORAL_KEYS:
        assert result[key] == pytest.approx(direct[key], rel=1e-5)
    # sigma-25 noise, fresh per frame, is far from the clean clip's motion; its mean is steady
    assert result["warp_error_input"] > 5 * result["warp_error_clean"]
    assert result["flicker_input"] < 1.0


def test_read_frames_reads_consecutive_frames(video):
    frames = read_frames(video, 2, 3)
    assert len(frames) == 3 and frames[0].shape == (48, 48, 3)
    expected = panning_frames(8)[2]
    assert np.abs(frames[0] - expected).mean() < 0.03  # MJPG round trip


def test_eval_video_writes_temporal_metrics(capsys, model, video, tmp_path):
    out = tmp_path / "clip.json"
    code = main(["eval", "--model", str(model), "--task", "lowlight", "--video", str(video), "--frames", "5",
                 "--json", str(out)])  # fmt: skip
    text = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert code == 0 and "warping error" in text and "flicker" in text
    assert result["n_frames"] == 5 and result["degradation"] == "lowlight" and result["task"] == "lowlight"
    assert all(key in result for key in TEMPORAL_KEYS)


def test_eval_video_with_a_condition_and_drift(capsys, model, video, tmp_path):
    out = tmp_path / "fog.json"
    code = main(["eval", "--model", str(model), "--task", "haze", "--video", str(video), "--frames", "4",
                 "--condition", "fog:medium", "--drift", "--json", str(out)])  # fmt: skip
    capsys.readouterr()
    result = json.loads(out.read_text())
    assert code == 0 and result["degradation"] == "fog:medium" and result["drift"] is True


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--video", "{root}/missing.avi"], "cannot open video"),
        (["--video", "{video}", "--frames", "1"], "--frames must be >= 2"),
        (["--video", "{video}", "--start", "100"], "no frames from 100"),
        (["--video", "{video}", "--condition", "smog"], "unknown effect"),
    ],
)
def test_eval_video_errors_are_one_line(capsys, model, video, tmp_path, extra, message):
    argv = ["eval", "--model", str(model), "--task", "noise"]
    argv += [a.format(root=tmp_path, video=video) for a in extra]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
