"""The shared base of explainers that walk in a `LatentModel` (GVR, latent traversal)."""

from __future__ import annotations

from torch import Tensor

from xai_gen.explainer import Explainer
from xai_gen.latent.model import LatentModel


class LatentExplainer(Explainer):
    """An `Explainer` whose constructor holds a `latent_model` and whose inputs must fit it."""

    @property
    def latent_model(self) -> LatentModel:
        """The latent model the explainer walks in."""
        return self._params["latent_model"]

    def check_inputs(self, x: Tensor) -> None:
        """`x: (N, C, H, W)` must have the latent model's image shape."""
        self.latent_model.check_images(x)
