"""Measured compute roofline of this CPU: the best int8 and fp32 ops/s onnxruntime reaches.

"Efficiency" compares a model's achieved ops/s with what the same library reaches on kernels that
are as friendly as it gets (a large square MatMulInteger, and QLinearConv / Conv 3x3 at the channel
widths an EFM uses), measured now, under the same background load as the model's timings. One MAC
counts as two ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qdr_core.bench.timing import measure


def _session(model: Any, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _graph(nodes, inputs, outputs, inits, opset: int = 17):
    from onnx import helper

    graph = helper.make_graph(nodes, "roofline", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def matmul_integer(size: int) -> tuple[Any, dict[str, np.ndarray], int]:
    """u8 [size x size] x s8 [size x size] -> s32: what onnxruntime's int8 GEMM does at best."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    b = numpy_helper.from_array(rng.integers(-127, 128, (size, size), dtype=np.int8), "B")
    a_zp = numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zp")
    b_zp = numpy_helper.from_array(np.array(0, dtype=np.int8), "b_zp")
    node = helper.make_node("MatMulInteger", ["A", "B", "a_zp", "b_zp"], ["Y"])
    model = _graph(
        [node],
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [size, size])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [size, size])],
        [b, a_zp, b_zp],
    )
    feeds = {"A": rng.integers(0, 256, (size, size), dtype=np.uint8)}
    return model, feeds, size**3


def matmul_fp32(size: int) -> tuple[Any, dict[str, np.ndarray], int]:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    b = numpy_helper.from_array(rng.standard_normal((size, size)).astype(np.float32), "B")
    node = helper.make_node("MatMul", ["A", "B"], ["Y"])
    model = _graph(
        [node],
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [size, size])],
        [b],
    )
    return model, {"A": rng.standard_normal((size, size)).astype(np.float32)}, size**3


def qlinear_conv(channels: int, height: int, width: int) -> tuple[Any, dict[str, np.ndarray], int]:
    """QLinearConv 3x3, u8 activations, s8 per-channel weights: the op an int8_cpu EFM runs."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    c = channels
    inits = [
        numpy_helper.from_array(np.array(0.02, dtype=np.float32), "x_scale"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "x_zp"),
        numpy_helper.from_array(rng.integers(-127, 128, (c, c, 3, 3), dtype=np.int8), "W"),
        numpy_helper.from_array(np.full(c, 0.01, dtype=np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros(c, dtype=np.int8), "w_zp"),
        numpy_helper.from_array(np.array(0.05, dtype=np.float32), "y_scale"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "y_zp"),
    ]
    node = helper.make_node(
        "QLinearConv",
        ["X", "x_scale", "x_zp", "W", "w_scale", "w_zp", "y_scale", "y_zp"],
        ["Y"],
        pads=[1, 1, 1, 1],
        kernel_shape=[3, 3],
    )
    shape = [1, c, height, width]
    model = _graph(
        [node],
        [helper.make_tensor_value_info("X", TensorProto.UINT8, shape)],
        [helper.make_tensor_value_info("Y", TensorProto.UINT8, shape)],
        inits,
    )
    feeds = {"X": rng.integers(0, 256, shape, dtype=np.uint8)}
    return model, feeds, c * c * 9 * height * width


def conv_fp32(channels: int, height: int, width: int) -> tuple[Any, dict[str, np.ndarray], int]:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    c = channels
    w = numpy_helper.from_array((rng.standard_normal((c, c, 3, 3)) * 0.05).astype(np.float32), "W")
    node = helper.make_node("Conv", ["X", "W"], ["Y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    shape = [1, c, height, width]
    model = _graph(
        [node],
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, shape)],
        [w],
    )
    return model, {"X": rng.standard_normal(shape).astype(np.float32)}, c * c * 9 * height * width


def kernels(quick: bool) -> list[tuple[str, str, Any]]:
    """(name, precision, builder) of the kernels timed; the conv shapes are the EFM's bottleneck
    (64 ch at 1/4 of 640x480) and 1/2-resolution (32 ch) stages."""
    size = 1024 if quick else 2048
    return [
        (f"MatMulInteger u8s8 {size}^3", "int8", lambda: matmul_integer(size)),
        ("QLinearConv 3x3 64ch 120x160", "int8", lambda: qlinear_conv(64, 120, 160)),
        ("QLinearConv 3x3 64ch 240x320", "int8", lambda: qlinear_conv(64, 240, 320)),
        ("QLinearConv 3x3 32ch 240x320", "int8", lambda: qlinear_conv(32, 240, 320)),
        (f"MatMul fp32 {size}^3", "fp32", lambda: matmul_fp32(size)),
        ("Conv fp32 3x3 64ch 120x160", "fp32", lambda: conv_fp32(64, 120, 160)),
    ]


def measure_roofline(threads: list[int], quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    """Best int8 / fp32 GOPS per thread count (``peak_gops``: any kernel, the machine's limit as
    onnxruntime reaches it; ``conv_peak_gops``: best QLinearConv 3x3, the limit for conv-shaped
    work), and every kernel's own number."""
    repeats = repeats or (5 if quick else 15)
    rows = []
    for name, precision, build in kernels(quick):
        model, feeds, macs = build()
        for t in threads:
            session = _session(model, t)
            timing = measure(lambda s=session, f=feeds: s.run(None, f), warmup=2, repeats=repeats)
            rows.append(
                {
                    "kernel": name,
                    "precision": precision,
                    "threads": t,
                    "macs": macs,
                    "median_ms": timing.median_ms,
                    "gops": 2 * macs / (timing.median_ms / 1000) / 1e9,
                }
            )
    conv = {
        f"int8_conv_{t}t": max(
            r["gops"] for r in rows if r["kernel"].startswith("QLinearConv") and r["threads"] == t
        )
        for t in threads
    }
    peak = {
        f"{p}_{t}t": max(r["gops"] for r in rows if r["precision"] == p and r["threads"] == t)
        for p in ("int8", "fp32")
        for t in threads
    }
    return {"kernels": rows, "peak_gops": peak, "conv_peak_gops": conv, "ops_per_mac": 2}
