"""Recipe `encoder`: a trained generator frozen as decoder, an encoder fitted to invert it (GVR Sec. 2)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xai_gen._core.batching import chunked
from xai_gen._core.checks import check_images
from xai_gen._core.devices import model_device, resolve_device
from xai_gen._core.state import evaluating, frozen_copy
from xai_gen.latent import LatentModel, nets
from xai_gen.recipes._loop import TrainConfig, TrainingLoop
from xai_gen.recipes.losses import laplacian_loss


@dataclass
class EncoderConfig(TrainConfig):
    """Settings of `train_encoder`.

    Attributes:
        width: channels of the encoder's first stage.
        epochs: passes over the training part.
        batch_size: images per step.
        lr: Adam learning rate.
        levels: Laplacian pyramid levels of the loss.
        validation_ratio: train:validation ratio of the split (paper: 15 to 1).
        latent_weight: weight of an extra loss `MSE(E(G(z)), z)` on generated samples,
            which pins codes to the generator's prior (0 = the paper's image loss only).
    """

    width: int = 32
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    levels: int = 3
    validation_ratio: int = 15
    latent_weight: float = 0.0


def validation_split(n: int, ratio: int, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded `ratio : 1` split of `range(n)` into (train, validation) indices."""
    if ratio < 1:
        raise ValueError(f"validation_ratio must be >= 1, got {ratio}")
    n_val = max(1, math.floor(n / (ratio + 1)))
    if n_val >= n:
        raise ValueError(f"{n} images are too few for a {ratio}:1 train/validation split")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:], perm[:n_val]


def fit_encoder(
    generator: nn.Module,
    images: Tensor,
    cfg: EncoderConfig,
    recipe: str = "encoder",
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
    data: dict[str, Any] | None = None,
    sample_z: Callable[[TrainingLoop, int], Tensor] | None = None,
) -> tuple[nn.Module, TrainingLoop]:
    """Train an encoder against a frozen generator; the shared core of `train_encoder`.

    Args:
        generator: the decoder, built by `nets.build` (has `.spec` with `latent_dim`); a
            frozen copy is trained against, the module itself is not changed.
        images: `(N, C, H, W)` images.
        cfg: settings.
        recipe: loop name (checkpoint file name).
        out_dir, resume, progress, device, data: as in `train_encoder`.
        sample_z: `(loop, n) -> (n, latent_dim)` prior of the latent term (default N(0, I)).

    Returns:
        `(encoder, loop)`; the generator is left unchanged.
    """
    images, _ = check_images(images, "images", allow_single=False, min_count=cfg.validation_ratio + 1)
    spec = getattr(generator, "spec", None)
    if spec is None or "latent_dim" not in spec.get("kwargs", {}):
        raise ValueError("generator has no .spec with latent_dim; build it with nets.build or train_wgan_gp")
    dev = resolve_device(device)
    latent_dim, shape = spec["kwargs"]["latent_dim"], tuple(images.shape[1:])
    torch.manual_seed(cfg.seed)
    encoder = nets.build(nets.spec("dcgan_encoder", out_dim=latent_dim, image_shape=shape, width=cfg.width))
    encoder.to(dev).train()
    # A frozen copy on the training device: the caller's generator stays exactly as it was.
    generator = frozen_copy(generator).to(dev)
    opt = torch.optim.Adam(encoder.parameters(), lr=cfg.lr)
    train_idx, val_idx = validation_split(len(images), cfg.validation_ratio, cfg.seed)
    train, val = images[train_idx], images[val_idx]
    per_epoch = math.ceil(len(train) / cfg.batch_size)
    info = {"n": len(images), "n_train": len(train), "n_validation": len(val), **(data or {})}
    loop = TrainingLoop(recipe, cfg, cfg.epochs * per_epoch, per_epoch, {"encoder": encoder}, {"encoder": opt},
                        out_dir, resume, progress, epoch_steps=per_epoch, data=info)
    prior = sample_z or (lambda lp, k: lp.randn(k, latent_dim))

    def step() -> dict[str, float]:
        x = train[loop.batch(len(train), cfg.batch_size)].to(dev)
        recon = generator(encoder(x))
        lap = laplacian_loss(recon, x, cfg.levels)
        loss = lap
        if cfg.latent_weight > 0:
            z = prior(loop, len(x)).to(dev)
            with torch.no_grad():
                g = generator(z)
            loss = loss + cfg.latent_weight * F.mse_loss(encoder(g), z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        # The paper's Fig. 2: MSE and Laplacian loss per epoch on both splits.
        return {"train_laplacian": lap.item(), "train_mse": F.mse_loss(recon, x).item()}

    def evaluate() -> dict[str, float]:
        with evaluating(encoder):
            recon = chunked(lambda b: generator(encoder(b.to(dev))).cpu(), val)
        return {"val_laplacian": laplacian_loss(recon, val, cfg.levels).item(), "val_mse": F.mse_loss(recon, val).item()}

    loop.run(step, evaluate)
    encoder.eval()
    return encoder, loop


def train_encoder(
    generator: nn.Module,
    images: Tensor,
    config: EncoderConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
    data: dict[str, Any] | None = None,
) -> LatentModel:
    """Fit an encoder to a frozen generator on the Laplacian loss (the GVR paper's autoencoder step).

    The images are split `validation_ratio : 1` (paper: 15:1); every epoch's history row
    holds the training means and the validation values of the MSE and the Laplacian loss
    (the paper's Fig. 2).

    Args:
        generator: a generator from `train_wgan_gp` / `load_generator` (anything built by
            `nets.build`); copied, never changed.
        images: `(N, C, H, W)` images in [-1, 1].
        config: settings.
        out_dir: folder for the checkpoint and the final `encoder.safetensors` (a
            `LatentModel`); None trains in memory.
        resume: continue from the checkpoint in `out_dir`.
        progress: tqdm bar.
        device: `"cpu"`, `"cuda"` or `"auto"`.
        data: description of the data stored with the weights.

    Returns:
        `LatentModel` (the generator copy as decoder, the new encoder) in eval mode; its
        `meta` holds recipe, config, metrics and history.

    Example:
        >>> g = nets.build(nets.spec("dcgan_generator", latent_dim=8, image_shape=(1, 28, 28), width=4))
        >>> x = torch.rand(64, 1, 28, 28) * 2 - 1
        >>> lm = train_encoder(g, x, EncoderConfig(width=4, epochs=1), progress=False)
        >>> sorted(lm.meta["history"][0])
        ['epoch', 'seconds', 'step', 'train_laplacian', 'train_mse', 'val_laplacian', 'val_mse']
    """
    cfg = config or EncoderConfig()
    encoder, loop = fit_encoder(generator, images, cfg, "encoder", out_dir, resume, progress, device, data)
    # The latent model owns a trainable copy of the generator, on the encoder's device.
    generator = copy.deepcopy(generator).to(model_device(encoder)).requires_grad_(True)
    meta = {**loop.result_meta(), "generator": getattr(generator, "meta", {})}
    lm = LatentModel(generator, encoder, generator.spec["kwargs"]["latent_dim"], tuple(images.shape[1:]),
                     architecture={"generator": generator.spec, "encoder": encoder.spec}, meta=meta).eval()
    if out_dir is not None:
        lm.save(Path(out_dir) / "encoder.safetensors")
    return lm
