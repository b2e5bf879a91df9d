"""The bundled explainers; importing this package registers them."""

from xai_gen.explainers.gradcam import GradCAM
from xai_gen.explainers.gvr import GVR
from xai_gen.explainers.integrated_gradients import IntegratedGradients
from xai_gen.explainers.latent_traversal import LatentTraversal
from xai_gen.explainers.lime import Lime
from xai_gen.explainers.occlusion import Occlusion
from xai_gen.explainers.saliency import Saliency

__all__ = ["GVR", "GradCAM", "IntegratedGradients", "LatentTraversal", "Lime", "Occlusion", "Saliency"]
