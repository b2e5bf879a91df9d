"""Recipe `conditional_gan`: the latent-traversal paper's generator G(z1, z2) and its class check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xai_gen._core.checks import check_images
from xai_gen._core.devices import model_device, resolve_device
from xai_gen._core.state import evaluating, frozen_copy
from xai_gen.latent import ConditionalLatentModel, nets, positive_probability
from xai_gen.recipes._loop import TrainConfig, TrainingLoop
from xai_gen.recipes.encoder import EncoderConfig, fit_encoder


@dataclass
class ConditionalGANConfig(TrainConfig):
    """Settings of `train_conditional_gan`.

    The paper (a student abstract) gives the objective (its Eq. 1) but no sizes; the
    defaults (a 90 + 10 split of a 100-d latent, DCGAN's Adam betas) were tuned on MNIST
    4 vs 9: batch 32, lr 5e-4 and classifier weight 2 reach a class consistency of 94 % in
    1,500 steps, where batch 64, lr 5e-4, weight 1 reach 92 %.

    Attributes:
        structural_dim: size of z1 (structure, shared by both classes), z1 ~ N(0, I).
        class_dim: size of z2: zero for the negative class, N(0, I) for the positive.
        width: channels of the networks' first / last stage.
        steps: generator steps (one discriminator step each).
        batch_size: images per step.
        lr: Adam learning rate of both networks.
        betas: Adam betas (DCGAN: (0.5, 0.999)).
        classifier_weight: weight of the frozen classifier's cross-entropy (Eq. 1, 3rd term).
        positive_rate: probability of drawing the positive class for a generated sample.
        positive_class: column of the classifier's logits that is the positive class.
        log_every: generator steps per history row.
        consistency_z1: number of z1 of the final `class_consistency` check (0 = skip).
        log_consistency_z1: z1 of a smaller check logged with every history row (0 = skip).
        encoder: settings of the encoder fitted afterwards to the frozen generator (its
            codes start `ConditionalLatentModel.invert`); `latent_weight > 0` also teaches it
            the prior (z2 = 0 for the negative class).
    """

    structural_dim: int = 90
    class_dim: int = 10
    width: int = 16
    steps: int = 3000
    batch_size: int = 32
    lr: float = 5e-4
    betas: tuple[float, float] = (0.5, 0.999)
    classifier_weight: float = 2.0
    positive_rate: float = 0.5
    positive_class: int = 1
    log_every: int = 100
    consistency_z1: int = 1000
    log_consistency_z1: int = 100
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(width=16, epochs=10, latent_weight=1.0))


def _class_loss(logits: Tensor, y: Tensor, positive_class: int) -> Tensor:
    """Cross-entropy of a binary classifier's output w.r.t. the conditioning class `y` (0/1)."""
    if logits.dim() == 2 and logits.shape[1] == 2:
        return F.cross_entropy(logits, y if positive_class == 1 else 1 - y)
    if logits.dim() == 1 or logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits.reshape(-1), y.float())
    raise ValueError(f"classifier must be binary (logits (N, 2) or (N, 1)), got output {tuple(logits.shape)}")


def sample_conditional(
    loop: TrainingLoop, n: int, structural_dim: int, class_dim: int, positive_rate: float
) -> tuple[Tensor, Tensor]:
    """`(z, y)`: codes `[z1, z2]` `(n, structural_dim + class_dim)` and classes `y` `(n,)` (Eq. 1's sampling)."""
    y = (loop.rand(n) < positive_rate).long()
    z1 = loop.randn(n, structural_dim)
    z2 = loop.randn(n, class_dim) * y[:, None]  # zero vector for the negative class
    return torch.cat([z1, z2], dim=1), y


def _check_pair_data(images: Tensor, labels: Tensor, classifier: nn.Module) -> Tensor:
    """Validate the inputs of a conditional recipe: `images (N, C, H, W)`, `labels (N,)` of 0
    (negative) / 1 (positive), and the frozen binary classifier; returns the checked images."""
    images, _ = check_images(images, "images", allow_single=False, min_count=2)
    if not isinstance(labels, Tensor) or labels.shape != (len(images),) or not set(labels.unique().tolist()) <= {0, 1}:
        raise ValueError(f"labels must be a (N,) tensor of 0 (negative) / 1 (positive) with N = {len(images)}")
    if not isinstance(classifier, nn.Module):
        raise TypeError(f"classifier must be an nn.Module, got {type(classifier).__name__}")
    return images


