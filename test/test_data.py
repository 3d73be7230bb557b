"""Data loading: paired folders with clear errors, synthetic crops, package photo sources."""

from __future__ import annotations

import numpy as np
import pytest

from qdr_core.data import sources
from qdr_core.data.datasets import PairedFolder, PairedFolderPairs, SyntheticPairs, fixed_eval_pairs
from qdr_core.data.imageio import read_rgb, write_rgb
from qdr_core.data.sources import skimage_photo
from qdr_core.errors import DataError


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [skimage_photo(n, max_side=96) for n in ("astronaut", "coffee", "chelsea")]


def write_pairs(root, images, names=None):
    names = names or [f"img{i}" for i in range(len(images))]
    for name, im in zip(names, images):
        write_rgb(root / "input" / f"{name}.png", im * 0.5)
        write_rgb(root / "target" / f"{name}.png", im)
    return root / "input", root / "target"


def test_paired_folder_loads_matching_pairs(tmp_path, photos) -> None:
    folder = PairedFolder(*write_pairs(tmp_path, photos))
    assert len(folder) == 3 and folder.names == ["img0", "img1", "img2"]
    degraded, clean = folder[1]
    assert degraded.shape == clean.shape == photos[1].shape
    assert degraded.mean() < clean.mean()


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("missing_input", "folder not found"),
        ("empty_target", "no images"),
        ("extra_name", "names do not match"),
        ("not_a_folder", "not a folder"),
    ],
)
def test_paired_folder_errors_name_the_problem(tmp_path, photos, breakage, message) -> None:
    inp, tgt = write_pairs(tmp_path, photos)
    if breakage == "missing_input":
        inp = tmp_path / "nope"
    elif breakage == "empty_target":
        tgt = tmp_path / "empty"
        tgt.mkdir()
    elif breakage == "extra_name":
        write_rgb(inp / "stray.png", photos[0])
    elif breakage == "not_a_folder":
        inp = inp / "img0.png"
    with pytest.raises(DataError, match=message):
        PairedFolder(inp, tgt)


def test_unreadable_and_mismatched_images(tmp_path, photos) -> None:
    inp, tgt = write_pairs(tmp_path, photos)
    (inp / "img0.png").write_bytes(b"\x89PNG garbage")
    write_rgb(inp / "img1.png", photos[1][:40])
    folder = PairedFolder(inp, tgt)
    with pytest.raises(DataError, match="cannot read image"):
        folder[0]
    with pytest.raises(DataError, match="differ in size"):
        folder[1]


def test_synthetic_pairs_are_reproducible_crops(photos) -> None:
    data = SyntheticPairs("rain", photos, patch=32, seed=3)
    a, b = data.batch(5, 4), data.batch(5, 4)
    assert a[0].shape == a[1].shape == (4, 3, 32, 32)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], data.batch(6, 4)[1])
    assert (a[0] - a[1]).mean() > 0  # streaks and veil add light on average


def test_crops_larger_than_the_image_are_padded(photos) -> None:
    degraded, clean = SyntheticPairs("noise", [photos[0][:20, :30]], patch=48).sample(0)
    assert degraded.shape == clean.shape == (48, 48, 3)


def test_paired_folder_pairs_crop_aligned(tmp_path, photos) -> None:
    pairs = PairedFolderPairs(PairedFolder(*write_pairs(tmp_path, photos)), patch=32, seed=0)
    degraded, clean = pairs.batch(0, 2)
    assert degraded.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(degraded, np.round(clean * 0.5 * 255) / 255, atol=1.5 / 255)


def test_fixed_eval_pairs_do_not_depend_on_order(photos) -> None:
    forward = fixed_eval_pairs("haze", photos, seed=1)
    single = fixed_eval_pairs("haze", photos[:1], seed=1)
    assert np.array_equal(forward[0][1], single[0][1])
    assert forward[0][0] == "0000"


def test_missing_photo_packages_say_how_to_install(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(sources, "OPENCV_DATA", tmp_path / "missing")
    with pytest.raises(DataError, match="make data"):
        sources.photos("eval")
    with pytest.raises(DataError, match="unknown split"):
        sources.photos("test")


def test_split_lists_never_overlap() -> None:
    train = set(sources._OPENCV_TRAIN + sources._MATE_TRAIN + sources._PLASMA_TRAIN)
    held_out = set(sources._OPENCV_EVAL + sources._MATE_EVAL + sources._PLASMA_EVAL + sources._SKIMAGE_OTHER)
    assert train and held_out and not train & held_out


def test_read_rgb_handles_grey_alpha_and_16bit(tmp_path) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "g.png"), np.full((8, 10), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "a.png"), np.full((8, 10, 4), 255, np.uint8))
    cv2.imwrite(str(tmp_path / "w.png"), np.full((8, 10, 3), 65535, np.uint16))
    assert read_rgb(tmp_path / "g.png").shape == (8, 10, 3)
    assert read_rgb(tmp_path / "a.png").max() == 1.0
    assert read_rgb(tmp_path / "w.png").min() == 1.0
    assert read_rgb(tmp_path / "g.png", max_side=5).shape == (4, 5, 3)


