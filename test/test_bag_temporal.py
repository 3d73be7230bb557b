"""Bags as clips: ``qdr bag make`` degrades coherently by default, ``qdr bag eval`` (offline) and
its report carry the temporal metrics. Real rosbags and onnxruntime, tiny frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
from clip_helpers import panning_frames as shared_panning_frames

from qdr_core.bag.evaluate import evaluate_bag_offline
from qdr_core.bag.io import CLEAN_TOPIC, IMAGE_TOPIC, BagReader
from qdr_core.bag.make import make_bag
from qdr_core.cli import main
from qdr_core.data.imageio import write_rgb
from qdr_core.export.random_model import write_random_model
from qdr_core.runtime import load_runtime
from qdr_core.temporal import mean_luma, temporal_metrics

START = 1_700_000_000_000_000_000


def panning_frames(n: int = 5, size: int = 40) -> list[np.ndarray]:
    return shared_panning_frames(n, size)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_random_model(tmp_path_factory.mktemp("model") / "m", preset="efm-t", seed=3).onnx


def bag_frames(bag) -> tuple[list[np.ndarray], list[np.ndarray]]:
    with BagReader(bag) as reader:
        return [im.rgb() for im in reader.images([IMAGE_TOPIC])], [
            im.rgb() for im in reader.images([CLEAN_TOPIC])
        ]


def named(frames):
    return ((f"f{i}", f) for i, f in enumerate(frames))


def test_make_is_coherent_by_default_and_per_frame_on_request(tmp_path):
    still = [panning_frames(1)[0]] * 6
    coherent = make_bag("lowlight", named(still), tmp_path / "coherent", start_ns=START, seed=4)
    per_frame = make_bag("lowlight", named(still), tmp_path / "per_frame", start_ns=START, seed=4,
                         per_frame_severity=True)  # fmt: skip
    assert coherent["coherent"] is True and per_frame["coherent"] is False
    steady, _ = bag_frames(tmp_path / "coherent")
    jumpy, _ = bag_frames(tmp_path / "per_frame")
    assert not np.array_equal(steady[0], steady[1])  # fresh noise per frame
    assert np.std([mean_luma(f) for f in steady]) < 0.3 * np.std([mean_luma(f) for f in jumpy])


def test_offline_eval_reports_temporal_metrics(tmp_path, model):
    frames = panning_frames()
    make_bag("noise", named(frames), tmp_path / "pan", start_ns=START)
    with load_runtime(model, backend="onnxruntime") as runtime:
        result, _ = evaluate_bag_offline(tmp_path / "pan", runtime)
        degraded, clean = bag_frames(tmp_path / "pan")
        restored = [runtime.infer(d) for d in degraded]
    direct = temporal_metrics([(t, c, r, d) for t, (c, r, d) in enumerate(zip(clean, restored, degraded))])
    assert result["n_pairs"] == 4
    for key in (
        "warp_error_clean",
        "warp_error_input",
        "warp_error_output",
        "flicker_input",
        "flicker_output",
    ):
        assert result[key] == pytest.approx(direct[key], rel=1e-6), key
    assert result["warp_error_input"] > 3 * result["warp_error_clean"]  # fresh noise per frame


def test_bag_cli_make_flags_and_report(tmp_path, model, capsys):
    images = tmp_path / "images"
    for i, frame in enumerate(panning_frames(4)):
        write_rgb(images / f"{i:03d}.png", frame)
    bag = tmp_path / "fog"
    code = main(["bag", "make", "--task", "haze", "--condition", "fog:medium", "--images", str(images),
                 "--output", str(bag)])  # fmt: skip
    assert code == 0 and "one severity for the bag" in capsys.readouterr().out
    code = main(["bag", "make", "--task", "haze", "--per-frame-severity", "--images", str(images),
                 "--output", str(tmp_path / "jumpy")])  # fmt: skip
    assert code == 0 and "a severity per frame" in capsys.readouterr().out
    out, report = tmp_path / "eval.json", tmp_path / "report"
    code = main(["bag", "eval", "--bag", str(bag), "--model", str(model), "--json", str(out), "--detector", "none",
                 "--report", str(report)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "warp_error_output" in json.loads(out.read_text())
    text = (report / "report.md").read_text()
    assert "warping error degraded → restored" in text and "flicker degraded → restored" in text
    code = main(["bag", "make", "--task", "haze", "--condition", "smog", "--images", str(images),
                 "--output", str(tmp_path / "bad")])  # fmt: skip
    assert code == 2 and "unknown effect" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
