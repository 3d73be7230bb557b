"""ModelSlot and switch_model: the node's model swap without ROS (issue #13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qdr_core.errors import ConfigError
from qdr_core.export.random_model import write_conv_onnx
from qdr_core.node.model_slot import ModelSlot, switch_model
from qdr_core.node.params import NodeParams
from qdr_core.runtime import load_runtime


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("slot")
    return write_conv_onnx(tmp / "a.onnx"), write_conv_onnx(tmp / "b.onnx", stride=1)


def params(path: Path | str) -> NodeParams:
    return NodeParams(model_path=str(path), num_threads=1, warmup_frames=1)


def test_swap_waits_for_the_frame_in_flight(models):
    slot = ModelSlot()
    first = load_runtime(models[0], backend="onnxruntime", num_threads=1)
    slot.swap(first, str(models[0]))
    frame = np.full((8, 8, 3), 100, np.uint8)
    with slot.use() as runtime:
        assert runtime is first
        second = load_runtime(models[1], backend="onnxruntime", num_threads=1)
        assert slot.swap(second, str(models[1])) is first
        assert not first.closed  # this frame still runs on it
        runtime.infer_planes8(frame)
        with slot.use() as newer:
            assert newer is second  # frames that start after the swap take the new model
    assert first.closed and not second.closed
    assert slot.model_file == str(models[1])
    slot.swap(None)
    assert second.closed and slot.runtime is None and slot.model_file == ""


def test_switch_model_loads_beside_and_keeps_the_old_one_on_failure(models, tmp_path):
    slot = ModelSlot()
    switch_model(slot, params(models[0]))
    old = slot.runtime
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00not onnx")
    for path, message in (("/nonexistent/x.onnx", "not found"), (broken, "broken.onnx")):
        with pytest.raises(ConfigError) as err:
            switch_model(slot, params(path))
        text = str(err.value)
        assert message in text and f"{models[0]} kept" in text and "\n" not in text
        assert slot.runtime is old and not old.closed
    opened = switch_model(slot, params(models[1]))
    assert slot.runtime is opened.runtime and old.closed
    assert slot.model_file == str(models[1])
    slot.swap(None)


def test_model_change_rule():
    from qdr_core.node.params import RUNTIME_PARAMS, model_change

    assert {"task", "model_variant", "model_path"} <= RUNTIME_PARAMS
    base = NodeParams()
    assert model_change(base, base.with_changes(task="haze"))
    assert model_change(base, base.with_changes(model_variant="fp32"))
    assert not model_change(base, base.with_changes(max_fps=5.0))
    assert base.with_changes(task="auto").model_candidates[-1] == "models/auto/int8_cpu.onnx"
    assert not model_change(base, base.with_changes(temporal="auto"))
    assert model_change(base, base.with_changes(model_path="models/auto/int8_cpu.onnx"))
    with pytest.raises(ConfigError, match="task 'fog' is not one of"):
        base.with_changes(task="fog")
