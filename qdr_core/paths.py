"""Where the source checkout is: the one helper for finding ``models/``, ``config/``, ``demo/`` and
``benchmarks/`` next to the code in a development tree, and which commit it is (recorded in every
checkpoint a training run writes)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def source_root() -> Path:
    """The source checkout this package runs from (the folder that holds ``qdr_core/``)."""
    return Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """The short commit hash of the source checkout, or ``unknown`` (no git, not a checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=source_root(),
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
