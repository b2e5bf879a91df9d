"""`xai_gen.compare` as a package: both import styles, the data protocol, the table writer."""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import xai_gen as xg
import xai_gen.compare as compare_package
from xai_gen.compare import ComparisonResult, compare, mean_ci
from xai_gen.compare.report import markdown_table


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return xg.SmallCNN(image_size=8, num_classes=3, width=4, hidden=8)


def images(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1


@dataclass
class Scans:
    """A data set that follows the protocol with only some of the optional attributes."""

    images: torch.Tensor
    masks: torch.Tensor | None = None
    difference: torch.Tensor | None = None
    labels: torch.Tensor | None = None


def test_the_package_is_importable_both_ways_and_callable_as_the_function():
    assert isinstance(compare_package, types.ModuleType) and xg.compare is compare_package
    assert compare_package.mean_ci is mean_ci and xg.ComparisonResult is ComparisonResult
    assert inspect.isfunction(compare) and compare is compare_package.compare
    assert inspect.signature(xg.compare) == inspect.signature(compare)
    kwargs = {"metrics": ["sparseness"], "n": 3, "progress": False}
    via_package = xg.compare(["saliency"], tiny_model(), (images(), None), **kwargs)
    via_function = compare(["saliency"], tiny_model(), (images(), None), **kwargs)
    np.testing.assert_array_equal(  # exact: the same function on the same batches
        via_package.values["saliency"]["sparseness"], via_function.values["saliency"]["sparseness"]
    )


@pytest.mark.parametrize(
    ("present", "evaluated"),
    [
        ({}, []),
        ({"masks": True}, ["pointing_game"]),
        ({"difference": True}, ["ground_truth_correlation"]),
        ({"masks": True, "difference": True}, ["pointing_game", "ground_truth_correlation"]),
    ],
)
def test_optional_ground_truth_decides_which_localisation_metrics_run(present, evaluated):
    x = images()
    masks = torch.zeros_like(x, dtype=torch.bool)
    masks[..., :3, :3] = True
    data = Scans(
        x,
        masks=masks if present.get("masks") else None,
        difference=x * masks if present.get("difference") else None,
    )
    r = compare(
        ["saliency"],
        tiny_model(),
        data,
        metrics=["pointing_game", "ground_truth_correlation"],
        n=4,
        progress=False,
    )
    assert r.evaluated == evaluated
    assert all(len(r.values["saliency"][m]) == 4 for m in evaluated)


def test_a_data_set_has_its_prediction_explained_not_its_labels():
    x, model = images(), tiny_model()
    predicted = model(x).argmax(1)
    labels = (predicted + 1) % 3  # never the prediction
    r = compare(["saliency"], model, Scans(x, labels=labels), metrics=[], n=4, progress=False)
    assert r.explanations["saliency"].targets.tolist() == predicted.tolist()
    given = compare(["saliency"], model, (x, labels), metrics=[], n=4, progress=False)
    assert given.explanations["saliency"].targets.tolist() == labels.tolist()


def test_markdown_table_writes_rule_and_rows_and_escapes_pipes():
    text = markdown_table(["method", "score"], [["a|b", 0.5], ["c", "two\nlines"]])
    assert text.splitlines() == [
        "| method | score |",
        "|---|---|",
        "| a\\|b | 0.5 |",
        "| c | two lines |",
    ]
    with pytest.raises(ValueError, match=r"rows\[0\] has 1 cells but header has 2"):
        markdown_table(["method", "score"], [["a"]])
