"""MONAI's AutoencoderKL and VQVAE as latent models: `from_monai` reproduces MONAI's own
encode and decode, saves and loads with its configuration, and the generative explainers walk
its feature-map codes."""

from __future__ import annotations

import pytest
import torch
from monai.networks import nets  # the monai extra, which make installs

import xai_gen as xg
from xai_gen.latent import LatentModel, MonaiLatentModel, from_monai

KL = dict(spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 8), num_res_blocks=1,
          attention_levels=(False, False), latent_channels=2, norm_num_groups=4,
          with_encoder_nonlocal_attn=False, with_decoder_nonlocal_attn=False)
VQ = dict(spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 8), num_res_layers=1,
          num_res_channels=(8, 8), downsample_parameters=((2, 4, 1, 1), (2, 4, 1, 1)),
          upsample_parameters=((2, 4, 1, 1, 0), (2, 4, 1, 1, 0)), num_embeddings=8, embedding_dim=4)


def images() -> torch.Tensor:
    return torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_from_monai_reproduces_monais_encode_and_decode():
    torch.manual_seed(0)
    kl = nets.AutoencoderKL(**KL).eval()
    lm, x = from_monai(kl, image_shape=(1, 16, 16), config=KL), images()
    with torch.no_grad():
        z_mu, _ = kl.encode(x)
        # The same network on the same batch: the same numbers, bit for bit.
        assert lm.latent_shape == (2, 8, 8) and torch.equal(lm.encode(x), z_mu)
        assert torch.equal(lm.decode(z_mu), kl.decode(z_mu))
        assert torch.equal(lm.decode(lm.encode_flat(x)), kl.decode(z_mu))  # flat codes are reshaped
    torch.manual_seed(0)
    vq = nets.VQVAE(**VQ).eval()
    lm = from_monai(vq, image_shape=(1, 16, 16), config=VQ)
    with torch.no_grad():
        assert lm.latent_shape == (4, 4, 4)
        assert torch.equal(lm.reconstruct(x), vq.decode_stage_2_outputs(vq.encode(x)))


def test_a_monai_latent_model_saves_its_configuration_and_loads_as_a_latent_model(tmp_path):
    torch.manual_seed(0)
    lm = from_monai("AutoencoderKL", image_shape=(1, 16, 16), config=KL).eval()
    path = lm.save(tmp_path / "kl.safetensors")
    back = LatentModel.load(path)  # the generic loader finds the MONAI kind
    assert isinstance(back, MonaiLatentModel) and back.latent_shape == lm.latent_shape
    x = images()
    with torch.no_grad():
        assert torch.equal(back.reconstruct(x), lm.reconstruct(x))
    assert sorted(k.split(".")[0] for k in lm.state_dict()) == ["autoencoder"] * len(lm.state_dict())
    with pytest.raises(ValueError, match="config="):
        from_monai(nets.AutoencoderKL(**KL), image_shape=(1, 16, 16)).save(tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="AutoencoderKL or VQVAE"):
        from_monai(torch.nn.Linear(2, 2), image_shape=(1, 16, 16))


@pytest.mark.parametrize("kind, config", [("AutoencoderKL", KL), ("VQVAE", VQ)])
def test_the_generative_explainers_walk_a_monai_code(kind, config):
    torch.manual_seed(0)
    lm = from_monai(kind, image_shape=(1, 16, 16), config=config)
    torch.manual_seed(1)
    model = xg.SmallCNN(image_size=16, num_classes=3, width=4, hidden=8).eval()
    x, before = images(), {k: v.clone() for k, v in lm.state_dict().items()}
    assert lm.training  # a fresh MONAI network is in train mode: it must come back so
    for explainer in (xg.GVR(lm, max_steps=5, progress=False), xg.LatentShift(lm, n_frames=3)):
        exp = explainer.attribute(model, x)
        assert exp.attributions.shape == x.shape and exp.extras["latents"].shape == (3, *lm.latent_shape)
    # Nothing changed: no codebook update of the VQ-VAE, no mode switch left behind.
    assert lm.training and lm.autoencoder.training
    assert all(torch.equal(before[k], v) for k, v in lm.state_dict().items())
