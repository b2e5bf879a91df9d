"""`LatentModel`: a generator (z -> image) and an encoder (image -> z) that explainers walk in."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xai_gen._core.checks import check_images
from xai_gen._core.state import preserved
from xai_gen._io import file_kind, load_module, save_module
from xai_gen.latent import nets


@file_kind
class LatentModel(nn.Module):
    """Generator plus encoder with a shared latent space.

    Args:
        generator: maps `(N, latent_dim)` to images `(N, C, H, W)`.
        encoder: maps images `(N, C, H, W)` to `(N, latent_dim)`.
        latent_dim: size of the latent code.
        image_shape: `(C, H, W)` of the images the model accepts.
        value_range: `(low, high)` pixel range the generator produces (tanh: `(-1, 1)`).
        architecture: `{"generator": spec, "encoder": spec}` (see `xai_gen.latent.nets.spec`),
            needed to `save`/`load`.
        meta: recipe, config, data and metrics, stored with the weights.

    Example:
        >>> import torch
        >>> from xai_gen.latent import LatentModel, nets
        >>> lm = LatentModel.from_specs(
        ...     nets.spec("dcgan_generator", latent_dim=8, image_shape=(1, 28, 28), width=8),
        ...     nets.spec("dcgan_encoder", out_dim=8, image_shape=(1, 28, 28), width=8))
        >>> lm.reconstruct(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 1, 28, 28])
    """

    kind: ClassVar[str] = "latent_model"

    def __init__(
        self,
        generator: nn.Module,
        encoder: nn.Module,
        latent_dim: int,
        image_shape: tuple[int, int, int],
        value_range: tuple[float, float] = (-1.0, 1.0),
        architecture: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.encoder = encoder
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.architecture = architecture
        self.meta = dict(meta or {})

    @classmethod
    def from_specs(
        cls,
        generator: dict[str, Any],
        encoder: dict[str, Any],
        value_range: tuple[float, float] = (-1.0, 1.0),
        meta: dict[str, Any] | None = None,
    ) -> LatentModel:
        """Build from two `nets.spec(...)` descriptions; the latent size and image shape come from the generator's."""
        kw = generator["kwargs"]
        return cls(
            nets.build(generator),
            nets.build(encoder),
            latent_dim=kw["latent_dim"],
            image_shape=tuple(kw["image_shape"]),
            value_range=value_range,
            architecture={"generator": generator, "encoder": encoder},
            meta=meta,
        )

    # -- checks -------------------------------------------------------------------------
    def check_images(self, x: Tensor, name: str = "x") -> Tensor:
        """Validate `x: (N, C, H, W)` against `image_shape`; raise ValueError naming `name`."""
        x, _ = check_images(x, name)
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{name} has image shape {tuple(x.shape[1:])} but the latent model accepts "
                f"{self.image_shape} (C, H, W)"
            )
        return x

    def check_value_range(self, x: Tensor, name: str = "x") -> None:
        """Check that `x`'s values suit the model: images in another range than the one it was
        trained on still decode and explain, but to meaningless results.

        Args:
            x: `(N, C, H, W)` images.
            name: the argument's name in the error.

        Raises:
            ValueError: a value lies outside `value_range` by more than 5 % of its span (the
                message names both ranges); smaller excursions are noise added by robustness
                metrics and pass.

        Warns:
            UserWarning: every value lies in one half of `value_range` (e.g. images in [0, 1]
                given to a model of [-1, 1]): the batch probably needs rescaling.

        Example:
            >>> lm = LatentModel(torch.nn.Identity(), torch.nn.Identity(), 4, (1, 2, 2))
            >>> lm.check_value_range(torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2))
            >>> lm.check_value_range(torch.full((1, 1, 2, 2), 255.0))
            Traceback (most recent call last):
            ...
            ValueError: x has values in [255, 255] but the latent model expects [-1, 1]; rescale the images (e.g. 2 * x / 255 - 1 for 0..255 pixels)
        """
        lo, hi = self.value_range
        x_lo, x_hi = float(x.min()), float(x.max())
        # Robustness metrics perturb inputs by small noise (max-sensitivity's L-inf ball of 1 % of
        # the span) and rescaling rounds; a wrong scaling (0..255 for [-1, 1]) is far beyond 5 %.
        slack = 0.05 * (hi - lo)
        if x_lo < lo - slack or x_hi > hi + slack:
            raise ValueError(
                f"{name} has values in [{x_lo:.4g}, {x_hi:.4g}] but the latent model expects "
                f"[{lo:.4g}, {hi:.4g}]; rescale the images (e.g. 2 * x / 255 - 1 for 0..255 pixels)"
            )
        mid = (lo + hi) / 2  # NaN for an unbounded range: no warning then
        if x.numel() > 1 and (x_lo >= mid or x_hi <= mid):
            warnings.warn(
                f"{name} has values in [{x_lo:.4g}, {x_hi:.4g}], only one half of the latent "
                f"model's range [{lo:.4g}, {hi:.4g}]; were the images scaled for another range?",
                UserWarning,
                stacklevel=4,  # the caller of Explainer.attribute
            )

    def check_latent(self, z: Tensor, name: str = "z") -> Tensor:
        """Validate `z: (N, latent_dim)`."""
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != self.latent_dim:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"{name} must have shape (N, {self.latent_dim}), got {shape}")
        return z

    # -- maps ---------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """`x: (N, C, H, W)` -> `z: (N, latent_dim)`."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """`z: (N, latent_dim)` -> images `(N, C, H, W)`."""
        return self.generator(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    def reconstruct(self, x: Tensor) -> Tensor:
        """`decode(encode(x))`, `(N, C, H, W)`."""
        return self.decode(self.encode(x))

    def invert(self, x: Tensor, steps: int = 100, lr: float = 0.05) -> Tensor:
        """Latent codes whose decoding matches `x`: encoder start, then Adam on the image MSE.

        Args:
            x: `(N, C, H, W)` images.
            steps: refinement steps (0 returns the encoder's codes).
            lr: Adam learning rate.

        Returns:
            `(N, latent_dim)` detached codes; never worse than the encoder's own (per sample,
            the better of the two is kept).
        """
        x = self.check_images(x)
        with torch.no_grad():
            z0 = self.encode(x)
        return _refine(lambda z: F.mse_loss(self.decode(z), x, reduction="none").flatten(1).mean(1), z0, steps, lr, self)

    # -- files --------------------------------------------------------------------------
    def file_spec(self) -> dict[str, Any]:
        """What rebuilds this model from a file: architecture, latent size, image shape, value range."""
        if self.architecture is None:
            raise ValueError("this LatentModel has no architecture description; build it with from_specs to save it")
        return {
            "architecture": self.architecture,
            "latent_dim": self.latent_dim,
            "image_shape": list(self.image_shape),
            "value_range": list(self.value_range),
        }

    @classmethod
    def from_file_spec(cls, spec: dict[str, Any], meta: dict[str, Any]) -> LatentModel:
        """An untrained model as described by `file_spec()`, carrying `meta`."""
        arch = spec["architecture"]
        return cls.from_specs(arch["generator"], arch["encoder"], tuple(spec["value_range"]), meta)

    def save(self, path: str | Path) -> Path:
        """Write weights (safetensors) and JSON metadata (architecture, recipe, config, metrics)."""
        return save_module(self, path)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> LatentModel:
        """Read a file written by `save`; never unpickles. Returned in eval mode."""
        return load_module(path, cls.kind, map_location)


def _refine(loss_fn: Any, z0: Tensor, steps: int, lr: float, module: nn.Module) -> Tensor:
    """Per-sample Adam refinement of latent codes; keeps each sample's best code.

    `loss_fn(z)` returns one loss per sample `(N,)`. The module is in eval mode with frozen
    parameters for the duration; every submodule's mode and every flag are restored afterwards
    (`preserved`: restoring only the top module's own flag would switch a wrapper such as a
    fresh `nn.ModuleList`, and everything inside it, to train mode).
    """
    z = z0.detach().clone().requires_grad_(True)
    with preserved(module):
        with torch.enable_grad():
            opt = torch.optim.Adam([z], lr=lr)
            best, best_loss = z0.detach().clone(), None
            # The loss of the current z is evaluated once per step, before the update, and
            # doubles as the record for keeping the best code seen.
            for step in range(steps + 1):
                loss = loss_fn(z)
                with torch.no_grad():
                    better = torch.ones_like(loss, dtype=torch.bool) if best_loss is None else loss < best_loss
                    best[better] = z.detach()[better]
                    best_loss = loss.detach() if best_loss is None else torch.where(better, loss.detach(), best_loss)
                if step == steps:
                    break
                opt.zero_grad()
                loss.sum().backward()
                opt.step()
    return best.detach()
