"""Memory budgets: methods that expand a batch size their passes from a budget, same results."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import xai_gen as xg
from xai_gen._core.budget import check_budget, resolve_budget, row_bytes, rows_within
from xai_gen.models import SmallCNN


def model() -> nn.Module:
    torch.manual_seed(0)
    return SmallCNN(1, 16, 3, width=4, hidden=8).eval()


class BatchSizes(nn.Module):
    """Wraps a model and records the rows of every forward pass."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.sizes = inner, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        return self.inner(x)


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
    # The first pass is attribute()'s one-image output probe, the second our one-row cost probe.
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
