"""The condition suite: the matrix, the scoring, and the JSON / markdown / figure it writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from qdr_core.cli import main
from qdr_core.commands.suite import model_columns
from qdr_core.data.degrade import degrade, eval_rng
from qdr_core.data.degrade.pipeline import MIXTURES
from qdr_core.data.imageio import write_rgb
from qdr_core.data.sources import skimage_photo
from qdr_core.errors import ConfigError
from qdr_core.metrics import psnr, score
from qdr_core.runtime import load_runtime
from qdr_core.suite.conditions import (
    SINGLE_EFFECTS,
    Cascade,
    cell,
    default_matrix,
    run_suite,
    select_rows,
)
from qdr_core.suite.report import markdown, read_json, write_all


def _image_model(path, nodes, initializers=()) -> str:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("suite_models")
    # x * 1: the identity, with the one weight the model contract asks of every model file.
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    identity = _image_model(root / "identity.onnx", [helper.make_node("Mul", ["x", "one"], ["y"])], [one])
    half = helper.make_tensor("k", TensorProto.FLOAT, [], [0.5])
    darken = _image_model(root / "darken.onnx", [helper.make_node("Mul", ["x", "k"], ["y"])], [half])
    lift = helper.make_tensor("b", TensorProto.FLOAT, [], [0.3])
    brighten = _image_model(root / "brighten.onnx", [helper.make_node("Add", ["x", "b"], ["y"])], [lift])
    return {"identity": identity, "darken": darken, "brighten": brighten}


@pytest.fixture(scope="module")
def images() -> tuple[list[str], list[np.ndarray]]:
    return ["astronaut", "coffee"], [skimage_photo(n, max_side=48) for n in ("astronaut", "coffee")]


def test_the_default_matrix_covers_clean_severities_mixtures_and_benchmarks() -> None:
    names = [row.name for row in default_matrix()]
    assert names[0] == "clean"
    for effect in SINGLE_EFFECTS:
        assert [n for n in names if n.startswith(f"{effect}:")] == [
            f"{effect}:{s}" for s in ("mild", "medium", "strong")
        ]
    assert {"+".join(m) for m in MIXTURES} <= set(names)
    assert {"bench:lowlight", "bench:haze", "bench:rain", "bench:noise"} <= set(names)
    assert len(names) == len(set(names)) == 1 + 12 + 4 + 4


def test_rows_are_found_by_name_or_by_condition() -> None:
    assert [r.name for r in select_rows(["night+rain", "fog:medium", "night:0.5"])] == [
        "rain+night",
        "fog:medium",
        "night:0.5",
    ]


def test_suite_scores_identity_as_input_and_flags_harm(models, images) -> None:
    names, ims = images
    rows = select_rows(["clean", "fog:mild", "rain+night", "bench:noise"])
    with load_runtime(models["identity"]) as ident, load_runtime(models["darken"]) as dark:
        result = run_suite({"identity": ident, "darken": dark}, ims, names, rows, seed=3)
    assert [r["name"] for r in result["conditions"]] == ["clean", "fog:mild", "rain+night", "bench:noise"]
    assert len(result["cells"]) == 2 * 4
    for row in ("fog:mild", "rain+night", "bench:noise"):
        c = cell(result, "identity", row)
        assert c["psnr_output"] == pytest.approx(c["psnr_input"]) and c["ssim_output"] == pytest.approx(
            c["ssim_input"]
        )
        assert not c["harm"] and c["psnr_gain"] == pytest.approx(0.0)
        assert [r["name"] for r in c["images"]] == names
    clean = cell(result, "identity", "clean")
    assert math.isinf(clean["psnr_input"]) and math.isinf(clean["psnr_output"]) and not clean["harm"]
    darkened = cell(result, "darken", "clean")
    assert darkened["harm"] and darkened["psnr_output"] < 15
    # The benchmark row is today's `qdr eval` degradation with the same seed.
    expected = np.mean(
        [psnr(im, degrade("noise", im, eval_rng(3, i), split="eval")) for i, im in enumerate(ims)]
    )
    assert cell(result, "darken", "bench:noise")["psnr_input"] == pytest.approx(expected)
    # Every image's sampled parameters are recorded.
    night_rain = next(r for r in result["conditions"] if r["name"] == "rain+night")
    assert [s["effect"] for s in night_rain["images"][0]["stages"]][:2] == ["rain", "night"]


def test_outputs_have_the_right_shape(tmp_path, models, images) -> None:
    names, ims = images
    rows = select_rows(["clean", "rain:strong", "night:0.9+fog:mild"])
    with load_runtime(models["identity"]) as ident, load_runtime(models["darken"]) as dark:
        result = run_suite({"identity": ident, "darken": dark}, ims, names, rows, seed=0)
    written = write_all(result, tmp_path / "out" / "suite.json")
    assert [p.suffix for p in written] == [".json", ".md", ".png"]
    data = read_json(written[0])  # strict JSON: infinity is written as null
    assert json.loads(written[0].read_text(), parse_constant=lambda c: pytest.fail(c))
    assert data["cells"][0]["psnr_input"] is None and data["images"] == names
    table = written[1].read_text().splitlines()
    assert table[0].startswith("| condition | input PSNR / SSIM | identity")
    main_table = table[: table.index("")]
    assert len([line for line in main_table if line.startswith("| ")]) == 1 + len(rows)
    assert table[2].startswith("| clean | ∞ / 1.000 | ∞ / 1.000 | **")  # identity unchanged, darken harms
    import cv2

    png = cv2.imread(str(written[2]))
    assert png is not None and png.shape[0] > 100 and png.shape[1] > 100
    assert markdown(data) == written[1].read_text()


def test_cells_measure_the_ring_around_bright_regions(models) -> None:
    """Night frames have lamps with a glow the clean frame lacks: the identity keeps it (halo > 0)."""
    names = ["astronaut", "coffee"]
    ims = [skimage_photo(n, max_side=400) for n in names]  # lamp cores of a few pixels
    rows = select_rows(["night:strong"])
    with load_runtime(models["identity"]) as ident:
        result = run_suite({"identity": ident}, ims, names, rows, seed=0)
    c = cell(result, "identity", "night:strong")
    measured = [r["halo"] for r in c["images"] if r["halo"] is not None]
    assert c["halo_images"] == len(measured) >= 1
    assert c["halo"] == pytest.approx(np.mean(measured)) and c["halo"] > 1.0
    text = markdown(result)
    assert "Ring around bright objects" in text
    # The identity's output is its input: the two columns agree.
    assert c["halo_input"] == pytest.approx(c["halo"])
    assert f"| night:strong | {len(measured)} | {c['halo_input']:+.1f} | {c['halo']:+.1f} |" in text


def test_the_cli_writes_the_three_files(tmp_path, models, images, capsys) -> None:
    names, ims = images
    for n, im in zip(names, ims):
        write_rgb(tmp_path / "clean" / f"{n}.png", im)
    out = tmp_path / "res" / "c.json"
    code = main(["suite", "conditions", "--model", models["identity"], "--model", models["darken"],
                 "--clean", str(tmp_path / "clean"), "--conditions", "clean,sensor:mild", "--json", str(out)])  # fmt: skip
    assert code == 0
    assert out.exists() and out.with_suffix(".md").exists() and out.with_suffix(".png").exists()
    data = read_json(out)
    assert len(data["models"]) == 2 and data["source"] == str(tmp_path / "clean")
    assert "sensor:mild" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--conditions", "snow:mild"], "unknown effect"),
        (["--conditions", "bench:snow"], "unknown benchmark row"),
        (["--cascade", "a.onnx"], "give two models, FIRST,SECOND"),
        (["--cascades"], "give at least two"),
        (["--cascade", "{m},{m}", "--conditions", "clean,fog:mild"], "none is chosen"),
        (["--cascade", "{m},{m}", "--cascade-conditions", "some"], "unknown cascade rows"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, models, capsys, argv, message) -> None:
    write_rgb(tmp_path / "clean" / "a.png", np.full((16, 16, 3), 0.5, np.float32))
    argv = [a.format(m=models["identity"]) for a in argv]
    code = main(["suite", "conditions", "--model", models["identity"], "--clean", str(tmp_path / "clean"),
                 "--json", str(tmp_path / "o.json"), *argv])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_empty_inputs_are_config_errors(models) -> None:
    with load_runtime(models["identity"]) as ident, pytest.raises(ConfigError, match="at least one image"):
        run_suite({"identity": ident}, [], [])
    with pytest.raises(ConfigError, match="at least one model"):
        run_suite({}, [np.zeros((8, 8, 3), np.float32)], ["a"])


def test_a_cascade_scores_the_second_model_on_the_first_models_output(models, images) -> None:
    names, ims = images
    rows = select_rows(["clean", "fog:mild", "rain+night", "night:0.9+fog:mild"])
    cascades = [Cascade("darken", "brighten"), Cascade("brighten", "darken")]
    with load_runtime(models["darken"]) as dark, load_runtime(models["brighten"]) as bright:
        result = run_suite({"darken": dark, "brighten": bright}, ims, names, rows, seed=5, cascades=cascades)
    # By hand: the runtimes clip to [0, 1] after each model, so the order matters.
    mixtures = ("rain+night", "fog:mild+night:0.9")  # rows are named in physical order
    for row in rows[2:]:
        assert row.name in mixtures
        degraded = [row.degrade(im, 5, i)[0] for i, im in enumerate(ims)]
        dark_then_bright = [np.clip(np.clip(d * 0.5, 0, 1) + 0.3, 0, 1) for d in degraded]
        bright_then_dark = [np.clip(d + 0.3, 0, 1) * 0.5 for d in degraded]
        for model, outputs in (("darken>brighten", dark_then_bright), ("brighten>darken", bright_then_dark)):
            c = cell(result, model, row.name)
            expected = [score(im, out) for im, out in zip(ims, outputs)]
            assert c["psnr_output"] == pytest.approx(np.mean([e.psnr for e in expected]), abs=1e-4)
            assert c["ssim_output"] == pytest.approx(np.mean([e.ssim for e in expected]), abs=1e-4)
            assert c["psnr_input"] == cell(result, "darken", row.name)["psnr_input"]
        assert cell(result, "darken>brighten", row.name)["psnr_output"] != pytest.approx(
            cell(result, "brighten>darken", row.name)["psnr_output"], abs=0.1
        )
    # Cascades are scored on the mixture rows only, and the JSON says so.
    assert {(c["model"], c["condition"]) for c in result["cells"] if ">" in c["model"]} == {
        (m, r) for m in ("darken>brighten", "brighten>darken") for r in mixtures
    }
    assert result["cascade_rows"] == "mixtures"
    assert result["models"][2:] == [
        {"name": "darken>brighten", "cascade": ["darken", "brighten"], "rows": list(mixtures)},
        {"name": "brighten>darken", "cascade": ["brighten", "darken"], "rows": list(mixtures)},
    ]


def test_cascades_on_every_row_and_their_outputs(tmp_path, models, images) -> None:
    names, ims = images
    rows = select_rows(["clean", "fog+rain"])
    with load_runtime(models["identity"]) as ident, load_runtime(models["darken"]) as dark:
        runtimes = {"identity": ident, "darken": dark}
        every = run_suite(
            runtimes, ims, names, rows, cascades=[Cascade("identity", "darken")], cascade_rows="all"
        )
        mixtures = run_suite(runtimes, ims, names, rows, cascades=[Cascade("identity", "darken")])
    assert cell(every, "identity>darken", "clean")["psnr_output"] == pytest.approx(
        cell(every, "darken", "clean")["psnr_output"]
    )
    assert every["models"][2]["rows"] == ["clean", "fog+rain"]
    written = write_all(mixtures, tmp_path / "c.json")
    table = written[1].read_text().splitlines()
    assert table[0].endswith("| identity>darken PSNR (gain) / SSIM |")
    assert table[2].startswith("| clean | ∞ / 1.000 |") and table[2].endswith("| — |")
    assert not table[3].endswith("| — |")
    assert "A>B is a cascade, model A's output fed to model B, scored on the mixture rows only" in table[-1]
    assert read_json(written[0])["models"][2]["cascade"] == ["identity", "darken"]
    import cv2

    assert cv2.imread(str(written[2])) is not None


@pytest.mark.parametrize(
    ("models_", "cascade", "pairs", "expected"),
    [
        (["a.onnx", "b.onnx"], [], True, ["a>b", "b>a"]),
        (["a.onnx", "b.onnx", "c.onnx"], [], True, ["a>b", "a>c", "b>a", "b>c", "c>a", "c>b"]),
        (["a.onnx"], ["a.onnx,c.onnx"], False, ["a>c"]),
        (["a.onnx", "b.onnx"], ["b.onnx,b.onnx"], True, ["b>b", "a>b", "b>a"]),
        ([], ["a.onnx, b.onnx"], False, ["a>b"]),
    ],
)
def test_cascade_columns_from_the_command_line(models_, cascade, pairs, expected) -> None:
    paths, labels, cascades = model_columns(models_, cascade, pairs)
    assert [c.name for c in cascades] == expected
    assert set(labels) == {n for c in cascades for n in (c.first, c.second)} | {p[:-5] for p in models_}
    assert len(paths) == len(labels) == len(set(paths))


def test_the_cli_scores_cascades_of_its_models(tmp_path, models, images, capsys) -> None:
    names, ims = images
    for n, im in zip(names, ims):
        write_rgb(tmp_path / "clean" / f"{n}.png", im)
    out = tmp_path / "c.json"
    code = main(["suite", "conditions", "--model", models["darken"], "--cascade",
                 f"{models['darken']},{models['brighten']}", "--clean", str(tmp_path / "clean"),
                 "--conditions", "sensor:mild,rain+night", "--json", str(out)])  # fmt: skip
    assert code == 0
    data = read_json(out)
    # Named like the other columns (the models' folder is the tmp folder here).
    dark, bright = (f"{Path(models[m]).parent.name}/{m}" for m in ("darken", "brighten"))
    assert [m["name"] for m in data["models"]] == [dark, bright, f"{dark}>{bright}"]
    assert data["models"][2]["cascade"] == [dark, bright] and data["cascade_rows"] == "mixtures"
    assert [c["condition"] for c in data["cells"] if c["model"] == f"{dark}>{bright}"] == ["rain+night"]


@pytest.mark.parametrize(
    ("models_", "cascade", "pairs", "message"),
    [
        ([], [], False, "give at least one --model"),
        (["a.onnx", "a.onnx"], [], False, "a model is given twice"),
        (["a.onnx"], ["a.onnx,b.onnx,c.onnx"], False, "give two models, FIRST,SECOND"),
        (["a.onnx"], ["a.onnx,"], False, "give two models, FIRST,SECOND"),
    ],
)
def test_bad_cascade_arguments_are_config_errors(models_, cascade, pairs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        model_columns(models_, cascade, pairs)


def test_a_cascade_of_an_unknown_or_repeated_pair_is_a_config_error(models, images) -> None:
    names, ims = images
    rows = select_rows(["rain+night"])
    with load_runtime(models["identity"]) as ident:
        runtimes = {"identity": ident}
        with pytest.raises(ConfigError, match="'darken' is not one of the suite's models"):
            run_suite(runtimes, ims, names, rows, cascades=[Cascade("identity", "darken")])
        with pytest.raises(ConfigError, match="a cascade is given twice"):
            run_suite(runtimes, ims, names, rows, cascades=[Cascade("identity", "identity")] * 2)
