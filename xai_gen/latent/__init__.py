"""Latent models: generator + encoder pairs, the conditional G(z1, z2), and heads on codes."""

from xai_gen.latent import nets
from xai_gen.latent.classifier import LatentClassifier, make_head
from xai_gen.latent.conditional import ConditionalLatentModel, positive_probability
from xai_gen.latent.model import LatentModel

__all__ = [
    "ConditionalLatentModel",
    "LatentClassifier",
    "LatentModel",
    "make_head",
    "nets",
    "positive_probability",
]
