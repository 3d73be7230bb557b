"""``qdr`` command line: one sub-command per module in ``qdr_core.commands``.

Each command module exposes ``register(subparsers)`` and a ``run(args) -> int`` that it binds as
the parser's default. Heavy imports (torch, onnxruntime) happen inside ``run`` so ``qdr --help``
and the onnxruntime paths start fast and work without torch. Library errors (``QdrError``) become
one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from qdr_core import __version__
from qdr_core.errors import QdrError

# Explicit list, in help order. Add a module here when adding a command.
COMMAND_MODULES = (
    "qdr_core.commands.info",
    "qdr_core.commands.degrade",
    "qdr_core.commands.train",
    "qdr_core.commands.restore",
    "qdr_core.commands.evaluate",
    "qdr_core.commands.suite",
    "qdr_core.commands.bench",
    "qdr_core.commands.qat",
    "qdr_core.commands.export",
    "qdr_core.commands.ablate",
    "qdr_core.commands.bag",
    "qdr_core.commands.detect_eval",
    "qdr_core.commands.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qdr", description="Real-time INT8 image restoration for edge cameras."
    )
    parser.add_argument("--version", action="version", version=f"qdr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except QdrError as exc:
        # Backend messages quoted in an error (onnxruntime's, torch's) may span lines; a user sees one.
        message = " ".join(str(exc).split())
        print(f"qdr {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qdr {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
