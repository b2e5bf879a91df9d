"""The shared base of explainers that walk in a `LatentModel` (GVR, latent traversal, Latent
Shift), and what they share: the checks and choices every explanation starts with (`_Start`),
the latent head of a model and the rows of one pass."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from xai_gen._core.budget import MemoryBudget, budget_rows, check_budget
from xai_gen.explainer import Explainer
from xai_gen.latent.model import LatentModel

#: The model's output on a decoded image `(A, C, H, W)`, or its latent head's on the code `(A, D)`.
Classify = Callable[[Tensor | None, Tensor], Tensor]


@dataclass(frozen=True)
class _Start:
    """What an explanation in a latent model starts from (`LatentExplainer._start`).

    Attributes:
        x: `(N, C, H, W)` the images, checked against the latent model.
        dtype: the latent model's dtype (its parameters'; the images' when it has none), in
            which the codes are computed.
        head: the model's `forward_latent`, if it classifies codes directly; else None.
    """

    x: Tensor
    dtype: torch.dtype
    head: Callable[[Tensor], Tensor] | None


def _classifier(model: Callable[[Tensor], Tensor], head: Callable[[Tensor], Tensor] | None) -> Classify:
    """`classify(image, z)`: `head(z)` when there is a latent head, else `model(image)`."""

    def classify(image: Tensor | None, z: Tensor) -> Tensor:
        return head(z) if head is not None else model(image)

    return classify


class LatentExplainer(Explainer):
    """An `Explainer` whose first setting is a `latent_model` and whose inputs must fit it.

    Attributes:
        latent_model: the `LatentModel` the explainer walks in.
        memory_budget: what the rows of one pass (codes decoded, the images classified, and
            their graph where a gradient is taken) may occupy: `"auto"` (a quarter of the free
            memory, at most 512 MiB), bytes, or None (every row in one pass). The cost of one
            row is measured on probes of one and two images and every pass over the rows (GVR's search,
            the frames of a walk) is split to stay under it; the results are the same.
            Keyword-only, so that the explainers' positional settings keep their order.
    """

    latent_model: LatentModel
    memory_budget: MemoryBudget = field(default="auto", kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.latent_model, LatentModel):
            raise TypeError(
                f"latent_model must be a xai_gen.LatentModel, got {type(self.latent_model).__name__}"
            )
        check_budget(self.memory_budget)

    def check_inputs(self, x: Tensor) -> None:
        """`x: (N, C, H, W)` must have the latent model's image shape and value range."""
        self.latent_model.check_images(x)
        self.latent_model.check_value_range(x)

    def _start(self, model: Callable[[Tensor], Tensor], x: Tensor) -> _Start:
        """Check `x: (N, C, H, W)` against the latent model, which must be on `x`'s device, and
        find the model's latent head.

        Raises:
            ValueError: images the latent model does not accept, or the latent model on
                another device than `x`.
        """
        lm = self.latent_model
        x = lm.check_images(x)
        param = next(lm.parameters(), None)
        if param is not None and param.device != x.device:
            raise ValueError(f"latent_model is on {param.device} but x is on {x.device}; move one of them")
        dtype = param.dtype if param is not None else x.dtype
        return _Start(x, dtype, _latent_head(model, lm))

    def rows_per_pass(
        self, score: Callable[[Tensor, Tensor], Tensor], x: Tensor, backward: bool = True
    ) -> int | None:
        """Rows per pass under `memory_budget`, from a probe on `x[:1]`; None: no bound.

        A pass decodes codes and scores them: the probe runs `decode` and `score(image, z)` on
        the code of one image, with the backward pass when `backward`. Call it with the latent
        model's and the model's parameters frozen (the probe's backward must not reach them).

        Args:
            score: `(images (A, C, H, W), codes (A, D)) -> (A, ...)`: what a pass computes
                besides decoding (the model's output; anything else a pass holds per row).
            x: `(N, C, H, W)` images in the latent model's dtype.
            backward: the passes are differentiated (GVR's search, Latent Shift's gradient).
        """
        if self.memory_budget is None:
            return None
        lm = self.latent_model
        with torch.no_grad():
            code = lm.encode_flat(x[:1])

        def one_pass(z: Tensor) -> Tensor:
            image = lm.decode(z)
            return torch.cat([image.flatten(1), score(image, z).reshape(z.shape[0], -1)], dim=1)

        return budget_rows(self.memory_budget, one_pass, code, backward)


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
                stacklevel=5,  # _latent_head, _start, _explain, attribute, the caller
            )
    return head
