"""Runtime backends: torch / onnxruntime parity, padding and cropping, clipping, errors, import hygiene."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from qdr_core.errors import BackendUnavailableError, ConfigError, ImageFormatError, ModelFileError
from qdr_core.runtime import auto_backend, available_backends, load_runtime
from qdr_core.runtime.base import pad_amounts, pad_image, to_uint8

REPO = Path(__file__).resolve().parents[1]
SIZES = [(37, 53), (1, 1), (480, 640), (2, 7), (4, 4)]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    pytest.importorskip("torch")
    from qdr_core.export.random_model import write_random_model

    return write_random_model(tmp_path_factory.mktemp("efm"), preset="efm-t", seed=1)


@pytest.fixture(scope="module")
def ort_runtime(model_files):
    with load_runtime(model_files.onnx, backend="onnxruntime", num_threads=1) as rt:
        yield rt


@pytest.fixture(scope="module")
def torch_runtime(model_files):
    with load_runtime(model_files.checkpoint, backend="torch", num_threads=1) as rt:
        yield rt


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_torch_and_onnxruntime_agree(ort_runtime, torch_runtime, h, w):
    image = _image(h, w)
    a, b = ort_runtime.infer(image), torch_runtime.infer(image)
    assert a.shape == b.shape == (h, w, 3)
    assert a.dtype == b.dtype == np.float32
    assert np.abs(a - b).max() < 1e-4


def test_in_memory_model_runs_like_its_file(model_files, torch_runtime):
    """Training validation and the ablation score in-memory models through this; it must give what
    the checkpoint file gives (same padding, cropping, clipping)."""
    from qdr_core.quant.qat_model import load_model
    from qdr_core.runtime.torch_backend import TorchRuntime

    in_memory = TorchRuntime.from_model(load_model(model_files.checkpoint))
    assert in_memory.size_multiple == torch_runtime.size_multiple
    image = _image(37, 53, seed=3)
    assert np.array_equal(in_memory.infer(image), torch_runtime.infer(image))


def test_random_model_is_not_identity(ort_runtime):
    image = _image(32, 48)
    assert np.abs(ort_runtime.infer(image) - image).mean() > 1e-2


def test_auto_backend_by_suffix(model_files):
    assert auto_backend(model_files.checkpoint) == "torch"
    assert auto_backend(model_files.onnx) in ("onnxruntime", "tensorrt")
    with pytest.raises(ModelFileError, match="suffix"):
        auto_backend("model.bin")


def test_load_runtime_auto(model_files):
    with load_runtime(model_files.checkpoint) as rt:
        assert rt.name == "torch"
    if "tensorrt" not in available_backends():
        with load_runtime(model_files.onnx) as rt:
            assert rt.name == "onnxruntime"
            assert rt.model_path == str(model_files.onnx)


def test_onnx_metadata_is_read(ort_runtime):
    assert ort_runtime.metadata["preset"] == "efm-t"
    assert ort_runtime.metadata["task"] == "random"


def test_pad_amounts_and_modes():
    assert pad_amounts(37, 53, 4) == (3, 3)
    assert pad_amounts(480, 640, 4) == (0, 0)
    image = _image(5, 6)
    padded = pad_image(image, 4)
    assert padded.shape == (8, 8, 3)
    np.testing.assert_array_equal(padded[:5, :6], image)
    # Reflect: row 5 mirrors row 3 (the edge row itself is not repeated).
    np.testing.assert_array_equal(padded[5], padded[3])
    aligned = image[:4, :4]
    assert pad_image(aligned, 4) is aligned  # nothing to pad: no copy
    tiny = _image(1, 2)
    padded = pad_image(tiny, 4)
    assert padded.shape == (4, 4, 3)
    # Too small to reflect: the edge pixel is replicated.
    np.testing.assert_array_equal(padded[3, 3], tiny[0, 1])


def test_infer_crops_the_top_left_of_the_padded_run(ort_runtime):
    image = _image(37, 53, seed=3)
    padded = pad_image(image, 4)
    full = ort_runtime._run(np.ascontiguousarray(padded.transpose(2, 0, 1))[None])
    expected = np.clip(full[0].transpose(1, 2, 0)[:37, :53], 0, 1)
    np.testing.assert_allclose(ort_runtime.infer(image), expected, atol=1e-6)


def test_output_is_clipped(tmp_path):
    pytest.importorskip("torch")
    from qdr_core.export.random_model import write_random_model

    files = write_random_model(tmp_path, seed=2, head_std=5.0)
    with load_runtime(files.onnx, backend="onnxruntime") as rt:
        raw = rt._run(np.ascontiguousarray(_image(16, 16).transpose(2, 0, 1))[None])
        out = rt.infer(_image(16, 16))
    assert raw.min() < 0 and raw.max() > 1  # the graph itself is unclamped
    assert out.min() == 0.0 and out.max() == 1.0


def test_uint8_path(ort_runtime):
    rgb = (np.random.default_rng(4).random((21, 30, 3)) * 255).astype(np.uint8)
    out = ort_runtime.infer_uint8(rgb)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    expected = to_uint8(ort_runtime.infer(rgb.astype(np.float32) / 255))
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_to_uint8_rounds():
    values = np.array([0.0, 0.5 / 255, 0.49 / 255, 1.0, 1.5, -0.2], dtype=np.float32)
    np.testing.assert_array_equal(to_uint8(values), [0, 1, 0, 255, 255, 0])


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4), np.float32), np.zeros((4, 4, 4), np.float32), np.zeros((0, 4, 3), np.float32)],
)
def test_bad_image_shapes(ort_runtime, bad):
    with pytest.raises(ImageFormatError):
        ort_runtime.infer(bad)


def test_infer_uint8_rejects_float(ort_runtime):
    with pytest.raises(ImageFormatError, match="uint8"):
        ort_runtime.infer_uint8(np.zeros((4, 4, 3), np.float32))


def test_missing_corrupt_and_foreign_model_files(tmp_path, model_files):
    with pytest.raises(ModelFileError, match="not found"):
        load_runtime(tmp_path / "absent.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01 definitely not protobuf" * 50)
    with pytest.raises(ModelFileError, match="not a loadable ONNX"):
        load_runtime(garbage, backend="onnxruntime")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(model_files.onnx.read_bytes()[:200])
    with pytest.raises(ModelFileError):
        load_runtime(truncated, backend="onnxruntime")
    with pytest.raises(ModelFileError):  # a checkpoint handed to onnxruntime
        load_runtime(model_files.checkpoint, backend="onnxruntime")
    bad_pt = tmp_path / "bad.pt"
    bad_pt.write_bytes(b"not a zip archive")
    with pytest.raises(ModelFileError):
        load_runtime(bad_pt, backend="torch")


def test_backend_errors(model_files):
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        load_runtime(model_files.onnx, backend="openvino")
    with pytest.raises(ConfigError, match="providers"):
        load_runtime(model_files.checkpoint, backend="torch", providers=["CPUExecutionProvider"])
    assert "onnxruntime" in available_backends()


def test_closed_runtime_refuses_work(model_files):
    rt = load_runtime(model_files.onnx, backend="onnxruntime")
    with rt:
        assert not rt.closed
    assert rt.closed
    rt.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        rt.infer(_image(4, 4))


def test_onnxruntime_path_never_imports_torch(model_files):
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from qdr_core.runtime import load_runtime, available_backends
        available_backends()
        with load_runtime({str(model_files.onnx)!r}, backend="auto") as rt:
            out = rt.infer_uint8(np.zeros((37, 53, 3), np.uint8))
        assert out.shape == (37, 53, 3), out.shape
        from qdr_core.runtime import onnxruntime_backend, tensorrt_backend  # noqa: F401
        import qdr_core.image_encodings  # noqa: F401
        leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        assert not leaked, leaked
        print("ok", rt.name)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_layout_helpers_match_numpy_transposes():
    from qdr_core.runtime.base import hwc_to_nchw, nchw_to_hwc

    rng = np.random.default_rng(3)
    image = rng.random((37, 50, 3), dtype=np.float32)
    batch = hwc_to_nchw(image)
    assert batch.shape == (1, 3, 37, 50) and batch.flags.c_contiguous
    assert np.array_equal(batch[0], image.transpose(2, 0, 1))
    padded = rng.random((1, 3, 40, 52), dtype=np.float32)
    back = nchw_to_hwc(padded[0, :, :37, :50])  # a cropped, strided view, as after padding
    assert back.flags.c_contiguous and np.array_equal(back, padded[0, :, :37, :50].transpose(1, 2, 0))


def test_onnx_metadata_reader_matches_onnx(tmp_path):
    import onnx

    from qdr_core.export.random_model import write_random_model
    from qdr_core.runtime.onnx_metadata import read_metadata

    files = write_random_model(tmp_path, preset="efm-t")
    proto = onnx.load(str(files.onnx))
    expected = {p.key: p.value for p in proto.metadata_props}
    assert expected and read_metadata(files.onnx) == expected
    entry = proto.metadata_props.add()
    entry.key, entry.value = "note", "ünïcode, commas"
    onnx.save(proto, str(tmp_path / "more.onnx"))
    assert read_metadata(tmp_path / "more.onnx")["note"] == "ünïcode, commas"
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(files.onnx.read_bytes()[:-7] + b"\xff\xff\xff\xff\xff\xff\xff")
    with pytest.raises(ModelFileError, match="cannot read ONNX metadata"):
        read_metadata(broken)


def test_planes8_path_matches_the_float_path_for_any_view(ort_runtime):
    rng = np.random.default_rng(8)
    bgra = rng.integers(0, 256, (21, 30, 4)).astype(np.uint8)
    rgb_view = bgra[..., 2::-1]  # a strided, channel-reversed view, as a bgra8 message gives
    planes = ort_runtime.infer_planes8(rgb_view)
    assert [p.shape for p in planes] == [(21, 30)] * 3 and all(p.dtype == np.uint8 for p in planes)
    expected = to_uint8(ort_runtime.infer(np.ascontiguousarray(rgb_view).astype(np.float32) / 255))
    got = np.stack(planes, axis=-1)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    np.testing.assert_array_equal(ort_runtime.infer_uint8(np.ascontiguousarray(rgb_view)), got)
