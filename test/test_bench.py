"""``qdr bench``: a reduced run writes well-formed JSON and a PNG (no speed assertions), and the
bench's own arithmetic (fits, MAC counts, timing statistics, peers) is right."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from qdr_core.bench.frames import parse_resolution
from qdr_core.bench.scaling import fit_ms_per_megapixel
from qdr_core.bench.timing import Timing, interleaved, measure
from qdr_core.cli import main


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("bench")
    out, empty_models = root / "results", root / "no_models"
    empty_models.mkdir()
    rc = main([
        "bench", "--quick", "--threads", "1", "--resolutions", "96x64,160x120",
        "--runtimes", "ort-fp32,ort-int8-cpu,trt-int8", "--repeats", "3", "--presets", "efm-t",
        "--preset", "efm-t", "--models-dir", str(empty_models), "--cache", str(root / "cache"),
        "--peer-images", "1", "--peer-max-side", "96", "--no-ros-node", "--output", str(out), "--name", "bench_test",
    ])  # fmt: skip
    return rc, out


def test_quick_bench_writes_wellformed_json(bench_run):
    rc, out = bench_run
    result = json.loads((out / "bench_test.json").read_text())
    assert rc == 0, result["errors"]
    assert result["schema"] == "qdr-bench/1" and result["mode"] == "quick" and result["errors"] == {}
    machine = result["machine"]
    assert machine["cpu_model"] and len(machine["loadavg"]) == 3 and result["loadavg_end"]
    # GPU rows need their card: listed by nvidia-smi where there is one, an empty list here.
    import shutil

    assert isinstance(machine["gpus"], list) and (shutil.which("nvidia-smi") or machine["gpus"] == [])
    assert {m["source"] for m in result["models"].values()} == {"stand-in"}
    assert "models_note" in result

    rows = result["runtimes"]
    assert {(r["runtime"], r["width"]) for r in rows} == {
        (k, w) for k in ("ort-fp32", "ort-int8-cpu") for w in (96, 160)
    }
    for r in rows:
        assert r["ok"], r
        for key in ("median_ms", "p95_ms", "fps", "load_s", "peak_rss_mb", "megapixels"):
            assert _positive(r[key]), (key, r)
        assert r["p95_ms"] >= r["median_ms"] >= r["min_ms"]

    # TensorRT is not installed here: reported as unavailable, with a reason, never silently dropped.
    trt = [u for u in result["unavailable"] if u["runtime"] == "trt-int8"]
    if trt:
        assert trt[0]["reason"]

    (ratio,) = result["ratios"]
    assert _positive(ratio["int8_fp32_speedup"]) and _positive(ratio["int8_trt_qdq_vs_fp32_speedup"])
    assert all(_positive(v) for v in result["roofline"]["peak_gops"].values())
    (eff,) = result["efficiency"]
    assert _positive(eff["achieved_int8_gops"]) and _positive(eff["fraction_of_roofline"])
    assert {f["runtime"] for f in result["scaling"]["pixels"]} == {"ort-fp32", "ort-int8-cpu"}
    assert all(math.isfinite(f["ms_per_megapixel"]) for f in result["scaling"]["pixels"])
    (preset,) = result["scaling"]["presets"]
    assert preset["preset"] == "efm-t" and _positive(preset["gmacs"]) and _positive(preset["int8_fps"])

    pipe = result["node"]["frame_pipeline"]
    assert _positive(pipe["fps_ratio"]) and _positive(pipe["latency_ratio"])
    assert result["node"]["ros_node"]["status"] == "skipped"

    peers = result["peers"]["tasks"]["lowlight"]
    measured = [p for p in peers if "psnr_output" in p]
    assert {"input (no restoration)", "gamma (adaptive)", "CLAHE (Lab L)"} <= {p["method"] for p in measured}
    assert all(_positive(p["psnr_output"]) and _positive(p["fps"]) for p in measured)
    # No trained model in the (empty) models dir: qdr's quality is reported as unavailable, not faked.
    assert all(p["kind"] == "unavailable" for p in peers if p["method"].startswith("qdr"))

    names = {t["target"] for t in result["targets"]}
    assert any("INT8 / ORT FP32" in n for n in names) and any("roofline" in n for n in names)
    assert (out / "bench_test.png").stat().st_size > 10_000


def test_fit_ms_per_megapixel_recovers_a_line():
    fit = fit_ms_per_megapixel(
        [0.0768, 0.3072, 0.9216, 2.0736], [2 + 50 * x for x in (0.0768, 0.3072, 0.9216, 2.0736)]
    )
    assert fit["ms_per_megapixel"] == pytest.approx(50) and fit["intercept_ms"] == pytest.approx(2)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit_ms_per_megapixel([0.3], [10.0]) is None


def test_onnx_complexity_matches_the_torch_mac_count(tmp_path):
    pytest.importorskip("torch")
    from qdr_core.bench.models import onnx_complexity
    from qdr_core.export.random_model import write_random_model
    from qdr_core.models import build_model
    from qdr_core.models.complexity import count_macs

    files = write_random_model(tmp_path, preset="efm-t")
    assert onnx_complexity(files.onnx, 120, 160)["macs"] == count_macs(build_model("efm-t"), 120, 160)


def test_timing_statistics():
    t = Timing.from_seconds([0.001 * i for i in range(1, 21)])
    assert t.median_ms == pytest.approx(10.5) and t.min_ms == pytest.approx(1) and t.n == 20
    assert t.p95_ms >= t.median_ms and t.fps == pytest.approx(1000 / 10.5)
    calls = []
    measure(lambda: calls.append(1), warmup=2, repeats=5)
    assert len(calls) == 7
    both = interleaved({"a": lambda: None, "b": lambda: sum(range(1000))}, warmup=1, repeats=4)
    assert set(both) == {"a", "b"} and both["a"].n == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [("640x480", (640, 480)), ("1920X1080", (1920, 1080)), ("640", None), ("0x480", None), ("axb", None)],
)
def test_parse_resolution(text, expected):
    if expected is None:
        with pytest.raises(ValueError):
            parse_resolution(text)
    else:
        assert parse_resolution(text) == expected


def test_dark_channel_prior_dehazes_a_synthetic_haze():
    from qdr_core.bench.peers import dark_channel_prior
    from qdr_core.metrics import psnr

    rng = np.random.default_rng(0)
    clean = np.clip(rng.random((8, 8, 3)).repeat(12, 0).repeat(12, 1), 0.05, 0.9).astype(np.float32)
    t = np.linspace(0.35, 0.8, clean.shape[1], dtype=np.float32)[None, :, None]
    hazy = clean * t + 0.95 * (1 - t)
    assert psnr(clean, dark_channel_prior(hazy)) > psnr(clean, hazy) + 3


def test_node_vs_runtime_summary():
    from qdr_core.bench.node import summarize_node_result

    # The layout qdr_ros.bench writes (its summary()).
    raw = {"runtime_fps": 4.0, "node_fps": 3.8, "node_fps_ratio": 0.95, "runtime_latency_ms_p50": 250.0,
           "node_latency_ms_p50": 300.0, "added_latency_ms_p50": 50.0}  # fmt: skip
    s = summarize_node_result(raw)
    assert s["fps_ratio"] == pytest.approx(0.95) and s["latency_ratio"] == pytest.approx(1.2)
    assert s["added_latency_ms"] == pytest.approx(50) and s["added_latency_ratio"] == pytest.approx(0.2)


STORED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "bench_quick.json"


def test_render_takes_the_format_as_an_argument():
    from qdr_core.bench.report import render, table

    assert table(["a", "b"], [[1.25, "x"]], markdown=True) == "| a | b |\n|---|---|\n| 1.2 | x |"
    assert table(["a", "b"], [[1.25, "x"]]) == "a    b\n---  -\n1.2  x"
    result = json.loads(STORED.read_text())
    markdown, text = render(result, markdown=True), render(result)
    assert "|---|" in markdown and "|---|" not in text
    assert render(result) == text  # no state left behind by the markdown call
    assert "## Targets" in text and "## Runtimes" in text


def test_targets_are_data_checked_against_their_threshold():
    from qdr_core.bench.targets import TARGETS, Target, targets

    higher = Target("fps", 30.0, lambda r: (r["fps"], "n"))
    assert higher.check({"fps": 31.0})["met"] is True and higher.check({"fps": 29.0})["met"] is False
    lower = Target("latency", 1.2, lambda r: (r["x"], ""), higher=False)
    assert lower.check({"x": 1.1})["met"] is True and lower.check({"x": None})["met"] is None
    assert Target("absent", 1.0, lambda r: None).check({}) is None

    rows = targets(json.loads(STORED.read_text()))
    names = [t.name for t in TARGETS]
    listed = [r["target"] for r in rows if r["target"] in names]
    assert listed == sorted(listed, key=names.index) and names[0] in listed
    assert all(r["met"] is not None for r in rows if r["value"] is not None)
    peer_rows = [r for r in rows if r["target"] not in names]
    assert {r["target"].split(":")[0] for r in peer_rows} == set(
        json.loads(STORED.read_text())["peers"]["tasks"]
    )


def test_a_broken_stand_in_export_raises_instead_of_falling_back(tmp_path):
    from qdr_core.bench.models import standin_files
    from qdr_core.errors import ModelFileError

    folder = tmp_path / "efm-t"
    folder.mkdir()
    (folder / "fp32.pt").write_bytes(b"not a checkpoint")
    (folder / "fp32.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match=r"fp32\.pt"):
        standin_files("efm-t", tmp_path)
    assert not (folder / "int8_cpu.onnx").exists()


def test_the_streaming_row_times_a_tasks_stream_file_against_its_still_one(tmp_path):
    """Issue #14's `qdr bench` row: `models/<task>/stream/int8_cpu.onnx` restoring a stream vs the
    task's single-frame file; left out (and no target row) where the task has none."""
    pytest.importorskip("torch")
    from qdr_core.bench.models import ModelFile
    from qdr_core.bench.suite import BenchOptions, stream_step
    from qdr_core.bench.targets import targets
    from qdr_core.export.random_model import write_random_model

    single = write_random_model(tmp_path / "models" / "noise", preset="efm-t", name="int8_cpu").onnx
    models = {"int8_cpu": ModelFile("int8_cpu", str(single), "shipped")}
    options = BenchOptions.quick(task="noise", models_dir=str(tmp_path / "models"), resolutions=[(96, 64)])
    skipped = stream_step(options, models, lambda _: None)
    assert skipped["status"] == "skipped" and "stream" in skipped["note"]
    assert not [t for t in targets({"stream": skipped}) if "streaming" in t["target"]]

    write_random_model(tmp_path / "models" / "noise" / "stream", preset="efm-t-recur", name="int8_cpu")
    row = stream_step(options, models, lambda _: None)
    assert row["status"] == "ok" and (row["width"], row["height"]) == (96, 64)
    assert _positive(row["time_ratio"]) and row["macs_ratio"] > 1.0  # the fusion adds MACs
    (target,) = [t for t in targets({"stream": row}) if "streaming" in t["target"]]
    assert target["value"] == row["time_ratio"] and target["met"] == (row["time_ratio"] <= 1.25)
