"""``qdr demo``: model choice and a reduced end-to-end run (one frame per segment of the day through
the live node)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qdr_core.cli import main
from qdr_core.commands.demo import default_model
from qdr_core.errors import ModelFileError
from qdr_core.export.random_model import write_random_model


def test_default_model_prefers_int8_then_fp32(tmp_path) -> None:
    task_dir = tmp_path / "models" / "lowlight"
    task_dir.mkdir(parents=True)
    with pytest.raises(ModelFileError, match="no bundled lowlight model"):
        default_model("lowlight", [tmp_path])
    (task_dir / "fp32.onnx").write_bytes(b"x")
    assert default_model("lowlight", [tmp_path]).name == "fp32.onnx"
    (task_dir / "int8_cpu.onnx").write_bytes(b"x")
    assert default_model("lowlight", [tmp_path]).name == "int8_cpu.onnx"


def test_demo_reduced_run(tmp_path, capsys) -> None:
    try:
        from qdr_core.detect import SSDLiteDetector

        SSDLiteDetector()
    except ModelFileError as exc:
        pytest.skip(f"SSDLite weights not installed: {exc}")
    model = write_random_model(tmp_path / "m", preset="efm-t", head_std=0.01).checkpoint.with_suffix(".onnx")
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--model",
            str(model),
            "--output",
            str(out),
            "--per-segment",
            "1",
            "--rate",
            "10",
            "--threads",
            "1",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads((out / "result.json").read_text())
    # Live, the node may drop a frame when the machine is loaded (its counters say so): the scored
    # frames are the ones that came back.
    scored = result["frames_received"] if result["mode"] == "live" else 5
    assert result["n_frames"] == scored and "psnr_input" in result
    assert result["detection"]["degraded"]["n_reference"] > 0
    assert "PSNR (dB)" in captured.out and "report:" in captured.out
    assert (out / "report" / "report.html").is_file() and (out / "report" / "grid.png").is_file()
    assert (out / "report" / "crops.png").is_file()
    segments = result["segments"]
    assert [s["name"] for s in segments] == ["daylight", "dusk", "night", "rainy night", "fog"]
    assert sum(s["n_frames"] for s in segments) == result["n_frames"]
    assert "PSNR night (dB)" in captured.out or result["mode"] == "live"
    report_md = (out / "report" / "report.md").read_text()
    assert "## PSNR per segment" in report_md and "ring around bright objects" in report_md
    if result["mode"] == "live":
        assert (
            result["frames_sent"] == 5 and result["frames_received"] >= 1 and result["latency_ms"]["p95"] > 0
        )
        counters = result["node_counters"]
        missing = counters["dropped"] + counters["lost"] + counters["throttled"] + counters["failed"]
        assert result["frames_dropped"] <= missing, counters  # every missing frame is accounted for
    else:
        assert "OFFLINE" in captured.out
    # A second run replaces the previous demo bag instead of failing.
    assert main(["demo", "--model", str(model), "--output", str(out), "--per-segment", "1", "--offline",
                 "--detector", "none"]) == 0  # fmt: skip
    assert Path(out / "bag" / "metadata.yaml").is_file()
