"""Fake quantizer math, quantized layers, QAT conversion and QAT checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qdr_core.models import build_model
from qdr_core.models.blocks import Add
from qdr_core.models.checkpoint import save_checkpoint
from qdr_core.quant import (
    FakeQuantizer,
    QuantAdd,
    QuantConv2d,
    calibrate,
    fake_quantize,
    qat_payload,
    quantize_model,
    set_quantization,
    unique_quantizers,
)
from qdr_core.quant.qat_model import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_round_trip_error_is_half_a_step_inside_the_range():
    s = torch.tensor([0.01])
    x = torch.linspace(-1.28, 1.27, 10001)
    q = fake_quantize(x, s, -128, 127)
    assert (q - x).abs().max() <= 0.5 * s + 1e-6
    # Values are on the INT8 grid: integers -128..127 times the step.
    k = q / s
    assert torch.allclose(k, k.round(), atol=1e-4) and k.min() >= -128 and k.max() <= 127


def test_values_outside_the_range_are_clipped():
    s = torch.tensor([0.1])
    q = fake_quantize(torch.tensor([100.0, -100.0]), s, -128, 127)
    assert torch.allclose(q, torch.tensor([12.7, -12.8]))


def test_ste_passes_gradient_inside_and_blocks_outside():
    s = torch.tensor([0.1])
    x = torch.tensor([0.33, -5.0, 12.69, 13.5, -12.9], requires_grad=True)
    fake_quantize(x, s, -128, 127).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_scale_gradient_follows_lsq():
    # LSQ: d q / d s = round(x/s) - x/s inside the range, qmin / qmax where clipped.
    s = torch.tensor([0.1], requires_grad=True)
    x = torch.tensor([0.33, 20.0, -20.0])
    grads = []
    for v in x:
        s.grad = None
        fake_quantize(v.reshape(1), s, -128, 127).sum().backward()
        grads.append(float(s.grad))
    assert grads == pytest.approx([round(3.3) - 3.3, 127.0, -128.0], abs=1e-5)


def test_per_channel_uses_one_scale_per_output_channel():
    w = torch.randn(4, 3, 3, 3)
    fq = FakeQuantizer(4, axis=0, narrow=True, method="max")
    fq.start_observing()
    fq(w)
    fq.init_scale()
    assert torch.allclose(fq.scale, w.abs().amax(dim=(1, 2, 3)) / 127)
    q = fq(w)
    assert ((q - w).abs().amax(dim=(1, 2, 3)) <= fq.scale / 2 + 1e-6).all()
    assert (q / fq.scale.reshape(-1, 1, 1, 1)).abs().max() <= 127 + 1e-4


@pytest.mark.parametrize("method", ["max", "percentile", "mse"])
def test_calibration_methods(method):
    torch.manual_seed(0)
    batches = [torch.randn(4, 16, 32, 32) for _ in range(8)]
    batches[0][0, 0, 0, 0] = 20.0  # one outlier: percentile and mse clip it, max keeps it
    fq = FakeQuantizer(method=method)
    fq.start_observing()
    for x in batches:
        assert fq(x) is x  # observing leaves the tensor alone
    fq.init_scale()
    x = torch.cat(batches)
    clip = float(fq.scale.detach()) * 127
    if method == "max":
        assert clip == pytest.approx(20.0)
    else:
        assert clip < 10.0
    if method == "mse":
        err_mse = ((fq(x) - x) ** 2).mean()
        fq.scale.data.fill_(20.0 / 127)
        assert err_mse < ((fq(x) - x) ** 2).mean()


def test_scale_learns_towards_lower_error():
    torch.manual_seed(0)
    x = torch.randn(4096)
    fq = FakeQuantizer()
    fq.scale.data.fill_(1.0)  # far too coarse: most values round to 0 or +-1
    opt = torch.optim.Adam(fq.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = ((fq(x) - x) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.1 * losses[0]
    assert float(fq.scale.detach()) < 0.2


@pytest.fixture(scope="module")
def fp32_model():
    torch.manual_seed(0)
    model = build_model("efm-t")
    nn.init.normal_(model.head.weight, std=0.05)
    return model.eval()


def test_quantize_model_swaps_every_conv_and_add_and_keeps_the_teacher(fp32_model):
    before = {k: v.clone() for k, v in fp32_model.state_dict().items()}
    qat = quantize_model(fp32_model, act_method="max")
    convs = [m for m in qat.modules() if isinstance(m, nn.Conv2d)]
    adds = [m for m in qat.modules() if isinstance(m, Add)]
    assert convs and all(isinstance(m, QuantConv2d) for m in convs)
    assert adds and all(isinstance(m, QuantAdd) for m in adds)
    assert not any(isinstance(m, FakeQuantizer) for m in fp32_model.modules())
    assert all(torch.equal(before[k], v) for k, v in fp32_model.state_dict().items())
    # One quantizer per tensor: a residual block's input feeds conv1, the gate and the Add.
    block = qat.encoder[0]
    assert block.conv1.input_quant is block.gate.dw.input_quant is block.add.quant_a
    assert qat.stem.input_quant is qat.residual_add.quant_a
    assert qat.down.input_quant is qat.skip_add.quant_b


def test_calibrated_qat_model_is_close_to_fp32_and_switchable(fp32_model):
    qat = quantize_model(fp32_model, act_method="max")
    calibrate(qat, [torch.rand(2, 3, 32, 32)])
    x = torch.rand(1, 3, 36, 44)
    with torch.no_grad():
        ref, out = fp32_model(x), qat(x)
        assert 0 < (out - ref).abs().mean() < 0.02
        set_quantization(qat, False)
        assert torch.allclose(qat(x), ref, atol=1e-5)
    names = [n for n, _ in unique_quantizers(qat)]
    assert len(names) == len(set(names))


def test_qat_checkpoint_round_trip(fp32_model, tmp_path):
    qat = quantize_model(fp32_model, act_method="max")
    calibrate(qat, [torch.rand(2, 3, 32, 32)])
    path = tmp_path / "qat.pt"
    save_checkpoint(path, qat_payload(qat, {"task": "noise"}))
    loaded = load_model(path)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), qat.eval()(x))
    assert loaded.encoder[0].conv1.input_quant is loaded.encoder[0].add.quant_a
