"""Every explainer at 128 and 224 px, grey and RGB, with a feature-map latent model: the shapes
users bring from chest X-ray work (the networks are tiny and untrained; this checks the
plumbing, not the quality)."""

from __future__ import annotations

import pytest
import torch

import xai_gen as xg
from xai_gen.latent import LatentModel, nets


def explainers(lm: LatentModel, size: int) -> list[xg.Explainer]:
    methods = [
        xg.Saliency(), xg.IntegratedGradients(n_steps=4), xg.Occlusion(window=size // 4, stride=size // 4),
        xg.GradCAM(), xg.FastLime(num_samples=10, progress=False),
        xg.GVR(lm, max_steps=2, progress=False), xg.LatentShift(lm, n_frames=3),
        xg.LatentTraversal(lm, steps=2, progress=False, gvr_params={"max_steps": 2}),
    ]
    # lime's own quickshift and per-image loop take seconds per image at 224 px.
    return methods + ([xg.Lime(num_samples=10, progress=False)] if size <= 128 else [])


@pytest.mark.parametrize("size", [128, 224])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_explainer_runs_at_large_sizes(size, channels):
    torch.manual_seed(0)
    model = xg.SmallCNN(image_size=size, in_channels=channels, num_classes=3, width=4, hidden=8).eval()
    shape = [channels, size, size]
    lm = LatentModel.from_specs(
        nets.spec("spatial_decoder", image_shape=shape, latent_channels=2, stages=3, width=4),
        nets.spec("spatial_encoder", image_shape=shape, latent_channels=2, stages=3, width=4),
    )
    x = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for explainer in explainers(lm, size):
        exp = explainer.attribute(model, x)
        assert exp.attributions.shape == x.shape and torch.isfinite(exp.attributions).all(), exp.method


@pytest.mark.parametrize("size", [128, 224])
def test_the_recipes_train_at_large_rgb_sizes(size):
    from xai_gen import recipes  # autoencoder_kl needs the monai extra, which make installs

    x = torch.rand(8, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    lm = recipes.train_autoencoder(x, recipes.AutoencoderConfig(latent_dim=8, width=4, epochs=1, batch_size=8), progress=False)
    assert lm.reconstruct(x[:1]).shape == (1, 3, size, size)
    kl = recipes.train_autoencoder_kl(
        x, recipes.AutoencoderKLConfig(channels=(8, 8, 8), latent_channels=2, norm_num_groups=4, epochs=1, batch_size=4),
        progress=False,
    )
    assert kl.latent_shape == (2, size // 4, size // 4) and kl.reconstruct(x[:1]).shape == (1, 3, size, size)
    clf = recipes.train_classifier(x, torch.arange(8) % 2, recipes.ClassifierConfig(epochs=1, width=4, hidden=8, batch_size=8),
                                   progress=False)
    assert clf(x[:1]).shape == (1, 2)
