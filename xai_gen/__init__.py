"""xai-gen: generative explainers (GVR, latent traversal) beside Captum and LIME, one call for all."""

from xai_gen._version import __version__
from xai_gen.explainer import (
    Explainer,
    Explanation,
    get_explainer,
    list_explainers,
    register_explainer,
)
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel
from xai_gen.models import SmallCNN, load_classifier, save_classifier

__all__ = [
    "ConditionalLatentModel",
    "Explainer",
    "Explanation",
    "LatentClassifier",
    "LatentModel",
    "SmallCNN",
    "__version__",
    "get_explainer",
    "list_explainers",
    "load_classifier",
    "register_explainer",
    "save_classifier",
]
