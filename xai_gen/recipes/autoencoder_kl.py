"""Recipe `autoencoder_kl`: MONAI's AutoencoderKL on L1 plus KL losses, optionally with a patch
discriminator (the first stage of MONAI's latent diffusion tutorials).

The code is a feature map `(latent_channels, H / 2**(len(channels) - 1), ...)`: the model
comes back as a `MonaiLatentModel` that the generative explainers walk in. MONAI
(`pip install "xai-gen[monai]"`) is imported when the recipe runs.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from xai_gen._core.batching import chunked
from xai_gen._core.checks import check_images
from xai_gen._core.devices import resolve_device
from xai_gen._core.state import evaluating
from xai_gen.latent.monai_models import MonaiLatentModel, from_monai
from xai_gen.recipes._loop import TrainConfig, TrainingLoop


@dataclass
class AutoencoderKLConfig(TrainConfig):
    """Settings of `train_autoencoder_kl`.

    Attributes:
        channels: channels per level of MONAI's encoder and decoder; each level after the
            first halves the image side.
        latent_channels: channels of the code.
        num_res_blocks: residual blocks per level.
        norm_num_groups: group-norm groups (must divide every entry of `channels`).
        epochs: passes over the data.
        batch_size: images per step.
        lr: Adam learning rate of the autoencoder.
        kl_weight: weight of the KL divergence of the codes to N(0, I) against the L1 loss
            (MONAI's tutorials: 1e-6, a nearly deterministic code).
        adversarial_weight: weight of the patch discriminator's least-squares term (0 = no
            discriminator).
        adversarial_start: epoch from which the discriminator trains and judges (the
            reconstructions are blurry before).
        discriminator_channels: channels of the discriminator's first layer.
    """

    channels: tuple[int, ...] = (32, 64, 64)
    latent_channels: int = 3
    num_res_blocks: int = 1
    norm_num_groups: int = 16
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-4
    kl_weight: float = 1e-6
    adversarial_weight: float = 0.0
    adversarial_start: int = 5
    discriminator_channels: int = 32


def _monai() -> tuple[Any, Any]:
    try:
        return importlib.import_module("monai.networks.nets"), importlib.import_module("monai.losses")
    except ImportError as err:  # pragma: no cover - the test command installs the extra
        raise ImportError('the autoencoder_kl recipe needs MONAI: pip install "xai-gen[monai]"') from err


def network_config(cfg: AutoencoderKLConfig, in_channels: int) -> dict[str, Any]:
    """MONAI `AutoencoderKL` constructor arguments for `cfg` (stored with the weights).

    Example:
        >>> network_config(AutoencoderKLConfig(channels=(8, 8)), 1)["attention_levels"]
        [False, False]
    """
    levels = len(cfg.channels)
    return {
        "spatial_dims": 2, "in_channels": in_channels, "out_channels": in_channels,
        "channels": list(cfg.channels), "num_res_blocks": cfg.num_res_blocks,
        # No attention: the recipe has to train on a CPU at 64-256 px.
        "attention_levels": [False] * levels, "latent_channels": cfg.latent_channels,
        "norm_num_groups": cfg.norm_num_groups,
        "with_encoder_nonlocal_attn": False, "with_decoder_nonlocal_attn": False,
    }


def _kl(z_mu: Tensor, z_sigma: Tensor) -> Tensor:
    """KL divergence of N(z_mu, z_sigma^2) to N(0, I), summed over the code, mean over the batch."""
    kl = 0.5 * (z_mu.pow(2) + z_sigma.pow(2) - torch.log(z_sigma.pow(2)) - 1)
    return kl.flatten(1).sum(1).mean()


def train_autoencoder_kl(
    images: Tensor,
    config: AutoencoderKLConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
    test: Tensor | None = None,
    data: dict[str, Any] | None = None,
) -> MonaiLatentModel:
    """Train MONAI's `AutoencoderKL` on L1 + KL (+ a patch discriminator's least-squares loss).

    Args:
        images: `(N, C, H, W)` training images in [-1, 1]; H and W divisible by
            `2**(len(config.channels) - 1)`.
        config: settings.
        out_dir: folder for the checkpoint and the final `autoencoder_kl.safetensors`; None
            trains in memory.
        resume: continue from the checkpoint in `out_dir`.
        progress: tqdm bar.
        device: `"cpu"`, `"cuda"` or `"auto"`.
        test: optional held-out images; their MSE is logged every epoch (`test_mse`).
        data: description of the data stored with the weights.

    Returns:
        A `MonaiLatentModel` in eval mode; `meta` holds recipe, config, metrics and history.

    Example:
        >>> x = torch.rand(20, 1, 16, 16) * 2 - 1
        >>> cfg = AutoencoderKLConfig(channels=(8, 8), latent_channels=2, norm_num_groups=4, epochs=1, batch_size=8)
        >>> lm = train_autoencoder_kl(x[:16], cfg, progress=False, test=x[16:])
        >>> lm.latent_shape, "test_mse" in lm.meta["metrics"]
        ((2, 8, 8), True)
    """
    cfg = config or AutoencoderKLConfig()
    images, _ = check_images(images, "images", allow_single=False, min_count=2)
    if test is not None:
        test, _ = check_images(test, "test", allow_single=False)
    factor = 2 ** (len(cfg.channels) - 1)
    if images.shape[2] % factor or images.shape[3] % factor:
        raise ValueError(f"image size {tuple(images.shape[2:])} must be divisible by {factor} for channels={cfg.channels}")
    nets, losses = _monai()
    dev = resolve_device(device)
    shape = tuple(images.shape[1:])
    torch.manual_seed(cfg.seed)
    config_json = network_config(cfg, shape[0])
    lm = from_monai(nets.AutoencoderKL(**config_json), image_shape=shape, config=config_json).to(dev).train()
    ae = lm.autoencoder
    opt = torch.optim.Adam(ae.parameters(), lr=cfg.lr)
    modules, optimizers = {"model": lm}, {"model": opt}
    if cfg.adversarial_weight > 0:
        disc = nets.PatchDiscriminator(
            spatial_dims=2, num_layers_d=2, channels=cfg.discriminator_channels, in_channels=shape[0],
            out_channels=1, norm="INSTANCE",
        ).to(dev)
        opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr)
        modules, optimizers = {**modules, "discriminator": disc}, {**optimizers, "discriminator": opt_d}
        adversarial = losses.PatchAdversarialLoss(criterion="least_squares")
    n, bs = len(images), cfg.batch_size
    per_epoch = math.ceil(n / bs)
    loop = TrainingLoop(
        "autoencoder_kl", cfg, cfg.epochs * per_epoch, per_epoch, modules, optimizers, out_dir, resume, progress,
        epoch_steps=per_epoch, data={"n": n, "image_shape": list(shape), **(data or {})},
    )

    def step() -> dict[str, float]:
        x = images[loop.batch(n, bs)].to(dev)
        # MONAI's forward, with the reparameterisation noise drawn from the loop's generator,
        # so that a resumed run repeats the uninterrupted one.
        z_mu, z_sigma = ae.encode(x)
        recon = ae.decode(z_mu + z_sigma * loop.randn(*z_mu.shape, device=dev))
        l1, kl = F.l1_loss(recon, x), _kl(z_mu, z_sigma)
        loss = l1 + cfg.kl_weight * kl
        logs = {"l1": l1.item(), "kl": kl.item()}
        judging = cfg.adversarial_weight > 0 and loop.step >= cfg.adversarial_start * per_epoch
        if judging:
            fooled = adversarial(disc(recon.contiguous())[-1], target_is_real=True, for_discriminator=False)
            loss = loss + cfg.adversarial_weight * fooled
            logs["adversarial"] = fooled.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if judging:
            fake = adversarial(disc(recon.detach().contiguous())[-1], target_is_real=False, for_discriminator=True)
            real = adversarial(disc(x.contiguous())[-1], target_is_real=True, for_discriminator=True)
            d_loss = (fake + real) / 2
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            logs["discriminator"] = d_loss.item()
        return logs

    def evaluate() -> dict[str, float]:
        if test is None:
            return {}
        with evaluating(lm), torch.no_grad():
            recon = chunked(lambda b: lm.reconstruct(b.to(dev)).cpu(), test)
        return {"test_mse": F.mse_loss(recon, test).item()}

    loop.run(step, evaluate)
    lm.eval()
    lm.meta = loop.result_meta()
    if out_dir is not None:
        lm.save(Path(out_dir) / "autoencoder_kl.safetensors")
    return lm
