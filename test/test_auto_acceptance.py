"""scripts/auto_acceptance.py: the auto model against the best specialist and the best cascade of two."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("auto_acceptance", REPO / "scripts" / "auto_acceptance.py")
acc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(acc)

ROWS = ("clean", "fog:mild", "fog+rain", "rain+night")
INPUT = {"clean": None, "fog:mild": 11.0, "fog+rain": 8.0, "rain+night": 10.0}


def _suite(outputs: dict[str, dict[str, float]], cascades: dict[str, dict[str, float]] | None = None) -> dict:
    """A suite JSON as ``qdr suite conditions`` writes it: model -> condition -> mean output PSNR."""
    cascades = cascades or {}
    cells = []
    for model, by_row in {**outputs, **cascades}.items():
        for row, out in by_row.items():
            p_in = INPUT[row]
            cells.append({
                "model": model, "condition": row, "psnr_input": p_in, "psnr_output": out,
                "psnr_gain": None if p_in is None else out - p_in, "harm": p_in is not None and out < p_in,
            })  # fmt: skip
    models = [{"name": m, "path": f"models/{m}.onnx", "backend": "onnxruntime"} for m in outputs]
    models += [{"name": m, "cascade": m.split(">"), "rows": list(r)} for m, r in cascades.items()]
    return {"seed": 0, "source": "split:eval", "models": models, "cells": cells}


AUTO = _suite({"auto/int8_cpu": {"clean": 30.0, "fog:mild": 15.0, "fog+rain": 14.0, "rain+night": 12.0}})
SPECIALISTS = {
    "haze/int8_cpu": {"clean": 25.0, "fog:mild": 15.5, "fog+rain": 12.0, "rain+night": 9.0},
    "lowlight/int8_cpu": {"clean": 10.0, "fog:mild": 5.0, "fog+rain": 4.0, "rain+night": 10.5},
}
CASCADES = {
    "haze/int8_cpu>lowlight/int8_cpu": {"fog+rain": 13.5, "rain+night": 10.9},
    "lowlight/int8_cpu>haze/int8_cpu": {"fog+rain": 11.0, "rain+night": 10.0},
}


def _row(result: dict, condition: str) -> dict:
    return next(r for r in result["rows"] if r["condition"] == condition)


@pytest.mark.parametrize("where", ["specialists_json", "cascades_json"])
def test_each_mixture_row_names_the_best_cascade_and_its_margin(where) -> None:
    if where == "specialists_json":
        result = acc.acceptance(AUTO, _suite(SPECIALISTS, CASCADES))
    else:
        result = acc.acceptance(AUTO, _suite(SPECIALISTS), _suite(SPECIALISTS, CASCADES))
    assert result["cascades"] == sorted(CASCADES)
    fog_rain, rain_night = _row(result, "fog+rain"), _row(result, "rain+night")
    # fog+rain: 2.0 dB above the best single specialist, only 0.5 above the best cascade -> not met.
    assert fog_rain["best_specialist"] == "haze/int8_cpu" and fog_rain["margin"] == pytest.approx(2.0)
    assert fog_rain["best_cascade"] == "haze/int8_cpu>lowlight/int8_cpu"
    assert fog_rain["best_cascade_psnr"] == 13.5 and fog_rain["cascade_margin"] == pytest.approx(0.5)
    assert not fog_rain["met"] and "best cascade of two + 1 dB" in fog_rain["target"]
    # rain+night: +1.5 over lowlight, +1.1 over the best cascade -> met.
    assert rain_night["best_cascade"] == "haze/int8_cpu>lowlight/int8_cpu" and rain_night["met"]
    # Rows that are not mixtures carry no cascade comparison; cascades never count as single specialists.
    assert "best_cascade" not in _row(result, "fog:mild") and _row(result, "fog:mild")["met"]
    assert _row(result, "clean")["best_specialist"] == "haze/int8_cpu"
    text = acc.markdown(result)
    assert "| haze/int8_cpu>lowlight/int8_cpu 13.50 | +0.50 |" in text
    assert "| fog:mild | 11.00 | 15.00 |" in text and "| — | — | auto within 1.0 dB" in text
    assert "auto is >= 1 dB above the best cascade on 1 of the 2 mixtures" in text


def test_without_cascades_the_mixtures_are_judged_on_single_specialists_and_say_not_run() -> None:
    result = acc.acceptance(AUTO, _suite(SPECIALISTS))
    assert result["cascades"] == []
    # fog+rain is 2.0 dB above the best single specialist: met on the part that was run.
    fog_rain = _row(result, "fog+rain")
    assert fog_rain["met"] and fog_rain["best_cascade"] is None and fog_rain["cascade_margin"] is None
    assert "cascades of two: not run" in fog_rain["target"]
    text = acc.markdown(result)
    assert text.count("| not run | — |") == 2
    assert "Cascades of two specialists: not run" in text


def test_suites_must_match_and_a_cascades_json_must_hold_cascades() -> None:
    other_seed = {**_suite(SPECIALISTS, CASCADES), "seed": 1}
    with pytest.raises(SystemExit, match="differ in seed or photos"):
        acc.acceptance(AUTO, _suite(SPECIALISTS), other_seed)
    with pytest.raises(SystemExit, match="holds no cascade cells"):
        acc.acceptance(AUTO, _suite(SPECIALISTS), _suite(SPECIALISTS))


def test_main_writes_json_and_markdown(tmp_path) -> None:
    paths = {}
    for name, data in (
        ("auto", AUTO),
        ("spec", _suite(SPECIALISTS)),
        ("casc", _suite(SPECIALISTS, CASCADES)),
    ):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(data))
    out = tmp_path / "acc"
    argv = [str(paths["auto"]), str(paths["spec"]), "--cascades", str(paths["casc"]), "--out", str(out)]
    assert acc.main(argv) == 0
    written = json.loads(out.with_suffix(".json").read_text())
    assert _row(written, "rain+night")["cascade_margin"] == pytest.approx(1.1)
    assert out.with_suffix(".md").read_text() == acc.markdown(written)


def test_the_suites_own_json_is_read(tmp_path) -> None:
    """The script reads what ``run_suite`` writes: cascades are the models with a ``cascade`` entry."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from qdr_core.data.sources import skimage_photo
    from qdr_core.runtime import load_runtime
    from qdr_core.suite.conditions import Cascade, run_suite, select_rows
    from qdr_core.suite.report import read_json, write_json

    def scale(path: Path, k: float) -> str:
        graph = helper.make_graph(
            [helper.make_node("Mul", ["x", "k"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h", "w"])],
            [helper.make_tensor("k", TensorProto.FLOAT, [], [k])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, str(path))
        return str(path)

    image = [skimage_photo("coffee", max_side=40)]
    rows = select_rows(["clean", "rain+night"])
    with (
        load_runtime(scale(tmp_path / "a.onnx", 1.0)) as ident,
        load_runtime(scale(tmp_path / "b.onnx", 1.3)) as bright,
    ):
        auto = run_suite({"auto/int8_cpu": ident}, image, ["coffee"], rows)
        spec = run_suite(
            {"a": ident, "b": bright},
            image,
            ["coffee"],
            rows,
            cascades=[Cascade("b", "b"), Cascade("a", "b")],
        )
    for data in (auto, spec):
        data["source"] = "photos"
    auto, spec = (
        read_json(write_json(d, tmp_path / f"{n}.json")) for n, d in (("auto", auto), ("spec", spec))
    )
    result = acc.acceptance(auto, spec)
    assert result["cascades"] == ["a>b", "b>b"]
    row = _row(result, "rain+night")
    best = max(("a>b", "b>b"), key=lambda m: next(c for c in spec["cells"] if c["model"] == m)["psnr_output"])
    assert row["best_cascade"] == best and row["best_specialist"] in ("a", "b")
    assert np.isfinite(row["cascade_margin"]) and "best_cascade" not in _row(result, "clean")
    # The identity leaves clean frames untouched: an infinite PSNR, written as null, read as infinity.
    clean = _row(result, "clean")
    assert clean["auto_int8"] is None and clean["margin"] is None and clean["met"]
    assert "| clean | — | ∞ | — | — | a ∞ | — | — | — | auto >= 36 dB | yes |" in acc.markdown(result)


def test_dark_rings_are_read_from_the_suites_halo() -> None:
    auto = _suite({"auto/int8_cpu": {"clean": 30.0, "fog:mild": 15.0, "fog+rain": 14.0, "rain+night": 12.0}})
    halos = {"clean": -0.5, "fog+rain": -12.0, "rain+night": 25.0}  # fog:mild: no bright region (None)
    for c in auto["cells"]:
        c["halo"], c["halo_input"] = halos.get(c["condition"]), 40.0
    result = acc.acceptance(auto, _suite(SPECIALISTS))
    assert _row(result, "clean")["dark_ring"] is False and _row(result, "fog+rain")["dark_ring"] is True
    assert _row(result, "rain+night")["halo"] == 25.0 and "halo" not in _row(result, "fog:mild")
    text = acc.markdown(result)
    assert "a dark ring (below -3) on 1 of the 3 rows whose input has bright regions (fog+rain -12.0)" in text
    assert "highest +25.0 (a glow kept)" in text
    # Suites written before the halo existed: no ring line.
    assert "Ring around" not in acc.markdown(acc.acceptance(AUTO, _suite(SPECIALISTS)))


def test_a_baseline_shows_rows_won_and_lost_and_each_change(tmp_path) -> None:
    old = acc.acceptance(AUTO, _suite(SPECIALISTS, CASCADES))
    better = _suite(
        {"auto/int8_cpu": {"clean": 37.0, "fog:mild": 13.0, "fog+rain": 14.6, "rain+night": 12.0}}
    )
    result = acc.compare(acc.acceptance(better, _suite(SPECIALISTS, CASCADES)), old)
    clean, fog_mild, fog_rain = (_row(result, c) for c in ("clean", "fog:mild", "fog+rain"))
    assert (clean["baseline_met"], clean["met"], clean["change"]) == (False, True, pytest.approx(7.0))
    assert fog_mild["baseline_met"] and not fog_mild["met"] and fog_mild["change"] == pytest.approx(-2.0)
    assert fog_rain["met"] and fog_rain["change"] == pytest.approx(0.6)  # 1.1 over the best cascade now
    text = acc.markdown(result)
    assert (
        f"Against the baseline ({sum(r['met'] for r in old['rows'])} rows met): now met clean, fog+rain; "
        in text
    )
    assert "no longer met fog:mild." in text and "| fog:mild | 15.00 | 13.00 | -2.00 |" in text
    # From the command line, with files.
    for name, data in (("auto", better), ("spec", _suite(SPECIALISTS, CASCADES))):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    (tmp_path / "old.json").write_text(json.dumps(old))
    argv = [str(tmp_path / "auto.json"), str(tmp_path / "spec.json"), "--out", str(tmp_path / "new"),
            "--baseline", str(tmp_path / "old.json")]  # fmt: skip
    assert acc.main(argv) == 0
    assert "no longer met fog:mild" in (tmp_path / "new.md").read_text()
    assert json.loads((tmp_path / "new.json").read_text())["rows"][0]["baseline_int8"] == 30.0
