"""Files keep their values on load, or are refused by name; hostile headers cost bounded memory.

Issue 20, items 4 and 10: 16-bit PNGs clipped to 255, int8 IDX files wrapped (-1 -> 255), CIFAR
batches with label 57 or float pixel 300.7 wrapped to uint8, an IDX ``.gz`` decompressed whole before
its header was checked (1 MB -> 2.1 GB), and PIL's ``DecompressionBombError`` escaping
``ImageFolder(on_error="skip")``.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnscratch.data import CIFAR10, CIFAR100, MNIST, ImageFolder, read_idx, write_idx
from nnscratch.data.cifar import VERIFIED_MARKER
from nnscratch.data.idx import MAX_IDX_BYTES

MiB = 1 << 20


def peak_bytes(fn) -> tuple[int, object]:
    """Run ``fn()`` under tracemalloc (NumPy reports its buffers to it); return (peak, result or error)."""
    tracemalloc.start()
    try:
        try:
            outcome = fn()
        except Exception as err:  # returned so the caller can check it after the measurement
            outcome = err
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


def idx_header(type_code: int, shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


# --- IDX: the type byte is honoured --------------------------------------------------------------------


@pytest.mark.parametrize(
    "type_code, stored, expected",
    [
        (0x08, np.array([0, 255], ">u1"), np.array([0, 255], np.uint8)),
        (0x09, np.array([-1, -128, 127], ">i1"), np.array([-1, -128, 127], np.int8)),
        (0x0B, np.array([-1, -32768, 40], ">i2"), np.array([-1, -32768, 40], np.int16)),
        (0x0C, np.array([-1, 2**31 - 1], ">i4"), np.array([-1, 2**31 - 1], np.int32)),
        (0x0D, np.array([-1.5, 3e38], ">f4"), np.array([-1.5, 3e38], np.float32)),
        (0x0E, np.array([-0.1, 1e300], ">f8"), np.array([-0.1, 1e300], np.float64)),
    ],
)
def test_read_idx_returns_the_dtype_of_the_type_byte(tmp_path, type_code, stored, expected):
    path = tmp_path / "hand-made-idx1"
    path.write_bytes(idx_header(type_code, stored.shape) + stored.tobytes())  # big-endian, as the format says
    array = read_idx(path)
    assert array.dtype == expected.dtype and array.dtype.isnative and array.flags.writeable
    np.testing.assert_array_equal(array, expected)


def test_int8_idx_minus_one_stays_minus_one(tmp_path):
    path = tmp_path / "x-idx1-sbyte.gz"
    write_idx(path, np.array([-1, 0, 127], np.int8))
    assert read_idx(path).tolist() == [-1, 0, 127]


# --- MNIST: pixels that do not fit uint8 are refused, others converted exactly ------------------------


def write_mnist(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "t10k-images-idx3-ubyte", images)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels)


def test_int8_mnist_with_minus_one_is_refused_naming_the_file(tmp_path):
    images = np.zeros((2, 28, 28), np.int8)
    images[0, 0, 0] = -1  # the probe: this loaded as 255
    write_mnist(tmp_path, images, np.zeros(2, np.uint8))
    expected = (
        r"t10k-images-idx3-ubyte: expected pixel values in \[0, 255\] \(IDX type 0x08, unsigned byte\), "
        r"got int8 values in \[-1, 0\]"
    )
    with pytest.raises(ValueError, match=expected):
        MNIST(root=tmp_path, train=False, download=False)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32])
def test_mnist_of_another_integer_type_in_range_converts_exactly(tmp_path, dtype):
    images = (np.arange(2 * 28 * 28) % (128 if dtype == np.int8 else 256)).astype(dtype).reshape(2, 28, 28)
    write_mnist(tmp_path, images, np.array([3, 9], dtype))
    ds = MNIST(root=tmp_path, train=False, download=False)
    assert ds.data.dtype == np.uint8 and ds.targets.tolist() == [3, 9]
    np.testing.assert_array_equal(ds.data[:, 0], images.astype(np.int64))


def test_mnist_float_pixels_and_labels_are_refused(tmp_path):
    write_mnist(tmp_path, np.zeros((1, 28, 28), np.float32), np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: expected integer pixel values .* got float32"):
        MNIST(root=tmp_path, train=False, download=False)
    write_mnist(tmp_path, np.zeros((1, 28, 28), np.uint8), np.array([1.5], np.float32))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: expected integer labels .*got float32"):
        MNIST(root=tmp_path, train=False, download=False)


def test_int8_mnist_label_minus_one_is_refused(tmp_path):
    write_mnist(tmp_path, np.zeros((2, 28, 28), np.uint8), np.array([-1, 2], np.int8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: expected labels in \[0, 10\), got \[-1, 2\]"):
        MNIST(root=tmp_path, train=False, download=False)


# --- IDX: streamed, header first, bounded memory (item 10a) -------------------------------------------


@pytest.fixture(scope="module")
def gz_bomb(tmp_path_factory) -> Path:
    """A ~100 KB .gz whose header says 16 bytes, followed by 96 MiB of zeros."""
    path = tmp_path_factory.mktemp("bomb") / "train-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(idx_header(0x08, (16,)) + bytes(16))
        for _ in range(96):
            f.write(bytes(MiB))
    return path


def test_idx_gz_bomb_stops_at_the_size_the_header_implies(gz_bomb):
    assert gz_bomb.stat().st_size < MiB
    peak, outcome = peak_bytes(lambda: read_idx(gz_bomb))
    assert isinstance(outcome, ValueError)
    message = "train-labels-idx1-ubyte.gz: IDX sizes (16,) of uint8 need 16 data bytes, found more (trailing data"
    assert message in str(outcome)
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB"  # before: the whole 96 MiB, twice


@pytest.mark.parametrize("gz", [False, True])
def test_idx_header_beyond_the_limit_is_refused_before_reading(tmp_path, gz):
    path = tmp_path / ("huge.gz" if gz else "huge")
    payload = idx_header(0x0E, (2**32 - 1,) * 3) + bytes(64)  # claims 6e29 bytes
    path.write_bytes(gzip.compress(payload) if gz else payload)
    peak, outcome = peak_bytes(lambda: read_idx(path))
    assert isinstance(outcome, ValueError)
    assert f"implies {(2**32 - 1) ** 3 * 8} data bytes, more than the limit max_bytes={MAX_IDX_BYTES}" in str(outcome)
    assert peak < MiB


@pytest.mark.parametrize("gz", [False, True])
def test_idx_header_within_the_limit_but_data_missing_costs_only_the_data(tmp_path, gz):
    path = tmp_path / ("short.gz" if gz else "short")
    payload = idx_header(0x08, (512, MiB)) + bytes(10)  # claims 512 MiB, holds 10 bytes
    path.write_bytes(gzip.compress(payload) if gz else payload)
    peak, outcome = peak_bytes(lambda: read_idx(path))
    assert isinstance(outcome, ValueError)
    assert f"need {512 * MiB} data bytes, got 10 (truncated or wrong header)" in str(outcome)
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_idx_limit_is_stated_and_raisable(tmp_path):
    path = tmp_path / "big.gz"
    array = np.arange(3 * MiB, dtype=np.int32) % 1000  # 12 MiB of data, more than the 1 MiB buffer start
    write_idx(path, array)
    with pytest.raises(ValueError, match=r"big.gz: .*more than the limit max_bytes=1000000; pass a larger max_bytes"):
        read_idx(path, max_bytes=1_000_000)
    back = read_idx(path, max_bytes=array.nbytes)
    assert back.dtype == np.int32 and back.flags.writeable
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_trailing_data_is_refused(tmp_path, gz):
    path = tmp_path / ("extra.gz" if gz else "extra")
    payload = idx_header(0x08, (4,)) + bytes(5)  # one byte too many
    path.write_bytes(gzip.compress(payload) if gz else payload)
    found = "found more" if gz else "got 5"
    with pytest.raises(
        ValueError,
        match=rf"extra(\.gz)?: IDX sizes \(4,\) of uint8 need 4 data bytes, {found} \(trailing data or wrong header\)",
    ):
        read_idx(path)


def test_idx_gz_of_zero_size_with_data_after_it_is_refused(tmp_path):
    path = tmp_path / "zero.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, (0,)) + bytes(1000)))
    with pytest.raises(ValueError, match=r"zero.gz: IDX sizes \(0,\) of uint8 need 0 data bytes, found more"):
        read_idx(path)


@pytest.mark.parametrize("shape", [(0,) * 65, (0, 2**32 - 1, 2**32 - 1, 2**32 - 1)])
def test_idx_shapes_numpy_cannot_hold_name_the_file(tmp_path, shape):
    path = tmp_path / "odd-shape"
    path.write_bytes(idx_header(0x08, shape))
    with pytest.raises(ValueError, match=r"odd-shape: IDX shape .* cannot be held by a NumPy array"):
        read_idx(path)


# --- CIFAR: only the exact official format ------------------------------------------------------------


def cifar_folder(root: Path, cls=CIFAR10, data=None, labels=None, meta=None, coarse=None) -> Path:
    """A verified extracted folder whose every batch holds ``data`` and ``labels``."""
    folder = root / cls.folder_name
    folder.mkdir(parents=True)
    data = np.zeros((2, 3072), np.uint8) if data is None else data
    labels = [0, 1] if labels is None else labels
    for name in (*cls.train_files, *cls.test_files):
        batch = {b"data": data, cls.label_key: labels}
        if cls is CIFAR100:
            batch[b"coarse_labels"] = [0, 1] if coarse is None else coarse
        (folder / name).write_bytes(pickle.dumps(batch, protocol=3))
    if meta is None:
        meta = {b"label_names": [b"c%d" % i for i in range(10)]}
        if cls is CIFAR100:
            meta = {
                b"fine_label_names": [b"f%d" % i for i in range(100)],
                b"coarse_label_names": [b"k%d" % i for i in range(20)],
            }
    (folder / cls.meta_file).write_bytes(pickle.dumps(meta, protocol=3))
    (folder / VERIFIED_MARKER).write_text(cls.md5 + "\n")
    return folder


def test_cifar_exact_format_still_loads(tmp_path):
    data = np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072)
    cifar_folder(tmp_path, data=data, labels=[9, 0])
    ds = CIFAR10(root=tmp_path, train=False, download=False)
    np.testing.assert_array_equal(ds.data.reshape(2, 3072), data)
    assert ds.targets.tolist() == [9, 0] and ds.targets.dtype == np.int64 and ds.classes[9] == "c9"


def test_cifar_label_57_is_refused(tmp_path):
    cifar_folder(tmp_path, labels=[57, 1])
    expected = (
        r"cifar-10-batches-py/test_batch: expected b'labels' in \[0, 10\) \(the meta file names 10 classes\), "
        r"got values in \[1, 57\]"
    )
    with pytest.raises(ValueError, match=expected):
        CIFAR10(root=tmp_path, train=False, download=False)


def test_cifar_float_pixel_300_7_is_refused(tmp_path):
    cifar_folder(tmp_path, data=np.full((2, 3072), 300.7))
    expected = (
        r"cifar-10-batches-py/test_batch: expected b'data' to hold uint8 pixels \(integers 0..255\), "
        r"got dtype float64 with values in \[300.7, 300.7\]"
    )
    with pytest.raises(ValueError, match=expected):
        CIFAR10(root=tmp_path, train=False, download=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"data": np.full((2, 3072), 7, np.int64)}, r"b'data' to hold uint8 pixels .* got dtype int64"),
        ({"data": [[0] * 3072] * 2}, r"b'data' to be a uint8 array \(N, 3072\), got list"),
        ({"data": np.zeros((2, 1024), np.uint8)}, r"b'data' of shape \(N, 3072\), got \(2, 1024\)"),
        ({"labels": [0.0, 1.5]}, r"b'labels' to be integer labels in \[0, 10\), got dtype float64"),
        ({"labels": [-1, 0]}, r"b'labels' in \[0, 10\) .* got values in \[-1, 0\]"),
        ({"labels": [b"1", b"2"]}, r"b'labels' to be integer labels .* got dtype \|S1"),
        ({"labels": [0]}, r"b'labels' has \(1,\) entries for 2 images"),
        ({"meta": {b"other": 1}}, r"batches.meta: expected b'label_names' to be a non-empty list of class names"),
        ({"meta": {b"label_names": [b"a", b"b"]}}, r"b'labels' in \[0, 2\) \(the meta file names 2 classes\)"),
    ],
)
def test_cifar_anything_but_the_exact_format_is_refused(tmp_path, kwargs, message):
    if "meta" in kwargs and b"label_names" in kwargs["meta"]:
        kwargs = {**kwargs, "labels": [0, 5]}
    cifar_folder(tmp_path, **kwargs)
    with pytest.raises(ValueError, match=message):
        CIFAR10(root=tmp_path, train=False, download=False)


def test_cifar100_coarse_labels_are_checked_against_their_names(tmp_path):
    cifar_folder(tmp_path, cls=CIFAR100, labels=[99, 0], coarse=[25, 0])
    with pytest.raises(ValueError, match=r"cifar-100-python/test: expected b'coarse_labels' in \[0, 20\)"):
        CIFAR100(root=tmp_path, train=False, download=False)


# --- ImageFolder: 16-bit images reduced faithfully (v >> 8), bombs skipped or refused by name ----------

SIXTEEN = np.array([[0, 255, 256, 40000, 65535]], np.uint16)
SIXTEEN_AS_8 = [0, 0, 1, 156, 255]  # v >> 8; Pillow's own convert() gave [0, 255, 255, 255, 255]


def png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes = b"") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def tiff_12bit(samples: list[int]) -> bytes:
    """A one-row, uncompressed, 12-bit grey TIFF (Pillow opens it as mode I;16, values 0..4095)."""
    packed = bytearray()
    for a, b in zip(samples[::2], samples[1::2]):
        packed += bytes([a >> 4, ((a & 15) << 4) | (b >> 8), b & 255])
    tags = [(256, 3, len(samples)), (257, 3, 1), (258, 3, 12), (259, 3, 1), (262, 3, 1), (273, 4, None)]
    tags += [(277, 3, 1), (278, 3, 1), (279, 4, len(packed))]
    data_offset = 8 + 2 + 12 * len(tags) + 4
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        value = data_offset if value is None else value
        ifd += struct.pack("<HHI", tag, kind, 1) + (
            struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        )
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bytes(packed)


def one_image_folder(tmp_path: Path, name: str, write) -> Path:
    (tmp_path / "tree" / "a").mkdir(parents=True)
    path = tmp_path / "tree" / "a" / name
    write(path)
    return tmp_path / "tree"


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_16bit_png_40000_loads_as_156_not_255(tmp_path, mode):
    root = one_image_folder(tmp_path, "deep.png", lambda p: Image.fromarray(SIXTEEN).save(p))
    with Image.open(root / "a" / "deep.png") as image:
        assert image.mode == "I;16"  # the probe's case
    ds = ImageFolder(root, size=(1, 5), mode=mode, resample="nearest")
    assert ds.data.dtype == np.uint8 and ds.data.shape == (1, 3 if mode == "RGB" else 1, 1, 5)
    for channel in ds.data[0]:
        assert channel[0].tolist() == SIXTEEN_AS_8


@pytest.mark.parametrize(
    "name, write, expected",
    [
        ("deep.tif", lambda p: Image.fromarray(SIXTEEN).save(p), SIXTEEN_AS_8),  # I;16 TIFF
        ("deep.pgm", lambda p: p.write_bytes(b"P5 5 1 65535\n" + SIXTEEN.astype(">u2").tobytes()), SIXTEEN_AS_8),
        ("twelve.tif", lambda p: p.write_bytes(tiff_12bit([0, 16, 2500, 4095])), [0, 1, 156, 255]),  # v >> 4
    ],
)
def test_other_16bit_grey_images_keep_their_high_bits(tmp_path, name, write, expected):
    root = one_image_folder(tmp_path, name, write)
    ds = ImageFolder(root, size=(1, len(expected)), mode="L", resample="nearest")
    assert ds.data[0, 0, 0].tolist() == expected


def test_16bit_rgb_png_matches_the_grey_reduction(tmp_path):
    rows = b"\x00" + np.array([40000, 0, 65535, 256, 255, 1], ">u2").tobytes()  # two RGB pixels
    root = one_image_folder(tmp_path, "rgb16.png", lambda p: p.write_bytes(png(2, 1, 16, 2, rows)))
    ds = ImageFolder(root, size=(1, 2), resample="nearest")
    assert ds.data[0, :, 0].T.tolist() == [[156, 0, 255], [1, 0, 0]]


@pytest.mark.parametrize(
    "array, mode",
    [(np.array([[-5, 70000]], np.int32), "'I'"), (np.array([[0.25, 300.0]], np.float32), "'F'")],
)
def test_images_without_an_8bit_scale_are_refused_or_skipped(tmp_path, array, mode):
    root = one_image_folder(tmp_path, "wide.tif", lambda p: Image.fromarray(array).save(p))
    with pytest.raises(ValueError, match=rf"cannot read image .*wide.tif: .*\(Pillow mode {mode}\).*no defined 8-bit"):
        ImageFolder(root, size=(1, 2))
    with pytest.warns(UserWarning, match=r"skipping unreadable image .*wide.tif"):
        ds = ImageFolder(root, size=(1, 2), on_error="skip")
    assert len(ds) == 0 and [p.name for p in ds.skipped] == ["wide.tif"]


@pytest.fixture
def bomb_tree(tmp_path) -> Path:
    """A class folder with a 100000x100000 PNG header (no pixel data) between two good images."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (4, 4), (10, 20, 30)).save(tmp_path / name / "ok.png")
    (tmp_path / "a" / "bomb.png").write_bytes(png(100_000, 100_000, 8, 0))
    return tmp_path


def test_decompression_bomb_is_skipped_under_on_error_skip(bomb_tree):
    with pytest.warns(UserWarning, match=r"skipping unreadable image .*bomb.png: decompression bomb refused"):
        ds = ImageFolder(bomb_tree, size=4, on_error="skip")
    assert len(ds) == 2 and ds.targets.tolist() == [0, 1]
    assert ds.skipped == [bomb_tree / "a" / "bomb.png"]


def test_decompression_bomb_raises_the_documented_error(bomb_tree):
    with pytest.raises(ValueError, match=r"cannot read image .*bomb.png: decompression bomb refused.*MAX_IMAGE_PIXELS"):
        ImageFolder(bomb_tree, size=4)
    try:
        ImageFolder(bomb_tree, size=4)
    except ValueError as err:
        assert isinstance(err.__cause__, Image.DecompressionBombError)
