"""``qdr info``: parameters, MACs at 640x480, input/output names of a preset or a model file."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="describe a preset or a model file", description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="EFM preset name, or 'all'")
    src.add_argument("--model", help=".pt checkpoint or .onnx file")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def describe_preset(name: str, height: int, width: int) -> dict:
    from qdr_core.export.onnx_fp32 import INPUT_NAME, OUTPUT_NAME, STATE_IN_NAME, STATE_OUT_NAME
    from qdr_core.models import build_model
    from qdr_core.models.complexity import count_macs, count_params

    model = build_model(name)
    state = model.cfg.temporal
    return {
        "preset": name,
        "config": model.cfg.to_dict(),
        "params": count_params(model),
        "gmacs": round(count_macs(model, height, width) / 1e9, 3),
        "resolution": f"{width}x{height}",
        "inputs": [INPUT_NAME, *([STATE_IN_NAME] if state else [])],
        "outputs": [OUTPUT_NAME, *([STATE_OUT_NAME] if state else [])],
    }


def describe_onnx(path: str) -> dict:
    import onnx

    from qdr_core.errors import ModelFileError

    try:
        proto = onnx.load(path)
    except Exception as exc:
        raise ModelFileError(f"{path} is not a readable ONNX model ({exc})") from exc
    init_names = {i.name for i in proto.graph.initializer}
    ops: dict[str, int] = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    params = sum(int(__import__("numpy").prod(i.dims)) for i in proto.graph.initializer)
    return {
        "model": path,
        "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "params": params,
        "inputs": [i.name for i in proto.graph.input if i.name not in init_names],
        "outputs": [o.name for o in proto.graph.output],
        "ops": ops,
        "metadata": {m.key: m.value for m in proto.metadata_props},
    }


def check_model(path: str) -> None:
    """A file ``qdr restore`` would reject is not described as if it were a model."""
    from qdr_core.runtime import load_runtime

    backend = "onnxruntime" if path.endswith(".onnx") else "torch"
    load_runtime(path, backend=backend, num_threads=1).close()


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qdr_core.errors import ModelFileError

    if args.preset:
        from qdr_core.models import PRESETS

        names = list(PRESETS) if args.preset == "all" else [args.preset]
        rows = [describe_preset(n, args.height, args.width) for n in names]
    elif Path(args.model).suffix == ".onnx":
        check_model(args.model)
        rows = [describe_onnx(args.model)]
    elif Path(args.model).suffix == ".pt":
        check_model(args.model)
        from qdr_core.models.checkpoint import read_checkpoint
        from qdr_core.models.complexity import count_macs, count_params
        from qdr_core.quant.qat_model import load_model

        payload = read_checkpoint(args.model)
        model = load_model(args.model)
        rows = [{
            "model": args.model, "kind": payload["kind"], "config": payload["model"],
            "meta": {k: v for k, v in payload.get("meta", {}).items() if isinstance(v, (str, int, float))},
            "params": count_params(model), "gmacs": round(count_macs(model, args.height, args.width) / 1e9, 3),
            "resolution": f"{args.width}x{args.height}", "inputs": ["input"], "outputs": ["output"],
        }]  # fmt: skip
    else:
        raise ModelFileError(f"{args.model}: expected a .pt checkpoint or an .onnx model")
    if args.json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], indent=2))
        return 0
    for row in rows:
        name = row.get("preset") or row.get("model")
        gmacs = (
            f"{row['gmacs']:.2f} GMAC @ {row['resolution']}" if "gmacs" in row else f"opset {row['opset']}"
        )
        print(f"{name}: {row['params']:,} params, {gmacs}, inputs {row['inputs']}, outputs {row['outputs']}")
        if "config" in row:
            print(f"  config: {row['config']}")
        if "ops" in row:
            print(f"  ops: {row['ops']}")
    return 0
