"""The shared base of explainers that walk in a `LatentModel` (GVR, latent traversal)."""

from __future__ import annotations

from torch import Tensor

from xai_gen.explainer import Explainer
from xai_gen.latent.model import LatentModel


class LatentExplainer(Explainer):
    """An `Explainer` whose first setting is a `latent_model` and whose inputs must fit it.

    Attributes:
        latent_model: the `LatentModel` the explainer walks in.
    """

    latent_model: LatentModel

    def __post_init__(self) -> None:
        if not isinstance(self.latent_model, LatentModel):
            raise TypeError(
                f"latent_model must be a xai_gen.LatentModel, got {type(self.latent_model).__name__}"
            )

    def check_inputs(self, x: Tensor) -> None:
        """`x: (N, C, H, W)` must have the latent model's image shape and value range."""
        self.latent_model.check_images(x)
        self.latent_model.check_value_range(x)
