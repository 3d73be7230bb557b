"""DFD / KD losses, the projection adapter and the LMR balancer."""

from __future__ import annotations

import pytest
import torch

from qdr_core.distill import (
    DecoderFreeDistillation,
    FeatureKD,
    FixedBalancer,
    LMRBalancer,
    OutputKD,
    ProjectionAdapter,
    build_balancer,
)
from qdr_core.models import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _features():
    torch.manual_seed(0)
    model = build_model("efm-t").eval()
    with torch.no_grad():
        _, feats = model(torch.rand(2, 3, 32, 32), return_features=True)
    return feats


def test_dfd_reads_only_the_bottleneck():
    t = _features()
    s = {k: v.clone() for k, v in t.items()}
    dfd = DecoderFreeDistillation()
    assert float(dfd(s, t)) == 0.0
    s["decoder"] = s["decoder"] + 1.0
    s["encoder"] = s["encoder"] * 3.0
    assert float(dfd(s, t)) == 0.0
    s["bottleneck"] = s["bottleneck"] * 1.1
    # Relative L1: a 10 % error on every element reads 0.1 whatever the feature scale.
    assert abs(float(dfd(s, t)) - 0.1) < 1e-5


def test_decoder_kd_and_output_kd():
    t = _features()
    s = {k: v.clone() for k, v in t.items()}
    s["decoder"] = s["decoder"] * 0.5
    assert abs(float(FeatureKD("decoder", "l1")(s, t)) - 0.5) < 1e-5
    assert float(FeatureKD("decoder", "mse")(s, t)) > 0
    a = torch.zeros(1, 3, 4, 4)
    assert float(OutputKD()(a, a + 0.25)) == 0.25


def test_projection_adapter_maps_student_to_teacher_width():
    adapter = ProjectionAdapter(16, 24)
    x = torch.randn(2, 16, 5, 5)
    y = adapter(x)
    assert y.shape == (2, 24, 5, 5)
    assert torch.allclose(y[:, :16], x) and torch.all(y[:, 16:] == 0)  # zero-padded identity at init
    t = {"bottleneck": torch.randn(2, 24, 5, 5)}
    loss = DecoderFreeDistillation(adapter=adapter)({"bottleneck": x}, t)
    loss.backward()
    assert adapter.proj.weight.grad is not None


def test_fixed_balancer_sums_with_weights():
    total, w = FixedBalancer({"rec": 1.0, "kd": 0.5})({"rec": torch.tensor(2.0), "kd": torch.tensor(4.0)})
    assert float(total) == 4.0 and w == {"rec": 1.0, "kd": 0.5}


def _fit(lmr, losses, steps=200):
    opt = torch.optim.Adam(lmr.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        total, _ = lmr(losses)
        total.backward()
        opt.step()
    return lmr.weights()


def test_lmr_weights_move_towards_inverse_loss_magnitudes():
    lmr = LMRBalancer(("rec", "kd"), init={"rec": 0.0, "kd": 0.0})
    w = _fit(lmr, {"rec": torch.tensor(0.02), "kd": torch.tensor(0.5)})
    # Optimum of exp(-s) L + s is exp(-s) = 1 / L.
    assert w["rec"] > 10 and w["kd"] < 3
    assert w["rec"] / w["kd"] > 5


def test_lmr_starts_at_the_first_batch_optimum_and_tracks_changes():
    lmr = build_balancer("lmr", ("rec", "kd"))
    assert isinstance(lmr, LMRBalancer)
    lmr({"rec": torch.tensor(0.04), "kd": torch.tensor(0.2)})
    w0 = lmr.weights()
    assert abs(w0["rec"] - 25.0) < 1e-3 and abs(w0["kd"] - 5.0) < 1e-4
    # The distillation loss shrinks as the student approaches the teacher: its weight grows.
    w1 = _fit(lmr, {"rec": torch.tensor(0.04), "kd": torch.tensor(0.05)}, steps=60)
    assert w1["kd"] > 1.5 * w0["kd"] and abs(w1["rec"] - 25.0) < 2.0
    assert bool(lmr.initialized) and "initialized" in lmr.state_dict()


def test_gradnorm_balancer_equalises_gradient_magnitudes():
    gn = build_balancer("gradnorm", ("rec", "kd"))
    gn.update({"rec": 0.5, "kd": 5.0})
    assert abs(gn.weights()["rec"] - 1.0) < 1e-6 and abs(gn.weights()["kd"] - 0.1) < 1e-6
    gn.update({"rec": 0.5, "kd": 0.5})
    assert 0.1 < gn.weights()["kd"] < 1.0  # moving average
    total, _ = gn({"rec": torch.tensor(1.0), "kd": torch.tensor(1.0)})
    assert abs(float(total) - (1.0 + gn.weights()["kd"])) < 1e-6
