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


def _kernel(op: str, x: np.ndarray, y_type: int, inits: dict[str, np.ndarray], **attrs: Any):
    """A one-node ONNX model ``op(X, *inits) -> Y`` (Y shaped like X) and its feed."""
    from onnx import helper, numpy_helper

    node = helper.make_node(op, ["X", *inits], ["Y"], **attrs)
    x_type = helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = helper.make_graph(
        [node],
        "roofline",
        [helper.make_tensor_value_info("X", x_type, list(x.shape))],
        [helper.make_tensor_value_info("Y", y_type, list(x.shape))],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), {"X": x}


def matmul(size: int, int8: bool) -> tuple[Any, dict[str, np.ndarray], int]:
    """u8 x s8 -> s32 MatMulInteger (what onnxruntime's int8 GEMM does at best), or fp32 MatMul."""
    from onnx import TensorProto

    rng = np.random.default_rng(0)
    if int8:
        b = rng.integers(-127, 128, (size, size), dtype=np.int8)
        inits = {"B": b, "a_zp": np.array(128, dtype=np.uint8), "b_zp": np.array(0, dtype=np.int8)}
        x = rng.integers(0, 256, (size, size), dtype=np.uint8)
        return (*_kernel("MatMulInteger", x, TensorProto.INT32, inits), size**3)
    b = rng.standard_normal((size, size)).astype(np.float32)
    x = rng.standard_normal((size, size)).astype(np.float32)
    return (*_kernel("MatMul", x, TensorProto.FLOAT, {"B": b}), size**3)


def conv3x3(c: int, height: int, width: int, int8: bool) -> tuple[Any, dict[str, np.ndarray], int]:
    """QLinearConv 3x3, u8 activations, s8 per-channel weights (the op an int8_cpu EFM runs), or
    fp32 Conv 3x3; ``c`` channels in and out."""
    from onnx import TensorProto

    rng = np.random.default_rng(0)
    shape, macs, attrs = (1, c, height, width), c * c * 9 * height * width, {"pads": [1] * 4}
    if int8:
        inits = {
            "x_scale": np.array(0.02, dtype=np.float32),
            "x_zp": np.array(128, dtype=np.uint8),
            "W": rng.integers(-127, 128, (c, c, 3, 3), dtype=np.int8),
            "w_scale": np.full(c, 0.01, dtype=np.float32),
            "w_zp": np.zeros(c, dtype=np.int8),
            "y_scale": np.array(0.05, dtype=np.float32),
            "y_zp": np.array(128, dtype=np.uint8),
        }
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        return (*_kernel("QLinearConv", x, TensorProto.UINT8, inits, kernel_shape=[3, 3], **attrs), macs)
    w = (rng.standard_normal((c, c, 3, 3)) * 0.05).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)
    return (*_kernel("Conv", x, TensorProto.FLOAT, {"W": w}, kernel_shape=[3, 3], **attrs), macs)


def kernels(quick: bool) -> list[tuple[str, str, Any]]:
    """(name, precision, builder) of the kernels timed; the conv shapes are the EFM's bottleneck
    (64 ch at 1/4 of 640x480) and 1/2-resolution (32 ch) stages."""
    size = 1024 if quick else 2048
    return [
        (f"MatMulInteger u8s8 {size}^3", "int8", lambda: matmul(size, int8=True)),
        ("QLinearConv 3x3 64ch 120x160", "int8", lambda: conv3x3(64, 120, 160, int8=True)),
        ("QLinearConv 3x3 64ch 240x320", "int8", lambda: conv3x3(64, 240, 320, int8=True)),
        ("QLinearConv 3x3 32ch 240x320", "int8", lambda: conv3x3(32, 240, 320, int8=True)),
        (f"MatMul fp32 {size}^3", "fp32", lambda: matmul(size, int8=False)),
        ("Conv fp32 3x3 64ch 120x160", "fp32", lambda: conv3x3(64, 120, 160, int8=False)),
    ]


def _session(model: Any, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def measure_roofline(threads: list[int], quick: bool = False) -> dict[str, Any]:
    """Best int8 / fp32 GOPS per thread count (``peak_gops``: any kernel, the machine's limit as
    onnxruntime reaches it; ``conv_peak_gops``: best QLinearConv 3x3, the limit for conv-shaped
    work), and every kernel's own number."""
    rows = []
    for name, precision, build in kernels(quick):
        model, feeds, macs = build()
        for t in threads:
            session = _session(model, t)
            timing = measure(lambda s=session, f=feeds: s.run(None, f), warmup=2, repeats=5 if quick else 15)
            gops = 2 * macs / (timing.median_ms / 1000) / 1e9
            row = {"kernel": name, "precision": precision, "threads": t, "macs": macs}
            rows.append({**row, "median_ms": timing.median_ms, "gops": gops})

    def best(t: int, keep: Any) -> float:
        return max(r["gops"] for r in rows if r["threads"] == t and keep(r))

    conv = {f"int8_conv_{t}t": best(t, lambda r: r["kernel"].startswith("QLinearConv")) for t in threads}
    peak = {
        f"{p}_{t}t": best(t, lambda r, p=p: r["precision"] == p) for p in ("int8", "fp32") for t in threads
    }
    return {"kernels": rows, "peak_gops": peak, "conv_peak_gops": conv, "ops_per_mac": 2}
