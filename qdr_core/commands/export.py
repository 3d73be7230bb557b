"""``qdr export``: ONNX exports of a checkpoint.

Targets: ``tensorrt`` (QDQ ONNX for TensorRT's explicit INT8 from a QAT checkpoint, checked against
the TensorRT rules), ``onnxruntime`` (INT8 U8S8 QDQ for onnxruntime's int8 CPU kernels, from a QAT
checkpoint, with the learned ranges), ``fp32`` (plain FP32 ONNX of any checkpoint).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to ONNX (tensorrt / onnxruntime INT8, fp32)",
                              description=__doc__)  # fmt: skip
    p.add_argument("--checkpoint", required=True, help="qdr .pt checkpoint (kind qat for the INT8 targets)")
    p.add_argument("--target", required=True, choices=["tensorrt", "onnxruntime", "fp32"])
    p.add_argument("--output", required=True, help="ONNX file to write")
    p.add_argument("--task", help="task of the calibration crops (onnxruntime; default: from the checkpoint)")
    p.add_argument(
        "--calib-images", type=int, default=16, help="calibration crops for onnxruntime-only ranges"
    )
    p.add_argument("--opset", type=int, default=17)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from qdr_core.errors import ConfigError, ModelFileError
    from qdr_core.models.checkpoint import read_checkpoint
    from qdr_core.quant.qat_model import load_model

    payload = read_checkpoint(args.checkpoint)
    model = load_model(args.checkpoint)
    meta = payload.get("meta", {})
    task = args.task or meta.get("task")
    metadata = {
        "task": str(task or ""),
        "source": args.checkpoint,
        "git_commit": str(meta.get("git_commit", "")),
    }
    if args.target == "fp32":
        from qdr_core.export.onnx_fp32 import export_onnx
        from qdr_core.export.quant_points import clipped_float_model
        from qdr_core.quant.convert import is_quantized

        float_model = clipped_float_model(model) if is_quantized(model) else model
        export_onnx(float_model, args.output, opset=args.opset, metadata={**metadata, "precision": "fp32"})
    elif payload["kind"] != "qat":
        raise ModelFileError(
            f"--target {args.target} needs a QAT checkpoint (qdr qat), got kind {payload['kind']!r}"
        )
    elif args.target == "tensorrt":
        from qdr_core.export.qdq_tensorrt import export_tensorrt_qdq

        export_tensorrt_qdq(model, args.output, opset=args.opset, metadata=metadata)
        print(
            "TensorRT rules: passed (symmetric INT8, per-channel weights on axis 0, Conv/Add inputs quantized)"
        )
    else:
        from qdr_core.ablate import calibration_batches
        from qdr_core.export.ort_int8 import assert_int8_kernels, export_ort_int8

        if not task:
            raise ConfigError("--task is needed: the checkpoint does not record one")
        export_ort_int8(
            model,
            args.output,
            # Crops at least two of the model's deepest cells across (a context pyramid's 1/128
            # level is 1x1 on 128-pixel crops, and its ranges would not fit full frames).
            calibration_batches(task, args.calib_images, patch=max(128, 2 * model.context_cell)),
            metadata,
            opset=args.opset,
        )
        counts = assert_int8_kernels(args.output)
        floats = counts.get("Conv", 0) + counts.get("FusedConv", 0)
        print(
            f"onnxruntime optimized graph: {counts.get('QLinearConv', 0)} QLinearConv (int8), {floats} FP32 conv"
        )
    print(f"wrote {args.output}")
    return 0
