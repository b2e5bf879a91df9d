"""`ConditionalLatentModel`: the latent-traversal paper's generator G(z1, z2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xai_gen._core.validators import check_number
from xai_gen._io import file_kind
from xai_gen.latent import nets
from xai_gen.latent.model import LatentModel, _refine


def positive_probability(classifier: Callable[[Tensor], Tensor], x: Tensor, positive_class: int = 1) -> Tensor:
    """P(positive | x) `(N,)`: softmax column for `(N, K)` logits, sigmoid for `(N,)`/`(N, 1)`."""
    out = classifier(x)
    if out.dim() == 2 and out.shape[1] > 1:
        return out.softmax(dim=1)[:, positive_class]
    return torch.sigmoid(out.reshape(out.shape[0]))


@file_kind
class ConditionalLatentModel(LatentModel):
    """Generator `G(z1, z2)`: structural latent `z1`, class latent `z2` (zero = negative class).

    The full code is the concatenation `z = [z1, z2]` of size `structural_dim + class_dim`;
    `encode`/`decode` work on it, `generate(z1, z2)` and `split(z)` on the halves.

    Args:
        generator: maps `(N, structural_dim + class_dim)` to images.
        encoder: maps images to `(N, structural_dim + class_dim)`.
        structural_dim: size of `z1`.
        class_dim: size of `z2`.
        image_shape: `(C, H, W)`, as in `LatentModel`.
        value_range: pixel range of the generator, as in `LatentModel`.
        architecture: the `nets.spec` descriptions, as in `LatentModel`.
        meta: recipe, config and metrics, as in `LatentModel`.
    """

    kind: ClassVar[str] = "conditional_latent_model"

    def __init__(
        self,
        generator: nn.Module,
        encoder: nn.Module,
        structural_dim: int,
        class_dim: int,
        image_shape: tuple[int, int, int],
        value_range: tuple[float, float] = (-1.0, 1.0),
        architecture: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(generator, encoder, structural_dim + class_dim, image_shape, value_range, architecture, meta)
        self.structural_dim = int(structural_dim)
        self.class_dim = int(class_dim)

    @classmethod
    def from_specs(  # type: ignore[override]
        cls,
        generator: dict[str, Any],
        encoder: dict[str, Any],
        structural_dim: int,
        value_range: tuple[float, float] = (-1.0, 1.0),
        meta: dict[str, Any] | None = None,
    ) -> ConditionalLatentModel:
        """Build from `nets.spec` descriptions; `class_dim = latent_dim - structural_dim`."""
        kw = generator["kwargs"]
        return cls(
            nets.build(generator),
            nets.build(encoder),
            structural_dim=structural_dim,
            class_dim=kw["latent_dim"] - structural_dim,
            image_shape=tuple(kw["image_shape"]),
            value_range=value_range,
            architecture={"generator": generator, "encoder": encoder},
            meta=meta,
        )

    def split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """`z: (N, structural_dim + class_dim)` -> `(z1, z2)`."""
        return z[:, : self.structural_dim], z[:, self.structural_dim :]

    def generate(self, z1: Tensor, z2: Tensor) -> Tensor:
        """`G(z1, z2)`: `z1: (N, structural_dim)`, `z2: (N, class_dim)` -> `(N, C, H, W)`."""
        return self.decode(torch.cat([z1, z2], dim=1))

    def invert(
        self,
        x: Tensor,
        steps: int = 200,
        lr: float = 0.05,
        *,
        classifier: Callable[[Tensor], Tensor] | None = None,
        lam: float = 1.0,
        positive_class: int = 1,
        anchor_weight: float = 0.0,
    ) -> Tensor:
        """Traversal paper, Eq. 2: `argmin MSE(G(z1, z2), x) + lam * BCE(C(G(z1, z2)), C(x))`.

        Without a classifier this is `LatentModel.invert` (image MSE only), so the model can
        stand wherever a `LatentModel` is expected; the classifier guidance is keyword-only.

        `anchor_weight > 0` adds `anchor_weight * mean((z1 - E(x)_1)^2)`: the structure code
        stays near the encoder's. Unanchored, the descent is free to draw the positive class's
        features through `z1` (it only has to match `x`), and `G(z1, 0)` then keeps them: the
        generator was trained to be class-free in `z1` only on the encoder's and the prior's codes.

        Args:
            x: `(N, C, H, W)` images.
            steps: Adam steps from the encoder's codes.
            lr: Adam learning rate.
            classifier: `C`, logits `(N, K)` or a scalar output; None drops the BCE term.
            lam: weight of the BCE term.
            positive_class: the column of `C`'s logits that is the positive class.
            anchor_weight: weight of the structure-code anchor (0: the paper's Eq. 2 alone).

        Returns:
            `(N, structural_dim + class_dim)` codes; split them with `split`.
        """
        x = self.check_images(x)
        check_number(anchor_weight, "anchor_weight", 0)
        with torch.no_grad():
            z0 = self.encode(x)
            p_x = positive_probability(classifier, x, positive_class) if classifier is not None else None
        z1_encoded = z0[:, : self.structural_dim]

        def loss_fn(z: Tensor) -> Tensor:
            g = self.decode(z)
            loss = F.mse_loss(g, x, reduction="none").flatten(1).mean(1)
            if p_x is not None:
                p_g = positive_probability(classifier, g, positive_class).clamp(1e-6, 1 - 1e-6)
                loss = loss + lam * F.binary_cross_entropy(p_g, p_x, reduction="none")
            if anchor_weight:
                loss = loss + anchor_weight * (z[:, : self.structural_dim] - z1_encoded).pow(2).mean(1)
            return loss

        mods = nn.ModuleList([self] + ([classifier] if isinstance(classifier, nn.Module) else []))
        return _refine(loss_fn, z0, steps, lr, mods)

    def file_spec(self) -> dict[str, Any]:
        """`LatentModel.file_spec` plus the size of the structural latent."""
        return {**super().file_spec(), "structural_dim": self.structural_dim}

    @classmethod
    def from_file_spec(cls, spec: dict[str, Any], meta: dict[str, Any]) -> ConditionalLatentModel:
        """An untrained model as described by `file_spec()`, carrying `meta`."""
        arch = spec["architecture"]
        return cls.from_specs(arch["generator"], arch["encoder"], spec["structural_dim"], tuple(spec["value_range"]), meta)
