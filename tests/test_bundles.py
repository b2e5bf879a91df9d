"""Shipped bundles: every file matches the current configs, loads, and measures as its provenance says."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from bundle_utils import use_tiny_bundles

from xai_gen._io import load_tensors, save_tensors
from xai_gen.bundles import (
    SHIPPED_DIR,
    StaleBundleError,
    build,
    components,
    load_component,
    load_shipped,
    quality,
    spec,
)
from xai_gen.cli import main
from xai_gen.cli._setup import load_bundle
from xai_gen.data import ImageSplit
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel

SHIPPED = [(d, c.name) for d in spec.DATASETS for c in components(d)]


@pytest.fixture(scope="module")
def prepared() -> dict[str, dict[str, torch.Tensor]]:
    return {d: build.prepare_data(d) for d in spec.DATASETS}


@pytest.fixture(scope="module")
def bundles() -> dict[str, dict[str, torch.nn.Module]]:
    return {d: load_shipped(d) for d in spec.DATASETS}


@pytest.mark.parametrize(("dataset", "name"), SHIPPED)
def test_shipped_file_is_current_and_remeasures_its_recorded_quality(dataset, name, prepared, bundles):
    parts = bundles[dataset]
    model = parts[name]
    prov = model.meta["provenance"]
    assert prov["config"] == spec.component(dataset, name).config_dict()
    assert prov["data"] == spec.signature(dataset, name)
    assert prov["hardware"]["device"] in ("cpu", "cuda") and prov["wall_seconds"] > 0
    again = quality.measure(name, model, parts, prepared[dataset], quick=True)
    (key, value), = again.items()
    recorded = prov["quality"][key]
    if key == "reconstruction_mse":  # 64 held-out images instead of all of them
        assert value <= 1.5 * recorded
    elif key == "test_mse":
        assert value <= 1.5 * recorded
    else:  # accuracies on 200 images, class consistency on 100 z1 instead of 1,000
        assert value >= recorded - 0.05


def test_shipped_bundles_fit_the_size_limit():
    total = sum(p.stat().st_size for p in SHIPPED_DIR.rglob("*.safetensors"))
    assert total <= 40e6


def _rewrite(path: Path, change) -> None:
    tensors, header = load_tensors(path)
    change(header.meta["provenance"])
    save_tensors(path, tensors, header.kind, header.spec, header.meta)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda p: p["config"].update(epochs=p["config"]["epochs"] + 1), "config.epochs"),
        (lambda p: p["data"].update(seed=7), "data.seed"),
        (lambda p: p.update(recipe="autoencoder"), "recipe"),
    ],
)
def test_a_stale_file_is_refused_naming_the_file_and_the_mismatch(tmp_path, change, named):
    path = tmp_path / "mnist" / "classifier.safetensors"
    path.parent.mkdir()
    shutil.copyfile(SHIPPED_DIR / "mnist" / "classifier.safetensors", path)
    assert load_component("mnist", "classifier", tmp_path) is not None
    _rewrite(path, change)
    with pytest.raises(StaleBundleError, match=named) as err:
        load_component("mnist", "classifier", tmp_path)
    assert str(path) in str(err.value) and "xai-gen bundle build mnist" in str(err.value)


def test_a_file_without_provenance_is_refused(tmp_path):
    path = tmp_path / "mnist" / "classifier.safetensors"
    tensors, header = load_tensors(SHIPPED_DIR / "mnist" / "classifier.safetensors")
    save_tensors(path, tensors, "classifier", header.spec, {})
    with pytest.raises(StaleBundleError, match="no provenance"):
        load_component("mnist", "classifier", tmp_path)


def test_the_commands_use_the_shipped_bundle_and_train_nothing(tmp_path):
    bundle = load_bundle("synthetic-cxr", tmp_path, progress=False)
    assert not any(tmp_path.rglob("*"))  # nothing trained, nothing cached
    assert isinstance(bundle.conditional_model, ConditionalLatentModel)
    assert isinstance(bundle.regression_head, LatentClassifier)
    assert bundle.regression_head.latent_model is bundle.latent_model
    assert isinstance(bundle.wgan_latent_model, LatentModel) and bundle.oracle is not None
    assert "traversal_validity" in bundle.reports["conditional"]["metrics"]


def test_verify_command_checks_every_shipped_file(capsys):
    assert main(["bundle", "verify"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == len(SHIPPED)


# -- building ----------------------------------------------------------------------------------


@pytest.fixture
def tiny_build(monkeypatch):
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> ImageSplit:
        return ImageSplit(torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.arange(n) % 10)

    use_tiny_bundles(monkeypatch, (split(160), split(60)))


def test_build_writes_provenance_and_is_deterministic(tmp_path, tiny_build):
    written = build.build_bundle("mnist", tmp_path / "a", work_dir=tmp_path / "w1", progress=False)
    assert list(written) == [c.name for c in components("mnist")]
    prov = written["conditional"]
    assert prov["recipe"] == "conditional_autoencoder" and prov["data"]["classes"] == {"negative": 4, "positive": 9}
    assert prov["hardware"]["threads"] == 1 and prov["package_version"]
    assert {"class_consistency", "traversal_validity", "fd_floor"} <= set(prov["quality"])
    parts = load_shipped("mnist", tmp_path / "a")
    assert parts["conditional"].meta["provenance"]["quality"] == prov["quality"]
    # The same seed on the same device and threads trains the same weights.
    build.build_bundle("mnist", tmp_path / "b", work_dir=tmp_path / "w2", progress=False, only=("classifier", "oracle"))
    for name in ("classifier", "oracle"):
        a, _ = load_tensors(tmp_path / "a" / "mnist" / f"{name}.safetensors")
        b, _ = load_tensors(tmp_path / "b" / "mnist" / f"{name}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_build_only_refuses_a_missing_dependency(tmp_path, tiny_build):
    with pytest.raises(ValueError, match="needs"):
        build.build_bundle("mnist", tmp_path, work_dir=tmp_path / "w", progress=False, only=("head",))
