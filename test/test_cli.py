"""``qdr`` end to end on tiny images: table-driven success and error cases through ``main(argv)``."""

from __future__ import annotations

import json

import pytest

from qdr_core.cli import main
from qdr_core.data.imageio import list_images, read_rgb, write_rgb
from qdr_core.data.sources import skimage_photo
from qdr_core.export.random_model import write_random_model


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    for name in ("astronaut", "coffee"):
        write_rgb(root / "clean" / f"{name}.png", skimage_photo(name, max_side=48))
    files = write_random_model(root / "model")
    return {"root": root, "clean": root / "clean", "onnx": files.onnx, "pt": files.checkpoint}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_info_preset_reports_params_and_macs(capsys) -> None:
    code, out, _ = run(capsys, "info", "--preset", "efm-s", "--json")
    info = json.loads(out)
    assert code == 0 and info["params"] > 100_000 and 0 < info["gmacs"] <= 12
    assert info["inputs"] == ["input"] and info["outputs"] == ["output"]


@pytest.mark.parametrize("kind", ["onnx", "pt"])
def test_info_model_file(capsys, workspace, kind) -> None:
    code, out, _ = run(capsys, "info", "--model", workspace[kind], "--json")
    assert code == 0 and json.loads(out)["params"] > 1000


@pytest.mark.parametrize("task", ["lowlight", "haze", "rain", "noise"])
def test_degrade_writes_same_names(capsys, workspace, task) -> None:
    out_dir = workspace["root"] / f"deg_{task}"
    code, _, _ = run(
        capsys, "degrade", "--task", task, "--input", workspace["clean"], "--output", out_dir, "--seed", 3
    )
    assert code == 0
    assert [p.name for p in list_images(out_dir)] == [p.name for p in list_images(workspace["clean"])]
    assert not (read_rgb(out_dir / "coffee.png") == read_rgb(workspace["clean"] / "coffee.png")).all()


@pytest.mark.parametrize("backend", ["onnxruntime", "torch", "auto"])
def test_restore_file_and_folder(capsys, workspace, backend) -> None:
    model = workspace["pt"] if backend == "torch" else workspace["onnx"]
    single = workspace["root"] / backend / "one.png"
    assert run(capsys, "restore", "--model", model, "--input", workspace["clean"] / "coffee.png", "--output", single,
               "--backend", backend)[0] == 0  # fmt: skip
    assert read_rgb(single).shape == read_rgb(workspace["clean"] / "coffee.png").shape
    folder = workspace["root"] / backend / "all"
    assert run(capsys, "restore", "--model", model, "--input", workspace["clean"], "--output", folder,
               "--backend", backend)[0] == 0  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["astronaut.png", "coffee.png"]


def test_eval_writes_the_contract_keys(capsys, workspace) -> None:
    out = workspace["root"] / "eval.json"
    code, text, _ = run(capsys, "eval", "--model", workspace["onnx"], "--task", "noise", "--clean", workspace["clean"],
                        "--seed", 0, "--json", out)  # fmt: skip
    result = json.loads(out.read_text())
    assert code == 0 and "PSNR" in text
    for key in ("n_images", "psnr_input", "psnr_output", "ssim_input", "ssim_output"):
        assert key in result
    assert result["n_images"] == 2 and len(result["images"]) == 2
    assert 15 < result["psnr_input"] < 25  # sigma 25/255 noise


def test_train_exports_checkpoint_and_onnx(capsys, workspace, tmp_path) -> None:
    pairs = tmp_path / "pairs"
    for name in ("astronaut", "coffee"):
        clean = skimage_photo(name, max_side=48)
        write_rgb(pairs / "in" / f"{name}.png", clean * 0.3)
        write_rgb(pairs / "gt" / f"{name}.png", clean)
    code, out, _ = run(capsys, "train", "--task", "lowlight", "--preset", "efm-t", "--iters", 3, "--batch-size", 2,
                       "--patch", 32, "--val-every", 3, "--val-images", 1, "--val-size", 32,
                       "--input-dir", pairs / "in", "--target-dir", pairs / "gt", "--out", tmp_path / "run",
                       "--export", tmp_path / "export", "--no-progress")  # fmt: skip
    assert code == 0, out
    assert (tmp_path / "export" / "fp32.pt").exists() and (tmp_path / "export" / "fp32.onnx").exists()
    code, _, _ = run(capsys, "eval", "--model", tmp_path / "export" / "fp32.onnx", "--task", "lowlight",
                     "--clean", workspace["clean"])  # fmt: skip
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "--model", "{root}/missing.onnx", "--task", "noise", "--clean", "{clean}"], "not found"),
        (
            ["eval", "--model", "{root}/clean/coffee.png", "--task", "noise", "--clean", "{clean}"],
            "model type",
        ),
        (
            ["restore", "--model", "{onnx}", "--input", "{root}/nope", "--output", "{root}/o"],
            "input not found",
        ),
        (["degrade", "--task", "haze", "--input", "{root}/nope", "--output", "{root}/o"], "folder not found"),
        (["info", "--preset", "efm-xxl"], "unknown preset"),
        (
            ["eval", "--model", "{onnx}", "--task", "noise", "--clean", "{clean}", "--backend", "cuda"],
            "unknown backend",
        ),
    ],
)
def test_errors_exit_2_with_one_line(capsys, workspace, argv, message) -> None:
    args = [a.format(root=workspace["root"], clean=workspace["clean"], onnx=workspace["onnx"]) for a in argv]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_corrupt_onnx_is_a_clean_error(capsys, workspace) -> None:
    bad = workspace["root"] / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    code, _, err = run(
        capsys, "restore", "--model", bad, "--input", workspace["clean"], "--output", workspace["root"] / "x"
    )
    assert code == 2 and "bad.onnx" in err
