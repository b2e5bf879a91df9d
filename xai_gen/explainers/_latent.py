"""The shared base of explainers that walk in a `LatentModel` (GVR, latent traversal, Latent
Shift), and the helpers they share: the latent head of a model and chunked passes."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from xai_gen._core.batching import chunked
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


def _latent_head(model: Callable[[Tensor], Tensor], lm: LatentModel) -> Callable[[Tensor], Tensor] | None:
    """`model.forward_latent` if the model classifies latent codes directly, else None."""
    head = getattr(model, "forward_latent", None)
    if head is None:
        return None
    own = getattr(model, "latent_model", None)
    if isinstance(own, LatentModel) and own is not lm:
        if own.latent_dim != lm.latent_dim:
            raise ValueError(
                f"model.forward_latent expects codes of size {own.latent_dim} but latent_model has "
                f"latent_dim {lm.latent_dim}"
            )
        mine, theirs = lm.state_dict(), own.state_dict()
        same = mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
        if not same:
            warnings.warn(
                "the model's forward_latent belongs to a different latent model than GVR's "
                "latent_model; its predictions on GVR's codes may be meaningless",
                UserWarning,
                stacklevel=4,
            )
    return head


#: Rows per forward/backward pass on the CPU. Convolutions over the whole batch at once run
#: out of cache, so on the CPU a row costs less in chunks of this size than in one pass of a
#: thousand rows (see the GVR batch benchmark). GPUs take the whole batch.
_CPU_CHUNK = 128


def _chunked(fn: Callable[[Tensor], Tensor], t: Tensor) -> Tensor:
    """`fn` over `t` in `_CPU_CHUNK`-row pieces on the CPU (whole on a GPU), concatenated."""
    return chunked(fn, t, None if t.is_cuda else _CPU_CHUNK)
