"""TensorRT backend: the pure parts everywhere; the engine itself only where TensorRT and a GPU are."""

from __future__ import annotations

import numpy as np
import pytest

from qdr_core.errors import BackendUnavailableError
from qdr_core.runtime import available_backends, load_runtime
from qdr_core.runtime.tensorrt_backend import (
    DEFAULT_MAX_SIZE,
    DEFAULT_OPT_SIZE,
    check_trt_version,
    engine_cache_key,
    engine_cache_path,
    file_sha256,
    parse_trt_version,
    profile_shapes,
    trt_importable,
)

BASE = dict(onnx_sha256="ab" * 32, trt_version="10.3.0", gpu_name="Orin", precision="int8")


def test_cache_key_is_stable_and_hex():
    key = engine_cache_key(**BASE)
    assert key == engine_cache_key(**BASE)
    assert len(key) == 64 and int(key, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "cd" * 32},
        {"trt_version": "10.4.0"},
        {"gpu_name": "NVIDIA H100"},
        {"precision": "fp16"},
        {"dla_core": 0},
        {"opt_size": (720, 1280)},
        {"max_size": (2160, 3840)},
    ],
)
def test_cache_key_changes_with_every_field(change):
    assert engine_cache_key(**{**BASE, **change}) != engine_cache_key(**BASE)


def test_cache_key_ignores_gpu_name_padding():
    assert engine_cache_key(**{**BASE, "gpu_name": " Orin \n"}) == engine_cache_key(**BASE)


def test_cache_path_and_file_hash(tmp_path):
    model = tmp_path / "int8_trt.onnx"
    model.write_bytes(b"abc")
    digest = file_sha256(model)
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    path = engine_cache_path(tmp_path / "cache", model, engine_cache_key(**{**BASE, "onnx_sha256": digest}))
    assert path.parent == tmp_path / "cache"
    assert path.name.startswith("int8_trt-") and path.suffix == ".engine"


@pytest.mark.parametrize(
    ("version", "parsed"), [("10.3.0.26", (10, 3, 0, 26)), ("10.0.0b6", (10, 0, 0)), ("11.0", (11, 0))]
)
def test_version_check_accepts_10_and_newer(version, parsed):
    assert parse_trt_version(version) == parsed
    assert check_trt_version(version) == parsed


@pytest.mark.parametrize("version", ["8.6.1", "8.5.2.2", "7.1"])
def test_version_check_rejects_old_tensorrt(version):
    with pytest.raises(BackendUnavailableError, match=">= 10"):
        check_trt_version(version)


def test_unreadable_version():
    with pytest.raises(BackendUnavailableError, match="version"):
        parse_trt_version("unknown")


def test_profile_shapes():
    lo, opt, hi = profile_shapes(DEFAULT_OPT_SIZE, DEFAULT_MAX_SIZE)
    assert lo == (1, 3, 4, 4) and opt == (1, 3, 480, 640) and hi == (1, 3, 1080, 1920)
    with pytest.raises(ValueError, match="multiples"):
        profile_shapes((481, 640), DEFAULT_MAX_SIZE)
    with pytest.raises(ValueError, match="exceeds"):
        profile_shapes((1200, 640), DEFAULT_MAX_SIZE)


def test_profile_sizes_round_up_to_the_model_multiple():
    from qdr_core.sizes import round_up_size

    # A context-pyramid model pads to multiples of 32: 1080p frames run as 1088x1920.
    assert round_up_size((1080, 1920), 32) == (1088, 1920)
    assert round_up_size((480, 640), 32) == (480, 640)
    lo, _, hi = profile_shapes((480, 640), round_up_size((1080, 1920), 32), 32)
    assert lo == (1, 3, 32, 32) and hi == (1, 3, 1088, 1920)


def test_missing_tensorrt_names_what_to_install(tmp_path):
    if trt_importable():
        pytest.skip("tensorrt is installed here; the missing-dependency message cannot be observed")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    with pytest.raises(BackendUnavailableError, match="TensorRT"):
        load_runtime(model, backend="tensorrt")


needs_trt = pytest.mark.skipif(
    "tensorrt" not in available_backends(),
    reason="TensorRT engine tests need the tensorrt Python package, cuda-python and an NVIDIA GPU",
)


@needs_trt
def test_tensorrt_matches_onnxruntime_and_caches_engine(tmp_path):
    pytest.importorskip("torch")
    from qdr_core.export.random_model import write_random_model

    files = write_random_model(tmp_path / "m", seed=5)
    cache = tmp_path / "engines"
    image = np.random.default_rng(0).random((37, 53, 3), dtype=np.float32)
    with load_runtime(files.onnx, backend="onnxruntime") as ort_rt:
        expected = ort_rt.infer(image)
    with load_runtime(files.onnx, backend="tensorrt", engine_cache_dir=cache, precision="fp32") as trt_rt:
        out = trt_rt.infer(image)
        engine_path = trt_rt.engine_path
    assert engine_path.is_file() and engine_path.parent == cache
    assert np.abs(out - expected).max() < 1e-3
    mtime = engine_path.stat().st_mtime_ns
    with load_runtime(files.onnx, backend="tensorrt", engine_cache_dir=cache, precision="fp32") as trt_rt:
        np.testing.assert_allclose(trt_rt.infer(image), out, atol=1e-5)
    assert engine_path.stat().st_mtime_ns == mtime  # loaded from the cache, not rebuilt
