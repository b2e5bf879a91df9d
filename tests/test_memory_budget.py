"""Memory budgets: methods that expand a batch size their passes from a budget, same results."""

from __future__ import annotations

import pytest
import torch
from call_sizes import BatchSizes
from torch import nn

import xai_gen as xg
from xai_gen import LatentModel
from xai_gen._core.budget import check_budget, resolve_budget, row_bytes, rows_within
from xai_gen._core.state import preserved
from xai_gen.latent import nets
from xai_gen.models import SmallCNN


def model() -> nn.Module:
    torch.manual_seed(0)
    return SmallCNN(1, 16, 3, width=4, hidden=8).eval()


def test_row_bytes_grows_with_the_activations():
    row = torch.rand(1, 1, 16, 16)
    small, wide = SmallCNN(1, 16, 3, width=2), SmallCNN(1, 16, 3, width=16)
    assert row_bytes(wide, row) > row_bytes(small, row) > row.numel() * 4
    assert row_bytes(wide, row, backward=False) < row_bytes(wide, row)


@pytest.mark.parametrize(
    ("explainer", "budget_rows"),
    [(xg.IntegratedGradients(n_steps=10), 7), (xg.Occlusion(window=4, stride=4), 5)],
    ids=["ig", "occlusion"],
)
def test_a_budget_bounds_every_pass_and_keeps_the_attributions(explainer, budget_rows):
    net, x = model(), torch.rand(3, 1, 16, 16)
    backward = isinstance(explainer, xg.IntegratedGradients)
    budget = budget_rows * row_bytes(net, x[:1], backward=backward)
    spy = BatchSizes(net)
    bounded = explainer.attribute(spy, x, target=1, memory_budget=budget).attributions
    # The first pass is attribute()'s one-image output probe, then our cost probes of one and two rows.
    assert max(spy.sizes[2:]) <= budget_rows
    free = explainer.attribute(net, x, target=1, memory_budget=None).attributions
    torch.testing.assert_close(bounded, free, rtol=1e-5, atol=1e-6)


def test_without_a_budget_ig_makes_one_pass():
    spy = BatchSizes(model())
    xg.IntegratedGradients(n_steps=10, memory_budget=None).attribute(spy, torch.rand(3, 1, 16, 16), target=0)
    assert spy.sizes[-1] == 30


def test_a_hand_set_chunk_wins_over_the_budget():
    spy = BatchSizes(model())
    xg.IntegratedGradients(n_steps=10, internal_batch_size=6, memory_budget=1).attribute(
        spy, torch.rand(3, 1, 16, 16), target=0
    )
    assert set(spy.sizes[1:]) == {6}


@pytest.mark.parametrize(("value", "error"), [("lots", TypeError), (0, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_budgets_name_the_argument(value, error):
    with pytest.raises(error, match="memory_budget"):
        check_budget(value)
    with pytest.raises(error, match="memory_budget"):
        xg.IntegratedGradients(memory_budget=value)


def test_auto_is_a_bounded_share_of_free_memory():
    assert 0 < resolve_budget("auto") <= 512 * 2**20
    assert rows_within(100, 30, 1000) == 3 and rows_within(None, 30, 1000) == 1000


def test_deletion_curves_stay_under_the_budget_with_the_same_scores():
    from xai_gen.metrics import deletion_auc

    net, x = model(), torch.rand(4, 1, 16, 16)
    maps = torch.rand(4, 1, 16, 16)
    budget = 9 * row_bytes(net, x[:1], backward=False)
    spy = BatchSizes(net)
    bounded = deletion_auc(spy, x, maps, target=0, n_steps=8, memory_budget=budget)
    assert max(spy.sizes[1:]) <= 9
    torch.testing.assert_close(bounded, deletion_auc(net, x, maps, target=0, n_steps=8, memory_budget=None))


def latent_model() -> LatentModel:
    torch.manual_seed(0)
    g = nets.spec("dcgan_generator", latent_dim=6, image_shape=(1, 16, 16), width=4)
    e = nets.spec("dcgan_encoder", out_dim=6, image_shape=(1, 16, 16), width=4)
    return LatentModel.from_specs(g, e).eval()


def decode_and_classify_bytes(lm: LatentModel, net: nn.Module, x: torch.Tensor, backward: bool) -> int:
    """Bytes one row of a latent pass holds: its code decoded and the image classified."""

    def one_pass(z: torch.Tensor) -> torch.Tensor:
        image = lm.decode(z)
        return torch.cat([image.flatten(1), net(image)], dim=1)

    with preserved(lm), preserved(net):
        return row_bytes(one_pass, lm.encode(x[:1]).detach(), backward)


@pytest.mark.parametrize(
    ("make", "fields", "backward"),
    [
        (lambda lm: xg.GVR(lm, max_steps=6, patience=None, progress=False), ("attributions", "steps", "success"), True),
        (lambda lm: xg.LatentShift(lm, n_frames=4), ("attributions", "frames", "probabilities", "steps"), True),
        # Its frames are decoded and scored forward only (its GVR run is bounded like GVR's).
        (
            lambda lm: xg.LatentTraversal(lm, steps=4, progress=False, gvr_params={"max_steps": 4}),
            ("attributions", "frames", "probabilities"),
            False,
        ),
    ],
    ids=["gvr", "latent_shift", "latent_traversal"],
)
def test_latent_explainers_keep_every_pass_under_the_budget(make, fields, backward):
    lm, net = latent_model(), model()
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    budget = 2 * decode_and_classify_bytes(lm, net, x, backward=True)
    rows = budget // decode_and_classify_bytes(lm, net, x, backward=backward)
    spy = BatchSizes(net)
    bounded = make(lm).attribute(spy, x, target=1, memory_budget=budget)
    assert max(spy.sizes) <= rows < 5 and len(spy.sizes) > 5
    free_spy = BatchSizes(net)
    free = make(lm).attribute(free_spy, x, target=1, memory_budget=None)
    assert max(free_spy.sizes) >= 5  # unbounded: whole batches
    for name in fields:
        torch.testing.assert_close(getattr(bounded, name), getattr(free, name), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("explainer", [xg.Lime, xg.FastLime], ids=["lime", "fast_lime"])
def test_lime_calls_stay_under_the_budget_with_the_same_maps(explainer):
    net, x = model(), torch.rand(2, 1, 16, 16)
    lime = explainer(num_samples=30, segmentation="slic", progress=False)
    with preserved(net):
        budget = 4 * row_bytes(net, x[:1], backward=False)
    spy = BatchSizes(net)
    bounded = lime.attribute(spy, x, target=1, memory_budget=budget).attributions
    assert max(spy.sizes) <= 4
    free_spy = BatchSizes(net)
    free = lime.attribute(free_spy, x, target=1, memory_budget=None).attributions
    assert max(free_spy.sizes) >= 30  # unbounded: all samples of an image (FastLime: of all images) at once
    torch.testing.assert_close(bounded, free, rtol=1e-5, atol=1e-7)


def test_a_hand_set_lime_batch_wins_over_the_budget():
    spy = BatchSizes(model())
    xg.FastLime(num_samples=30, segmentation="slic", batch_size=7, memory_budget=1, progress=False).attribute(
        spy, torch.rand(2, 1, 16, 16), target=0
    )
    assert set(spy.sizes[1:-1]) == {7}
