"""Several targets per input, for every registered explainer: one row per (input, target) pair.

The rows must equal what separate calls with one target each give, in input-major order, with
the inputs repeated; errors must name `target`.
"""

from __future__ import annotations

import pytest
import torch

from tests.test_contract import REGISTERED, SHAPE, build, foreign

TARGETS = [[0, 2], [3, 0, 1]]  # ragged on purpose: 5 rows from 2 inputs


@pytest.mark.parametrize("name", REGISTERED)
def test_several_targets_equal_separate_calls(name):
    model = foreign(4).eval()
    torch.manual_seed(1)
    x = torch.rand(2, *SHAPE) * 2 - 1
    explainer = build(name, regression=False)
    together = explainer.attribute(model, x, target=TARGETS)
    assert together.targets.tolist() == [0, 2, 3, 0, 1]
    assert torch.equal(together.inputs, x[[0, 0, 1, 1, 1]])
    row = 0
    for i, targets in enumerate(TARGETS):
        for t in targets:
            alone = explainer.attribute(model, x[i : i + 1], target=t)
            torch.testing.assert_close(
                together.attributions[row : row + 1], alone.attributions, rtol=1e-4, atol=1e-5
            )
            row += 1


def test_an_n_by_m_tensor_is_several_targets_per_input():
    model = foreign(4).eval()
    x = torch.rand(3, *SHAPE)
    e = build("saliency", regression=False).attribute(model, x, target=torch.tensor([[1, 2]] * 3))
    assert e.targets.tolist() == [1, 2, 1, 2, 1, 2] and len(e) == 6


@pytest.mark.parametrize(
    ("target", "message"),
    [([[1], [2], [3]], "one list per input"), ([[1], []], "no target"), ([[1], [9]], "out of range")],
)
def test_bad_several_targets_name_the_argument(target, message):
    with pytest.raises(ValueError, match=message):
        build("saliency", regression=False).attribute(foreign(4).eval(), torch.rand(2, *SHAPE), target=target)
