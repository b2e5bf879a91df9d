"""`LatentModel`: a generator (z -> image) and an encoder (image -> z) that explainers walk in."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xai_gen._core.checks import check_images
from xai_gen._core.state import preserved
from xai_gen._core.validators import is_int
from xai_gen._io import file_kind, load_module, save_module
from xai_gen.latent import nets


@file_kind
class LatentModel(nn.Module):
    """Generator plus encoder with a shared latent space.

    Args:
        generator: maps codes `(N, *latent_shape)` to images `(N, C, H, W)`.
        encoder: maps images `(N, C, H, W)` to codes `(N, *latent_shape)`.
        latent_dim: size of a flat code `(N, latent_dim)`; give it or `latent_shape`.
        image_shape: `(C, H, W)` of the images the model accepts.
        value_range: `(low, high)` pixel range the generator produces (tanh: `(-1, 1)`).
        architecture: `{"generator": spec, "encoder": spec}` (see `xai_gen.latent.nets.spec`),
            needed to `save`/`load`.
        meta: recipe, config, data and metrics, stored with the weights.
        latent_shape: shape of one code, e.g. `(C, h, w)` for an autoencoder whose code is a
            feature map; `latent_dim` is then its size. The explainers search in the
            flattened codes (`encode_flat`), `decode` takes either form, and they report
            codes in this shape.

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
        latent_dim: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        value_range: tuple[float, float] = (-1.0, 1.0),
        architecture: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        latent_shape: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.encoder = encoder
        self.latent_shape = _latent_shape(latent_dim, latent_shape)
        self.latent_dim = math.prod(self.latent_shape)
        if image_shape is None:
            raise ValueError("image_shape (C, H, W) is required")
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
        latent_shape: tuple[int, ...] | None = None,
    ) -> LatentModel:
        """Build from two `nets.spec(...)` descriptions; the latent size and image shape come
        from the generator's (`latent_shape` for codes that are not flat)."""
        kw = generator["kwargs"]
        gen = nets.build(generator)
        # A generator of feature-map codes knows their shape; a flat one names its size.
        latent_shape = latent_shape or getattr(gen, "latent_shape", None)
        return cls(
            gen,
            nets.build(encoder),
            latent_dim=None if latent_shape is not None else kw["latent_dim"],
            image_shape=tuple(kw["image_shape"]),
            value_range=value_range,
            architecture={"generator": generator, "encoder": encoder},
            meta=meta,
            latent_shape=latent_shape,
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
        """Validate `z: (N, *latent_shape)` or flat `(N, latent_dim)`; returns it shaped."""
        if isinstance(z, Tensor) and z.dim() >= 2:
            if tuple(z.shape[1:]) == self.latent_shape:
                return z
            if z.dim() == 2 and z.shape[1] == self.latent_dim:
                return z.reshape(len(z), *self.latent_shape)
        shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        want = ", ".join(str(s) for s in self.latent_shape)
        flat = "" if len(self.latent_shape) == 1 else f" or (N, {self.latent_dim})"
        raise ValueError(f"{name} must have shape (N, {want}){flat}, got {shape}")

    # -- maps ---------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """`x: (N, C, H, W)` -> `z: (N, *latent_shape)`.

        Raises:
            ValueError: the encoder's codes do not have the declared `latent_shape` (for a
                flat `latent_dim`: not `latent_dim` numbers per image).
        """
        z = self.encoder(x)
        # A flat declaration checks the size only: encoders that return (N, D, 1, 1) or any
        # other layout of D numbers have always worked with latent_dim=D.
        flat_ok = len(self.latent_shape) == 1 and isinstance(z, Tensor) and z[0].numel() == self.latent_dim
        if not flat_ok and (not isinstance(z, Tensor) or tuple(z.shape[1:]) != self.latent_shape):
            got = tuple(z.shape[1:]) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(
                f"the encoder returned codes of shape {got} per image, but the latent model "
                f"declares latent_shape {self.latent_shape}; pass the encoder's code shape as "
                "latent_shape (or latent_dim for flat codes)"
            )
        return z

    def encode_flat(self, x: Tensor) -> Tensor:
        """`x: (N, C, H, W)` -> flat codes `(N, latent_dim)`, what the explainers search in."""
        z = self.encode(x)
        return z.reshape(len(z), self.latent_dim)

    def shaped(self, z: Tensor) -> Tensor:
        """Flat codes `(N, latent_dim)` -> `(N, *latent_shape)` (a view)."""
        return z.reshape(len(z), *self.latent_shape)

    def decode(self, z: Tensor) -> Tensor:
        """`z: (N, *latent_shape)`, or flat `(N, latent_dim)` -> images `(N, C, H, W)`."""
        if tuple(z.shape[1:]) != self.latent_shape and z.dim() == 2 and z.shape[1] == self.latent_dim:
            z = self.shaped(z)
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
        out = {
            "architecture": self.architecture,
            "latent_dim": self.latent_dim,
            "image_shape": list(self.image_shape),
            "value_range": list(self.value_range),
        }
        if len(self.latent_shape) > 1:
            out["latent_shape"] = list(self.latent_shape)
        return out

    @classmethod
    def from_file_spec(cls, spec: dict[str, Any], meta: dict[str, Any]) -> LatentModel:
        """An untrained model as described by `file_spec()`, carrying `meta`."""
        arch = spec["architecture"]
        shape = spec.get("latent_shape")  # flat codes' files have none
        return cls.from_specs(
            arch["generator"], arch["encoder"], tuple(spec["value_range"]), meta,
            latent_shape=None if shape is None else tuple(shape),
        )

    def save(self, path: str | Path) -> Path:
        """Write weights (safetensors) and JSON metadata (architecture, recipe, config, metrics)."""
        return save_module(self, path)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> LatentModel:
        """Read a file written by `save` (of this class or a subclass, e.g. a MONAI latent
        model); never unpickles. Returned in eval mode."""
        return load_module(path, cls.kind, map_location)


def _latent_shape(latent_dim: int | None, latent_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape of one code from `latent_dim` (flat) or `latent_shape`; they must agree."""
    if latent_shape is None:
        if latent_dim is None:
            raise ValueError("give latent_dim (flat codes) or latent_shape (e.g. (C, h, w))")
        if isinstance(latent_dim, bool) or int(latent_dim) != latent_dim or latent_dim < 1:
            raise ValueError(f"latent_dim must be an int >= 1, got {latent_dim!r}")
        return (int(latent_dim),)
    shape = tuple(latent_shape)
    if not shape or not all(is_int(s) and s >= 1 for s in shape):
        raise ValueError(f"latent_shape must be a tuple of ints >= 1, got {latent_shape!r}")
    if latent_dim is not None and latent_dim != math.prod(shape):
        raise ValueError(f"latent_dim {latent_dim} is not the size of latent_shape {shape} ({math.prod(shape)})")
    return tuple(int(s) for s in shape)


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
