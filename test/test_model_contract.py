"""The model contract: files that load but cannot restore a frame are rejected at load, the same
way by every entry point (library, ``qdr restore`` / ``info`` / ``eval`` / ``bag eval``): one line,
exit code 2. The bad models are built with ``onnx.helper`` (``write_conv_onnx``); nothing is mocked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from qdr_core.bag.make import make_bag
from qdr_core.cli import main
from qdr_core.data.imageio import write_rgb
from qdr_core.data.sources import skimage_photo
from qdr_core.errors import ModelContractError, ModelFileError
from qdr_core.export.random_model import write_conv_onnx
from qdr_core.runtime import load_runtime


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("contract")
    write_rgb(root / "clean" / "coffee.png", skimage_photo("coffee", max_side=40))
    (root / "model_dir.onnx").mkdir()
    (root / "empty.onnx").write_bytes(b"")
    torch.save({"weights": torch.zeros(3)}, root / "foreign.pt")
    (root / "garbage.pt").write_bytes(b"not a checkpoint at all")
    make_bag("noise", iter([("f0", skimage_photo("coffee", max_side=40))]), root / "bag", start_ns=1)
    return {
        "root": root,
        "good": write_conv_onnx(root / "good.onnx"),
        "one_channel": write_conv_onnx(root / "one_channel.onnx", out_channels=1),
        "fixed_64": write_conv_onnx(root / "fixed_64.onnx", input_shape=[1, 3, 64, 64]),
        "huge_multiple": write_conv_onnx(root / "huge_multiple.onnx", metadata={"size_multiple": "100000"}),
        "bad_multiple": write_conv_onnx(root / "bad_multiple.onnx", metadata={"size_multiple": "four"}),
        "huge_cell": write_conv_onnx(root / "huge_cell.onnx", metadata={"context_cell": "99999"}),
        "no_weights": write_conv_onnx(root / "no_weights.onnx", weights=False),
        "empty": root / "empty.onnx",
        "directory": root / "model_dir.onnx",
        "foreign_pt": root / "foreign.pt",
        "garbage_pt": root / "garbage.pt",
    }


BAD = {
    "one_channel": (ModelContractError, "output has 1 channel(s)"),
    "fixed_64": (ModelContractError, "fixed spatial size 64x64"),
    "huge_multiple": (ModelContractError, "size_multiple='100000'"),
    "bad_multiple": (ModelContractError, "size_multiple='four'"),
    "huge_cell": (ModelContractError, "context_cell='99999'"),
    "no_weights": (ModelContractError, "no weights"),
    "empty": (ModelFileError, "not a loadable ONNX model"),
    "directory": (ModelFileError, "is a directory"),
    "foreign_pt": (ModelFileError, "not a qdr checkpoint"),
    "garbage_pt": (ModelFileError, "not a readable qdr checkpoint"),
}


def test_a_conforming_model_loads_and_restores(files) -> None:
    with load_runtime(files["good"]) as runtime:
        out = runtime.infer(np.full((10, 14, 3), 0.5, np.float32))
    assert out.shape == (10, 14, 3)
    assert runtime.signature.n_weights == 1 and runtime.signature.input_shape == (None, 3, None, None)


@pytest.mark.parametrize("kind", sorted(BAD))
def test_load_runtime_rejects_with_one_line(files, kind) -> None:
    error, message = BAD[kind]
    with pytest.raises(error) as info:
        load_runtime(files[kind])
    text = str(info.value)
    assert message in text and str(files[kind]) in text


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("command", ["restore", "info", "eval", "bag eval"])
def test_cli_rejects_with_one_line_and_exit_2(files, capsys, tmp_path, kind, command) -> None:
    model = str(files[kind])
    argv = {
        "restore": ["restore", "--model", model, "--input", str(files["root"] / "clean"),
                    "--output", str(tmp_path / "out")],
        "info": ["info", "--model", model],
        "eval": ["eval", "--model", model, "--task", "noise", "--clean", str(files["root"] / "clean")],
        "bag eval": ["bag", "eval", "--bag", str(files["root"] / "bag"), "--model", model,
                     "--json", str(tmp_path / "r.json"), "--detector", "none",
                     "--output-bag", str(tmp_path / "restored")],
    }[command]  # fmt: skip
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert BAD[kind][1] in captured.err
    assert "params" not in captured.out
    assert not (tmp_path / "out").exists() and not (tmp_path / "restored").exists()


def test_a_model_that_returns_the_wrong_size_fails_the_probe(tmp_path) -> None:
    """Shapes can be dynamic and still wrong: a stride-2 conv halves the frame."""
    half = write_conv_onnx(tmp_path / "half.onnx", stride=2)
    with pytest.raises(ModelContractError, match=r"returns shape \[1, 3, 4, 4\] for a \[1, 3, 8, 8\] frame"):
        load_runtime(half)


def test_shipped_models_keep_the_contract() -> None:
    root = Path(__file__).resolve().parents[1] / "models"
    for path in sorted(root.glob("*/int8_cpu.onnx")) + sorted(root.glob("*/fp32.pt")):
        load_runtime(path, num_threads=1).close()
