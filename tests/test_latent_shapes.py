"""Latent codes of any shape: an autoencoder whose code is a feature map `(N, C, h, w)`, as
MONAI's AutoencoderKL and latent-diffusion autoencoders have, explained by every generative
explainer; flat codes keep working as before."""

from __future__ import annotations

import pytest
import torch

import xai_gen as xg
from xai_gen.latent import LatentModel, nets
from xai_gen.metrics import latent_distance

SHAPE = (2, 4, 4)  # 16x16 images, two stride-2 stages, two code channels


def spatial_model() -> LatentModel:
    torch.manual_seed(0)
    return LatentModel.from_specs(
        nets.spec("spatial_decoder", image_shape=[1, 16, 16], latent_channels=2, stages=2, width=4),
        nets.spec("spatial_encoder", image_shape=[1, 16, 16], latent_channels=2, stages=2, width=4),
    )


def classifier() -> torch.nn.Module:
    torch.manual_seed(1)
    return xg.SmallCNN(image_size=16, num_classes=3, width=4, hidden=8).eval()


def images(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1


def test_a_spatial_code_encodes_decodes_and_flattens():
    lm = spatial_model()
    x = images()
    z = lm.encode(x)
    assert lm.latent_shape == SHAPE and lm.latent_dim == 32 and z.shape == (3, *SHAPE)
    flat = lm.encode_flat(x)
    assert flat.shape == (3, 32) and torch.equal(lm.shaped(flat), z)  # a reshape, no arithmetic
    torch.testing.assert_close(lm.decode(flat), lm.decode(z), rtol=0, atol=0)  # the same input tensor
    assert lm.check_latent(flat).shape == (3, *SHAPE)
    with pytest.raises(ValueError, match=r"\(N, 2, 4, 4\) or \(N, 32\)"):
        lm.check_latent(torch.zeros(3, 31))


def test_a_wrong_declared_shape_is_an_error_naming_it_and_the_model_comes_back_unchanged():
    good = spatial_model()
    lm = LatentModel(good.generator, good.encoder, latent_shape=(4, 2, 2), image_shape=(1, 16, 16))
    model = classifier()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"codes of shape \(2, 4, 4\).*declares latent_shape \(4, 2, 2\)"):
        xg.GVR(lm, max_steps=3, progress=False).attribute(model, images())
    assert not model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="latent_dim 8 is not the size of latent_shape"):
        LatentModel(good.generator, good.encoder, latent_dim=8, latent_shape=SHAPE, image_shape=(1, 16, 16))
    with pytest.raises(ValueError, match="latent_dim .* or latent_shape"):
        LatentModel(good.generator, good.encoder, image_shape=(1, 16, 16))


@pytest.mark.parametrize("make", [
    lambda lm: xg.GVR(lm, max_steps=20, progress=False),
    lambda lm: xg.LatentShift(lm, n_frames=4),
    lambda lm: xg.LatentTraversal(lm, steps=3, progress=False, gvr_params={"max_steps": 20}),
], ids=["gvr", "latent_shift", "latent_traversal"])
def test_every_generative_explainer_walks_a_spatial_code(make):
    lm, model, x = spatial_model(), classifier(), images()
    exp = make(lm).attribute(model, x)
    z, z0 = exp.extras["latents"], exp.extras["latents_start"]
    assert exp.attributions.shape == x.shape and z.shape == z0.shape == (3, *SHAPE)
    first = exp.counterfactuals if exp.frames is None else exp.frames[:, 0]
    with torch.no_grad():
        # decode(latents) in another batch than the explainer's: the same up to BLAS rounding.
        torch.testing.assert_close(first, lm.decode(z), atol=1e-5, rtol=1e-4)
    distance = latent_distance(None, x, exp.attributions, None, latents=z, latents_start=z0)
    torch.testing.assert_close(distance, (z - z0).flatten(1).norm(dim=1))


def test_a_spatial_latent_model_saves_and_loads_its_shape(tmp_path):
    lm = spatial_model().eval()
    back = LatentModel.load(lm.save(tmp_path / "spatial.safetensors"))
    assert back.latent_shape == SHAPE
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(back.reconstruct(x), lm.reconstruct(x), atol=0, rtol=0)  # same weights, same batch


def test_flat_codes_keep_their_shape():
    lm = LatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=4, image_shape=(1, 16, 16), width=4),
        nets.spec("dcgan_encoder", out_dim=4, image_shape=(1, 16, 16), width=4),
    )
    assert lm.latent_shape == (4,) and "latent_shape" not in lm.file_spec()
    exp = xg.GVR(lm, max_steps=3, progress=False).attribute(classifier(), images())
    assert exp.extras["latents"].shape == (3, 4)
