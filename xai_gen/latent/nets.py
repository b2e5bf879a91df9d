"""Network builders for generators, encoders and critics, named so that files can rebuild them.

The layout is the GVR paper's (Sec. 3.1): DCGAN without batch normalisation, SELU
activations, tanh output on the generator. The number of stride-2 stages follows the image
size (28 -> 7x7 start, 64 -> 4x4 start, 128 -> 4x4 start).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from xai_gen._io import file_kind


def _stages(size: int) -> tuple[int, int]:
    """Number of stride-2 stages and the smallest feature-map size for a square image."""
    stages = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        stages += 1
    if stages == 0:
        raise ValueError(f"image size must be divisible by 2 at least once with a result >= 4, got {size}")
    return stages, size


@file_kind
class DCGANGenerator(nn.Module):
    """z `(N, latent_dim)` -> image `(N, C, H, W)` in [-1, 1].

    Attributes:
        spec: the `spec(...)` that `build` turns back into this network (for files and for
            recipes that hand networks to each other).
        meta: recipe, config, metrics and history, stored with the weights.
    """

    kind: ClassVar[str] = "generator"

    def __init__(
        self, latent_dim: int, image_shape: tuple[int, int, int], width: int = 64, meta: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.spec = spec("dcgan_generator", latent_dim=latent_dim, image_shape=list(image_shape), width=width)
        self.latent_dim = latent_dim
        self.meta = dict(meta or {})
        c, h, w = image_shape
        if h != w:
            raise ValueError(f"image_shape must be square, got {image_shape}")
        stages, s0 = _stages(h)
        ch = width * 2 ** (stages - 1)
        self.start = (ch, s0)
        self.fc = nn.Linear(latent_dim, ch * s0 * s0)
        layers: list[nn.Module] = [nn.SELU()]
        for _ in range(stages):
            out = max(ch // 2, width // 2)
            layers += [nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1), nn.SELU()]
            ch = out
        layers += [nn.Conv2d(ch, c, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        ch, s0 = self.start
        return self.net(self.fc(z).view(z.shape[0], ch, s0, s0))

    def file_spec(self) -> dict[str, Any]:
        """What rebuilds this network from a file."""
        return {"architecture": self.spec}

    @classmethod
    def from_file_spec(cls, spec: dict[str, Any], meta: dict[str, Any]) -> DCGANGenerator:
        """An untrained generator as described by `file_spec()`, carrying `meta`."""
        arch = spec["architecture"]
        if arch.get("name") != "dcgan_generator":
            raise ValueError(f"a generator file must describe a 'dcgan_generator', got {arch.get('name')!r}")
        return cls(**_kwargs(arch), meta=meta)


class DCGANEncoder(nn.Module):
    """image `(N, C, H, W)` -> `(N, out_dim)`; also the WGAN critic with `out_dim=1`.

    Attributes:
        spec: the `spec(...)` that `build` turns back into this network.
    """

    def __init__(self, out_dim: int, image_shape: tuple[int, int, int], width: int = 64) -> None:
        super().__init__()
        self.spec = spec("dcgan_encoder", out_dim=out_dim, image_shape=list(image_shape), width=width)
        c, h, _ = image_shape
        stages, s0 = _stages(h)
        layers: list[nn.Module] = []
        ch_in, ch = c, width
        for _ in range(stages):
            layers += [nn.Conv2d(ch_in, ch, 4, stride=2, padding=1), nn.SELU()]
            ch_in, ch = ch, ch * 2
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(ch_in * s0 * s0, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class _SpatialCode(nn.Module):
    """What the spatial-code encoder and decoder share: their spec and code shape."""

    def __init__(self, name: str, image_shape: tuple[int, int, int], latent_channels: int, stages: int, width: int) -> None:
        super().__init__()
        self.spec = spec(name, image_shape=list(image_shape), latent_channels=latent_channels, stages=stages, width=width)
        c, h, w = image_shape
        if h % 2**stages or w % 2**stages:
            raise ValueError(f"image_shape {tuple(image_shape)}: H and W must be divisible by 2**stages = {2**stages}")
        #: `(latent_channels, H / 2**stages, W / 2**stages)`: one code is a feature map.
        self.latent_shape = (latent_channels, h // 2**stages, w // 2**stages)


class SpatialEncoder(_SpatialCode):
    """image `(N, C, H, W)` -> a feature-map code `(N, latent_channels, H / 2**stages, W / 2**stages)`.

    The layout of the autoencoders of latent diffusion and MONAI's `AutoencoderKL`: stride-2
    convolutions down to a small map, no flattening.

    Example:
        >>> import torch
        >>> SpatialEncoder((1, 16, 16), latent_channels=2, stages=2, width=4)(torch.zeros(3, 1, 16, 16)).shape
        torch.Size([3, 2, 4, 4])
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_channels: int = 4, stages: int = 2, width: int = 32) -> None:
        super().__init__("spatial_encoder", image_shape, latent_channels, stages, width)
        layers: list[nn.Module] = [nn.Conv2d(image_shape[0], width, 3, padding=1), nn.SELU()]
        ch = width
        for _ in range(stages):
            layers += [nn.Conv2d(ch, ch * 2, 4, stride=2, padding=1), nn.SELU()]
            ch *= 2
        self.net = nn.Sequential(*layers, nn.Conv2d(ch, latent_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SpatialDecoder(_SpatialCode):
    """A feature-map code `(N, latent_channels, h, w)` -> image `(N, C, h * 2**stages, w * 2**stages)` in [-1, 1].

    Example:
        >>> import torch
        >>> SpatialDecoder((1, 16, 16), latent_channels=2, stages=2, width=4)(torch.zeros(3, 2, 4, 4)).shape
        torch.Size([3, 1, 16, 16])
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_channels: int = 4, stages: int = 2, width: int = 32) -> None:
        super().__init__("spatial_decoder", image_shape, latent_channels, stages, width)
        ch = width * 2**stages
        layers: list[nn.Module] = [nn.Conv2d(latent_channels, ch, 3, padding=1), nn.SELU()]
        for _ in range(stages):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1), nn.SELU()]
            ch //= 2
        self.net = nn.Sequential(*layers, nn.Conv2d(ch, image_shape[0], 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "dcgan_generator": DCGANGenerator,
    "dcgan_encoder": DCGANEncoder,
    "spatial_encoder": SpatialEncoder,
    "spatial_decoder": SpatialDecoder,
}


def build(spec: dict[str, Any]) -> nn.Module:
    """Build a network from `{"name": ..., "kwargs": {...}}` (as stored in file metadata).

    The network carries its own description as `.spec`.
    """
    name = spec.get("name")
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](**_kwargs(spec))


def _kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of a spec (JSON has lists where the constructors take tuples)."""
    kwargs = dict(spec.get("kwargs", {}))
    if "image_shape" in kwargs:
        kwargs["image_shape"] = tuple(kwargs["image_shape"])
    return kwargs


def spec(name: str, **kwargs: Any) -> dict[str, Any]:
    """The JSON description of a network that `build` turns back into a module."""
    return {"name": name, "kwargs": kwargs}
