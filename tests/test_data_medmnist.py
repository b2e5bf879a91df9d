"""MedMNIST .npz loader: grey / colour images, single / multi-label, splits, no pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xai_gen.data import load_medmnist_npz

SPLITS = {"train": 6, "val": 3, "test": 4}


def write_npz(path: Path, colour: bool = False, labels_per_image: int = 1, **override) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in SPLITS.items():
        shape = (n, 28, 28, 3) if colour else (n, 28, 28)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, labels_per_image), dtype=np.uint8)
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize("split", list(SPLITS))
def test_single_label_grey(tmp_path, split):
    path = write_npz(tmp_path / "pneumoniamnist.npz")
    raw = np.load(path)
    d = load_medmnist_npz(path, split)
    n = SPLITS[split]
    assert d.images.shape == (n, 1, 28, 28) and d.images.dtype == torch.float32
    assert d.labels.shape == (n,) and d.labels.dtype == torch.int64
    assert d.labels.tolist() == raw[f"{split}_labels"][:, 0].tolist()
    expected = torch.from_numpy(raw[f"{split}_images"].astype(np.float32)) / 127.5 - 1.0
    torch.testing.assert_close(d.images[:, 0], expected)


def test_colour_images_become_channels_first(tmp_path):
    images = np.zeros((6, 28, 28, 3), np.uint8)
    images[..., 0] = 255  # pure red
    d = load_medmnist_npz(write_npz(tmp_path / "c.npz", colour=True, train_images=images))
    assert d.images.shape == (6, 3, 28, 28)
    assert d.images[:, 0].eq(1.0).all() and d.images[:, 1:].eq(-1.0).all()


def test_multi_label_keeps_label_matrix(tmp_path):
    path = write_npz(tmp_path / "chestmnist.npz", labels_per_image=14)
    d = load_medmnist_npz(path, "test")
    assert d.labels.shape == (4, 14) and d.labels.dtype == torch.int64
    assert d.labels.tolist() == np.load(path)["test_labels"].tolist()


def test_missing_file_key_and_bad_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_medmnist_npz(tmp_path / "absent.npz")
    path = write_npz(tmp_path / "m.npz", val_labels=None)
    with pytest.raises(KeyError, match="val_labels"):
        load_medmnist_npz(path, "val")
    with pytest.raises(ValueError, match="split must be one of"):
        load_medmnist_npz(path, "validation")


def test_never_unpickles(tmp_path):
    objects = np.array([{"a": 1}] * 6, dtype=object)
    path = write_npz(tmp_path / "o.npz", train_labels=objects)
    with pytest.raises(ValueError, match="without pickle"):
        load_medmnist_npz(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"train_images": np.zeros((6, 28, 28), np.float32)}, "must be uint8"),
        ({"train_images": np.zeros((6, 28, 28, 4), np.uint8)}, "must be uint8"),
        ({"train_labels": np.zeros((6, 1), np.float32)}, "must be integer"),
        ({"train_labels": np.zeros((5, 1), np.uint8)}, "6 train_images but 5 train_labels"),
    ],
)
def test_malformed_arrays_raise(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        load_medmnist_npz(write_npz(tmp_path / "bad.npz", **override))


def test_not_an_npz_archive(tmp_path):
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        load_medmnist_npz(single)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="junk.npz"):
        load_medmnist_npz(tmp_path / "junk.npz")