def train_conditional_gan(
    images: Tensor,
    labels: Tensor,
    classifier: nn.Module,
    config: ConditionalGANConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
    data: dict[str, Any] | None = None,
) -> ConditionalLatentModel:
    """Train G(z1, z2) with a discriminator and a frozen classifier (traversal paper, Eq. 1).

    The generator minimises the non-saturating GAN loss plus `classifier_weight` times the
    cross-entropy of the frozen `classifier` on its samples w.r.t. the class they were
    generated for (z2 = 0: negative; z2 ~ N(0, I): positive). The discriminator sees real
    images of both classes without labels. Afterwards an encoder is fitted to the frozen
    generator (`fit_encoder`, Laplacian loss), and `class_consistency` is measured.

    Args:
        images: `(N, C, H, W)` images of the two classes, in [-1, 1].
        labels: `(N,)` 0 (negative) / 1 (positive); their mean is recorded, the class
            prior of generated samples is `config.positive_rate`.
        classifier: binary classifier, logits `(N, 2)` or `(N, 1)`; a frozen copy is used.
        config: settings.
        out_dir: folder for the checkpoints (`conditional_gan.ckpt.safetensors`,
            `conditional_encoder.ckpt.safetensors`) and the final
            `conditional_gan.safetensors`.
        resume: continue from the checkpoints in `out_dir`.
        progress: tqdm bars.
        device: `"cpu"`, `"cuda"` or `"auto"`.
        data: description of the data stored with the weights.

    Returns:
        `ConditionalLatentModel` in eval mode; `meta["metrics"]` has `class_consistency`,
        `meta["encoder"]` the encoder's history.

    Example:
        >>> from xai_gen.models import SmallCNN
        >>> x, y = torch.rand(16, 1, 28, 28) * 2 - 1, torch.arange(16) % 2
        >>> cfg = ConditionalGANConfig(structural_dim=4, class_dim=2, width=4, steps=2, batch_size=8,
        ...                            consistency_z1=4, encoder=EncoderConfig(width=4, epochs=1))
        >>> cond = train_conditional_gan(x, y, SmallCNN(num_classes=2), cfg, progress=False)
        >>> cond.generate(torch.zeros(1, 4), torch.zeros(1, 2)).shape
        torch.Size([1, 1, 28, 28])
    """
    cfg = config or ConditionalGANConfig()
    images = _check_pair_data(images, labels, classifier)
    dev = resolve_device(device)
    shape = tuple(images.shape[1:])
    latent = cfg.structural_dim + cfg.class_dim
    torch.manual_seed(cfg.seed)
    cond = ConditionalLatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=latent, image_shape=shape, width=cfg.width),
        nets.spec("dcgan_encoder", out_dim=latent, image_shape=shape, width=cfg.width),
        structural_dim=cfg.structural_dim,
    ).to(dev)
    generator = cond.generator.train()
    disc = nets.build(nets.spec("dcgan_encoder", out_dim=1, image_shape=shape, width=cfg.width)).to(dev).train()
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=cfg.betas)
    n, bs = len(images), cfg.batch_size
    info = {"n": n, "positive_share": labels.float().mean().item(), "image_shape": list(shape), **(data or {})}
    loop = TrainingLoop("conditional_gan", cfg, cfg.steps, cfg.log_every, {"generator": generator, "discriminator": disc},
                        {"generator": opt_g, "discriminator": opt_d}, out_dir, resume, progress, data=info)

    def sample(k: int) -> tuple[Tensor, Tensor]:
        z, y = sample_conditional(loop, k, cfg.structural_dim, cfg.class_dim, cfg.positive_rate)
        return z.to(dev), y.to(dev)

    # A frozen copy: the caller's classifier keeps its device, mode and flags.
    clf = frozen_copy(classifier).to(dev)

    def step() -> dict[str, float]:
        # Discriminator: log D(x) + log(1 - D(G(z1, y))) (Eq. 1, first two terms).
        disc.requires_grad_(True)
        real = images[loop.batch(n, bs)].to(dev)
        z, _ = sample(len(real))
        with torch.no_grad():
            fake = generator(z)
        d_loss = F.softplus(-disc(real)).mean() + F.softplus(disc(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # Generator: non-saturating adversarial term plus the classifier's cross-entropy
        # w.r.t. the conditioning class (Eq. 1, third term); D and C frozen.
        disc.requires_grad_(False)
        z, y = sample(bs)
        fake = generator(z)
        adv = F.softplus(-disc(fake)).mean()
        ce = _class_loss(clf(fake), y, cfg.positive_class)
        g_loss = adv + cfg.classifier_weight * ce
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return {"discriminator": d_loss.item(), "adversarial": adv.item(), "classifier_ce": ce.item()}

    def evaluate() -> dict[str, float]:
        if cfg.log_consistency_z1 <= 0:
            return {}
        return {"class_consistency": class_consistency(cond, clf, cfg.log_consistency_z1, cfg.seed, cfg.positive_class)}

    steps_before = loop.step
    loop.run(step, evaluate)
    generator.eval()
    prior: Callable[[TrainingLoop, int], Tensor] = lambda lp, k: sample_conditional(  # noqa: E731
        lp, k, cfg.structural_dim, cfg.class_dim, cfg.positive_rate)[0]
    # An encoder checkpoint is only valid for the generator it was fitted to: resume it only
    # when this call did not train the generator any further.
    encoder, enc_loop = fit_encoder(generator, images, cfg.encoder, "conditional_encoder", out_dir,
                                    resume and loop.step == steps_before, progress, device, data, sample_z=prior)
    cond.encoder = encoder
    cond.architecture["encoder"] = encoder.spec
    cond.to(dev).eval()
    metrics = dict(loop.metrics)
    if cfg.consistency_z1 > 0:
        metrics["class_consistency"] = class_consistency(
            cond, clf, cfg.consistency_z1, cfg.seed, cfg.positive_class)
    cond.meta = {**loop.result_meta(), "metrics": {**metrics, **enc_loop.metrics}, "encoder": enc_loop.result_meta()}
    if out_dir is not None:
        cond.save(Path(out_dir) / "conditional_gan.safetensors")
    return cond


def class_consistency(
    cond_lm: ConditionalLatentModel,
    classifier: nn.Module,
    n_z1: int = 1000,
    seed: int = 0,
    positive_class: int = 1,
    batch_size: int = 250,
) -> float:
    """The traversal paper's generator check: how often the classifier agrees with the class fed in.

    For each of `n_z1` structural codes z1 ~ N(0, I), one negative sample `G(z1, 0)` and
    three positive samples `G(z1, z2)`, z2 ~ N(0, I), are generated; a sample counts as
    correct when the classifier's positive probability is > 0.5 exactly for the positive
    samples. The paper reports 91.15 %.

    Args:
        cond_lm: the conditional generator.
        classifier: binary classifier (logits `(N, 2)` or `(N, 1)`); left unchanged.
        n_z1: number of structural codes (4 samples each).
        seed: seed of the codes.
        positive_class: column of the positive class in the classifier's logits.
        batch_size: z1 per forward pass.

    Returns:
        share of the `4 * n_z1` samples classified as their conditioning class, in [0, 1].

    Example:
        >>> from xai_gen.latent import nets
        >>> cond = ConditionalLatentModel.from_specs(
        ...     nets.spec("dcgan_generator", latent_dim=6, image_shape=(1, 28, 28), width=4),
        ...     nets.spec("dcgan_encoder", out_dim=6, image_shape=(1, 28, 28), width=4), structural_dim=4)
        >>> always_positive = nn.Sequential(nn.Flatten(), nn.Linear(784, 1))
        >>> _ = always_positive[1].weight.data.zero_(), always_positive[1].bias.data.fill_(5.0)
        >>> class_consistency(cond, always_positive, n_z1=10)  # right for the 3 positives of 4
        0.75
    """
    if n_z1 < 1:
        raise ValueError(f"n_z1 must be >= 1, got {n_z1}")
    gen = torch.Generator().manual_seed(seed)
    dev = model_device(cond_lm)
    correct = 0
    with evaluating(cond_lm, classifier):
        for start in range(0, n_z1, batch_size):
            b = min(batch_size, n_z1 - start)
            z1 = torch.randn(b, cond_lm.structural_dim, generator=gen).repeat(4, 1)
            z2 = torch.randn(4 * b, cond_lm.class_dim, generator=gen)
            z2[:b] = 0.0  # the first copy of every z1 is the negative sample
            wanted = torch.arange(4 * b) >= b
            p = positive_probability(classifier, cond_lm.generate(z1.to(dev), z2.to(dev)), positive_class)
            correct += int(((p.cpu() > 0.5) == wanted).sum())
    return correct / (4 * n_z1)


def binary_subset(images: Tensor, labels: Tensor, negative: int, positive: int) -> tuple[Tensor, Tensor]:
    """The images of two classes, relabelled 0 (`negative`) and 1 (`positive`).

    Example:
        >>> x, y = binary_subset(torch.zeros(5, 1, 4, 4), torch.tensor([4, 9, 1, 9, 4]), 4, 9)
        >>> y.tolist()
        [0, 1, 1, 0]
    """
    if negative == positive:
        raise ValueError(f"negative and positive classes must differ, got {negative} twice")
    keep = (labels == negative) | (labels == positive)
    if not bool((labels == negative).any()) or not bool((labels == positive).any()):
        raise ValueError(f"labels must contain both classes {negative} and {positive}")
    return images[keep], (labels[keep] == positive).long()