def test_haze_is_synthesised_on_the_whole_frame_then_cropped(photos) -> None:
    assert SyntheticPairs("haze", photos, patch=32).whole_frame
    assert not SyntheticPairs("rain", photos, patch=32).whole_frame

    def veil_spread(whole: bool) -> float:
        # How much the haze veil varies inside one crop: a crop of a hazed frame covers a slice of
        # the frame's depth range; hazing the crop itself stretches the full range over 32 pixels.
        # A flat grey frame: the veil (A - J)(1 - t) then varies only with depth.
        flat = [np.full((128, 128, 3), 0.3, np.float32)]
        data = SyntheticPairs("haze", flat, patch=32, seed=5, whole_frame=whole)
        spreads = []
        for i in range(24):
            degraded, clean = data.sample(i)
            veil = (degraded - clean).mean(axis=2)
            spreads.append(np.ptp(veil))
        return float(np.mean(spreads))

    assert veil_spread(True) < 0.5 * veil_spread(False)
    a, b = SyntheticPairs("haze", photos, patch=32, seed=5), SyntheticPairs("haze", photos, patch=32, seed=5)
    assert np.array_equal(a.sample(3)[0], b.sample(3)[0])


# --- train_all and the split's integrity ---------------------------------------------------------


def _split_or_skip(split: str) -> list[sources.Photo]:
    try:
        return sources.photos(split)
    except DataError as exc:
        pytest.skip(f"photo packages missing ({exc}); `make data` and requirements-dev.txt install them")


def _file_key(photo: sources.Photo) -> tuple:
    path = str(photo.path.resolve()) if photo.path is not None else None
    return (path, photo.video_frame, photo.skimage, photo.pywt)


def test_train_all_has_70_distinct_photos_from_5_sources() -> None:
    train_all = _split_or_skip("train_all")
    distinct = {p.photo_id for p in train_all}
    assert len(distinct) >= 70
    assert len({p.source for p in train_all}) >= 5
    assert {p.photo_id for p in _split_or_skip("train")} <= distinct  # an extension of train
    assert len({_file_key(p) for p in train_all if "@" not in p.name}) == len(distinct)
    fine = next(p for p in train_all if "@" in p.name)
    base = next(p for p in train_all if p.name == fine.photo_id)
    assert max(fine.load().shape[:2]) == sources.FINE_SIDE > max(base.load().shape[:2]) == sources.MAX_SIDE
    frames = sorted(p.video_frame for p in train_all if p.video_frame is not None and "tree" in p.name)
    assert len(frames) >= 2 and min(np.diff(frames)) >= 2 * 15  # tree.avi runs at 15 fps: >= 2 s apart


def test_train_all_has_70_distinct_scenes_when_twins_count_once() -> None:
    train_all = _split_or_skip("train_all")
    ids = {p.photo_id for p in train_all}
    # Every twin and the view it twins are real train_all photos, and a twin's first view is no twin.
    assert set(sources.TWINS) <= ids and set(sources.TWINS.values()) <= ids
    assert not set(sources.TWINS.values()) & set(sources.TWINS)
    scenes = {p.scene_id for p in train_all}
    assert len(scenes) == len(ids) - len(sources.TWINS) >= 70
    assert next(p for p in train_all if p.name == "opencv/right01.jpg").scene_id == "opencv/left01.jpg"
    summary = "\n".join(sources.summary())
    assert f"train_all: {len(scenes)} distinct scenes ({len(ids)} photos) from" in summary
    # the module samples' photos beside examples/data are listed and load as RGB.
    text = next(p for p in train_all if p.name == "opencv/text/scenetext01.jpg")
    assert text.path.parent == sources.OPENCV_DATA.parent / "text"
    assert text.load(64).shape == (48, 64, 3)


