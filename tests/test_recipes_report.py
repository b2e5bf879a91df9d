"""Quality reports: the numbers, the JSON/Markdown files and the figures, for every kind of model."""

from __future__ import annotations

import json

import matplotlib.image
import pytest
import torch
import torch.nn.functional as F
from recipe_utils import images, labels, run, tiny_classifier, tiny_generator, tiny_lm

from xai_gen import recipes
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, make_head, nets
from xai_gen.metrics.frechet import classifier_features, frechet_distance


def test_latent_model_report(tmp_path):
    lm, x, ref = tiny_lm(), images(20, 1), tiny_classifier()
    lm.meta = {"recipe": "autoencoder", "steps": 3, "history": [
        {"step": 1, "laplacian": 0.3, "test_mse": 0.2}, {"step": 2, "laplacian": 0.2, "test_mse": 0.1}]}
    r = recipes.quality_report(lm, x, tmp_path, reference_classifier=ref)
    with torch.no_grad():
        assert r["metrics"]["reconstruction_mse"] == pytest.approx(F.mse_loss(lm.reconstruct(x), x).item())
    feats = classifier_features(ref, x)
    assert r["metrics"]["fd_floor"] == pytest.approx(frechet_distance(feats[:10], feats[10:]))
    assert {"fd_samples", "fd_reconstructions", "reconstruction_laplacian"} <= set(r["metrics"])
    assert r["name"] == "autoencoder" and r["steps"] == 3
    assert json.loads((tmp_path / "autoencoder.report.json").read_text()) == r
    md = (tmp_path / "autoencoder.report.md").read_text()
    assert "| reconstruction_mse |" in md and "GVR Fig. 1" in md and "(autoencoder.samples.png)" in md
    # 16 originals, each beside its reconstruction: 32 tiles, 8 columns, 1 px gaps, 3x zoom.
    pairs = matplotlib.image.imread(tmp_path / r["figures"]["reconstructions"])
    assert pairs.shape[:2] == (3 * (4 * 28 + 3), 3 * (8 * 28 + 7))
    assert (tmp_path / r["figures"]["loss_curves"]).is_file()


def test_generator_and_conditional_reports(tmp_path):
    g = tiny_generator()
    r = recipes.quality_report(g, images(12), tmp_path, reference_classifier=tiny_classifier(), name="gen")
    assert set(r["metrics"]) == {"fd_samples", "fd_floor"} and set(r["figures"]) == {"samples"}
    cond = ConditionalLatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=6, image_shape=(1, 28, 28), width=4),
        nets.spec("dcgan_encoder", out_dim=6, image_shape=(1, 28, 28), width=4), structural_dim=4)
    r = recipes.quality_report(cond, images(12), tmp_path, name="cond")
    assert "fd_samples" not in r["metrics"] and "reconstruction_mse" in r["metrics"]
    assert "z2 = 0 (negative class)" in (tmp_path / "cond.report.md").read_text()


def test_classifier_and_head_reports(tmp_path):
    clf = run("classifier")
    x, y = images(10, 1), labels(10, 1)
    r = recipes.quality_report(clf, x, tmp_path, labels_test=y)
    assert r["metrics"] == {"test_accuracy": pytest.approx(recipes.accuracy(clf, x, y))}
    assert r["training_metrics"] == clf.meta["metrics"] and r["name"] == "classifier"
    head = LatentClassifier(tiny_lm(), make_head("linear", 8, 1), head_kind="linear")
    targets = torch.linspace(0, 1, 10)
    r = recipes.quality_report(head, x, tmp_path, labels_test=targets, name="reg")
    with torch.no_grad():
        assert r["metrics"]["test_mse"] == pytest.approx(F.mse_loss(head(x)[:, 0], targets).item())


def test_bad_report_arguments(tmp_path):
    with pytest.raises(ValueError, match="images_test"):
        recipes.quality_report(tiny_lm(), torch.zeros(28, 28), tmp_path)
    with pytest.raises(TypeError, match="features"):
        recipes.quality_report(tiny_lm(), images(4), tmp_path, reference_classifier=torch.nn.Linear(2, 2))
