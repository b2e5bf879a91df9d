"""synthetic_cxr: determinism, exact disease masks, targets, labels, range and splits."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch
from scipy.stats import spearmanr

from xai_gen.data import SyntheticCXR, synthetic_cxr


@pytest.fixture(scope="module")
def cxr() -> SyntheticCXR:
    return synthetic_cxr(200, size=64, seed=0)


def tensors(d: SyntheticCXR) -> dict[str, torch.Tensor]:
    return {f.name: getattr(d, f.name) for f in fields(d) if f.name != "cutoff"}


def test_same_seed_identical_other_seed_differs():
    a, b, c = synthetic_cxr(12, seed=3), synthetic_cxr(12, seed=3), synthetic_cxr(12, seed=4)
    for name, value in tensors(a).items():
        assert torch.equal(value, tensors(b)[name]), name
    assert not torch.equal(a.images, c.images) and not torch.equal(a.targets, c.targets)


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_types_and_range(size):
    d = synthetic_cxr(6, size=size, seed=1)
    assert len(d) == 6
    for t in (d.images, d.healthy, d.masks):
        assert t.shape == (6, 1, size, size)
    assert d.images.dtype == d.healthy.dtype == torch.float32 and d.masks.dtype == torch.bool
    assert d.targets.shape == (6,) and d.targets.dtype == torch.float32
    assert d.labels.shape == (6,) and d.labels.dtype == torch.int64
    assert d.severity.shape == (6, 2)
    for t in (d.images, d.healthy):
        assert t.min() >= -1.0 and t.max() <= 1.0
    assert d.targets.min() >= 0.0 and d.targets.max() <= 1.0


def test_masks_are_exactly_the_changed_pixels(cxr):
    # Exact by construction: the masks are defined as images != healthy, and a float difference
    # a - b is zero only where a == b.
    assert torch.equal(cxr.masks, cxr.images != cxr.healthy)
    assert torch.equal(cxr.difference != 0, cxr.masks)
    area = cxr.masks.flatten(1).float().mean(1)
    diseased = cxr.severity.amax(1) > 0.05
    assert (area[diseased] > 0).all()
    # The disease lies inside the body, away from the image's border.
    frame = torch.ones(64, 64, dtype=torch.bool)
    frame[2:-2, 2:-2] = False
    assert not cxr.masks[..., frame].any()
    # Disease only brightens (bright heart over dark lung, opacities in the lungs).
    assert cxr.difference[cxr.masks].min() > 0


def test_targets_rise_with_severity_and_signal(cxr):
    torch.testing.assert_close(cxr.targets, 0.15 + 0.7 * cxr.severity.mean(1))
    order = cxr.severity.mean(1).argsort()
    assert (cxr.targets[order].diff() >= 0).all()
    for column in range(2):  # each sign on its own is informative
        assert spearmanr(cxr.severity[:, column], cxr.targets).statistic > 0.8
    signal = cxr.difference.flatten(1).sum(1)
    assert spearmanr(signal, cxr.targets).statistic > 0.9
    healthy_like = cxr.severity.amax(1) < 0.01
    assert cxr.difference[healthy_like].abs().max() < 0.05


def test_labels_follow_cutoff_and_are_balanced(cxr):
    assert torch.equal(cxr.labels, (cxr.targets > 0.5).long()) and cxr.cutoff == 0.5
    assert 0.35 < cxr.labels.float().mean() < 0.65
    low = synthetic_cxr(40, seed=0, cutoff=0.3)
    assert torch.equal(low.labels, (low.targets > 0.3).long()) and low.cutoff == 0.3


def test_split_is_fixed_and_contiguous(cxr):
    train, test = cxr.split(0.25)
    assert (len(train), len(test)) == (150, 50) and test.cutoff == cxr.cutoff
    for name, value in tensors(cxr).items():
        assert torch.equal(torch.cat([tensors(train)[name], tensors(test)[name]]), value), name
    with pytest.raises(ValueError, match="test_fraction"):
        cxr.split(1.0)
    with pytest.raises(ValueError, match="empty"):
        synthetic_cxr(2, size=16).split(0.1)


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"n": 0}, "n"), ({"size": 8}, "size"), ({"cutoff": 1.5}, "cutoff")]
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        synthetic_cxr(**{"n": 4, **kwargs})
