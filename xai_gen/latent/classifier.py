"""`LatentClassifier`: a head on a latent model's codes (the GVR paper's linear / MLP-256 models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from xai_gen._io import FILE_KINDS, file_kind, load_module, save_module
from xai_gen.latent.model import LatentModel


def make_head(kind: str, latent_dim: int, out_dim: int, hidden: int = 256) -> nn.Module:
    """A head on latent codes: `"linear"` or `"mlp"` (2 layers, `hidden` units, as in the GVR paper).

    `out_dim` is the number of classes, or 1 for a continuous target.
    """
    if kind == "linear":
        return nn.Linear(latent_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
    raise ValueError(f"head kind must be 'linear' or 'mlp', got {kind!r}")


@file_kind
class LatentClassifier(nn.Module):
    """`forward(x) = head(lm.encode(x))`; `forward_latent(z) = head(z)`.

    GVR uses `forward_latent` when a model has it, so the optimisation needs no decode.

    Args:
        latent_model: the `LatentModel` whose encoder feeds the head.
        head: maps `(N, latent_dim)` to logits `(N, K)` or a scalar `(N, 1)`.
        head_kind: `"linear"` or `"mlp"` (recorded for `save`/`load`).
        meta: recipe, metrics and so on, stored with the weights.

    Example:
        >>> import torch
        >>> from xai_gen.latent import LatentModel, LatentClassifier, make_head, nets
        >>> lm = LatentModel.from_specs(
        ...     nets.spec("dcgan_generator", latent_dim=8, image_shape=(1, 28, 28), width=8),
        ...     nets.spec("dcgan_encoder", out_dim=8, image_shape=(1, 28, 28), width=8))
        >>> clf = LatentClassifier(lm, make_head("linear", 8, 10), head_kind="linear")
        >>> clf(torch.zeros(3, 1, 28, 28)).shape, clf.forward_latent(torch.zeros(3, 8)).shape
        (torch.Size([3, 10]), torch.Size([3, 10]))
    """

    kind: ClassVar[str] = "latent_classifier"

    def __init__(
        self,
        latent_model: LatentModel,
        head: nn.Module,
        head_kind: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.latent_model = latent_model
        self.head = head
        self.head_kind = head_kind
        self.meta = dict(meta or {})

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.latent_model.encode_flat(x))

    def forward_latent(self, z: Tensor) -> Tensor:
        """Head on codes: `z: (N, latent_dim)` -> `(N, K)` or `(N, 1)`."""
        return self.head(z)

    def _out_dim(self) -> int:
        last = [m for m in self.head.modules() if isinstance(m, nn.Linear)][-1]
        return last.out_features

    def file_spec(self) -> dict[str, Any]:
        """What rebuilds this model from a file: the head's shape and the latent model's own spec."""
        if self.head_kind is None:
            raise ValueError("head_kind must be 'linear' or 'mlp' to save a LatentClassifier")
        lm = self.latent_model
        return {
            "head_kind": self.head_kind,
            "out_dim": self._out_dim(),
            "hidden": [m for m in self.head.modules() if isinstance(m, nn.Linear)][0].out_features,
            "latent": {"kind": lm.kind, "spec": lm.file_spec(), "meta": lm.meta},
        }

    @classmethod
    def from_file_spec(cls, spec: dict[str, Any], meta: dict[str, Any]) -> LatentClassifier:
        """An untrained model as described by `file_spec()`, carrying `meta`."""
        latent = spec["latent"]
        lm = FILE_KINDS[latent["kind"]].from_file_spec(latent["spec"], latent["meta"])
        head = make_head(spec["head_kind"], lm.latent_dim, spec["out_dim"], spec.get("hidden", 256))
        return cls(lm, head, spec["head_kind"], meta)

    def save(self, path: str | Path) -> Path:
        """Write the latent model and the head to one safetensors file with JSON metadata."""
        return save_module(self, path)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> LatentClassifier:
        """Read a file written by `save`; never unpickles. Returned in eval mode."""
        return load_module(path, cls.kind, map_location)
