"""Network builders for generators, encoders and critics, named so that files can rebuild them.

The layout is the GVR paper's (Sec. 3.1): DCGAN without batch normalisation, SELU
activations, tanh output on the generator. The number of stride-2 stages follows the image
size (28 -> 7x7 start, 64 -> 4x4 start, 128 -> 4x4 start).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


def _stages(size: int) -> tuple[int, int]:
    """Number of stride-2 stages and the smallest feature-map size for a square image."""
    stages = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        stages += 1
    if stages == 0:
        raise ValueError(f"image size must be divisible by 2 at least once with a result >= 4, got {size}")
    return stages, size


class DCGANGenerator(nn.Module):
    """z `(N, latent_dim)` -> image `(N, C, H, W)` in [-1, 1]."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], width: int = 64) -> None:
        super().__init__()
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


class DCGANEncoder(nn.Module):
    """image `(N, C, H, W)` -> `(N, out_dim)`; also the WGAN critic with `out_dim=1`."""

    def __init__(self, out_dim: int, image_shape: tuple[int, int, int], width: int = 64) -> None:
        super().__init__()
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


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "dcgan_generator": DCGANGenerator,
    "dcgan_encoder": DCGANEncoder,
}


def build(spec: dict[str, Any]) -> nn.Module:
    """Build a network from `{"name": ..., "kwargs": {...}}` (as stored in file metadata)."""
    name = spec.get("name")
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    kwargs = dict(spec.get("kwargs", {}))
    if "image_shape" in kwargs:
        kwargs["image_shape"] = tuple(kwargs["image_shape"])
    module = ARCHITECTURES[name](**kwargs)
    # The recipes pass networks between each other (WGAN generator -> encoder recipe) and
    # need the description to save the result.
    module.spec = {"name": name, "kwargs": dict(spec.get("kwargs", {}))}
    return module


def spec(name: str, **kwargs: Any) -> dict[str, Any]:
    """The JSON description of a network that `build` turns back into a module."""
    return {"name": name, "kwargs": kwargs}
