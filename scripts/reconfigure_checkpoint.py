"""Change EFMConfig fields of a checkpoint that keep its weights (e.g. ``context_crop``).

    .venv/bin/python scripts/reconfigure_checkpoint.py models/auto/fp32.pt context_crop=true
    .venv/bin/python scripts/reconfigure_checkpoint.py models/auto/qat.pt context_crop=true

Rewrites the file in place (atomically) unless ``--out`` is given; refuses a change the stored
tensors do not fit exactly (``quant.qat_model.reconfigure_checkpoint``). Re-export the ONNX files
afterwards (``qdr export``) and re-measure: a switch like ``context_crop`` changes the function on
frames whose sizes are not multiples of the old padding.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qdr_core.errors import QdrError
from qdr_core.quant.qat_model import reconfigure_checkpoint


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("changes", nargs="+", metavar="FIELD=VALUE", help='JSON values: true, 5, "output"')
    p.add_argument("--out", help="write here instead of over the checkpoint")
    args = p.parse_args(argv)
    changes = {}
    for item in args.changes:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"expected FIELD=VALUE, got {item!r}")
        changes[key] = _value(value)
    try:
        config = reconfigure_checkpoint(args.checkpoint, args.out or args.checkpoint, changes)
    except QdrError as exc:
        print(f"reconfigure_checkpoint: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out or args.checkpoint}: {config}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