def test_train_all_takes_the_gimp_manuals_untouched_photos(monkeypatch, tmp_path) -> None:
    train_all = _split_or_skip("train_all")
    gimp = [p for p in train_all if p.source == "gimp"]
    assert [p.path for p in gimp] == [sources.GIMP_HELP / n for n in sources._GIMP_HELP]
    assert len({p.scene_id for p in train_all if p.source != "gimp"}) + len(gimp) == len(
        {p.scene_id for p in train_all}
    )  # each is a scene of its own, found nowhere else in train_all
    assert gimp[0].load(64).shape == (43, 64, 3)  # spherize-ex-orig.jpg is 300x200
    # Only train_all needs the manual: the shipped models' split loads without it.
    monkeypatch.setattr(sources, "GIMP_HELP", tmp_path / "missing")
    assert sources.photos("train")
    with pytest.raises(DataError, match="gimp-help-en"):
        sources.photos("train_all")


def test_eval_and_other_stay_disjoint_from_every_training_list() -> None:
    held_out = _split_or_skip("eval") + _split_or_skip("other")
    training = _split_or_skip("train") + _split_or_skip("train_all")
    assert not {_file_key(p) for p in held_out} & {_file_key(p) for p in training}
    # other's sources are never trained on at all: no scikit-image photo, no frame of vtest.avi.
    assert not [p for p in training if p.skimage or (p.path is not None and p.path.name == "vtest.avi")]

    # ... and no held-out photo hides in training under another name (a resized or re-encoded copy
    # differs by ~0.05 here; the nearest distinct photos by > 0.5).
    def thumb(photo: sources.Photo) -> np.ndarray:
        import cv2

        if photo.path is not None and photo.path.suffix.lower() in (".jpg", ".png"):
            grey = cv2.imread(str(photo.path), cv2.IMREAD_REDUCED_GRAYSCALE_8).astype(np.float32)
        else:
            grey = photo.load(256).mean(axis=2)
        grey = cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA)
        return (grey - grey.mean()) / (grey.std() + 1e-6)

    train_thumbs = np.stack([thumb(p) for p in _split_or_skip("train_all") if "@" not in p.name])
    for p in held_out:
        distance = np.abs(train_thumbs - thumb(p)).mean(axis=(1, 2))
        assert distance.min() > 0.2, p.name


def test_reserved_sources_are_never_used() -> None:
    # Reserved for independent evaluation: Debian's darknet data, lomiri-wallpapers*, scikit-learn's
    # sample images (sklearn/datasets/images).
    for split in sources.SPLITS:
        for p in _split_or_skip(split):
            parts = {part.lower() for part in (p.path.parts if p.path is not None else ())}
            assert not parts & {"darknet", "sklearn"}, p
            assert not any(part.startswith("lomiri") for part in parts), p


# --- realistic-condition training pairs ----------------------------------------------------------


def test_photometric_augmentation(photos) -> None:
    from qdr_core.data.datasets import Photometric, photometric

    im = photos[0]
    np.testing.assert_allclose(photometric(im, None, Photometric()), im, atol=2e-3)
    darker = photometric(im, None, Photometric(exposure=-1.0))
    assert darker.mean() < 0.8 * im.mean()
    warm = photometric(im, None, Photometric(white_balance=(1.3, 1.0, 0.8)))
    assert warm[..., 0].mean() > im[..., 0].mean() and warm[..., 2].mean() < im[..., 2].mean()
    jpg = photometric(im, None, Photometric(jpeg_quality=50))
    np.testing.assert_allclose(jpg * 255, np.round(jpg * 255), atol=1e-3)


def test_condition_pairs_are_reproducible_and_include_clean_identity(photos) -> None:
    from qdr_core.data.datasets import ConditionPairs

    data = ConditionPairs(photos, patch=32, seed=1, window=64)
    a, b = data.batch(2, 4), data.batch(2, 4)
    assert a[0].shape == a[1].shape == (4, 3, 32, 32)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    records = [data.sample_with_record(i) for i in range(40)]
    clean = [(d, c) for d, c, r in records if r["condition"] == "clean"]
    degraded = [(d, c) for d, c, r in records if r["condition"] != "clean"]
    assert clean and degraded
    assert all(np.array_equal(d, c) for d, c in clean)  # identity targets
    assert all(not np.array_equal(d, c) for d, c in degraded)
    with pytest.raises(DataError, match="smaller than the patch"):
        ConditionPairs(photos, patch=64, window=32)


def test_split_summary_names_every_split_and_what_is_missing(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(sources, "OPENCV_DATA", tmp_path / "missing")
    lines = sources.summary()
    assert [line.split(":")[0] for line in lines] == list(sources.SPLITS)
    assert "make data" in lines[sources.SPLITS.index("eval")]
