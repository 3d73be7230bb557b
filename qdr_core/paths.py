"""Where the source checkout is: the one helper for finding ``models/``, ``config/``, ``demo/`` and
``benchmarks/`` next to the code in a development tree."""

from __future__ import annotations

from pathlib import Path


def source_root() -> Path:
    """The source checkout this package runs from (the folder that holds ``qdr_core/``)."""
    return Path(__file__).resolve().parents[1]
