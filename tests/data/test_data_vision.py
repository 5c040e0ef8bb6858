"""torchvision's side: per-sample transforms, datasets with transform=, ``datasets``, extracted CIFAR folders."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
from PIL import Image

import nnscratch as ns
from nnscratch.data import ChecksumError, DataLoader, DatasetNotFoundError, datasets, write_idx
from nnscratch.data import cifar as cifar_module
from nnscratch.data import transforms as T
from nnscratch.tensor import Tensor


def rgb_image(h=6, w=10, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


# --- transforms on one image ---------------------------------------------------------------------
def test_to_tensor_from_pil_and_ndarray():
    image = rgb_image()
    x = T.ToTensor()(image)
    assert isinstance(x, Tensor) and x.shape == (3, 6, 10) and x.dtype == np.float32
    np.testing.assert_allclose(x.numpy(), np.asarray(image).transpose(2, 0, 1) / 255, rtol=1e-6)
    grey = T.ToTensor()(np.zeros((4, 5), np.uint8))
    assert grey.shape == (1, 4, 5)
    floats = T.ToTensor()(np.full((2, 2, 1), 3.0, np.float64))  # not uint8: values and dtype kept
    assert floats.dtype == np.float64 and float(floats.numpy().max()) == 3.0
    assert T.PILToTensor()(image).dtype == np.uint8
    with pytest.raises(TypeError, match="ToTensor: pic: expected a PIL Image or a numpy array"):
        T.ToTensor()([1, 2])


def test_to_tensor_matches_torch_semantics():
    torch = pytest.importorskip("torch")
    array = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    expected = torch.from_numpy(array).permute(2, 0, 1).float().div(255)
    np.testing.assert_allclose(T.ToTensor()(array).numpy(), expected.numpy(), rtol=1e-6)
    normed = T.Normalize((0.1, 0.2, 0.3), (0.5, 0.6, 0.7))(T.ToTensor()(array))
    mean, std = torch.tensor([0.1, 0.2, 0.3])[:, None, None], torch.tensor([0.5, 0.6, 0.7])[:, None, None]
    np.testing.assert_allclose(normed.numpy(), ((expected - mean) / std).numpy(), rtol=1e-5, atol=1e-6)


def test_normalize_sample_and_batch_modes_coexist():
    x = ns.ones(1, 4, 4)
    out = T.Normalize((0.5,), (0.25,))(x)
    assert isinstance(out, Tensor) and np.allclose(out.numpy(), 2.0)
    assert np.allclose(x.numpy(), 1.0)  # not in place
    T.Normalize((0.5,), (0.25,), inplace=True)(x)
    assert np.allclose(x.numpy(), 2.0)
    batch = np.ones((2, 3, 4, 4), np.float32)
    assert isinstance(T.Normalize((0.5,) * 3, (0.5,) * 3)(batch, np.random.default_rng(0)), np.ndarray)
    with pytest.raises(TypeError, match="apply ToTensor first"):
        T.Normalize((0.5,), (0.5,))(rgb_image())


def test_compose_lambda_and_random_transforms_keep_the_form_of_the_input():
    image = rgb_image(8, 8)
    out = T.Compose([T.RandomCrop(6, padding=1), T.RandomHorizontalFlip(p=1.0), T.Lambda(lambda im: im)])(image)
    assert isinstance(out, Image.Image) and out.size == (6, 6) and out.mode == "RGB"
    flipped = T.RandomHorizontalFlip(p=1.0)(T.ToTensor()(image))
    np.testing.assert_allclose(flipped.numpy(), (np.asarray(image).transpose(2, 0, 1) / 255)[:, :, ::-1], rtol=1e-6)
    assert T.RandomVerticalFlip(p=0.0)(image).tobytes() == image.tobytes()
    ns.manual_seed(3)
    a = T.RandomCrop(4)(image).tobytes()
    ns.manual_seed(3)
    assert T.RandomCrop(4)(image).tobytes() == a  # outside a loader: nnscratch's global generator


def test_random_crop_torchvision_arguments():
    x = ns.tensor(np.arange(16, dtype=np.float32).reshape(1, 4, 4))
    out = T.RandomCrop(6, pad_if_needed=True, padding_mode="edge")(x)
    assert out.shape == (1, 6, 6)
    padded = T.RandomCrop(8, padding=(2, 2, 2, 2), fill=9)(x)
    assert padded.shape == (1, 8, 8) and float(padded.numpy()[0, 0, 0]) == 9
    with pytest.raises(ValueError, match="padding_mode"):
        T.RandomCrop(4, padding_mode="wrap")


def test_resize_center_crop_grayscale_convert_and_to_pil():
    image = rgb_image(6, 12)
    assert T.Resize(3)(image).size == (6, 3)  # shorter side to 3, aspect ratio kept, as torchvision
    assert T.Resize((4, 5))(image).size == (5, 4)
    assert T.Resize(3)(T.ToTensor()(image)).shape == (3, 3, 6)
    assert T.Resize(3, interpolation=T.InterpolationMode.NEAREST)(image).size == (6, 3)
    assert T.Resize(4)(np.zeros((2, 1, 6, 12), np.uint8), np.random.default_rng(0)).shape == (2, 1, 4, 4)
    assert T.CenterCrop(4)(image).size == (4, 4)
    assert T.CenterCrop((8, 8))(T.ToTensor()(image)).shape == (3, 8, 8)  # smaller: padded with zeros
    grey = T.Grayscale()(image)
    assert grey.mode == "L" and T.Grayscale(3)(image).mode == "RGB"
    assert T.Grayscale()(T.ToTensor()(image)).shape == (1, 6, 12)
    as_float = T.ConvertImageDtype(ns.float32)(T.PILToTensor()(image))
    np.testing.assert_allclose(as_float.numpy(), T.ToTensor()(image).numpy(), rtol=1e-6)
    back = T.ConvertImageDtype(np.uint8)(as_float)
    np.testing.assert_array_equal(back.numpy(), T.PILToTensor()(image).numpy())
    pil = T.ToPILImage()(T.PILToTensor()(image))
    assert pil.tobytes() == image.tobytes()


# --- datasets with transform= -------------------------------------------------------------------
def write_mnist(folder, n=12, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return images, labels


def test_mnist_with_torchvision_transforms_and_loader(tmp_path):
    images, labels = write_mnist(tmp_path)
    transform = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    ds = datasets.MNIST(tmp_path, train=True, download=False, transform=transform)
    x, y = ds[3]
    assert isinstance(x, Tensor) and x.shape == (1, 28, 28) and type(y) is int and y == labels[3]
    np.testing.assert_allclose(x.numpy()[0], (images[3] / 255 - 0.1307) / 0.3081, rtol=1e-5)
    loader = DataLoader(ds, batch_size=5, num_workers=1, pin_memory=True, shuffle=True)
    data, target = next(iter(loader))
    assert len(data) == 5 and data.shape == (5, 1, 28, 28) and target.dtype == np.int64
    assert len(loader.dataset) == 12 and len(loader) == 3
    seen_pil = []
    datasets.MNIST(tmp_path, transform=seen_pil.append, target_transform=lambda t: t + 100)
    labelled = datasets.MNIST(tmp_path, transform=lambda im: im, target_transform=lambda t: t + 100)
    image, target = labelled[0]
    assert isinstance(image, Image.Image) and image.mode == "L" and target == labels[0] + 100
    plain = datasets.MNIST(tmp_path)  # no transform: the fast array behaviour
    assert plain[0][0].shape == (1, 28, 28) and plain.data.dtype == np.uint8


def test_mnist_in_the_torchvision_layout_and_offline_error(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    assert len(datasets.MNIST(tmp_path, train=False, download=False)) == 12
    with pytest.raises(DatasetNotFoundError, match="download=False was given"):
        datasets.MNIST(tmp_path / "empty", download=False)
    assert issubclass(DatasetNotFoundError, RuntimeError)


def test_fast_and_per_sample_paths_agree(tmp_path):
    write_mnist(tmp_path, n=10)
    fast = DataLoader(datasets.MNIST(tmp_path), batch_size=4, shuffle=True, seed=1, transform=T.ToFloat())
    slow = DataLoader(datasets.MNIST(tmp_path, transform=T.ToTensor()), batch_size=4, shuffle=True, seed=1)
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_allclose(xf.numpy(), xs.numpy(), rtol=1e-6)
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())


def test_image_folder_with_transform(tmp_path):
    for label, name in enumerate(("cat", "dog")):
        (tmp_path / name).mkdir()
        rgb_image(9, 7, seed=label).save(tmp_path / name / "a.png")
    ds = datasets.ImageFolder(tmp_path, transform=T.ToTensor(), size=(8, 8))
    x, y = ds[1]
    assert x.shape == (3, 8, 8) and y == 1 and ds.classes == ["cat", "dog"]


# --- extracted CIFAR folders (item 7) --------------------------------------------------------------
def extract(archive, into):
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "cifar-10-batches-py"


@pytest.fixture
def extracted_cifar10(tmp_path, monkeypatch, make_cifar_archive):
    info = make_cifar_archive(tmp_path / "server")
    folder = extract(info["archive"], tmp_path / "keras" / "datasets")
    published = {p.name: cifar_module.md5sum(p) for p in folder.iterdir()}
    monkeypatch.setitem(cifar_module.EXTRACTED_MD5S, "cifar-10-batches-py", published)
    monkeypatch.setattr(datasets.CIFAR10, "cache_dirs", ())  # never the real ~/.keras
    return info, folder


def test_extracted_folder_is_accepted_with_matching_md5s(extracted_cifar10):
    info, folder = extracted_cifar10
    for root in (folder.parent, folder):  # a torchvision/Keras root, or the folder itself
        train = datasets.CIFAR10(root=root, download=False)
        np.testing.assert_array_equal(train.data, info["train_data"])
    test = datasets.CIFAR10(root=folder.parent, train=False, download=False, transform=T.ToTensor())
    x, y = test[0]
    assert x.shape == (3, 32, 32) and y == info["test_labels"][0]
    assert not (folder / cifar_module.VERIFIED_MARKER).exists()  # the user's folder is left as it was


def test_keras_cache_dir_is_searched(extracted_cifar10, tmp_path, monkeypatch):
    info, folder = extracted_cifar10
    monkeypatch.setattr(datasets.CIFAR10, "cache_dirs", (str(folder.parent),))
    assert len(datasets.CIFAR10(root=tmp_path / "elsewhere", download=False)) == len(info["train_labels"])


def test_tampered_extracted_file_is_refused_naming_it(extracted_cifar10):
    _, folder = extracted_cifar10
    expected = cifar_module.EXTRACTED_MD5S["cifar-10-batches-py"]["data_batch_3"]
    with open(folder / "data_batch_3", "ab") as f:
        f.write(b"\x00")
    actual = cifar_module.md5sum(folder / "data_batch_3")
    with pytest.raises(ChecksumError, match=f"data_batch_3: MD5 mismatch: expected {expected}.*got {actual}"):
        datasets.CIFAR10(root=folder.parent, download=False)


def test_the_real_published_md5s_are_torchvisions():
    table = cifar_module.EXTRACTED_MD5S["cifar-10-batches-py"]
    assert table["data_batch_1"] == "c99cafc152244af753f735de768cd75f"
    assert table["batches.meta"] == "5ff9c542aee3614f3951f8cda6e48888"
    assert set(cifar_module.EXTRACTED_MD5S["cifar-100-python"]) == {"train", "test", "meta"}
