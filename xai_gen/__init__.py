"""xai-gen: generative explainers (GVR, latent traversal, Latent Shift) beside Captum and LIME, one call for all."""

from xai_gen import compare, interop, metrics
from xai_gen._version import __version__
from xai_gen.compare import ComparisonResult
from xai_gen.explainer import (
    Explainer,
    Explanation,
    get_explainer,
    list_explainers,
    register_explainer,
)
from xai_gen.explainers.fast_lime import FastLime
from xai_gen.explainers.gradcam import GradCAM
from xai_gen.explainers.gvr import GVR
from xai_gen.explainers.integrated_gradients import IntegratedGradients
from xai_gen.explainers.latent_shift import LatentShift
from xai_gen.explainers.latent_traversal import LatentTraversal
from xai_gen.explainers.lime import Lime
from xai_gen.explainers.occlusion import Occlusion
from xai_gen.explainers.saliency import Saliency
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel
from xai_gen.models import SmallCNN, load_classifier, save_classifier

__all__ = [
    "ComparisonResult",
    "ConditionalLatentModel",
    "Explainer",
    "Explanation",
    "FastLime",
    "GVR",
    "GradCAM",
    "IntegratedGradients",
    "LatentClassifier",
    "LatentModel",
    "LatentShift",
    "LatentTraversal",
    "Lime",
    "Occlusion",
    "Saliency",
    "SmallCNN",
    "__version__",
    "compare",
    "interop",
    "get_explainer",
    "list_explainers",
    "load_classifier",
    "metrics",
    "register_explainer",
    "save_classifier",
]
