"""Where the package's own files are: the source checkout (or installed package) root."""

from __future__ import annotations

from pathlib import Path


def source_root() -> Path:
    """The repository root in a source checkout (holds models/, config/, demo/); in an installed
    package, the folder that holds ``qdr_core``."""
    return Path(__file__).resolve().parents[1]
