"""Tiny latent models with known weights for the GVR and latent-traversal tests.

The generator is linear, `g(z) = W z` reshaped to a 4x4 image, with orthonormal columns, so
the encoder `f(x) = W^T x` inverts it exactly (`f(g(z)) = z`) and `d = |z - z0|^2 / 16`. The
latent head is `h(z) = A z + b`; the image classifier is built as `(A W^T) x + b`, so that
`image_classifier(g(z)) == h(z)`: both GVR paths see the same function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel

SHAPE = (1, 4, 4)
PIXELS = 16


@dataclass
class World:
    lm: LatentModel
    latent_classifier: LatentClassifier
    image_classifier: nn.Module

    def images(self, z: Tensor) -> Tensor:
        """`g(z)` for latents `(N, D)`: inputs whose codes are exactly `z`."""
        with torch.no_grad():
            return self.lm.decode(torch.as_tensor(z, dtype=torch.float32))


def _linear(weight: Tensor, bias: Tensor | None = None) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def world(head_weight: Tensor, head_bias: Tensor | None = None, structural_dim: int | None = None) -> World:
    """A linear latent world with `h(z) = head_weight @ z + head_bias`.

    Args:
        head_weight: `(K, D)`; K = 1 gives a regression output `(N, 1)`.
        head_bias: `(K,)`, zeros by default.
        structural_dim: build a `ConditionalLatentModel` with `z1 = z[:structural_dim]`.
    """
    head_weight = torch.as_tensor(head_weight, dtype=torch.float32)
    k, d = head_weight.shape
    bias = torch.zeros(k) if head_bias is None else torch.as_tensor(head_bias, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    w, _ = torch.linalg.qr(torch.randn(PIXELS, d, generator=gen))
    generator = nn.Sequential(_linear(w), nn.Unflatten(1, SHAPE))
    encoder = nn.Sequential(nn.Flatten(), _linear(w.T.contiguous()))
    # A linear generator's images have no bounded range.
    unbounded = (-math.inf, math.inf)
    if structural_dim is None:
        lm = LatentModel(generator, encoder, d, SHAPE, unbounded)
    else:
        lm = ConditionalLatentModel(generator, encoder, structural_dim, d - structural_dim, SHAPE, unbounded)
    head = _linear(head_weight, bias)
    image_classifier = nn.Sequential(nn.Flatten(), _linear(head_weight @ w.T, bias))
    return World(lm.eval(), LatentClassifier(lm, head).eval(), image_classifier.eval())


def snapshot(module: nn.Module) -> tuple:
    """Weights, train/eval flags, requires_grad flags and grads of a module."""
    return (
        {k: v.clone() for k, v in module.state_dict().items()},
        [m.training for m in module.modules()],
        [p.requires_grad for p in module.parameters()],
        [None if p.grad is None else p.grad.clone() for p in module.parameters()],
    )


def assert_unchanged(module: nn.Module, before: tuple) -> None:
    after = snapshot(module)
    assert before[0].keys() == after[0].keys()
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert before[1:3] == after[1:3]
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(before[3], after[3]))
