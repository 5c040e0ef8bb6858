"""ImageFolder on mixed images and one corrupt file; stratified train/validation split."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nnscratch.data import ArrayDataset, ImageFolder, train_val_split


@pytest.fixture
def image_tree(tmp_path):
    """cats/: RGB 40x30 png, grey 10x10 png, RGBA 16x16 png; dogs/: palette gif, jpeg, a text file."""
    cats, dogs = tmp_path / "cats", tmp_path / "dogs"
    cats.mkdir()
    dogs.mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(cats / "a_red.png")
    Image.new("L", (10, 10), 128).save(cats / "b_grey.png")
    Image.new("RGBA", (16, 16), (0, 0, 255, 255)).save(cats / "c_blue.png")
    Image.new("P", (20, 8), 3).save(dogs / "a_palette.gif")
    Image.new("RGB", (64, 64), (0, 200, 0)).save(dogs / "b_green.jpg", quality=95)
    (dogs / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder_converts_and_resizes_everything(image_tree):
    ds = ImageFolder(image_tree, size=(8, 12), resample="nearest")
    assert ds.classes == ["cats", "dogs"]
    assert ds.data.shape == (5, 3, 8, 12) and ds.data.dtype == np.uint8
    assert ds.targets.tolist() == [0, 0, 0, 1, 1] and ds.targets.dtype == np.int64
    assert ds.data[0, :, 0, 0].tolist() == [255, 0, 0]
    assert ds.data[1, :, 3, 3].tolist() == [128, 128, 128]
    assert ds.data[2, :, 5, 5].tolist() == [0, 0, 255]
    assert abs(int(ds.data[4, 1].mean()) - 200) <= 3  # jpeg is lossy
    assert [p.name for p in ds.paths][-1] == "b_green.jpg"


def test_image_folder_grey_mode(image_tree):
    ds = ImageFolder(image_tree, size=6, mode="L")
    assert ds.data.shape == (5, 1, 6, 6)
    assert int(ds.data[1].mean()) == 128


def test_corrupt_image_raises_naming_the_path(image_tree):
    (image_tree / "dogs" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match=r"cannot read image .*dogs/broken.png"):
        ImageFolder(image_tree)


def test_corrupt_image_can_be_skipped_with_a_warning(image_tree):
    (image_tree / "dogs" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.warns(UserWarning, match=r"skipping unreadable image .*dogs/broken.png"):
        ds = ImageFolder(image_tree, on_error="skip")
    assert len(ds) == 5 and [p.name for p in ds.skipped] == ["broken.png"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size: expected a positive int or a pair"),
        ({"mode": "CMYK"}, "mode: expected 'RGB' or 'L', got 'CMYK'"),
        ({"resample": "cubic"}, "resample: expected one of"),
        ({"on_error": "ignore"}, "on_error: expected 'raise' or 'skip'"),
    ],
)
def test_image_folder_argument_errors(image_tree, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageFolder(image_tree, **kwargs)


def test_image_folder_without_class_folders(tmp_path):
    with pytest.raises(ValueError, match="root: expected one sub-folder per class"):
        ImageFolder(tmp_path)


def test_train_val_split_is_stratified_disjoint_and_seeded():
    targets = np.repeat(np.arange(4), [100, 50, 30, 1])
    train, val = train_val_split(targets, val_fraction=0.2, seed=3)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(targets)))
    assert np.bincount(targets[val], minlength=4).tolist() == [20, 10, 6, 0]
    again, _ = train_val_split(targets, val_fraction=0.2, seed=3)
    other, _ = train_val_split(targets, val_fraction=0.2, seed=4)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)
    assert train.dtype == val.dtype == np.int64


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, True])
def test_train_val_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction: expected a number strictly between 0 and 1"):
        train_val_split(np.zeros(10, np.int64), fraction)


def test_train_val_split_rejects_bad_targets():
    with pytest.raises(ValueError, match="targets: expected a 1-D array"):
        train_val_split(np.zeros((2, 2), np.int64), 0.5)
    with pytest.raises(TypeError, match="targets: expected integer labels"):
        train_val_split(np.zeros(4), 0.5)


def test_split_indices_make_subsets():
    ds = ArrayDataset(np.arange(40).reshape(20, 2), np.repeat([0, 1], 10), classes=["a", "b"])
    train_idx, val_idx = train_val_split(ds.targets, 0.3, seed=0)
    val = ds.subset(val_idx)
    assert len(val) == 6 and val.classes == ["a", "b"]
    np.testing.assert_array_equal(val.data, ds.data[val_idx])
    assert len(ds.subset([])) == 0
    with pytest.raises(TypeError, match="indices: expected a 1-D array of ints or booleans"):
        ds.subset([0.5])
