"""What every explainer returns: `Explanation`, its rows and files, and the parts it declares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from xai_gen._io import load_tensors, save_tensors

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PARTS", "Explanation"]

_TENSOR_FIELDS = (
    "attributions",
    "inputs",
    "targets",
    "counterfactuals",
    "frames",
    "probabilities",
    "success",
    "steps",
    "contrasts",
)

PARTS: dict[str, tuple[str, ...]] = {
    # Images moved across the decision boundary (GVR, latent traversal).
    "counterfactual": ("counterfactuals",),
    # Frames along a latent path with the model's probability of the target per frame.
    "traversal": ("frames", "probabilities"),
    # `contrasts` are classes the explanation was asked to reach: a counterfactual is valid
    # when the model predicts its contrast, not merely any other class.
    "contrast": ("contrasts",),
}
"""The parts an explanation can declare (`Explanation.parts`), and the fields each part
guarantees are set. Metrics decide what applies from these, never from a method's settings."""


def _json_safe(value: Any) -> Any:
    """Parameters as JSON: objects such as a LatentModel are stored by their class name."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, Tensor) and value.numel() <= 64:
        return value.tolist()
    return f"<{type(value).__name__}>"


@dataclass
class Explanation:
    """What every explainer returns.

    Attributes:
        attributions: `(N, C, H, W)`, same shape, dtype and device as the inputs.
        inputs: `(N, C, H, W)` the explained images.
        targets: `(N,)` long, the explained class per sample (None for a regression output).
        method: registry name of the explainer.
        params: the hyper-parameters used (JSON-safe).
        counterfactuals: `(N, C, H, W)` images moved across the decision boundary (generative
            explainers only).
        frames: `(N, T, C, H, W)` traversal frames.
        probabilities: `(N, T)` classifier probability of the target per frame.
        success: `(N,)` bool, whether the stop criterion fired.
        steps: `(N,)` long, optimisation steps taken per sample.
        contrasts: `(N,)` long, the contrast class per sample (GVR).
        seconds: wall time of the `attribute` call.
        extras: further per-sample tensors a method reports (e.g. `"monotonicity"`).
        parts: the declared parts (keys of `PARTS`): `"counterfactual"` (`counterfactuals`
            set), `"traversal"` (`frames` and `probabilities` set), `"contrast"` (`contrasts`
            are the classes the explanation was asked to reach). Saved with the explanation.
        class_names: names of the model's classes (index i names class i) when the model
            records them (see `xai_gen._core.labels.class_names_of`); plots and reports show
            these instead of indices. Saved with the explanation.

    Example:
        >>> import torch
        >>> e = Explanation(torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4), torch.tensor([0, 1]), "demo")
        >>> len(e), e.cpu().numpy()["attributions"].shape
        (2, (2, 1, 4, 4))
    """

    attributions: Tensor
    inputs: Tensor
    targets: Tensor | None
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    counterfactuals: Tensor | None = None
    frames: Tensor | None = None
    probabilities: Tensor | None = None
    success: Tensor | None = None
    steps: Tensor | None = None
    contrasts: Tensor | None = None
    seconds: float = 0.0
    extras: dict[str, Tensor] = field(default_factory=dict)
    parts: frozenset[str] = frozenset()
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.parts = frozenset(self.parts)
        if self.class_names is not None:
            self.class_names = tuple(str(n) for n in self.class_names)
        unknown = sorted(self.parts - set(PARTS))
        if unknown:
            raise ValueError(f"parts {unknown} are not known; known parts: {sorted(PARTS)}")

    def __len__(self) -> int:
        return self.attributions.shape[0]

    def __getitem__(self, index: int | slice | Sequence[int] | Tensor) -> Explanation:
        """The rows `index` of the explanation, every per-row tensor (extras too) indexed alike.

        Args:
            index: an int (kept as a batch of one), a slice, a sequence of row indices, a long
                index tensor `(M,)` or a bool mask `(N,)`.

        Returns:
            An `Explanation` of the selected rows; `method`, `params` and `seconds` are kept.

        Example:
            >>> import torch
            >>> e = Explanation(torch.arange(3.0).view(3, 1, 1, 1), torch.zeros(3, 1, 1, 1), torch.tensor([0, 1, 2]), "demo")
            >>> e[1].targets.tolist(), e[torch.tensor([True, False, True])].targets.tolist()
            ([1], [0, 2])
        """
        n = len(self)
        if isinstance(index, int) and not isinstance(index, bool):
            if not -n <= index < n:
                raise IndexError(f"row {index} is out of range for an explanation of {n} rows")
            index = slice(index % n, index % n + 1)
        elif not isinstance(index, slice):
            index = torch.as_tensor(index)
            if index.dtype == torch.bool and index.shape != (n,):
                raise IndexError(f"a bool mask must have shape ({n},), got {tuple(index.shape)}")
        return self._map(lambda t: t[index.to(t.device) if isinstance(index, Tensor) else index])

    @classmethod
    def cat(cls, parts: Sequence[Explanation]) -> Explanation:
        """Join explanations of consecutive batches along the rows; their `seconds` add up.

        Args:
            parts: explanations of one method with the same fields set.

        Returns:
            One `Explanation` with the rows of every part, in order.

        Raises:
            ValueError: no parts, or parts whose methods or set fields differ.

        Example:
            >>> import torch
            >>> e = Explanation(torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]), "demo")
            >>> len(Explanation.cat([e, e[:1]]))
            3
        """
        parts = list(parts)
        if not parts:
            raise ValueError("Explanation.cat needs at least one explanation")
        first = parts[0]
        layout = _layout(first)
        for p in parts[1:]:
            if p.method != first.method or _layout(p) != layout:
                raise ValueError(
                    f"cannot join explanations with different methods or fields: {first.method} "
                    f"{sorted(layout)} vs {p.method} {sorted(_layout(p))}"
                )
        kwargs = {f.name: getattr(first, f.name) for f in fields(first)}
        for name in _TENSOR_FIELDS:
            if kwargs[name] is not None:
                kwargs[name] = torch.cat([getattr(p, name) for p in parts])
        kwargs["extras"] = {k: torch.cat([p.extras[k] for p in parts]) for k in first.extras}
        kwargs["seconds"] = sum(p.seconds for p in parts)
        return cls(**kwargs)

    def _map(self, fn: Callable[[Tensor], Tensor]) -> Explanation:
        kwargs = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _TENSOR_FIELDS:
            if kwargs[name] is not None:
                kwargs[name] = fn(kwargs[name])
        kwargs["extras"] = {k: fn(v) for k, v in self.extras.items()}
        return Explanation(**kwargs)

    def cpu(self) -> Explanation:
        """A copy with every tensor detached and on the CPU."""
        return self._map(lambda t: t.detach().cpu())

    def to(self, device: torch.device | str) -> Explanation:
        """A copy with every tensor on `device`."""
        return self._map(lambda t: t.to(device))

    def numpy(self) -> dict[str, np.ndarray]:
        """Every tensor field (and extra) as a NumPy array, keyed by name."""
        out = {n: getattr(self, n) for n in _TENSOR_FIELDS if getattr(self, n) is not None}
        out.update({f"extras.{k}": v for k, v in self.extras.items()})
        return {k: v.detach().cpu().numpy() for k, v in out.items()}

    def plot(self, **kwargs: Any) -> Figure:
        """Draw the explanation in the papers' layout; see `xai_gen.viz.plot_explanation`."""
        from xai_gen.viz import plot_explanation

        return plot_explanation(self, **kwargs)

    def save_gif(self, path: str | Path, **kwargs: Any) -> Path:
        """Write the frames (latent traversal, Latent Shift) as an animated GIF; see
        `xai_gen.viz.save_gif` for the settings."""
        from xai_gen.viz.animation import save_gif

        return save_gif(self, path, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write to a `.safetensors` file (tensors) with JSON metadata; no pickle."""
        # Copies: fields may share memory (e.g. an extra that is a view of `success`), which
        # safetensors refuses to write.
        tensors = {k: torch.tensor(v) for k, v in self.numpy().items()}
        meta = {
            "method": self.method,
            "params": _json_safe(self.params),
            "seconds": self.seconds,
            "parts": sorted(self.parts),
            "class_names": None if self.class_names is None else list(self.class_names),
        }
        return save_tensors(path, tensors, kind="explanation", spec=meta)

    @classmethod
    def load(cls, path: str | Path) -> Explanation:
        """Read a file written by `Explanation.save`."""
        tensors, header = load_tensors(path, kind="explanation")
        meta = header.spec
        kwargs: dict[str, Any] = {n: tensors.get(n) for n in _TENSOR_FIELDS}
        extras = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith("extras.")}
        return cls(
            method=meta["method"],
            params=meta["params"],
            seconds=meta["seconds"],
            extras=extras,
            parts=frozenset(meta.get("parts", ())),  # files written before parts existed have none
            class_names=meta.get("class_names"),
            **kwargs,
        )


def _layout(e: Explanation) -> frozenset[str]:
    """Names of the tensor fields and extras an explanation has set."""
    return frozenset(n for n in _TENSOR_FIELDS if getattr(e, n) is not None) | frozenset(
        f"extras.{k}" for k in e.extras
    )
