"""EFM presets the timm way: forward, gradients, LDG switch, features, export parity, checkpoints."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from qdr_core.errors import ConfigError, ModelFileError
from qdr_core.export.onnx_fp32 import export_onnx
from qdr_core.models import PRESETS, EFMConfig, build_model, preset_config
from qdr_core.models.checkpoint import (
    load_fp32_model,
    model_payload,
    read_checkpoint,
    save_checkpoint,
)
from qdr_core.models.complexity import count_macs, count_params
from qdr_core.quant.qat_model import load_model

REPO = Path(__file__).resolve().parents[1]
TINY = {name: dict(cfg.to_dict(), width=4) for name, cfg in PRESETS.items()}


def randomise_head(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=gen) * 0.1)
    return model


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_forward_shapes_and_no_nan(name: str) -> None:
    model = build_model(EFMConfig.from_dict(TINY[name]))
    m = model.size_multiple
    h, w = 9 * 4 if m == 4 else 2 * m, 13 * 4 if m == 4 else 3 * m
    x = torch.rand(2, 3, h, w)
    out, feats = model(x, return_features=True)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    c = model.cfg.width
    assert feats["bottleneck"].shape == (2, 2 * c, h // 4, w // 4)
    assert feats["encoder"].shape == feats["decoder"].shape == (2, c, h // 2, w // 2)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_parameter_gets_a_gradient(name: str) -> None:
    # Seeded: with 4-channel test widths, an unlucky init leaves a gate's ReLU dead (~3 % of seeds).
    torch.manual_seed(0)
    model = randomise_head(build_model(EFMConfig.from_dict(TINY[name])))
    if model.cfg.context_levels:  # the pyramid's up-projections start at zero: open them
        with torch.no_grad():
            for conv in model.context.up:
                conv.weight.normal_(0, 0.1)
    if model.fusion is not None:  # so does the fusion's update: open it, or the gate gets no gradient
        with torch.no_grad():
            model.fusion.upd_prev.weight.normal_(0, 0.1)
    if model.condition is not None:  # so do the condition descriptor's heads
        with torch.no_grad():
            for conv in model.condition.heads:
                conv.weight.normal_(0, 0.1)
    side = max(16, 2 * model.size_multiple)
    if model.cfg.temporal:  # a zero state (the first frame) leaves the state convs without gradient
        out, _ = model(torch.rand(1, 3, side, side), torch.rand(model.state_shape(1, side, side)))
    else:
        out = model(torch.rand(1, 3, side, side))
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_untrained_model_is_identity_global_residual() -> None:
    model = build_model("efm-t").eval()
    x = torch.rand(1, 3, 24, 32)
    assert torch.equal(model(x), x)


def test_ldg_switch_removes_gates() -> None:
    gated, plain = build_model(preset_config("efm-t")), build_model(preset_config("efm-t", ldg=False))
    assert len(gated.gated_blocks()) == gated.cfg.enc_blocks + gated.cfg.mid_blocks
    assert plain.gated_blocks() == []
    assert count_params(plain) < count_params(gated)
    block = gated.gated_blocks()[0]
    block.keep_gate = True
    gated(torch.rand(1, 3, 16, 16))
    assert block.last_gate is not None and block.last_gate.shape == (1, 1, 8, 8)
    assert ((block.last_gate > 0) & (block.last_gate < 1)).all()


def test_default_preset_fits_the_compute_budget() -> None:
    macs = count_macs(build_model("efm-s"), 480, 640)
    assert 4e9 < macs <= 12e9
    assert count_macs(build_model("efm-m"), 480, 640) > macs


def test_unknown_preset_and_keys_are_errors() -> None:
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config("efm-xl")
    with pytest.raises(ConfigError, match="unknown EFM config keys"):
        EFMConfig.from_dict({"width": 8, "depth": 3})


@pytest.mark.parametrize("size", [(36, 52), (64, 64), (120, 8)])
def test_onnx_export_matches_torch(tmp_path, size) -> None:
    model = randomise_head(build_model("efm-t")).eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    want = model(torch.from_numpy(x)).detach().numpy()
    assert np.abs(got - want).max() < 1e-4
    import onnx

    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops <= {"Conv", "Relu", "Add", "Mul", "Sigmoid", "DepthToSpace"}


def test_checkpoint_round_trip(tmp_path) -> None:
    model = randomise_head(build_model("efm-t"))
    save_checkpoint(tmp_path / "m.pt", model_payload(model, meta={"task": "noise"}))
    loaded, payload = load_fp32_model(tmp_path / "m.pt")
    assert payload["meta"]["task"] == "noise"
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded(x), model.eval()(x))
    assert isinstance(load_model(tmp_path / "m.pt"), torch.nn.Module)


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a checkpoint at all", "not a readable"),
        (pickle.dumps(_Exploit()), "not a readable"),
        (None, "not a qdr checkpoint"),
    ],
)
def test_bad_checkpoint_files_are_rejected(tmp_path, content, message) -> None:
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save({"state_dict": {}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        read_checkpoint(path)


def test_checkpoint_with_wrong_weights_is_rejected(tmp_path) -> None:
    payload = model_payload(build_model("efm-t"))
    payload["model"]["width"] = 16
    save_checkpoint(tmp_path / "m.pt", payload)
    with pytest.raises(ModelFileError, match="do not match"):
        load_fp32_model(tmp_path / "m.pt")
    with pytest.raises(ModelFileError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")


def test_context_pyramid_starts_as_identity_and_sets_the_size_multiple() -> None:
    plain = build_model(preset_config("efm-t"))
    ctx = build_model(preset_config("efm-t", context_levels=2))
    assert plain.size_multiple == 4 and ctx.size_multiple == 16
    randomise_head(plain)
    # efm-t weights copied into the context model: same output until the pyramid learns something.
    ctx.load_state_dict({**ctx.state_dict(), **plain.state_dict()})
    x = torch.rand(1, 3, 32, 48)
    assert torch.allclose(ctx.eval()(x), plain.eval()(x), atol=1e-6)
    with torch.no_grad():
        for conv in ctx.context.up:
            conv.weight.normal_(0, 0.1)
    # Now the deep levels (1/8, 1/16) change the output far from where the input changed.
    y = x.clone()
    y[..., :4, :4] = 1.0
    assert (ctx(y) - ctx(x))[..., 24:, 36:].abs().max() > 0
    assert (plain(y) - plain(x))[..., 24:, 36:].abs().max() == 0


def _opened_pyramid(cfg: EFMConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = randomise_head(build_model(cfg))
    with torch.no_grad():
        for conv in model.context.up:
            conv.weight.normal_(0, 0.1)
    return model.eval()


def test_cropping_pyramid_is_the_same_function_and_needs_only_multiples_of_32(tmp_path) -> None:
    """context_crop (efm-s-ctx5 / efm-s-auto): where the sizes halve exactly it computes what the
    padded pyramid computes; otherwise its levels below 1/32 round up and are cropped on the way
    back, so a frame pads to 32, not 128 (640x480 is not padded), also in the exported graph."""
    from dataclasses import replace

    cfg = preset_config("efm-t", context_levels=5)
    padded = _opened_pyramid(cfg)
    crop = build_model(replace(cfg, context_crop=True)).eval()
    crop.load_state_dict(padded.state_dict())
    assert (padded.size_multiple, crop.size_multiple) == (128, 32)
    assert preset_config("efm-s-auto").context_crop and preset_config("efm-s-ctx5").context_crop
    x = torch.rand(1, 3, 128, 256)
    with torch.no_grad():
        assert torch.equal(crop(x), padded(x))
        y = torch.rand(1, 3, 96, 160)  # 1/32: 3x5 cells; 1/64 and 1/128 round up
        out = crop(y)
    assert out.shape == y.shape and torch.isfinite(out).all()
    assert count_macs(crop, 480, 640) < count_macs(padded, 480, 640) == count_macs(padded, 512, 640)
    path = export_onnx(crop, tmp_path / "crop.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert (meta["size_multiple"], meta["context_cell"]) == ("32", "128")  # tiles overlap 2 cells
    for shape in ((96, 160), (32, 224), (224, 32)):
        z = torch.rand(1, 3, *shape)
        with torch.no_grad():
            want = crop(z).numpy()
        assert np.abs(sess.run(None, {"input": z.numpy()})[0] - want).max() < 1e-5


def test_init_from_copies_weights_into_an_extended_model(tmp_path) -> None:
    from qdr_core.models.checkpoint import init_from

    plain = randomise_head(build_model(preset_config("efm-t")))
    save_checkpoint(tmp_path / "p.pt", model_payload(plain))
    ctx = build_model(preset_config("efm-t", context_levels=1))
    fresh = init_from(ctx, tmp_path / "p.pt")
    assert fresh and all(name.startswith("context.") for name in fresh)
    assert torch.equal(ctx.head.weight, plain.head.weight)
    wider = build_model(EFMConfig(width=12, enc_blocks=1, mid_blocks=1, dec_blocks=1))
    with pytest.raises(ModelFileError, match="do not fit"):
        init_from(wider, tmp_path / "p.pt")


def test_context_model_exports_with_its_size_multiple(tmp_path) -> None:
    from qdr_core.export.qdq_tensorrt import export_tensorrt_qdq
    from qdr_core.quant.calibrate import calibrate
    from qdr_core.quant.convert import quantize_model
    from qdr_core.runtime import load_runtime
    from qdr_core.runtime.onnx_metadata import read_metadata

    model = randomise_head(build_model(preset_config("efm-t", context_levels=2))).eval()
    path = export_onnx(model, tmp_path / "fp32.onnx")
    qat = quantize_model(model)
    calibrate(qat, [torch.rand(1, 3, 32, 32)])
    trt = export_tensorrt_qdq(qat.eval(), tmp_path / "trt.onnx")  # passes the TensorRT rules
    assert read_metadata(path)["size_multiple"] == read_metadata(trt)["size_multiple"] == "16"
    image = np.random.default_rng(0).random((37, 50, 3), dtype=np.float32)
    with load_runtime(path, backend="onnxruntime", num_threads=1) as rt:
        assert rt.size_multiple == 16
        out = rt.infer(image)
    x = torch.from_numpy(np.pad(image, ((0, 11), (0, 14), (0, 0)), mode="reflect").transpose(2, 0, 1).copy())
    with torch.no_grad():
        ref = model(x[None])[0, :, :37, :50].clamp(0, 1).numpy().transpose(1, 2, 0)
    assert np.abs(out - ref).max() < 1e-5


def test_deep_pyramid_counts_exports_and_runs_on_padded_frames(tmp_path) -> None:
    """Five levels (multiple 128, as efm-s-ctx5): 640x480 is not a multiple, so MACs are those of
    the 640x512 frame the runtimes compute, and the ONNX trace needs a 128-pixel sample."""
    from qdr_core.bench.models import onnx_complexity
    from qdr_core.models.complexity import count_macs
    from qdr_core.runtime import load_runtime

    assert preset_config("efm-s-ctx5").context_levels == 5
    model = randomise_head(build_model(preset_config("efm-t", context_levels=5))).eval()
    assert model.size_multiple == 128
    assert count_macs(model, 480, 640) == count_macs(model, 512, 640) > count_macs(model, 384, 640)
    path = export_onnx(model, tmp_path / "deep.onnx")
    assert onnx_complexity(path, 480, 640)["macs"] == count_macs(model, 480, 640)
    image = np.random.default_rng(1).random((70, 130, 3), dtype=np.float32)
    with load_runtime(path, backend="onnxruntime", num_threads=1) as rt:
        out = rt.infer(image)
    x = torch.from_numpy(np.pad(image, ((0, 58), (0, 126), (0, 0)), mode="reflect").transpose(2, 0, 1).copy())
    with torch.no_grad():
        ref = model(x[None])[0, :, :70, :130].clamp(0, 1).numpy().transpose(1, 2, 0)
    assert np.abs(out - ref).max() < 1e-5


def test_reconfigure_checkpoint_switches_context_crop_and_refuses_weight_changes(tmp_path) -> None:
    """scripts/reconfigure_checkpoint.py (how models/auto got ``context_crop``): fp32 and qat files
    keep every tensor, record the change, and a change the weights do not fit is refused."""
    import runpy
    import sys

    from qdr_core.quant import calibrate, qat_payload, quantize_model
    from qdr_core.quant.qat_model import reconfigure_checkpoint

    model = _opened_pyramid(preset_config("efm-t", context_levels=4))
    qat = quantize_model(model)
    calibrate(qat, [torch.rand(1, 3, 64, 64)])
    save_checkpoint(tmp_path / "fp32.pt", model_payload(model, "fp32", {"task": "haze"}))
    save_checkpoint(tmp_path / "qat.pt", qat_payload(qat, {"task": "haze"}))
    for kind in ("fp32", "qat"):
        src, dst = tmp_path / f"{kind}.pt", tmp_path / f"{kind}_crop.pt"
        assert reconfigure_checkpoint(src, dst, {"context_crop": True})["context_crop"] is True
        before, after = load_model(src), load_model(dst)
        assert (before.size_multiple, after.size_multiple) == (64, 32)
        x = torch.rand(1, 3, 64, 128)
        with torch.no_grad():
            assert torch.equal(before(x), after(x))
        assert read_checkpoint(dst)["meta"]["reconfigured"] == [{"context_crop": "True"}]
    with pytest.raises(ModelFileError, match="does not fit the stored weights"):
        reconfigure_checkpoint(tmp_path / "qat.pt", tmp_path / "bad.pt", {"context_levels": 5})
    with pytest.raises(ModelFileError, match="unknown EFM config keys"):
        reconfigure_checkpoint(tmp_path / "qat.pt", tmp_path / "bad.pt", {"colour": 1})
    assert not (tmp_path / "bad.pt").exists()
    argv = sys.argv
    sys.argv = ["reconfigure_checkpoint.py", str(tmp_path / "fp32.pt"), "context_crop=true"]
    try:
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(REPO / "scripts" / "reconfigure_checkpoint.py"), run_name="__main__")
    finally:
        sys.argv = argv
    assert done.value.code == 0 and load_model(tmp_path / "fp32.pt").cfg.context_crop
