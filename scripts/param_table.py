"""Write (or --check) the files generated from the node's parameter table
(qdr_core/node/params.py): config/restore.yaml and the parameter tables in README.md and
docs/ros_node.md.

    .venv/bin/python scripts/param_table.py           # rewrite both
    .venv/bin/python scripts/param_table.py --check   # exit 1 if either is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qdr_core.node.params import render_config, replace_table

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "restore.yaml"
TABLES = (REPO / "README.md", REPO / "docs" / "ros_node.md")


def expected() -> dict[Path, str]:
    tables = {path: replace_table(path.read_text(encoding="utf-8")) for path in TABLES}
    return {CONFIG: render_config(), **tables}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when out of date")
    args = parser.parse_args(argv)
    stale = [path for path, text in expected().items() if path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO)} is out of date: run scripts/param_table.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected().items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
