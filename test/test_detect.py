"""Person detectors (SSDLite via a generated OpenCV text graph, HOG) and the AP computation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from qdr_core.cli import main
from qdr_core.data.imageio import read_rgb
from qdr_core.detect import Detections, HogDetector, SSDLiteDetector, detection_ap
from qdr_core.detect.ssd_graph import build_ssd_text_graph, parse_text_message
from qdr_core.errors import ModelFileError
from qdr_core.export.random_model import write_random_model

DEMO = Path(__file__).resolve().parents[1] / "demo" / "images"


def _ssdlite() -> SSDLiteDetector:
    try:
        return SSDLiteDetector()
    except ModelFileError as exc:
        pytest.skip(f"SSDLite weights not installed: {exc}")


@pytest.fixture(scope="module")
def ssdlite() -> SSDLiteDetector:
    return _ssdlite()


def test_ssdlite_finds_the_people_in_a_clean_vtest_frame(ssdlite) -> None:
    # vtest_0380: four pedestrians, all clearly visible (checked by eye on the drawn boxes).
    detections = ssdlite.detect(read_rgb(DEMO / "vtest_0380.jpg"))
    found = detections.above(0.4)
    assert len(found) == 4 and len(detections.above(0.5)) >= 3  # the fourth, side-on, scores ~0.46
    x, y, w, h = found.boxes.T
    assert np.all(h > 1.5 * w)  # upright people, not random blobs
    assert np.all((h > 40) & (h < 200))
    assert np.all((x >= 0) & (y >= 0) & (x + w <= 768) & (y + h <= 576))


def test_ssdlite_person_count_on_every_demo_frame(ssdlite) -> None:
    counts = [len(ssdlite.detect(read_rgb(p)).above(0.5)) for p in sorted(DEMO.glob("*.jpg"))]
    assert len(counts) == 6 and all(c >= 2 for c in counts) and sum(counts) >= 18


def test_ssdlite_sees_less_in_the_dark(ssdlite) -> None:
    image = read_rgb(DEMO / "vtest_0060.jpg")
    reference, dark = ssdlite.detect(image), ssdlite.detect(image * 0.05)
    assert len(dark.above(0.5)) < len(reference.above(0.5))


def test_hog_baseline_finds_someone() -> None:
    found = HogDetector().detect(read_rgb(DEMO / "vtest_0380.jpg"))
    assert len(found) >= 2 and np.all(found.boxes[:, 3] > found.boxes[:, 2])


def test_text_graph_generator_rejects_a_non_ssd_graph(tmp_path) -> None:
    onnx = write_random_model(tmp_path, preset="efm-t").onnx
    with pytest.raises(ModelFileError):
        build_ssd_text_graph(onnx, tmp_path / "x.pbtxt")
    with pytest.raises(ModelFileError, match="not found"):
        build_ssd_text_graph(tmp_path / "absent.pb", tmp_path / "y.pbtxt")


def test_text_format_parser() -> None:
    msg = parse_text_message(
        'node { name: "a/b" op: "Const" attr { key: "v" value { f: 0.5 } } } node { name: "c" }'
    )
    assert [n["name"][0] for n in msg["node"]] == ["a/b", "c"]
    assert msg["node"][0]["attr"][0]["value"][0]["f"] == ["0.5"]


def boxes(*xywh: tuple[float, float, float, float], score: float = 0.9) -> Detections:
    arr = np.array(xywh, np.float32).reshape(-1, 4)
    return Detections(arr, np.full(len(arr), score, np.float32))


@pytest.mark.parametrize(
    ("predicted", "ap", "recall"),
    [
        ([boxes((10, 10, 20, 40)), boxes((50, 5, 10, 30))], 1.0, 1.0),  # identical
        ([boxes(), boxes()], 0.0, 0.0),  # nothing found
        # one of two found, plus a lower-scored false alarm: precision 1 up to recall 0.5
        ([boxes((100, 100, 20, 40), score=0.3), boxes((50, 5, 10, 30))], 0.5, 0.5),
        ([boxes((12, 12, 20, 40)), boxes((50, 5, 10, 30))], 1.0, 1.0),  # small shift: IoU > 0.5
    ],
)
def test_detection_ap(predicted, ap, recall) -> None:
    reference = [boxes((10, 10, 20, 40)), boxes((50, 5, 10, 30))]
    result = detection_ap(reference, predicted)
    assert result["n_reference"] == 2
    assert result["ap50"] == pytest.approx(ap, abs=0.02) and result["recall50"] == pytest.approx(recall)


def test_detection_ap_without_reference_boxes() -> None:
    result = detection_ap([boxes(score=0.1)], [boxes((1, 1, 5, 5))])
    assert result["ap50"] is None and result["n_reference"] == 0


def test_detect_eval_cli(tmp_path, capsys) -> None:
    _ssdlite()
    model = write_random_model(tmp_path / "m", preset="efm-t", head_std=0.0).onnx  # identity model
    out = tmp_path / "det.json"
    code = main(["detect-eval", "--task", "lowlight", "--model", str(model), "--images", str(DEMO),
                 "--json", str(out), "--max-frames", "2"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["n_frames"] == 2 and result["degraded"]["n_reference"] >= 4
    # An identity "restoration" returns the degraded frame: same detections, same AP.
    assert result["restored"]["ap50"] == pytest.approx(result["degraded"]["ap50"], abs=1e-6)


def test_detect_eval_cli_on_a_realistic_condition(tmp_path, capsys) -> None:
    """``--condition`` degrades with the condition suite's rows: a clean row leaves the frames alone
    (AP 1 against the clean reference), a fog row lowers the input PSNR."""
    _ssdlite()
    model = write_random_model(tmp_path / "m", preset="efm-t", head_std=0.0).onnx  # identity model
    results = {}
    for condition in ("clean", "fog:strong"):
        out = tmp_path / f"{condition}.json"
        code = main(["detect-eval", "--condition", condition, "--model", str(model), "--images", str(DEMO),
                     "--json", str(out), "--max-frames", "1"])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        results[condition] = json.loads(out.read_text())
    clean, fog = results["clean"], results["fog:strong"]
    assert clean["condition"] == "clean" and fog["condition"] == "fog:strong" and fog["task"] is None
    assert math.isinf(clean["psnr_input"]) and clean["degraded"]["ap50"] == pytest.approx(1.0)
    assert fog["psnr_input"] < 20
    assert main(["detect-eval", "--condition", "smog", "--model", str(model), "--images", str(DEMO),
                 "--json", str(tmp_path / "x.json")]) == 2  # fmt: skip
    assert "unknown effect 'smog'" in capsys.readouterr().err
