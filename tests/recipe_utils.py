"""Tiny data and tiny recipe runs shared by the `test_recipes_*` files (seconds each on a CPU)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from xai_gen import recipes
from xai_gen.latent import LatentModel, nets
from xai_gen.models import SmallCNN

SHAPE = (1, 28, 28)


def _factors(n: int, seed: int) -> torch.Tensor:
    """`(n, 3)`: centre x, centre y in [-0.5, 0.5] and width of one bump per image."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.rand(n, 2, generator=g) - 0.5, 0.15 + 0.15 * torch.rand(n, 1, generator=g)], 1)


def images(n: int = 48, seed: int = 0) -> torch.Tensor:
    """One Gaussian bump per image at a random place, `(n, 1, 28, 28)` in [-1, 1].

    Three factors of variation: small latent codes can learn them and generalise.
    """
    f = _factors(n, seed)
    axis = torch.linspace(-1, 1, 28)
    d2 = (axis.view(1, 1, 28) - f[:, 0, None, None]) ** 2 + (axis.view(1, 28, 1) - f[:, 1, None, None]) ** 2
    return (2 * torch.exp(-d2 / (2 * f[:, 2, None, None] ** 2)) - 1)[:, None]


def labels(n: int = 48, seed: int = 0) -> torch.Tensor:
    """1 where the bump of `images(n, seed)` is in the right half of the image."""
    return (_factors(n, seed)[:, 0] > 0).long()


def tiny_lm(latent: int = 8, seed: int = 0) -> LatentModel:
    torch.manual_seed(seed)
    return LatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=latent, image_shape=SHAPE, width=4),
        nets.spec("dcgan_encoder", out_dim=latent, image_shape=SHAPE, width=4),
    )


def tiny_generator(latent: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nets.build(nets.spec("dcgan_generator", latent_dim=latent, image_shape=SHAPE, width=4))


def tiny_classifier(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(num_classes=2, width=4, hidden=8)


#: recipe -> (config factory, run(config, **kw) -> trained model). Every recipe on tiny data.
RECIPES: dict[str, tuple[Callable[..., Any], Callable[..., nn.Module]]] = {
    "classifier": (
        lambda **kw: recipes.ClassifierConfig(**{"epochs": 2, "batch_size": 16, "width": 4, "hidden": 8, **kw}),
        lambda cfg, **kw: recipes.train_classifier(images(), labels(), cfg, test=(images(8, 1), labels(8, 1)), **kw),
    ),
    "autoencoder": (
        lambda **kw: recipes.AutoencoderConfig(**{"latent_dim": 8, "width": 4, "epochs": 2, "batch_size": 16,
                                                  "adversarial_epochs": 1, **kw}),
        lambda cfg, **kw: recipes.train_autoencoder(images(), cfg, test=images(8, 1), **kw),
    ),
    "wgan_gp": (
        lambda **kw: recipes.WGANGPConfig(**{"latent_dim": 8, "width": 4, "steps": 6, "batch_size": 8,
                                             "critic_steps": 2, "log_every": 2, **kw}),
        lambda cfg, **kw: recipes.train_wgan_gp(images(), cfg, **kw),
    ),
    "encoder": (
        lambda **kw: recipes.EncoderConfig(**{"width": 4, "epochs": 2, "batch_size": 16, "latent_weight": 0.5, **kw}),
        lambda cfg, **kw: recipes.train_encoder(tiny_generator(), images(), cfg, **kw),
    ),
    "head": (
        lambda **kw: recipes.HeadConfig(**{"epochs": 3, "batch_size": 16, **kw}),
        lambda cfg, **kw: recipes.train_head(tiny_lm(), images(), labels(), "mlp", config=cfg,
                                             test=(images(8, 1), labels(8, 1)), **kw),
    ),
    "conditional_gan": (
        lambda **kw: recipes.ConditionalGANConfig(**{
            "structural_dim": 4, "class_dim": 2, "width": 4, "steps": 6, "batch_size": 8, "log_every": 2,
            "consistency_z1": 8, "encoder": recipes.EncoderConfig(width=4, epochs=1, batch_size=16, latent_weight=1.0),
            **kw}),
        lambda cfg, **kw: recipes.train_conditional_gan(images(), labels(), tiny_classifier(), cfg, **kw),
    ),
    "conditional_autoencoder": (
        lambda **kw: recipes.ConditionalAutoencoderConfig(**{
            "structural_dim": 4, "class_dim": 2, "width": 4, "epochs": 2, "batch_size": 8, "warmup_epochs": 1,
            "consistency_z1": 8, "adversarial_epochs": 1, **kw}),
        lambda cfg, **kw: recipes.train_conditional_autoencoder(images(), labels(), tiny_classifier(), cfg,
                                                                test=(images(8, 1), labels(8, 1)), **kw),
    ),
}


def run(recipe: str, out_dir: Any = None, resume: bool = False, **config: Any) -> nn.Module:
    """Train `recipe` on tiny data with its tiny config (fields overridden by `config`)."""
    make_config, train = RECIPES[recipe]
    return train(make_config(**config), out_dir=out_dir, resume=resume, progress=False)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def without_seconds(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]
