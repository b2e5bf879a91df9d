"""IDX reader: header parsing, gzip by magic bytes, round trips and clear errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from xai_gen.data import load_idx, read_idx

TYPE_CODES = {
    "uint8": 0x08,
    "int8": 0x09,
    "int16": 0x0B,
    "int32": 0x0C,
    "float32": 0x0D,
    "float64": 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of `array`, written from the format description (big-endian)."""
    header = bytes([0, 0, TYPE_CODES[array.dtype.name], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def digits(n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(
        np.uint8
    )


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", list(TYPE_CODES))
def test_round_trip_every_type(tmp_path, gz, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", array, gz))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_gzip_recognised_by_magic_not_name(tmp_path):
    images, _ = digits()
    plain_named_gz = write_idx(tmp_path / "images.gz", images, gz=False)
    gz_named_plain = write_idx(tmp_path / "images-idx3-ubyte", images, gz=True)
    np.testing.assert_array_equal(read_idx(plain_named_gz), images)
    np.testing.assert_array_equal(read_idx(gz_named_plain), images)


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_maps_pixels_and_labels(tmp_path, gz):
    images, labels = digits()
    split = load_idx(
        write_idx(tmp_path / "img", images, gz), write_idx(tmp_path / "lab", labels, gz)
    )
    assert split.images.shape == (5, 1, 28, 28) and split.images.dtype == torch.float32
    assert split.labels.dtype == torch.int64 and split.labels.tolist() == labels.tolist()
    expected = torch.from_numpy(images.astype(np.float32)) / 127.5 - 1.0
    torch.testing.assert_close(split.images[:, 0], expected)
    assert len(split) == 5


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_raises(tmp_path, gz):
    data = idx_bytes(digits()[0])
    cut = gzip.compress(data)[:-20] if gz else data[:-10]
    (tmp_path / "cut").write_bytes(cut)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "cut")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "bad magic"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "bad magic"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 3]), "unknown type code"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 1]), "header needs"),
        (idx_bytes(np.arange(3, dtype=np.uint8)) + b"\x00", "longer than its header"),
    ],
    ids=["empty", "png", "type-code", "short-header", "extra-bytes"],
)
def test_foreign_or_malformed_file_raises(tmp_path, content, message):
    (tmp_path / "f").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_idx(tmp_path / "f")


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        read_idx(tmp_path / "nope")


def test_load_idx_rejects_mismatch_and_swapped_files(tmp_path):
    images, labels = digits()
    img = write_idx(tmp_path / "img", images)
    with pytest.raises(ValueError, match="5 images but labels_path has 4"):
        load_idx(img, write_idx(tmp_path / "lab4", labels[:4]))
    lab = write_idx(tmp_path / "lab", labels)
    with pytest.raises(ValueError, match="images_path must hold"):
        load_idx(lab, img)
    with pytest.raises(ValueError, match="labels_path must hold"):
        load_idx(img, write_idx(tmp_path / "flt", labels.astype(np.float32)))
