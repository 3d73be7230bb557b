"""Clean real photographs from installed packages, and the fixed train / eval / other split.

No dataset can be downloaded here, so the photos come from Debian packages (``make data``
installs them) and scikit-image. The split is a fixed list of file names, not a random draw, so it
never changes between machines:

* ``train``: photos the shipped models learned from (36, from three packages);
* ``train_all``: ``train`` plus every other real photograph found in the reachable packages and
  wheels (grey ones too), for models that must generalise across conditions; the large wallpapers
  come at two scales (``@1536``: a finer, camera-closer view of the same photo). Sources:
  opencv-doc stills (``examples/data`` and the module samples' photos: scene text, hfs, alphamat,
  reg, dnn_superres) and ``tree.avi`` frames >= 2 s apart, the MATE and Plasma wallpapers,
  matplotlib's, PyWavelets' and mahotas' sample photos, the example photos of GIMP's English
  manual (gimp-help-en): 111 photos of 91 distinct scenes (``TWINS``: a second view of a scene
  counts once), 127 entries with the finer scales;
* ``eval``: held-out photos from the same packages (the numbers in the README);
* ``other``: photos from sources never used in training (scikit-image, frames of opencv-doc's
  ``vtest.avi`` pedestrian video): the generalisation check.

``eval`` and ``other`` are disjoint from both training lists (a test checks it). The sources that
the developers' guide reserves for independent evaluation are never listed here
(``test/test_data.py`` checks every listed path against them).

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
# The module samples' photos (``text/``, ``hfs/data/``, ...) sit beside it, under its parent.
OPENCV_DATA = Path(os.environ.get("QDR_OPENCV_DATA", "/usr/share/doc/opencv-doc/examples/data"))
MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
PLASMA = Path("/usr/share/wallpapers")
GIMP_HELP = Path("/usr/share/gimp/2.0/help/en/images")
PACKAGES = ("opencv-doc", "mate-backgrounds", "plasma-workspace-wallpapers", "gimp-help-en")
#: pip wheels whose bundled sample photos ``train_all`` uses (requirements-dev.txt installs them).
WHEELS = ("matplotlib", "PyWavelets", "mahotas")
#: The finer scale of the large wallpapers in ``train_all``.
FINE_SIDE = 1536

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

# train_all's additions. Grey photographs (calibration shots, the basketball pair, PyWavelets') teach
# structure and noise as well as colour ones; the right-hand calibration shots are the left ones'
# stereo twins, kept on the same (training) side.
_CALIBRATION_SHOTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14)  # opencv-doc's left/rightNN.jpg
_OPENCV_EXTRA = (
    "chicky_512.png", "graf3.png", "sudoku.png", "basketball1.png", "basketball2.png", "blox.jpg",
    "box.png", "box_in_scene.png", "pca_test1.jpg",
    *(f"{side}{i:02d}.jpg" for side in ("left", "right") for i in _CALIBRATION_SHOTS),
)  # fmt: skip
#: Photos of opencv-doc's module samples (``examples/<module>/...``, beside ``examples/data``).
_OPENCV_MODULES = (
    "alphamat/input_images/plant.jpg", "dnn_superres/butterfly.png", "reg/home.png",
    *(f"hfs/data/{i:03d}.jpg" for i in range(3)),
)  # fmt: skip
#: The scene-text sample photos (street signs, shop fronts): whole scenes, not the word crops.
_OPENCV_SCENETEXT = (
    *(f"text/scenetext{i:02d}.jpg" for i in range(1, 7)),
    *(f"text/scenetext_segmented_word{i:02d}.jpg" for i in range(1, 6)),
)
_PLASMA_EXTRA = ("summer_1am",)
_MATPLOTLIB = ("grace_hopper.jpg",)
_PYWT = ("ascent", "camera", "aero")
_MAHOTAS = ("luispedro.jpg",)
#: The untouched source photos of GIMP's manual (its filter and tutorial examples show them before
#: the edit); the edited versions, screenshots, drawings and the equirectangular panorama are left
#: out, and of the power-lines tutorial's two exposures only one is listed.
_GIMP_HELP = (
    "filters/examples/distort/spherize-ex-orig.jpg", "filters/examples/enhance/high-pass-origin.png",
    "filters/examples/kvitveis-orig.png", "filters/examples/light-and-shadow/vignette-ex-orig.jpg",
    "filters/examples/map/little_planet-origin.jpg", "filters/examples/taj_orig.png",
    "tutorials/quickie-crop-example-source.jpg", "tutorials/quickie-flip-example-source.jpg",
    "tutorials/quickie-remove-background-source.jpg", "tutorials/quickie-rotate-example-source.jpg",
    "tutorials/tone-mapping/apple-orchard-truck-from-camera.jpg", "tutorials/tone-mapping/power-lines.jpg",
    "using/duck_orig.png", "using/keyfob_orig.png",
)  # fmt: skip
#: Second views of one scene (stereo pairs, a sequence's next frame, another viewpoint or light):
#: ``photo_id -> the first view's photo_id``. They train, but count once as a distinct scene.
TWINS = {
    "opencv/right.jpg": "opencv/left.jpg",
    "opencv/aloeR.jpg": "opencv/aloeL.jpg",
    "opencv/aero3.jpg": "opencv/aero1.jpg",
    "opencv/leuvenB.jpg": "opencv/leuvenA.jpg",
    "opencv/graf3.png": "opencv/graf1.png",
    "opencv/rubberwhale2.png": "opencv/rubberwhale1.png",
    "opencv/basketball2.png": "opencv/basketball1.png",
    **{f"opencv/right{i:02d}.jpg": f"opencv/left{i:02d}.jpg" for i in _CALIBRATION_SHOTS},
}
#: tree.avi decodes 68 frames at 15 fps with OpenCV's reader: frames 2 s apart.
TREE_FRAMES = (0, 30, 60)


@dataclass(frozen=True)
class Photo:
    """One clean photo: a stable name and where it comes from."""

    name: str
    path: Path | None = None
    skimage: str | None = None
    video_frame: int | None = None
    pywt: str | None = None
    side: int | None = None  # load at this longer side instead of the caller's (finer scales)

    @property
    def source(self) -> str:
        """The package or wheel the photo comes from (``opencv``, ``plasma``, ``pywt``, ...)."""
        return self.name.split("/", 1)[0]

    @property
    def photo_id(self) -> str:
        """The photograph, whatever the scale: ``plasma/Kite@1536`` and ``plasma/Kite`` are one."""
        return self.name.split("@", 1)[0]

    @property
    def scene_id(self) -> str:
        """The scene, whatever the view: a stereo twin (``TWINS``) is its first view's scene."""
        return TWINS.get(self.photo_id, self.photo_id)

    def load(self, max_side: int = MAX_SIDE) -> np.ndarray:
        max_side = self.side or max_side
        if self.skimage is not None:
            return skimage_photo(self.skimage, max_side)
        if self.pywt is not None:
            return pywt_photo(self.pywt, max_side)
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


