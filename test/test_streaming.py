"""Streaming restoration: the temporal EFM, its exports with explicit state, and runtimes that
carry the state from frame to frame (onnxruntime)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from qdr_core.errors import ConfigError, ModelContractError
from qdr_core.export.onnx_fp32 import export_onnx
from qdr_core.export.ort_int8 import assert_int8_kernels, export_ort_int8
from qdr_core.export.qdq_tensorrt import export_tensorrt_qdq
from qdr_core.export.trt_rules import check_trt_rules
from qdr_core.models import build_model
from qdr_core.models.complexity import count_macs
from qdr_core.quant import calibrate, quantize_model
from qdr_core.runtime import load_runtime
from qdr_core.runtime.stateful import StreamSession

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def streaming_model(seed: int = 0) -> nn.Module:
    """A tiny streaming EFM whose state visibly changes the output (an untrained one ignores it)."""
    torch.manual_seed(seed)
    model = build_model("efm-t-stream")
    nn.init.normal_(model.head.weight, std=0.05)
    nn.init.constant_(model.fusion.gate.bias, 4.0)
    nn.init.normal_(model.fusion.upd_prev.weight, std=0.3)
    return model.eval()


@pytest.fixture(scope="module")
def stream_onnx(tmp_path_factory):
    return export_onnx(streaming_model(), tmp_path_factory.mktemp("stream") / "stream.onnx")


def test_untrained_streaming_model_is_the_single_frame_model():
    torch.manual_seed(0)
    single = build_model("efm-t")
    nn.init.normal_(single.head.weight, std=0.05)
    stream = build_model("efm-t-stream")
    stream.load_state_dict(single.state_dict(), strict=False)
    x = torch.rand(1, 3, 16, 24)
    out, state = stream(x, torch.randn(stream.state_shape(1, 16, 24)))
    assert torch.allclose(out, single(x), atol=1e-6)
    assert state.shape == (1, 16, 4, 6)


def test_forward_gradients_and_state_dependence():
    model = streaming_model().train()
    x = torch.rand(2, 3, 16, 16)
    out0, state = model(x)  # missing state = zero state (first frame)
    out1, _ = model(x, state)
    assert torch.isfinite(out1).all() and not torch.allclose(out0, out1)
    (out1.mean() + out0.mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_streaming_compute_within_budget_of_single_frame():
    ratio = count_macs(build_model("efm-s-stream")) / count_macs(build_model("efm-s"))
    assert 1.0 < ratio <= 1.25


def test_onnx_has_explicit_state_and_matches_torch(stream_onnx):
    proto = onnx.load(str(stream_onnx))
    assert [i.name for i in proto.graph.input] == ["input", "state_in"]
    assert [o.name for o in proto.graph.output] == ["output", "state_out"]
    assert {n.op_type for n in proto.graph.node} <= {"Conv", "Relu", "Add", "Mul", "Sigmoid", "DepthToSpace"}
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["temporal"] == "1" and meta["state_stride"] == "4"
    model = streaming_model()
    x = np.random.default_rng(0).random((1, 3, 24, 32), dtype=np.float32)
    state = np.random.default_rng(1).standard_normal((1, 16, 6, 8)).astype(np.float32)
    out, new_state = ort.InferenceSession(str(stream_onnx)).run(None, {"input": x, "state_in": state})
    with torch.no_grad():
        t_out, t_state = model(torch.from_numpy(x), torch.from_numpy(state))
    np.testing.assert_allclose(out, t_out.numpy(), atol=1e-4)
    np.testing.assert_allclose(new_state, t_state.numpy(), atol=1e-4)


def test_runtime_carries_state_and_reset_gives_the_still(stream_onnx):
    runtime = load_runtime(str(stream_onnx), backend="onnxruntime")
    assert runtime.streaming and runtime.state_channels == 16 and runtime.state_stride == 4
    frame = (np.random.default_rng(2).random((30, 45, 3)) * 255).astype(np.uint8)  # odd size: padded
    still = runtime.infer_uint8(frame)
    session = StreamSession(runtime)
    first = np.dstack(session.planes8(frame))
    second = np.dstack(session.planes8(frame))
    after_reset = np.dstack(session.planes8(frame, reset=True))
    np.testing.assert_array_equal(first, still)
    assert np.abs(second.astype(int) - still).max() > 2
    np.testing.assert_array_equal(after_reset, still)
    # A new size cannot reuse the old state: that frame is a still of its own.
    small = frame[:20, :28]
    np.testing.assert_array_equal(np.dstack(session.planes8(small)), runtime.infer_uint8(small))
    floats = session.infer(frame.astype(np.float32) / 255, reset=True)
    np.testing.assert_allclose(floats, runtime.infer(frame.astype(np.float32) / 255), atol=1e-6)


def test_session_refuses_single_frame_model(tmp_path):
    path = export_onnx(build_model("efm-t"), tmp_path / "single.onnx")
    runtime = load_runtime(str(path), backend="onnxruntime")
    assert not runtime.streaming
    with pytest.raises(ConfigError, match="not a streaming model"):
        StreamSession(runtime)


def test_contract_rejects_state_that_cannot_be_fed_back(stream_onnx, tmp_path):
    proto = onnx.load(str(stream_onnx))
    meta = {p.key: p for p in proto.metadata_props}
    meta["state_stride"].value = "2"  # a zero state twice the size the graph expects
    bad = tmp_path / "bad_stride.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(ModelContractError, match=r"bad_stride\.onnx: fails on"):
        load_runtime(str(bad), backend="onnxruntime")


@pytest.fixture(scope="module")
def qat_stream():
    qat = quantize_model(streaming_model(), act_method="max")
    g = torch.Generator().manual_seed(1)
    calibrate(qat, [torch.rand(2, 3, 32, 32, generator=g)])
    return qat.eval()


def test_int8_exports_carry_state(qat_stream, tmp_path):
    x = np.random.default_rng(3).random((1, 3, 32, 32), dtype=np.float32)
    state = np.random.default_rng(4).standard_normal((1, 16, 8, 8)).astype(np.float32)
    with torch.no_grad():
        t_out, t_state = qat_stream(torch.from_numpy(x), torch.from_numpy(state))
    trt = export_tensorrt_qdq(qat_stream, tmp_path / "int8_trt.onnx")
    assert check_trt_rules(onnx.load(str(trt))) == []
    out, new_state = ort.InferenceSession(str(trt)).run(None, {"input": x, "state_in": state})
    np.testing.assert_allclose(out, t_out.numpy(), atol=0.05)
    np.testing.assert_allclose(new_state, t_state.numpy(), atol=0.05)
    rng = np.random.default_rng(0)
    cpu = export_ort_int8(
        qat_stream, tmp_path / "int8_cpu.onnx", [rng.random((1, 3, 32, 32), np.float32)] * 2
    )
    assert_int8_kernels(cpu)
    runtime = load_runtime(str(cpu), backend="onnxruntime")
    assert runtime.streaming
    out, _ = runtime._run_state(x, state)
    assert np.abs(out - t_out.numpy()).mean() < 0.02


def test_torch_and_onnxruntime_carry_the_same_stream(tmp_path):
    from qdr_core.export.random_model import write_random_model

    files = write_random_model(tmp_path, preset="efm-t-stream", seed=7)
    frames = [np.random.default_rng(k).random((20, 28, 3)).astype(np.float32) for k in range(3)]
    outputs = {}
    for backend, path in (("torch", files.checkpoint), ("onnxruntime", files.onnx)):
        runtime = load_runtime(str(path), backend=backend, num_threads=1)
        assert runtime.streaming and runtime.state_channels == 16
        session = StreamSession(runtime)
        outputs[backend] = [session.infer(f) for f in frames]
        # The state matters: the second frame of the stream is not its still restoration.
        assert np.abs(outputs[backend][1] - runtime.infer(frames[1])).max() > 1e-3
    for a, b in zip(outputs["torch"], outputs["onnxruntime"]):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_bench_complexity_reads_a_streaming_graph(stream_onnx):
    from qdr_core.bench.models import onnx_complexity

    assert onnx_complexity(stream_onnx, 48, 64)["macs"] == count_macs(streaming_model(), 48, 64)


@pytest.mark.parametrize("frames", [1, 3])
def test_clip_training_reaches_the_state_path_only_through_later_frames(frames):
    from qdr_core.train.stream import stream_train_step

    torch.manual_seed(0)
    model = build_model("efm-t-stream")
    nn.init.normal_(model.head.weight, std=0.05)  # a zero head would pass no gradient upstream
    before = model.fusion.upd_prev.weight.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    clean = torch.rand(2, frames, 3, 16, 16)
    stats = stream_train_step(model, optimizer, clean + 0.1 * torch.randn_like(clean), clean)
    assert set(stats) == {"loss", "loss_first", "loss_last"} and np.isfinite(stats["loss"])
    # The first frame's state is zero: only a carried state trains the convs that read it.
    assert torch.equal(model.fusion.upd_prev.weight, before) == (frames == 1)


def test_clip_training_refuses_single_frame_models_and_bad_shapes():
    from qdr_core.train.losses import CharbonnierLoss
    from qdr_core.train.stream import clip_losses

    clip = torch.rand(1, 2, 3, 8, 8)
    with pytest.raises(ConfigError, match="streaming model"):
        clip_losses(build_model("efm-t"), clip, clip, CharbonnierLoss())
    with pytest.raises(ConfigError, match="N x T x 3 x H x W"):
        clip_losses(build_model("efm-t-stream"), clip[0], clip[0], CharbonnierLoss())
