"""Bundles trained on demand (`preset=`, `--retrain`): the first call trains and caches every
component with the shipped recipes, later calls load them unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from bundle_utils import digits, tiny_components, use_tiny_bundles
from recipe_utils import same_weights

from xai_gen import recipes
from xai_gen.bundles import bundle as bundle_module
from xai_gen.bundles import spec
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel
from xai_gen.models import SmallCNN


@pytest.fixture
def tiny(monkeypatch):
    use_tiny_bundles(monkeypatch, (digits(120, 0), digits(40, 1)))


def _build(root: Path, preset: str = "fast", parts=None) -> bundle_module.Bundle:
    return bundle_module.mnist_bundle(root, progress=False, preset=preset, parts=parts)


def _mtimes(root: Path) -> dict[str, int]:
    """Component -> modification time of its file in the MNIST folder of `root`."""
    return {p.stem: p.stat().st_mtime_ns for p in (root / "mnist").glob("*.safetensors")}


def _forget(root: Path, name: str) -> None:
    """Delete a component's file and its checkpoint: a later call must train it from scratch."""
    (root / "mnist" / f"{name}.safetensors").unlink()
    for ckpt in (root / "checkpoints").rglob(f"mnist/{name}/*.ckpt.safetensors"):
        ckpt.unlink()


def test_cold_then_warm_mnist_style_bundle(tmp_path, tiny):
    cold = _build(tmp_path)
    assert isinstance(cold.classifier, SmallCNN) and cold.classifier.out.out_features == 10
    assert isinstance(cold.latent_model, LatentModel) and isinstance(cold.latent_classifier, LatentClassifier)
    assert cold.latent_classifier.latent_model is cold.latent_model
    assert isinstance(cold.conditional_model, ConditionalLatentModel)
    assert cold.binary_classifier.out.out_features == 2 and (cold.negative_class, cold.positive_class) == (4, 9)
    assert cold.regression_head is None and cold.test.images.shape[0] == 40
    # --retrain trains the shipped kinds: the conditional autoencoder, the oracle, the WGAN-GP.
    assert cold.conditional_model.meta["provenance"]["recipe"] == "conditional_autoencoder"
    assert cold.oracle is not None and isinstance(cold.wgan_latent_model, LatentModel)
    for name in ("classifier", "autoencoder", "head", "binary_classifier", "conditional"):
        assert (tmp_path / "mnist" / f"{name}.safetensors").is_file(), name
        assert name in cold.reports
    assert "class_consistency" in cold.reports["conditional"]["metrics"]
    assert "fd_samples" in cold.reports["autoencoder"]["metrics"]

    stamps = _mtimes(tmp_path)
    warm = _build(tmp_path)
    assert _mtimes(tmp_path) == stamps  # nothing trained or written again
    for attr in ("classifier", "latent_model", "latent_classifier", "conditional_model", "binary_classifier"):
        assert same_weights(getattr(cold, attr), getattr(warm, attr)), attr
    assert warm.reports.keys() == cold.reports.keys()

    # A missing autoencoder is retrained, and so is the head that depends on it; nothing else.
    _forget(tmp_path, "autoencoder")
    _build(tmp_path)
    after = _mtimes(tmp_path)
    changed = {k for k in after if after[k] != stamps.get(k)}
    assert changed == {"autoencoder", "head"}


def test_parts_build_only_what_they_need_and_drop_what_a_retrain_made_stale(tmp_path, tiny):
    b = _build(tmp_path, parts={"latent_classifier"})
    assert b.latent_classifier.latent_model is b.latent_model and b.conditional_model is None
    assert set(_mtimes(tmp_path)) == {"classifier", "autoencoder", "head"}
    # The autoencoder is retrained in a call that does not ask for the head: the head trained
    # on the old autoencoder is deleted, so that a later call trains it again.
    _forget(tmp_path, "autoencoder")
    _build(tmp_path, parts=["latent_model"])
    assert set(_mtimes(tmp_path)) == {"classifier", "autoencoder"}
    with pytest.raises(ValueError, match="unknown bundle part"):
        _build(tmp_path, parts=["gan"])


def test_a_changed_config_retrains_that_component_only(tmp_path, tiny, monkeypatch):
    _build(tmp_path)
    stamps = _mtimes(tmp_path)

    def longer_head(dataset: str, preset: str = "full") -> list[spec.Component]:
        return [c if c.name != "head" else spec.Component(c.name, c.recipe, recipes.HeadConfig(epochs=2), c.part,
                                                           c.depends)
                for c in tiny_components(dataset, preset)]

    monkeypatch.setattr(spec, "components", longer_head)
    b = _build(tmp_path)
    after = _mtimes(tmp_path)
    assert {k for k in after if after[k] != stamps[k]} == {"head"}
    assert b.latent_classifier.meta["config"]["epochs"] == 2


def test_other_preset_or_unreadable_file_retrains(tmp_path, tiny):
    _build(tmp_path)
    clf_file = tmp_path / "mnist" / "classifier.safetensors"
    clf_file.write_bytes(clf_file.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable"):
        _build(tmp_path)
    stamps = _mtimes(tmp_path)
    _build(tmp_path, preset="full")
    after = _mtimes(tmp_path)
    assert all(after[k] != v for k, v in stamps.items())


def test_synthetic_cxr_bundle_public_call(tmp_path, monkeypatch):
    use_tiny_bundles(monkeypatch)
    threads = torch.get_num_threads()
    b = bundle_module.synthetic_cxr_bundle(tmp_path, progress=False, preset="fast", n=40, size=32, seed=1, threads=1,
                                           parts={"latent_classifier", "regression_head", "conditional_model"})
    assert torch.get_num_threads() == threads  # the training's single thread is undone
    assert b.name == "synthetic-cxr" and b.train.images.shape[1:] == (1, 32, 32) and len(b.test) == 8
    assert b.binary_classifier is b.classifier and b.classifier.out.out_features == 2
    assert b.regression_head is not None and b.regression_head(b.test.images[:3]).shape == (3, 1)
    assert b.regression_head.latent_model is b.latent_model
    assert b.conditional_model.image_shape == (1, 32, 32)
    assert not (tmp_path / "synthetic-cxr" / "binary_classifier.safetensors").exists()
    again = bundle_module.synthetic_cxr_bundle(tmp_path, progress=False, preset="fast", n=40, size=32, seed=1,
                                               parts={"regression_head"})
    assert same_weights(again.regression_head, b.regression_head)
    with pytest.raises(ValueError, match="preset must be one of"):
        bundle_module.synthetic_cxr_bundle(tmp_path, progress=False, preset="huge")
    with pytest.raises(ValueError, match="threads must be"):
        bundle_module.synthetic_cxr_bundle(tmp_path, progress=False, preset="fast", n=40, size=32, seed=1, threads=0)
    with pytest.raises(ValueError, match="give a preset"):  # the shipped files hold the default data only
        bundle_module.synthetic_cxr_bundle(tmp_path, progress=False, n=40)
