"""Clean real photographs from installed packages, and the fixed train / eval / other split.

No dataset can be downloaded here, so the photos come from Debian packages (``make data``
installs them) and scikit-image. The split is a fixed list of file names, not a random draw, so it
never changes between machines:

* ``train``: photos the models learn from;
* ``eval``: held-out photos from the same packages (the numbers in the README);
* ``other``: photos from sources never used in training (scikit-image, frames of opencv-doc's
  ``vtest.avi`` pedestrian video): the generalisation check.

Images are shrunk to at most ``MAX_SIDE`` pixels: 4K wallpapers at camera-like scale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from qdr_core.data.imageio import read_rgb
from qdr_core.errors import DataError

MAX_SIDE = 768
OPENCV_DATA = Path(os.environ.get("QDR_OPENCV_DATA", "/usr/share/doc/opencv-doc/examples/data"))
MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
PLASMA = Path("/usr/share/wallpapers")
PACKAGES = ("opencv-doc", "mate-backgrounds", "plasma-workspace-wallpapers")

# Colour photographs only: logos, charts, renders, paintings and calibration boards are left out.
# Stereo / sequence pairs stay on one side of the split.
_OPENCV_TRAIN = (
    "HappyFish.jpg", "aero1.jpg", "aero3.jpg", "apple.jpg", "board.jpg", "butterfly.jpg", "home.jpg",
    "leuvenA.jpg", "leuvenB.jpg", "orange.jpg", "stuff.jpg", "aloeL.jpg", "aloeR.jpg",
    "rubberwhale1.png", "rubberwhale2.png", "ela_original.jpg", "left.jpg", "right.jpg", "graf1.png",
)  # fmt: skip
_OPENCV_EVAL = ("baboon.jpg", "building.jpg", "fruits.jpg", "messi5.jpg", "squirrel_cls.jpg", "smarties.png")
_MATE_TRAIN = (
    "Aqua.jpg", "Blinds.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg", "RainDrops.jpg",
    "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg",
)  # fmt: skip
_MATE_EVAL = ("Dune.jpg", "LadyBird.jpg")
_PLASMA_TRAIN = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "FallenLeaf", "Grey", "Kite")
_PLASMA_EVAL = ("EveningGlow", "Path", "OneStandsOut")
_SKIMAGE_OTHER = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left")
VTEST_FRAMES = (0, 150, 300, 450, 600, 750)


@dataclass(frozen=True)
class Photo:
    """One clean photo: a stable name and where it comes from."""

    name: str
    path: Path | None = None
    skimage: str | None = None
    video_frame: int | None = None

    def load(self, max_side: int = MAX_SIDE) -> np.ndarray:
        if self.skimage is not None:
            return skimage_photo(self.skimage, max_side)
        if self.video_frame is not None:
            return video_frame(self.path, self.video_frame, max_side)
        return read_rgb(self.path, max_side=max_side)


def skimage_photo(name: str, max_side: int = MAX_SIDE) -> np.ndarray:
    """A colour photo that ships inside the scikit-image wheel (no download)."""
    import skimage.data

    from qdr_core.data.imageio import read_rgb as _read

    path = Path(skimage.data.__file__).parent / f"{name}.png"
    if not path.exists():
        path = path.with_suffix(".jpg")
    return _read(path, max_side=max_side)


def video_frame(path: Path, index: int, max_side: int = MAX_SIDE) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok:
        raise DataError(f"cannot read frame {index} of {path}")
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    if max(rgb.shape[:2]) > max_side:
        f = max_side / max(rgb.shape[:2])
        rgb = cv2.resize(
            rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA
        )
    return rgb


def _plasma(name: str) -> Path:
    folder = PLASMA / name / "contents" / "images"
    full_hd = folder / "1920x1080.jpg"
    return full_hd if full_hd.exists() or not folder.is_dir() else min(folder.glob("*.jpg"), default=full_hd)


def photos(split: str) -> list[Photo]:
    """The photos of ``split`` (train | eval | other); raises if a package is not installed."""
    if split == "train":
        items = [Photo(f"opencv/{n}", OPENCV_DATA / n) for n in _OPENCV_TRAIN]
        items += [Photo(f"mate/{n}", MATE_NATURE / n) for n in _MATE_TRAIN]
        items += [Photo(f"plasma/{n}", _plasma(n)) for n in _PLASMA_TRAIN]
    elif split == "eval":
        items = [Photo(f"opencv/{n}", OPENCV_DATA / n) for n in _OPENCV_EVAL]
        items += [Photo(f"mate/{n}", MATE_NATURE / n) for n in _MATE_EVAL]
        items += [Photo(f"plasma/{n}", _plasma(n)) for n in _PLASMA_EVAL]
    elif split == "other":
        items = [Photo(f"skimage/{n}", skimage=n) for n in _SKIMAGE_OTHER]
        items += [Photo(f"vtest/{i:04d}", OPENCV_DATA / "vtest.avi", video_frame=i) for i in VTEST_FRAMES]
    else:
        raise DataError(f"unknown split {split!r}; choose train, eval or other")
    missing = [str(p.path) for p in items if p.path is not None and not p.path.exists()]
    if missing:
        raise DataError(
            f"{len(missing)} photo(s) of split {split!r} are missing (first: {missing[0]}); "
            f"run `make data` to install {', '.join(PACKAGES)}"
        )
    return items


def export_split(split: str, folder: str | os.PathLike, max_side: int = MAX_SIDE) -> list[Path]:
    """Write a split's photos as PNGs (``source__name.png``) so folder-based commands can use them."""
    from qdr_core.data.imageio import write_rgb

    folder = Path(folder)
    out = []
    for photo in photos(split):
        name = photo.name.replace("/", "__").rsplit(".", 1)[0] + ".png"
        out.append(write_rgb(folder / name, photo.load(max_side)))
    return out
