"""Bundles: the first call trains and caches every component, later calls load them unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from recipe_utils import same_weights

from xai_gen import recipes
from xai_gen.data import ImageSplit
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel
from xai_gen.models import SmallCNN
from xai_gen.recipes import bundle as bundle_module

FILES = {
    "classifier": "classifier.safetensors",
    "autoencoder": "autoencoder.safetensors",
    "head": "head.safetensors",
    "binary_classifier": "classifier.safetensors",
    "conditional_gan": "conditional_gan.safetensors",
    "regression_head": "head.safetensors",
}


def _tiny_settings(preset: str, size: int) -> bundle_module._Settings:
    """Two or three steps per component: the caching logic is under test, not the quality."""
    if preset not in bundle_module.PRESETS:
        raise ValueError(f"preset must be one of {bundle_module.PRESETS}, got {preset!r}")
    enc = recipes.EncoderConfig(width=4, epochs=1, batch_size=32, stop_after=2)
    return bundle_module._Settings(
        classifier=recipes.ClassifierConfig(width=4, hidden=8, stop_after=2),
        autoencoder=recipes.AutoencoderConfig(latent_dim=8, width=4, stop_after=2),
        head=recipes.HeadConfig(epochs=1),
        binary=recipes.ClassifierConfig(width=4, hidden=8, stop_after=2),
        conditional=recipes.ConditionalGANConfig(structural_dim=6, class_dim=2, width=4, steps=2, log_every=1,
                                                 consistency_z1=5, log_consistency_z1=2, encoder=enc),
    )


@pytest.fixture(autouse=True)
def tiny(monkeypatch):
    monkeypatch.setattr(bundle_module, "_settings", _tiny_settings)


def _digits(n: int, seed: int) -> ImageSplit:
    g = torch.Generator().manual_seed(seed)
    return ImageSplit(torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.arange(n) % 10)


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.safetensors")}


def test_cold_then_warm_mnist_style_bundle(tmp_path):
    train, test = _digits(120, 0), _digits(40, 1)
    sig = {"name": "digits", "preset": "fast"}
    cold = bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, sig, regression=False)
    assert isinstance(cold.classifier, SmallCNN) and cold.classifier.out.out_features == 10
    assert isinstance(cold.latent_model, LatentModel) and isinstance(cold.latent_classifier, LatentClassifier)
    assert cold.latent_classifier.latent_model is cold.latent_model
    assert isinstance(cold.conditional_model, ConditionalLatentModel)
    assert cold.binary_classifier.out.out_features == 2 and (cold.negative_class, cold.positive_class) == (4, 9)
    assert cold.regression_head is None and cold.test is test
    for name in ("classifier", "autoencoder", "head", "binary_classifier", "conditional_gan"):
        assert (tmp_path / name / FILES[name]).is_file(), name
        assert (tmp_path / name / f"{name}.report.json").is_file(), name
        assert name in cold.reports
    assert "class_consistency" in cold.reports["conditional_gan"]["training_metrics"]
    assert "fd_samples" in cold.reports["autoencoder"]["metrics"]

    stamps = _mtimes(tmp_path)
    warm = bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, sig, regression=False)
    assert _mtimes(tmp_path) == stamps  # nothing trained or written again
    for attr in ("classifier", "latent_model", "latent_classifier", "conditional_model", "binary_classifier"):
        assert same_weights(getattr(cold, attr), getattr(warm, attr)), attr
    assert warm.reports.keys() == cold.reports.keys()

    # A missing autoencoder is retrained, and so is the head that depends on it; nothing else.
    (tmp_path / "autoencoder" / "autoencoder.safetensors").unlink()
    (tmp_path / "autoencoder" / "autoencoder.ckpt.safetensors").unlink()
    bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, sig, regression=False)
    after = _mtimes(tmp_path)
    changed = {k.split("/")[0] for k in after if after[k] != stamps.get(k)}
    assert changed == {"autoencoder", "head"}


def test_parts_build_only_what_they_need_and_drop_what_a_retrain_made_stale(tmp_path):
    train, test = _digits(120, 0), _digits(40, 1)
    sig = {"name": "digits", "preset": "fast"}
    b = bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, sig, regression=False,
                             parts={"latent_classifier"})
    assert b.latent_classifier.latent_model is b.latent_model and b.conditional_model is None
    assert {p.name for p in tmp_path.iterdir()} == {"classifier", "autoencoder", "head"}
    # The autoencoder is retrained in a call that does not ask for the head: the head trained
    # on the old autoencoder is deleted, so that a later call trains it again.
    (tmp_path / "autoencoder" / "autoencoder.safetensors").unlink()
    (tmp_path / "autoencoder" / "autoencoder.ckpt.safetensors").unlink()
    bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, sig, regression=False, parts=["latent_model"])
    assert {p.name for p in tmp_path.iterdir()} == {"classifier", "autoencoder"}
    with pytest.raises(ValueError, match="unknown bundle part"):
        bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, sig, regression=False, parts=["gan"])


def test_a_changed_config_retrains_that_component_only(tmp_path, monkeypatch):
    train, test = _digits(120, 0), _digits(40, 1)
    sig = {"name": "digits", "preset": "fast"}
    bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, sig, regression=False)
    stamps = _mtimes(tmp_path)

    def longer_head(preset: str, size: int) -> bundle_module._Settings:
        settings = _tiny_settings(preset, size)
        settings.head = recipes.HeadConfig(epochs=2)
        return settings

    monkeypatch.setattr(bundle_module, "_settings", longer_head)
    b = bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, sig, regression=False)
    after = _mtimes(tmp_path)
    assert {k.split("/")[0] for k in after if after[k] != stamps[k]} == {"head"}
    assert b.latent_classifier.meta["config"]["epochs"] == 2


def test_other_signature_or_unreadable_file_retrains(tmp_path):
    train, test = _digits(120, 0), _digits(40, 1)
    sig = {"name": "digits", "preset": "fast"}
    bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, sig, regression=False)
    clf_file = tmp_path / "classifier" / "classifier.safetensors"
    clf_file.write_bytes(clf_file.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable"):
        bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, sig, regression=False)
    assert recipes.quality_report  # noqa: B015 - the module stays importable after a retrain
    stamps = _mtimes(tmp_path)
    full = {"name": "digits", "preset": "full"}
    bundle_module._build("mnist", train, test, 4, 9, tmp_path, False, full, regression=False)
    after = _mtimes(tmp_path)
    assert all(after[k] != v for k, v in stamps.items() if not k.endswith(".ckpt.safetensors"))


def test_synthetic_cxr_bundle_public_call(tmp_path):
    threads = torch.get_num_threads()
    b = bundle_module.synthetic_cxr_bundle(tmp_path, progress=False, n=40, size=32, seed=1, threads=1)
    assert torch.get_num_threads() == threads  # the training's single thread is undone
    assert b.name == "synthetic-cxr" and b.train.images.shape[1:] == (1, 32, 32) and len(b.test) == 8
    assert b.binary_classifier is b.classifier and b.classifier.out.out_features == 2
    assert b.regression_head is not None and b.regression_head(b.test.images[:3]).shape == (3, 1)
    assert b.regression_head.latent_model is b.latent_model
    assert b.conditional_model.image_shape == (1, 32, 32)
    assert not (tmp_path / "binary_classifier").exists()
    again = bundle_module.synthetic_cxr_bundle(tmp_path, progress=False, n=40, size=32, seed=1)
    assert same_weights(again.regression_head, b.regression_head)
    with pytest.raises(ValueError, match="preset must be one of"):
        bundle_module.synthetic_cxr_bundle(tmp_path, progress=False, preset="huge")
    with pytest.raises(ValueError, match="threads must be"):
        bundle_module.synthetic_cxr_bundle(tmp_path, progress=False, n=40, size=32, seed=1, threads=0)