def pywt_photo(name: str, max_side: int = MAX_SIDE) -> np.ndarray:
    """A grey photo bundled in the PyWavelets wheel (``ascent``, ``camera``, ``aero``), as RGB."""
    try:
        import pywt.data
    except ImportError as exc:
        raise DataError("PyWavelets is not installed: pip install -r requirements-dev.txt") from exc
    grey = np.clip(getattr(pywt.data, name)(), 0, 255).astype(np.float32) / 255.0
    return _shrink(np.repeat(grey[..., None], 3, axis=2), max_side)


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    if max(rgb.shape[:2]) > max_side:
        f = max_side / max(rgb.shape[:2])
        rgb = cv2.resize(
            rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA
        )
    return rgb


def frame_rgb(bgr: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """A decoded video frame (8-bit BGR, as OpenCV reads it) as float RGB in [0, 1], shrunk."""
    return _shrink(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0, max_side)


def _wheel_file(package: str, *parts: str) -> Path:
    """A file inside an installed wheel, found without importing the package (mahotas is slow to)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    root = Path(spec.origin).parent if spec is not None and spec.origin else Path("/nonexistent") / package
    return root.joinpath(*parts)


def video_frame(path: Path, index: int, max_side: int = MAX_SIDE) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        if not ok and index > 0:  # some AVIs (tree.avi) cannot seek: read up to the frame instead
            cap.release()
            cap = cv2.VideoCapture(str(path))
            for _ in range(index + 1):
                ok, frame = cap.read()
                if not ok:
                    break
    finally:
        cap.release()
    if not ok:
        raise DataError(f"cannot read frame {index} of {path}")
    return frame_rgb(frame, max_side)


def _plasma(name: str) -> Path:
    folder = PLASMA / name / "contents" / "images"
    full_hd = folder / "1920x1080.jpg"
    return full_hd if full_hd.exists() or not folder.is_dir() else min(folder.glob("*.jpg"), default=full_hd)


SPLITS = ("train", "train_all", "eval", "other")


def _is_large(path: Path) -> bool:
    """A wallpaper big enough (>= 1920 px) for a finer second scale."""
    if not path.exists():
        return True  # reported as missing below
    h, w = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_8).shape[:2]
    return max(h, w) * 8 >= 1920


def _train_extra() -> list[Photo]:
    items = [Photo(f"opencv/{n}", OPENCV_DATA / n) for n in _OPENCV_EXTRA]
    items += [Photo(f"opencv/{n}", OPENCV_DATA.parent / n) for n in (*_OPENCV_MODULES, *_OPENCV_SCENETEXT)]
    items += [Photo(f"opencv/tree.avi#{i:03d}", OPENCV_DATA / "tree.avi", video_frame=i) for i in TREE_FRAMES]
    items += [Photo(f"plasma/{n}", _plasma(n)) for n in _PLASMA_EXTRA]
    items += [
        Photo(f"matplotlib/{n}", _wheel_file("matplotlib", "mpl-data", "sample_data", n)) for n in _MATPLOTLIB
    ]
    items += [Photo(f"pywt/{n}", _wheel_file("pywt", "data", f"{n}.npz"), pywt=n) for n in _PYWT]
    items += [Photo(f"mahotas/{n}", _wheel_file("mahotas", "demos", "data", n)) for n in _MAHOTAS]
    items += [Photo(f"gimp/{n}", GIMP_HELP / n) for n in _GIMP_HELP]
    wallpapers = [MATE_NATURE / n for n in _MATE_TRAIN] + [
        _plasma(n) for n in (*_PLASMA_TRAIN, *_PLASMA_EXTRA)
    ]
    names = [f"mate/{n}" for n in _MATE_TRAIN] + [f"plasma/{n}" for n in (*_PLASMA_TRAIN, *_PLASMA_EXTRA)]
    items += [
        Photo(f"{name}@{FINE_SIDE}", path, side=FINE_SIDE)
        for name, path in zip(names, wallpapers)
        if _is_large(path)
    ]
    return items


def photos(split: str) -> list[Photo]:
    """The photos of ``split`` (``SPLITS``); raises if a package or wheel is not installed."""
    if split == "train":
        items = [Photo(f"opencv/{n}", OPENCV_DATA / n) for n in _OPENCV_TRAIN]
        items += [Photo(f"mate/{n}", MATE_NATURE / n) for n in _MATE_TRAIN]
        items += [Photo(f"plasma/{n}", _plasma(n)) for n in _PLASMA_TRAIN]
    elif split == "train_all":
        items = photos("train") + _train_extra()
    elif split == "eval":
        items = [Photo(f"opencv/{n}", OPENCV_DATA / n) for n in _OPENCV_EVAL]
        items += [Photo(f"mate/{n}", MATE_NATURE / n) for n in _MATE_EVAL]
        items += [Photo(f"plasma/{n}", _plasma(n)) for n in _PLASMA_EVAL]
    elif split == "other":
        items = [Photo(f"skimage/{n}", skimage=n) for n in _SKIMAGE_OTHER]
        items += [Photo(f"vtest/{i:04d}", OPENCV_DATA / "vtest.avi", video_frame=i) for i in VTEST_FRAMES]
    else:
        raise DataError(f"unknown split {split!r}; choose {', '.join(SPLITS)}")
    missing = [str(p.path) for p in items if p.path is not None and not p.path.exists()]
    if missing:
        raise DataError(
            f"{len(missing)} photo(s) of split {split!r} are missing (first: {missing[0]}); "
            f"run `make data` to install {', '.join(PACKAGES)} (and pip install -r requirements-dev.txt "
            f"for the {', '.join(WHEELS)} sample photos)"
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


def summary() -> list[str]:
    """One line per split: how many photos, or why it cannot be loaded here."""
    lines = []
    for split in SPLITS:
        try:
            chosen = photos(split)
        except DataError as exc:
            lines.append(f"{split}: {exc}")
            continue
        n_photos, n_scenes = len({p.photo_id for p in chosen}), len({p.scene_id for p in chosen})
        lines.append(
            f"{split}: {n_scenes} distinct scenes ({n_photos} photos) from {len({p.source for p in chosen})} "
            f"sources ({len(chosen)} entries)"
        )
    return lines


if __name__ == "__main__":  # `make data` prints what it installed: python -m qdr_core.data.sources
    print("\n".join(summary()))
