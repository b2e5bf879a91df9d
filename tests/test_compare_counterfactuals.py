"""The comparison's counterfactual side: groups by true and explained class, ground truth scored
where it applies, the counterfactual table, the Frechet distance, named GVR variants, the oracle."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

import xai_gen as xg
from xai_gen.cli import build_parser
from xai_gen.cli import compare as compare_cli
from xai_gen.cli._oracle import oracle_for
from xai_gen.compare import compare
from xai_gen.data import ImageSplit

N = 8


@dataclass
class Patients:
    """Labelled images whose ground truth marks the evidence for class 1 ("ill")."""

    images: torch.Tensor
    masks: torch.Tensor
    difference: torch.Tensor
    healthy: torch.Tensor
    labels: torch.Tensor

    class_names: ClassVar[tuple[str, str]] = ("well", "ill")
    ground_truth_class: ClassVar[int] = 1


class Corner(nn.Module):
    """Two classes by the brightness of the top-left 3x3 corner; three mean features."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(4.0))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        parts = (x[..., :3, :3], x, x[..., 3:, 3:])
        return torch.stack([p.mean(dim=(1, 2, 3)) for p in parts], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale * x[..., :3, :3].mean(dim=(1, 2, 3))
        return torch.stack([-s, s], dim=1)


def tiny_model() -> nn.Module:
    return Corner().eval()


def latent_model() -> xg.LatentModel:
    torch.manual_seed(1)
    generator = nn.Sequential(nn.Linear(6, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 6))
    return xg.LatentModel(generator, encoder, 6, (1, 8, 8))


def patients(model: nn.Module) -> Patients:
    images = torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    predicted = model(images).argmax(1)
    # Half the labels agree with the prediction, half do not: four kinds of sample.
    labels = torch.where(torch.arange(N) % 2 == 0, predicted, 1 - predicted)
    masks = torch.zeros(N, 1, 8, 8, dtype=torch.bool)
    masks[..., :3, :3] = True
    healthy = images.masked_fill(masks, -1.0)
    return Patients(images, masks, images - healthy, healthy, labels)


@pytest.fixture(scope="module")
def run() -> tuple[xg.ComparisonResult, Patients, nn.Module]:
    model = tiny_model()
    data = patients(model)
    lm = latent_model()
    result = compare(
        {"gvr": xg.GVR(lm, max_steps=10, progress=False), "gvr_paper": xg.GVR(lm, max_steps=30, progress=False)},
        model,
        data,
        metrics=["pointing_game", "ground_truth_correlation", "validity", "oracle_agreement", "cout",
                 "counterfactual_error", "proximity_l1"],
        n=N,
        progress=False,
        available={"oracle": model},
        metric_options={"cout": {"n_steps": 4}},
    )
    return result, data, model


def test_variants_run_under_their_own_names(run):
    result, _, _ = run
    assert result.methods == ["gvr", "gvr_paper"] and result.errors == {}
    assert result.meta["params"]["gvr_paper"]["max_steps"] == 30


def test_samples_are_grouped_and_ground_truth_scores_only_its_class(run):
    result, data, model = run
    explained = model(data.images).argmax(1)
    want = {}
    for i, (t, e) in enumerate(zip(data.labels.tolist(), explained.tolist())):
        want.setdefault(f"{Patients.class_names[t]}, explained as {Patients.class_names[e]}", []).append(i)
    assert result.groups == {k: want[k] for k in sorted(want)}
    scored = ((data.labels == 1) & (explained == 1)).numpy()
    assert scored.any() and not scored.all()
    for metric in ("pointing_game", "ground_truth_correlation", "counterfactual_error"):
        values = result.values["gvr"][metric]
        assert np.isnan(values[~scored]).all(), metric
        assert np.isfinite(values[scored]).all(), metric
    # Metrics without ground truth score every sample.
    assert np.isfinite(result.values["gvr"]["validity"]).all()
    text = result.to_markdown()
    for name, index in result.groups.items():
        assert f"### {name} (n = {len(index)})" in text
    assert "score only the samples of the class the ground truth marks" in text


def test_counterfactual_table_with_oracle_cout_and_frechet(run):
    result, _, _ = run
    for method in result.methods:
        values = result.values[method]
        # The oracle here is the explained model itself: it agrees exactly where valid.
        np.testing.assert_array_equal(values["oracle_agreement"], values["validity"])
        assert np.all(np.abs(values["cout"]) <= 1)
        assert result.frechet[method] >= 0
    assert result.meta["frechet_floor"] >= 0
    text = result.to_markdown()
    table = text[text.index("### Counterfactuals") :]
    head = table.splitlines()[2]
    for column in ("validity ↑", "oracle agreement ↑", "COUT ↑", "Frechet ↓", "counterfactual error ↓"):
        assert column in head
    assert "| gvr |" in table and "| gvr_paper |" in table
    assert math.isfinite(result.to_dict()["frechet_distance"]["gvr"])


def test_no_counterfactual_table_without_counterfactuals():
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    r = compare(["saliency"], tiny_model(), (x, None), metrics=["sparseness", "validity"], n=4, progress=False)
    assert "Counterfactuals" not in r.to_markdown() and r.frechet == {} and r.groups == {}


def test_compare_cli_runs_the_gvr_paper_variant_beside_gvr(tmp_path):
    torch.manual_seed(0)
    bundle = type("Bundle", (), {})()
    bundle.classifier, bundle.latent_model = tiny_model(), latent_model()
    bundle.conditional_model, bundle.test = None, ImageSplit(torch.rand(6, 1, 8, 8) * 2 - 1, torch.arange(6) % 2)
    args = build_parser().parse_args(
        ["compare", "--data", "mnist", "--methods", "gvr", "--n", "3", "--metrics", "validity,steps",
         "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "cache")]
    )
    assert compare_cli.run(args, bundle_loader=lambda *a: bundle) == 0
    text = (tmp_path / "r" / "mnist" / "results.md").read_text()
    assert "| gvr |" in text and "| gvr_paper |" in text


def test_oracle_stand_in_is_trained_once_and_cached(tmp_path):
    bundle = type("Bundle", (), {})()
    bundle.name = "tiny"
    images = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(4)) * 2 - 1
    bundle.train = bundle.test = ImageSplit(images, torch.arange(16) % 2)
    first = oracle_for(bundle, tmp_path, progress=False)
    assert (tmp_path / "oracle" / "classifier.safetensors").is_file()
    again = oracle_for(bundle, tmp_path, progress=False)
    torch.testing.assert_close(first(images), again(images))
    assert first.meta["config"]["seed"] != xg.recipes.ClassifierConfig().seed
    bundle.oracle = nn.Identity()
    assert oracle_for(bundle, tmp_path) is bundle.oracle
