"""Recipe `conditional_autoencoder`: G(z1, z2) trained as an autoencoder, its class code tied to a frozen classifier.

The latent-traversal paper's generator `G(z1, z2)` (z2 = 0: negative class, z2 ~ N(0, I):
positive class) trained without a discriminator, so that it converges within minutes on a
CPU and the same seed gives the same model:

* an encoder `E(x) = (z1, z2)` and the generator reconstruct the images (the GVR paper's
  Laplacian-pyramid loss), so the traversal's Eq. 2 inversion starts close to its target;
* the codes are pulled to the traversal's prior (a Wasserstein autoencoder's MMD penalty,
  Tolstikhin et al. 2018): z1 of every image and z2 of positive images to N(0, I), z2 of
  negative images to 0 — so that decoding prior samples gives images, as the paper samples;
* the class lives in z2 alone: decoding any z1 (of a real image or of the prior) with z2 = 0
  must be classified negative by the frozen classifier, with z2 ~ N(0, I) positive (the
  paper's Eq. 1 classifier term). z1 of a diseased patient decoded with z2 = 0 is the same
  patient healthy, which is what a traversal's first frame shows;
* along `G(z1, t z2)`, t ~ U(0, 1), the classifier's positive probability is pulled to t:
  the class code acts as a dose, and the traversal's probability curve rises steadily.

An optional adversarial fine-tune (WGAN-GP critic on prior samples, as `autoencoder`) can
sharpen the samples after the autoencoder phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xai_gen._core.batching import chunked
from xai_gen._core.devices import model_device, resolve_device
from xai_gen._core.state import evaluating, frozen_copy
from xai_gen.latent import ConditionalLatentModel, nets, positive_probability
from xai_gen.recipes._loop import TrainConfig, TrainingLoop
from xai_gen.recipes.conditional_gan import _check_pair_data, _class_loss, class_consistency
from xai_gen.recipes.losses import laplacian_loss
from xai_gen.recipes.wgan_gp import critic_step

#: Scales of the inverse multiquadric kernels of the MMD penalty (WAE, Tolstikhin et al.).
_IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass
class ConditionalAutoencoderConfig(TrainConfig):
    """Settings of `train_conditional_autoencoder`.

    The reconstruction loss is a per-pixel mean (about 0.05 for a trained MNIST
    autoencoder), so the other terms carry small weights: at weight 1 the MMD penalty and
    the classifier term held the held-out MSE of a 4-vs-9 model at 0.3 after 15 epochs.

    Attributes:
        structural_dim: size of z1 (structure, shared by both classes).
        class_dim: size of z2 (zero for the negative class).
        width: channels of the encoder's first / the generator's last stage.
        epochs: passes over the training images (autoencoder phase).
        batch_size: images per step.
        lr: Adam learning rate.
        levels: Laplacian pyramid levels of the reconstruction loss.
        prior_weight: weight of the MMD penalties pulling the codes to the prior.
        negative_code_weight: weight of `|z2|^2` for negative images.
        classifier_weight: weight of the frozen classifier's cross-entropy on swapped and
            prior decodings.
        dose_weight: weight of the binary cross-entropy between the classifier's positive
            probability on `G(z1, t z2)` and t.
        warmup_epochs: epochs over which the classifier and dose terms fade in linearly.
        positive_class: column of the classifier's logits that is the positive class.
        adversarial_epochs: epochs of the adversarial fine-tune after the autoencoder phase.
        adversarial_weight: weight of the critic's score in the generator's loss there. The
            score is unbounded (tens on 64 x 64 X-rays after 120 epochs, where 0.01 swamped the
            reconstruction and 0.001 did not): scale it to the reconstruction loss.
        lr_decay_start: epoch (counting the fine-tune's after the autoencoder phase's) from
            which the learning rates of the model and of the critic fall linearly to the end
            of the run; None keeps them constant. Against a critic the samples swing from
            epoch to epoch at a constant rate; a falling one lets them settle.
        critic_steps: critic updates per step in the fine-tune.
        gp_weight: gradient-penalty weight of the critic.
        consistency_z1: number of z1 of the final `class_consistency` check (0 = skip).
    """

    structural_dim: int = 32
    class_dim: int = 8
    width: int = 16
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    levels: int = 3
    prior_weight: float = 0.1
    negative_code_weight: float = 0.1
    classifier_weight: float = 0.2
    dose_weight: float = 0.1
    warmup_epochs: int = 10
    positive_class: int = 1
    adversarial_epochs: int = 0
    adversarial_weight: float = 0.01
    lr_decay_start: int | None = None
    critic_steps: int = 2
    gp_weight: float = 10.0
    consistency_z1: int = 1000


def mmd_to_normal(z: Tensor, prior: Tensor) -> Tensor:
    """Maximum mean discrepancy between codes `z: (N, D)` and prior samples `prior: (M, D)`.

    Sum of inverse multiquadric kernels `C / (C + |a - b|^2)`, `C = 2 D s` over the scales
    `s` of the Wasserstein autoencoder (Tolstikhin et al. 2018); unbiased within-set terms.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a, b = torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g)
        >>> bool(mmd_to_normal(a, b) < mmd_to_normal(a + 1.0, b))
        True
    """
    n, m, d = len(z), len(prior), z.shape[1]
    if n < 2 or m < 2:
        raise ValueError(f"need at least 2 codes and 2 prior samples, got {n} and {m}")
    dzz, dpp, dzp = torch.cdist(z, z) ** 2, torch.cdist(prior, prior) ** 2, torch.cdist(z, prior) ** 2
    off_z, off_p = 1 - torch.eye(n, device=z.device), 1 - torch.eye(m, device=z.device)
    total = z.new_zeros(())
    for s in _IMQ_SCALES:
        c = 2.0 * d * s
        total = total + ((c / (c + dzz)) * off_z).sum() / (n * (n - 1))
        total = total + ((c / (c + dpp)) * off_p).sum() / (m * (m - 1))
        total = total - 2 * (c / (c + dzp)).mean()
    return total


def train_conditional_autoencoder(
    images: Tensor,
    labels: Tensor,
    classifier: nn.Module,
    config: ConditionalAutoencoderConfig | None = None,
    test: tuple[Tensor, Tensor] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
    data: dict[str, Any] | None = None,
) -> ConditionalLatentModel:
    """Train `G(z1, z2)` and its encoder jointly against a frozen binary classifier (see module docstring).

    Args:
        images: `(N, C, H, W)` images of the two classes, in [-1, 1].
        labels: `(N,)` 0 (negative) / 1 (positive).
        classifier: binary classifier, logits `(N, 2)` or `(N, 1)`; a frozen copy is used.
        config: settings.
        test: optional held-out `(images, labels)`: reconstruction MSE and class
            consistency are logged every epoch.
        out_dir: folder for the checkpoint and the final `conditional_autoencoder.safetensors`.
        resume: continue from the checkpoint in `out_dir`.
        progress: tqdm bar.
        device: `"cpu"`, `"cuda"` or `"auto"`.
        data: description of the data stored with the weights.

    Returns:
        `ConditionalLatentModel` in eval mode; `meta["metrics"]` holds `class_consistency`.

    Example:
        >>> from xai_gen.models import SmallCNN
        >>> x, y = torch.rand(16, 1, 28, 28) * 2 - 1, torch.arange(16) % 2
        >>> cfg = ConditionalAutoencoderConfig(structural_dim=4, class_dim=2, width=4, epochs=1,
        ...                                    batch_size=8, consistency_z1=4)
        >>> cond = train_conditional_autoencoder(x, y, SmallCNN(num_classes=2), cfg, progress=False)
        >>> cond.generate(torch.zeros(1, 4), torch.zeros(1, 2)).shape
        torch.Size([1, 1, 28, 28])
    """
    cfg = config or ConditionalAutoencoderConfig()
    images = _check_pair_data(images, labels, classifier)
    if not bool((labels == 0).any()) or not bool((labels == 1).any()):
        raise ValueError("labels must contain both classes 0 and 1")
    dev = resolve_device(device)
    shape = tuple(images.shape[1:])
    d1, d2 = cfg.structural_dim, cfg.class_dim
    torch.manual_seed(cfg.seed)
    cond = ConditionalLatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=d1 + d2, image_shape=shape, width=cfg.width),
        nets.spec("dcgan_encoder", out_dim=d1 + d2, image_shape=shape, width=cfg.width),
        structural_dim=d1,
    ).to(dev).train()
    opt = torch.optim.Adam(cond.parameters(), lr=cfg.lr)
    modules, optimizers = {"model": cond}, {"model": opt}
    if cfg.adversarial_epochs > 0:
        critic = nets.build(nets.spec("dcgan_encoder", out_dim=1, image_shape=shape, width=cfg.width)).to(dev)
        opt_d = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.9))
        modules, optimizers = {**modules, "critic": critic}, {**optimizers, "critic": opt_d}
    clf = frozen_copy(classifier).to(dev)
    n, bs = len(images), cfg.batch_size
    per_epoch = math.ceil(n / bs)
    info = {"n": n, "positive_share": labels.float().mean().item(), "image_shape": list(shape), **(data or {})}
    decay_start = None if cfg.lr_decay_start is None else cfg.lr_decay_start * per_epoch
    loop = TrainingLoop("conditional_autoencoder", cfg, (cfg.epochs + cfg.adversarial_epochs) * per_epoch, per_epoch,
                        modules, optimizers, out_dir, resume, progress, epoch_steps=per_epoch, data=info,
                        lr_decay_start=decay_start)

    def step() -> dict[str, float]:
        logs: dict[str, float] = {}
        adversarial = loop.step >= cfg.epochs * per_epoch
        if adversarial:
            critic.requires_grad_(True)
            for _ in range(cfg.critic_steps):
                real = images[loop.batch(n, bs)].to(dev)
                with torch.no_grad():
                    fake = prior_samples(cond, len(real), loop.gen)
                logs.update(critic_step(critic, opt_d, real, fake, cfg.gp_weight, loop.gen))
            critic.requires_grad_(False)
        idx = loop.batch(n, bs)
        x, y = images[idx].to(dev), labels[idx].to(dev)
        k = len(x)
        z1, z2 = cond.split(cond.encode(x))
        rec = laplacian_loss(cond.generate(z1, z2), x, cfg.levels)
        # Prior: z1 of every image and z2 of positive images ~ N(0, I); z2 of negatives = 0.
        is_pos = y == 1
        prior = mmd_to_normal(z1, loop.randn(k, d1, device=dev))
        if int(is_pos.sum()) >= 2:
            prior = prior + mmd_to_normal(z2[is_pos], loop.randn(int(is_pos.sum()), d2, device=dev))
        neg_code = (z2[~is_pos] ** 2).sum(1).mean() if bool((~is_pos).any()) else z2.new_zeros(())
        # The class comes from z2 alone: real images decoded with their class swapped (z2 = 0
        # for positives, z2 ~ N(0, I) for negatives), and prior codes of both classes.
        z2_new = loop.randn(k, d2, device=dev) * (~is_pos)[:, None]
        h = max(1, k // 2)  # prior codes per step: half a batch is enough for the class terms
        y_prior = (loop.rand(h, device=dev) < 0.5).long()
        z1_prior = loop.randn(h, d1, device=dev)
        z2_prior = loop.randn(h, d2, device=dev) * y_prior[:, None]
        both = cond.generate(torch.cat([z1, z1_prior]), torch.cat([z2_new, z2_prior]))
        ce = _class_loss(clf(both), torch.cat([1 - y, y_prior]), cfg.positive_class)
        # Dose: P(positive | G(z1, t z2)) follows t, z1 from the prior, z2 ~ N(0, I).
        t = loop.rand(h, device=dev)
        dose_images = cond.generate(z1_prior, t[:, None] * loop.randn(h, d2, device=dev))
        p = positive_probability(clf, dose_images, cfg.positive_class)
        dose = F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), t)
        # The class terms fade in over the first `warmup_epochs`: a decoder that cannot yet
        # draw the data would satisfy the classifier with adversarial texture instead.
        ramp = min(1.0, loop.step / max(1, cfg.warmup_epochs * per_epoch))
        loss = (rec + cfg.prior_weight * prior + cfg.negative_code_weight * neg_code
                + ramp * (cfg.classifier_weight * ce + cfg.dose_weight * dose))
        logs.update({"laplacian": rec.item(), "mmd": prior.item(), "negative_code": neg_code.item(),
                     "classifier_ce": ce.item(), "dose": dose.item()})
        if adversarial:
            adv = -critic(prior_samples(cond, k, loop.gen)).mean()
            loss = loss + cfg.adversarial_weight * adv
            logs["adversarial"] = adv.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return logs

    def evaluate() -> dict[str, float]:
        if test is None:
            return {}
        with evaluating(cond):
            recon = chunked(lambda b: cond.reconstruct(b.to(dev)).cpu(), test[0])
        return {"test_mse": F.mse_loss(recon, test[0]).item(),
                "class_consistency": class_consistency(cond, clf, 100, cfg.seed, cfg.positive_class)}

    loop.run(step, evaluate)
    cond.eval()
    metrics = dict(loop.metrics)
    if cfg.consistency_z1 > 0:
        metrics["class_consistency"] = class_consistency(cond, clf, cfg.consistency_z1, cfg.seed, cfg.positive_class)
    cond.meta = {**loop.result_meta(), "metrics": metrics}
    if out_dir is not None:
        cond.save(Path(out_dir) / "conditional_autoencoder.safetensors")
    return cond


def prior_samples(model: ConditionalLatentModel, n: int, generator: torch.Generator | None = None) -> Tensor:
    """`G(z1, z2)` for `n` prior codes `(n, C, H, W)`: z1 ~ N(0, I); z2 = 0 (negative class) for
    the first `n // 2`, z2 ~ N(0, I) (positive class) for the rest. Gradients flow to `model`."""
    z1 = torch.randn(n, model.structural_dim, generator=generator)
    z2 = torch.randn(n, model.class_dim, generator=generator)
    z2[: n // 2] = 0.0
    dev = model_device(model)
    return chunked(lambda z: model.generate(*model.split(z.to(dev))), torch.cat([z1, z2], 1))
