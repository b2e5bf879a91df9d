"""Latent models: generator + encoder pairs, the conditional G(z1, z2), MONAI's autoencoders, and heads on codes."""

from xai_gen.latent import nets
from xai_gen.latent.classifier import LatentClassifier, make_head
from xai_gen.latent.conditional import ConditionalLatentModel, positive_probability
from xai_gen.latent.model import LatentModel
from xai_gen.latent.monai_models import MonaiLatentModel, from_monai

__all__ = [
    "ConditionalLatentModel",
    "LatentClassifier",
    "LatentModel",
    "MonaiLatentModel",
    "from_monai",
    "make_head",
    "nets",
    "positive_probability",
]
