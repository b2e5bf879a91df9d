"""MONAI's autoencoders as latent models: `from_monai(AutoencoderKL or VQVAE) -> LatentModel`.

MONAI (`pip install "xai-gen[monai]"`) is imported only when one is built. Its `AutoencoderKL`
encodes to a feature map `(N, latent_channels, h, w)` and returns `(z_mu, z_sigma)`; the latent
model encodes to `z_mu`, deterministically (an explainer needs the same code for the same
image), and decodes as MONAI's `decode_stage_2_outputs` does. A `VQVAE`'s code is the
encoder's continuous output; decoding quantises it first, as MONAI does, so a search moves
between codebook entries through MONAI's straight-through gradient.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from xai_gen._io import file_kind
from xai_gen.latent.model import LatentModel

__all__ = ["MONAI_AUTOENCODERS", "MonaiLatentModel", "from_monai"]

MONAI_AUTOENCODERS = ("AutoencoderKL", "VQVAE")
"""The MONAI networks `from_monai` wraps."""


def _monai_nets() -> Any:
    try:
        return importlib.import_module("monai.networks.nets")
    except ImportError as err:  # pragma: no cover - the test command installs the extra
        raise ImportError('MONAI is not installed: pip install "xai-gen[monai]" (or pip install monai)') from err


class _Half(nn.Module):
    """One direction of a MONAI autoencoder that the latent model owns (not registered here,
    so that its weights are stored once, under `autoencoder.`)."""

    def __init__(self, autoencoder: nn.Module, encode: bool) -> None:
        super().__init__()
        object.__setattr__(self, "_autoencoder", autoencoder)
        self._encode = encode

    def forward(self, x: Tensor) -> Tensor:
        ae = self._autoencoder
        if not self._encode:
            return ae.decode_stage_2_outputs(x)
        out = ae.encode(x)
        return out[0] if isinstance(out, tuple) else out  # AutoencoderKL: (z_mu, z_sigma)


@file_kind
class MonaiLatentModel(LatentModel):
    """A `LatentModel` around a MONAI `AutoencoderKL` or `VQVAE` (build it with `from_monai`).

    Attributes:
        autoencoder: the MONAI network (its weights are the model's).
        monai_class: `"AutoencoderKL"` or `"VQVAE"`.
        config: the network's constructor arguments (None: the model cannot be saved).
    """

    kind: ClassVar[str] = "monai_latent_model"

    def __init__(
        self,
        autoencoder: nn.Module,
        image_shape: tuple[int, int, int],
        value_range: tuple[float, float] = (-1.0, 1.0),
        config: Mapping[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        monai_class = type(autoencoder).__name__
        if monai_class not in MONAI_AUTOENCODERS:
            raise TypeError(f"from_monai wraps MONAI's {' or '.join(MONAI_AUTOENCODERS)}, got {monai_class}")
        encoder = _Half(autoencoder, encode=True)
        param = next(autoencoder.parameters())
        with torch.no_grad():  # the code's shape, from one blank image
            latent_shape = tuple(encoder(torch.zeros(1, *image_shape, dtype=param.dtype, device=param.device)).shape[1:])
        super().__init__(
            _Half(autoencoder, encode=False), encoder, image_shape=image_shape, value_range=value_range,
            meta=meta, latent_shape=latent_shape,
        )
        self.autoencoder = autoencoder
        self.monai_class = monai_class
        self.config = None if config is None else dict(config)

    def file_spec(self) -> dict[str, Any]:
        """The MONAI class and configuration, image shape and value range."""
        if self.config is None:
            raise ValueError(
                "this MONAI latent model has no config: pass from_monai(..., config=<the network's "
                "constructor arguments>) to save it"
            )
        return {
            "monai_class": self.monai_class,
            "config": self.config,
            "image_shape": list(self.image_shape),
            "value_range": list(self.value_range),
        }

    @classmethod
    def from_file_spec(cls, spec: dict[str, Any], meta: dict[str, Any]) -> MonaiLatentModel:
        """An untrained model as `file_spec()` describes it, carrying `meta`."""
        network = getattr(_monai_nets(), spec["monai_class"])(**spec["config"])
        return cls(network, tuple(spec["image_shape"]), tuple(spec["value_range"]), spec["config"], meta)


def from_monai(
    autoencoder: nn.Module | str,
    image_shape: tuple[int, int, int],
    value_range: tuple[float, float] = (-1.0, 1.0),
    config: Mapping[str, Any] | None = None,
) -> MonaiLatentModel:
    """A MONAI `AutoencoderKL` or `VQVAE` as a `LatentModel` the generative explainers walk in.

    Args:
        autoencoder: the trained MONAI network, or its class name (`"AutoencoderKL"`,
            `"VQVAE"`) to build an untrained one from `config`.
        image_shape: `(C, H, W)` of its images.
        value_range: its pixel range (MONAI's networks have no output activation: say what
            the images were scaled to when it was trained).
        config: the network's constructor arguments; needed to build it from a name, and to
            `save` the model (MONAI networks do not record them).

    Returns:
        A `MonaiLatentModel`: `encode` gives `z_mu` `(N, *latent_shape)`, `decode` is MONAI's
        `decode_stage_2_outputs`.

    Example:
        >>> import torch
        >>> config = dict(spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 8), num_res_blocks=1,
        ...               attention_levels=(False, False), latent_channels=2, norm_num_groups=4,
        ...               with_encoder_nonlocal_attn=False, with_decoder_nonlocal_attn=False)
        >>> lm = from_monai("AutoencoderKL", image_shape=(1, 16, 16), config=config)
        >>> lm.latent_shape, lm.reconstruct(torch.zeros(2, 1, 16, 16)).shape
        ((2, 8, 8), torch.Size([2, 1, 16, 16]))
    """
    if isinstance(autoencoder, str):
        if autoencoder not in MONAI_AUTOENCODERS or config is None:
            raise ValueError(
                f"building from a name needs one of {MONAI_AUTOENCODERS} and config=, got {autoencoder!r}"
            )
        autoencoder = getattr(_monai_nets(), autoencoder)(**config)
    return MonaiLatentModel(autoencoder, image_shape, value_range, config)
