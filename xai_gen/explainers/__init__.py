"""The bundled explainers; importing this package registers them.

Every public module of this package is imported, so a new bundled explainer is one file here:
its `@register_explainer` makes it known to `get_explainer`, `--methods all` and the contract
test. The names below are the documented namespace; they are written out because the API
reference and type checkers read them statically.
"""

import importlib
import pkgutil

from xai_gen.explainers.fast_lime import FastLime
from xai_gen.explainers.gradcam import GradCAM
from xai_gen.explainers.gvr import GVR
from xai_gen.explainers.integrated_gradients import IntegratedGradients
from xai_gen.explainers.latent_shift import LatentShift
from xai_gen.explainers.latent_traversal import LatentTraversal
from xai_gen.explainers.lime import Lime
from xai_gen.explainers.occlusion import Occlusion
from xai_gen.explainers.saliency import Saliency

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["FastLime", "GVR", "GradCAM", "IntegratedGradients", "LatentShift", "LatentTraversal", "Lime", "Occlusion", "Saliency"]
