"""scripts/pack_data.py: every package file that training reads (the train_all and eval photos, the
training videos) is packed at its absolute path under DEST/root with a MANIFEST; wheel photos are
left to the carried wheels."""

from __future__ import annotations

import filecmp
import importlib.util
from pathlib import Path

import pytest

from qdr_core.data.clips import VIDEO_PARTS
from qdr_core.data.sources import photos
from qdr_core.errors import DataError

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("pack_data", REPO / "scripts" / "pack_data.py")
pack_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pack_data)


def _in_wheel(path: Path) -> bool:
    return "site-packages" in path.parts or "dist-packages" in path.parts


@pytest.fixture(scope="module")
def packed() -> list[Path]:
    try:
        return pack_data.files_to_pack()
    except DataError as exc:
        pytest.skip(f"the photo packages are not installed: {exc}")


def test_lists_every_package_file_of_training(packed) -> None:
    assert packed == sorted(set(packed)) and all(p.is_absolute() and p.is_file() for p in packed)
    assert not any(_in_wheel(p) for p in packed)
    read = [p.path for split in ("train_all", "eval") for p in photos(split) if p.path is not None]
    assert any(_in_wheel(p) for p in read)  # the wheel photos exist and are left out
    assert {p for p in read if not _in_wheel(p)} <= set(packed)
    videos = {part.path for part in VIDEO_PARTS if part.split == "train"}
    assert videos and videos <= set(packed)


def test_main_recreates_the_files_under_root_with_a_manifest(packed, tmp_path, capsys) -> None:
    assert pack_data.main([str(tmp_path)]) == 0
    assert (tmp_path / "MANIFEST").read_text().splitlines() == [str(p) for p in packed]
    copies = [tmp_path / "root" / p.relative_to(p.anchor) for p in packed]
    assert all(filecmp.cmp(p, c, shallow=False) for p, c in zip(packed, copies))
    assert sum(1 for p in (tmp_path / "root").rglob("*") if p.is_file()) == len(packed)
    assert f"packed {len(packed)} files" in capsys.readouterr().out
