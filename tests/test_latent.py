"""LatentModel, ConditionalLatentModel and LatentClassifier: maps, inversion and files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel, make_head, nets
from xai_gen.models import SmallCNN, load_classifier, save_classifier

SHAPE = (1, 28, 28)


def small_lm(latent: int = 6) -> LatentModel:
    torch.manual_seed(0)
    return LatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=latent, image_shape=SHAPE, width=4),
        nets.spec("dcgan_encoder", out_dim=latent, image_shape=SHAPE, width=4),
        meta={"recipe": "test"},
    )


def small_cond() -> ConditionalLatentModel:
    torch.manual_seed(0)
    return ConditionalLatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=6, image_shape=SHAPE, width=4),
        nets.spec("dcgan_encoder", out_dim=6, image_shape=SHAPE, width=4),
        structural_dim=4,
    )


def test_shapes_and_checks():
    lm = small_lm()
    x = torch.rand(3, *SHAPE) * 2 - 1
    assert lm.encode(x).shape == (3, 6)
    assert lm.reconstruct(x).shape == x.shape
    with pytest.raises(ValueError, match="latent model accepts"):
        lm.check_images(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        lm.check_latent(torch.zeros(2, 5))


def test_invert_beats_the_encoder_alone():
    lm = small_lm()
    torch.manual_seed(1)
    x = lm.decode(torch.randn(4, 6)).detach()  # reachable targets
    mse = lambda z: ((lm.decode(z) - x) ** 2).flatten(1).mean(1)  # noqa: E731
    with torch.no_grad():
        start = mse(lm.encode(x))
    z = lm.invert(x, steps=60, lr=0.05)
    with torch.no_grad():
        refined = mse(z)
    assert (refined <= start).all() and refined.mean() < 0.5 * start.mean()
    assert all(not p.requires_grad or p.grad is None for p in lm.parameters())
    assert torch.equal(lm.invert(x, steps=0), lm.encode(x).detach())  # exact: the same encode of the same batch


def test_save_load_bit_exact(tmp_path):
    lm = small_lm()
    path = lm.save(tmp_path / "lm.safetensors")
    back = LatentModel.load(path)
    for (k, a), (_, b) in zip(lm.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k
    assert back.meta["recipe"] == "test" and back.image_shape == SHAPE and back.latent_dim == 6
    assert not back.training


def test_bad_files_are_refused(tmp_path):
    lm = small_lm()
    path = lm.save(tmp_path / "lm.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated or foreign"):
        LatentModel.load(truncated)
    with pytest.raises(FileNotFoundError):
        LatentModel.load(tmp_path / "missing.safetensors")
    clf_path = save_classifier(SmallCNN(), tmp_path / "clf.safetensors")
    with pytest.raises(ValueError, match="expected a 'latent_model'"):
        LatentModel.load(clf_path)
    with pytest.raises(ValueError, match="expected a 'classifier'"):
        load_classifier(path)


def test_conditional_model_roundtrip_and_invert(tmp_path):
    cm = small_cond()
    z1, z2 = torch.randn(2, 4), torch.zeros(2, 2)
    assert cm.generate(z1, z2).shape == (2, *SHAPE)
    z = torch.cat([z1, z2], 1)
    assert torch.equal(cm.split(z)[0], z1) and torch.equal(cm.split(z)[1], z2)
    torch.manual_seed(0)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(784, 2))
    x = cm.generate(z1, torch.randn(2, 2)).detach()
    codes = cm.invert(x, classifier=clf, steps=20, lam=1.0)
    assert codes.shape == (2, 6)
    assert all(p.requires_grad for p in clf.parameters())  # the classifier comes back as it was
    back = ConditionalLatentModel.load(cm.save(tmp_path / "cm.safetensors"))
    assert (back.structural_dim, back.class_dim) == (4, 2)
    torch.testing.assert_close(back.generate(z1, z2), cm.generate(z1, z2))


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_latent_classifier(tmp_path, kind):
    lm = small_lm()
    clf = LatentClassifier(lm, make_head(kind, 6, 3), head_kind=kind)
    x = torch.rand(2, *SHAPE)
    torch.testing.assert_close(clf(x), clf.forward_latent(lm.encode(x)))
    back = LatentClassifier.load(clf.save(tmp_path / "c.safetensors"))
    torch.testing.assert_close(back(x), clf(x), rtol=0, atol=0)  # exact: bit-equal weights, same input and batch
    with pytest.raises(ValueError, match="head kind"):
        make_head("conv", 6, 3)
