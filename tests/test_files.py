"""One save/load path: file facts, rebuild spec and user metadata apart; older files still load."""

from __future__ import annotations

import json

import pytest
import torch
from recipe_utils import tiny_generator
from safetensors.torch import save_file

from xai_gen._io import FILE_KINDS, META_KEY, load_tensors
from xai_gen.latent import (
    ConditionalLatentModel,
    LatentClassifier,
    LatentModel,
    MonaiLatentModel,
    make_head,
    nets,
)
from xai_gen.models import SmallCNN, load_classifier, save_classifier
from xai_gen.recipes import load_generator, save_generator

SHAPE = (1, 28, 28)


def small_lm(meta: dict | None = None) -> LatentModel:
    torch.manual_seed(0)
    return LatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=6, image_shape=SHAPE, width=4),
        nets.spec("dcgan_encoder", out_dim=6, image_shape=SHAPE, width=4),
        meta=meta,
    )


def write_format_1(path, module: torch.nn.Module, header: dict) -> None:
    """A file as xai-gen wrote it before format 2: one flat metadata dict."""
    tensors = {k: v.contiguous() for k, v in module.state_dict().items()}
    save_file(tensors, str(path), metadata={META_KEY: json.dumps({"version": "0.1.0", **header})})


def test_every_saved_kind_has_its_class():
    assert FILE_KINDS == {
        "classifier": SmallCNN,
        "generator": nets.DCGANGenerator,
        "latent_model": LatentModel,
        "conditional_latent_model": ConditionalLatentModel,
        "latent_classifier": LatentClassifier,
        "monai_latent_model": MonaiLatentModel,
    }


def test_user_metadata_cannot_clash_with_the_files_own_keys(tmp_path):
    meta = {"kind": "mine", "version": "v7", "architecture": "mine too", "recipe": "r"}
    lm = small_lm(meta)
    path = lm.save(tmp_path / "lm.safetensors")
    back = LatentModel.load(path)
    assert back.meta == meta and back.latent_dim == 6
    _, header = load_tensors(path)
    assert header.kind == "latent_model" and header.format == 2 and header.meta == meta
    assert set(header.spec) == {"architecture", "latent_dim", "image_shape", "value_range"}


def test_modules_carry_spec_and_meta_from_construction(tmp_path):
    generator = tiny_generator()
    assert generator.spec["name"] == "dcgan_generator" and generator.meta == {}
    generator.meta["recipe"] = "wgan_gp"
    back = load_generator(save_generator(generator, tmp_path / "g.safetensors"))
    assert back.meta == {"recipe": "wgan_gp"} and back.spec == generator.spec
    clf = SmallCNN(width=4, hidden=8, meta={"recipe": "classifier"})
    assert load_classifier(save_classifier(clf, tmp_path / "c.safetensors")).meta == {"recipe": "classifier"}


def test_format_1_files_still_load(tmp_path):
    lm = small_lm()
    lm_header = {"architecture": lm.architecture, "latent_dim": 6, "image_shape": list(SHAPE),
                 "value_range": [-1.0, 1.0], "recipe": "autoencoder"}
    write_format_1(tmp_path / "lm.safetensors", lm, {"kind": "latent_model", **lm_header})
    back = LatentModel.load(tmp_path / "lm.safetensors")
    assert back.meta == {"recipe": "autoencoder"}
    assert all(torch.equal(a, b) for a, b in zip(lm.state_dict().values(), back.state_dict().values(), strict=True))

    head = LatentClassifier(lm, make_head("linear", 6, 3), "linear")
    write_format_1(tmp_path / "head.safetensors", head, {
        "kind": "latent_classifier", "head_kind": "linear", "out_dim": 3, "hidden": 3,
        "latent_kind": "latent_model", "latent_header": lm_header, "task": "classes"})
    back_head = LatentClassifier.load(tmp_path / "head.safetensors")
    assert back_head.meta == {"task": "classes"} and back_head.latent_model.meta == {"recipe": "autoencoder"}

    clf = SmallCNN(width=4, hidden=8)
    write_format_1(tmp_path / "clf.safetensors", clf, {"kind": "classifier", "architecture": clf.config, "epochs": 2})
    assert load_classifier(tmp_path / "clf.safetensors").meta == {"epochs": 2}


def test_a_newer_format_is_refused_clearly(tmp_path):
    clf = SmallCNN(width=4, hidden=8)
    path = tmp_path / "new.safetensors"
    header = {"kind": "classifier", "format": 99, "version": "9.0", "spec": {}, "meta": {}}
    save_file(dict(clf.state_dict()), str(path), metadata={META_KEY: json.dumps(header)})
    with pytest.raises(ValueError, match="header format 99.*upgrade xai-gen"):
        load_classifier(path)


def test_small_cnn_gives_the_same_values_and_gradients_with_and_without_a_gradient():
    # SmallCNN pools gradient-free passes in channels-last memory (a faster CPU kernel); a
    # user must get bit-identical logits either way, and unchanged input gradients. Exact by
    # construction: max-pooling selects values, and the hook hands every other layer the same
    # NCHW tensor of the same shape as before.
    torch.manual_seed(0)
    model = SmallCNN(image_size=28).eval()
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        fast = model(x)
    xg = x.clone().requires_grad_(True)
    slow = model(xg)
    assert torch.equal(fast, slow.detach())
    grad = torch.autograd.grad(slow[:, 3].sum(), xg)[0]
    pool = torch.nn.MaxPool2d(2)
    reference = torch.nn.Sequential(*[pool if isinstance(m, torch.nn.MaxPool2d) else m for m in model.conv])
    ref_out = model.out(model.fc(reference(xg)))
    assert torch.equal(ref_out, slow)
    assert torch.equal(torch.autograd.grad(ref_out[:, 3].sum(), xg)[0], grad)
    with torch.no_grad():
        assert torch.equal(model.out(model.fc(reference(x))), fast)
    # The layers stay plain nn.MaxPool2d: captum's DeepLift and LRP find their rules by exact type.
    assert [type(m) for m in model.conv][2::3] == [torch.nn.MaxPool2d, torch.nn.MaxPool2d]


@pytest.mark.parametrize(("raw", "says"), [("{'kind': 1}", "not valid JSON"), ("[1, 2]", "not a JSON object")])
def test_metadata_that_is_not_a_json_object_names_the_file(tmp_path, raw, says):
    path = tmp_path / "broken.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={META_KEY: raw})
    with pytest.raises(ValueError, match=rf"broken\.safetensors.*{says}"):
        load_tensors(path)
