"""The comparison runner: what it measures, what it writes, and how it fails."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import xai_gen as xg
from xai_gen.compare import ComparisonResult, compare, make_explainers, mean_ci
from xai_gen.explainer import Explainer, register_explainer

METRICS = [
    "deletion_auc",
    "sparseness",
    "pointing_game",
    "ground_truth_correlation",
    "max_sensitivity",
]


@register_explainer("_test_compare_fails")
class Fails(Explainer):
    def _explain(self, model, x, target):
        raise RuntimeError("explainer broke")


@dataclass
class FakeData:
    """A data set with ground truth: the signal lives in the top-left 3x3 corner."""

    images: torch.Tensor
    masks: torch.Tensor
    difference: torch.Tensor


def fake_data(n: int = 10) -> FakeData:
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(n, 1, 8, 8, generator=gen) * 2 - 1
    masks = torch.zeros(n, 1, 8, 8, dtype=torch.bool)
    masks[:, :, :3, :3] = True
    return FakeData(images, masks, images * masks)


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return xg.SmallCNN(image_size=8, num_classes=3, width=4, hidden=8)


def cheap_explainers() -> list[Explainer]:
    return [xg.get_explainer("saliency"), xg.get_explainer("occlusion", window=2, stride=2)]


@pytest.fixture(scope="module")
def result() -> ComparisonResult:
    return compare(
        cheap_explainers(),
        tiny_model(),
        fake_data(),
        metrics=METRICS,
        n=8,
        progress=False,
        batch_size=4,
        expensive_n=6,
        figure_rows=3,
        name="fake",
        metric_options={"max_sensitivity": {"n_perturb_samples": 3}},
    )


def test_per_sample_values_and_costs_for_every_method(result):
    assert result.methods == ["saliency", "occlusion"]
    assert result.evaluated == METRICS
    for method in result.methods:
        values = result.values[method]
        assert set(values) == set(METRICS)
        assert all(len(values[m]) == 8 for m in METRICS if m != "max_sensitivity")
        assert (
            len(values["max_sensitivity"]) == 6
        )  # re-runs the explainer: expensive_n samples only
        assert result.seconds[method] > 0 and result.peak_memory[method] >= 0
        assert len(result.explanations[method]) == 3
    assert result.images.shape == (3, 1, 8, 8)
    assert result.errors == {}


def test_mean_ci_is_the_student_t_interval():
    values = np.array([0.2, 0.5, 0.4, 0.9, 0.1])
    s = mean_ci(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert s["mean"] == pytest.approx(values.mean())
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((low, high))
    assert mean_ci([1.0, math.nan])["n"] == 1 and math.isnan(mean_ci([1.0])["ci_low"])
    assert mean_ci([])["n"] == 0


def test_save_writes_every_promised_file_and_the_markdown_names_everything(result, tmp_path):
    written = result.save(tmp_path / "report")
    names = sorted(p.name for p in written)
    assert names == ["figure_grid.png", "metrics.png", "results.json", "results.md", "timing.png"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)
    markdown = (tmp_path / "report" / "results.md").read_text()
    lines = markdown.splitlines()
    # One table per metric family: the header lines of all of them (each line above a |---|).
    header = " ".join(line for line, below in zip(lines, lines[1:]) if below.startswith("|---"))
    for name in [*result.methods, *METRICS]:
        assert name in markdown
    assert (
        "deletion_auc ↓" in header and "pointing_game ↑" in header and "s / explanation" in header
    )
    data = json.loads((tmp_path / "report" / "results.json").read_text())
    saliency = data["methods"]["saliency"]["metrics"]["sparseness"]
    assert len(saliency["values"]) == 8
    assert saliency["mean"] == pytest.approx(float(np.mean(saliency["values"])))
    assert data["meta"]["n"] == 8 and data["meta"]["data"] == "fake"
    assert data["meta"]["metric_options"] == {"max_sensitivity": {"n_perturb_samples": 3}}


def test_same_seed_same_result_and_names_resolve_through_the_registry():
    kwargs = {"metrics": ["sparseness"], "n": 5, "progress": False, "seed": 3}
    a = compare(["saliency", "saliency"], tiny_model(), fake_data(), **kwargs)
    b = compare(cheap_explainers()[:1], tiny_model(), fake_data(), **kwargs)
    assert a.methods == ["saliency", "saliency#2"]
    # Exact: each method runs on the same images in the same batches, whatever the other methods.
    np.testing.assert_array_equal(
        a.values["saliency"]["sparseness"], b.values["saliency"]["sparseness"]
    )
    np.testing.assert_array_equal(
        a.values["saliency"]["sparseness"], a.values["saliency#2"]["sparseness"]
    )


def test_tuple_data_targets_and_metrics_that_do_not_apply():
    x = fake_data().images
    r = compare(
        ["saliency"], tiny_model(), (x, 1), metrics=["sparseness", "validity"], n=4, progress=False
    )
    assert r.explanations["saliency"].targets.tolist() == [1, 1, 1, 1]
    assert r.evaluated == ["sparseness"]  # validity needs counterfactuals
    assert "validity" in r.to_markdown().split("Not applicable to any method here:")[1]


def test_a_failing_explainer_is_reported_not_fatal_unless_strict():
    data = fake_data()
    r = compare(
        ["_test_compare_fails", "saliency"],
        tiny_model(),
        data,
        metrics=["sparseness"],
        n=3,
        progress=False,
    )
    assert r.methods == ["saliency"]
    assert "explainer broke" in r.errors["_test_compare_fails"]
    assert "explainer broke" in r.to_markdown()
    with pytest.raises(RuntimeError, match="explainer broke"):
        compare(
            ["_test_compare_fails"],
            tiny_model(),
            data,
            metrics=[],
            n=3,
            progress=False,
            strict=True,
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "n must be"),
        ({"metrics": ["no_such_metric"]}, ValueError, "unknown metric"),
        ({"explainers": []}, ValueError, "at least one"),
        ({"explainers": ["no_such_method"]}, ValueError, "unknown explainer"),
        ({"data": (torch.rand(2, 1, 8, 8), None, None)}, ValueError, r"\(x, targets\)"),
        ({"data": [1, 2, 3]}, ValueError, "tuple"),
        ({"data": "images"}, TypeError, "data must be"),
        ({"available": {"masks": torch.zeros(3, 1, 8, 8)}}, ValueError, "masks has 3 samples"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        (
            {"metrics": ["sparseness"], "metric_options": {"infidelity": {}}},
            ValueError,
            "metric_options",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    args = {
        "explainers": ["saliency"],
        "model": tiny_model(),
        "data": (fake_data().images, None),
        "progress": False,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        compare(**args)


def test_make_explainers_hands_each_method_only_what_it_takes():
    lm = object()
    sal, occ = make_explainers(
        ["saliency", "occlusion"], {"latent_model": lm}, {"occlusion": {"window": 4}}
    )
    assert "latent_model" not in sal.params
    assert occ.params["window"] == 4
    with pytest.raises(ValueError, match="not in names"):
        make_explainers(["saliency"], params={"gvr": {}})
    with pytest.raises(ValueError, match="needs"):
        make_explainers(["gvr"])


def test_peak_memory_sees_a_large_allocation_inside_the_block():
    from xai_gen._memory import PeakMemory

    with PeakMemory("cpu") as mem:
        block = torch.ones(16 * 2**20)  # 64 MiB, touched
    assert mem.peak >= 48 * 2**20, mem.description
    assert block.numel() == 16 * 2**20
