"""Recipe `wgan_gp`: the GVR paper's generator (Sec. 2), a Wasserstein GAN with gradient penalty."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from xai_gen._core.checks import check_images
from xai_gen._core.devices import resolve_device
from xai_gen._io import load_module, save_module
from xai_gen.latent import nets
from xai_gen.recipes._loop import TrainConfig, TrainingLoop
from xai_gen.recipes.losses import gradient_penalty


@dataclass
class WGANGPConfig(TrainConfig):
    """Settings of `train_wgan_gp`; defaults are the GVR paper's (Sec. 2) where it gives them.

    Attributes:
        latent_dim: size of z (paper: 100), z ~ N(0, I).
        width: channels of the first critic stage / last generator stage (DCGAN: 64).
        steps: generator steps (paper: 200k "before visually acceptable" 128x128 radiographs).
        batch_size: images per critic and generator step.
        critic_steps: critic updates per generator update (paper: 4).
        lr: Adam learning rate of both networks (paper: 5e-5).
        betas: Adam betas. The paper does not give them; (0.5, 0.9) are those of Gulrajani
            et al.'s public WGAN-GP code (their Algorithm 1 lists (0, 0.9)).
        gp_weight: lambda of the gradient penalty (Gulrajani et al.: 10).
        lr_decay_start: generator step from which both learning rates fall linearly, to
            `lr / (steps - lr_decay_start)` at the last step. The adversarial game keeps
            the generator moving at a constant rate, so its samples swing from checkpoint to
            checkpoint; a falling rate lets it settle (Gulrajani et al.'s public CIFAR-10
            code decays over the whole run). None keeps the rate constant, as the paper does.
            A run resumed after the decay has begun must keep its `steps`.
        log_every: generator steps per history row.
    """

    latent_dim: int = 100
    width: int = 64
    steps: int = 20_000
    batch_size: int = 64
    critic_steps: int = 4
    lr: float = 5e-5
    betas: tuple[float, float] = (0.5, 0.9)
    gp_weight: float = 10.0
    lr_decay_start: int | None = None
    log_every: int = 100


def critic_step(
    critic: nn.Module, opt: Optimizer, real: Tensor, fake: Tensor, gp_weight: float, gen: torch.Generator
) -> dict[str, float]:
    """One WGAN-GP critic update: minimise `D(fake) - D(real) + gp_weight * GP` (Gulrajani, Alg. 1).

    Returns:
        `{"critic": loss, "wasserstein": D(real) - D(fake), "gp": penalty}` as floats.
    """
    fake = fake.detach()
    d_real, d_fake = critic(real).mean(), critic(fake).mean()
    gp = gradient_penalty(critic, real, fake, generator=gen)
    loss = d_fake - d_real + gp_weight * gp
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"critic": loss.item(), "wasserstein": (d_real - d_fake).item(), "gp": gp.item()}


def train_wgan_gp(
    images: Tensor,
    config: WGANGPConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
    data: dict[str, Any] | None = None,
) -> nn.Module:
    """Train the GVR paper's generator: DCGAN without batch norm, SELU, tanh output, WGAN-GP.

    Each generator step follows `config.critic_steps` critic steps on fresh real batches
    and fresh z ~ N(0, I). The critic is the DCGAN encoder with one output (no batch norm,
    which the gradient penalty forbids anyway).

    Args:
        images: `(N, C, H, W)` training images in [-1, 1]; H = W (28, 64, 128, ...).
        config: hyper-parameters (paper values by default).
        out_dir: folder for the checkpoint (`wgan_gp.ckpt.safetensors`) and the final
            `generator.safetensors`; None trains in memory.
        resume: continue from the checkpoint in `out_dir`.
        progress: tqdm bar.
        device: `"cpu"`, `"cuda"` or `"auto"`.
        data: description of the data stored with the weights.

    Returns:
        The generator `(N, latent_dim) -> (N, C, H, W)` in eval mode, with `.spec` (its
        `nets.spec`) and `.meta` (recipe, config, metrics, history). Give it to
        `train_encoder`, or save it with `save_generator`.

    Example:
        >>> cfg = WGANGPConfig(latent_dim=8, width=4, steps=2, batch_size=8, log_every=1)
        >>> g = train_wgan_gp(torch.rand(32, 1, 28, 28) * 2 - 1, cfg, progress=False)
        >>> g(torch.zeros(1, 8)).shape, len(g.meta["history"])
        (torch.Size([1, 1, 28, 28]), 2)
    """
    cfg = config or WGANGPConfig()
    images, _ = check_images(images, "images", allow_single=False, min_count=2)
    dev = resolve_device(device)
    shape = tuple(images.shape[1:])
    torch.manual_seed(cfg.seed)
    generator = nets.build(nets.spec("dcgan_generator", latent_dim=cfg.latent_dim, image_shape=shape, width=cfg.width))
    critic = nets.build(nets.spec("dcgan_encoder", out_dim=1, image_shape=shape, width=cfg.width))
    generator.to(dev).train()
    critic.to(dev).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=cfg.betas)
    loop = TrainingLoop(
        "wgan_gp", cfg, cfg.steps, cfg.log_every,
        {"generator": generator, "critic": critic}, {"generator": opt_g, "critic": opt_d},
        out_dir, resume, progress, data={"n": len(images), "image_shape": list(shape), **(data or {})},
        lr_decay_start=cfg.lr_decay_start,
    )
    n, bs = len(images), cfg.batch_size

    def step() -> dict[str, float]:
        critic.requires_grad_(True)
        for _ in range(cfg.critic_steps):
            real = images[loop.batch(n, bs)].to(dev)
            with torch.no_grad():
                fake = generator(loop.randn(len(real), cfg.latent_dim, device=dev))
            logs = critic_step(critic, opt_d, real, fake, cfg.gp_weight, loop.gen)
        critic.requires_grad_(False)
        loss_g = -critic(generator(loop.randn(bs, cfg.latent_dim, device=dev))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {**logs, "generator": loss_g.item()}

    loop.run(step)
    critic.requires_grad_(True)
    generator.eval().requires_grad_(True)
    generator.meta = loop.result_meta()
    if out_dir is not None:
        save_generator(generator, Path(out_dir) / "generator.safetensors")
    return generator


def save_generator(generator: nn.Module, path: str | Path) -> Path:
    """Write a generator built by `nets.build` (a `DCGANGenerator`) with its `.meta` to safetensors."""
    if not isinstance(generator, nets.DCGANGenerator):
        raise ValueError(
            f"generator has no .spec to rebuild it from ({type(generator).__name__}); build it with "
            "xai_gen.latent.nets.build or train_wgan_gp"
        )
    return save_module(generator, path)


def load_generator(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Read a file written by `save_generator` (no pickle); eval mode, `.spec` and `.meta` set."""
    return load_module(path, nets.DCGANGenerator.kind, map_location)
