"""mnist_5k: the bundled digits, their fixed balanced split and value range."""

from __future__ import annotations

import pytest
import torch

from xai_gen.data import MNIST5k, mnist_5k


@pytest.fixture(scope="module")
def mnist() -> MNIST5k:
    return mnist_5k()


def test_shapes_and_types(mnist):
    for split, n in ((mnist.train, 4000), (mnist.test, 1000)):
        assert split.images.shape == (n, 1, 28, 28) and split.images.dtype == torch.float32
        assert split.labels.shape == (n,) and split.labels.dtype == torch.int64
        assert len(split) == n


def test_balanced_per_class(mnist):
    assert torch.bincount(mnist.train.labels, minlength=10).tolist() == [400] * 10
    assert torch.bincount(mnist.test.labels, minlength=10).tolist() == [100] * 10


def test_value_range_and_background(mnist):
    images = mnist.train.images
    assert images.min() == -1.0 and images.max() == 1.0
    # Digits are white strokes on black: the corners are background.
    assert images[:, :, 0, 0].eq(-1.0).all()


# Fingerprints of the fixed split: (bright pixels in the split, in its images 0, 1 and -1).
FINGERPRINTS = {"train": (414943, [127, 120, 76]), "test": (105708, [48, 131, 89])}


def test_split_is_fixed_and_disjoint(mnist):
    for name, (total, firsts) in FINGERPRINTS.items():
        bright = getattr(mnist, name).images > 0
        assert int(bright.sum()) == total
        assert [int(bright[i].sum()) for i in (0, 1, -1)] == firsts
    train_keys = {im.numpy().tobytes() for im in mnist.train.images}
    assert not any(im.numpy().tobytes() in train_keys for im in mnist.test.images)
