"""Pack the files that training reads from installed packages, for a machine without them (a lent GPU).

    .venv/bin/python scripts/pack_data.py .gpu            # writes .gpu/root/<absolute path> + MANIFEST
    # there (as root):  cp -r .gpu/root/. /                 # the photos land where sources.py looks

Packs every photo file of the ``train_all`` and ``eval`` splits (eval: in-training validation only)
and the training parts of the videos (``data.clips.VIDEO_PARTS``), each at its absolute path under
``DEST/root`` so that ``qdr_core.data.sources`` finds them unchanged. Photos that live inside pip
wheels (matplotlib, PyWavelets, mahotas) are not packed: carry the wheels. Reserved sources are
never listed by ``sources`` and so never packed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from qdr_core.data.clips import VIDEO_PARTS
from qdr_core.data.sources import photos

SPLITS = ("train_all", "eval")


def files_to_pack() -> list[Path]:
    """Absolute paths of the package files the training splits and training videos read."""
    paths = {p.path for split in SPLITS for p in photos(split) if p.path is not None}
    paths |= {part.path for part in VIDEO_PARTS if part.split == "train"}
    return sorted(p for p in paths if "site-packages" not in p.parts and "dist-packages" not in p.parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    root = args.dest / "root"
    total = 0
    files = files_to_pack()
    for path in files:
        target = root / path.relative_to(path.anchor)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        total += path.stat().st_size
    (args.dest / "MANIFEST").write_text("".join(f"{p}\n" for p in files))
    print(f"packed {len(files)} files, {total / 1e6:.1f} MB, under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
