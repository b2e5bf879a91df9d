"""Input checks shared by explainers, metrics and recipes: clear errors that name the argument."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

TargetLike = int | Sequence[int] | Tensor | None


def check_images(
    x: object, name: str = "x", *, allow_single: bool = True, min_count: int = 1
) -> tuple[Tensor, bool]:
    """Validate an image batch.

    Args:
        x: `(N, C, H, W)` floating tensor, or (with `allow_single`) a single `(C, H, W)` image.
        name: argument name used in error messages.
        allow_single: accept one `(C, H, W)` image and promote it to a batch of one
            (explainers and metrics do; training data must be a batch).
        min_count: the fewest images N accepted (training needs several).

    Returns:
        The batch as `(N, C, H, W)` and whether a single image was promoted to a batch of one.

    Raises:
        TypeError: `x` is not a floating-point tensor.
        ValueError: wrong rank, fewer than `min_count` images, or NaN/inf values.

    Example:
        >>> batch, single = check_images(torch.zeros(1, 4, 4))
        >>> tuple(batch.shape), single
        ((1, 1, 4, 4), True)
        >>> check_images(torch.zeros(1, 4, 4), "images", allow_single=False)
        Traceback (most recent call last):
        ...
        ValueError: images must be a float tensor (N, C, H, W), got shape (1, 4, 4)
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    single = allow_single and x.dim() == 3
    if single:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        one = " (or (C, H, W) for one image)" if allow_single else ""
        raise ValueError(f"{name} must be a float tensor (N, C, H, W){one}, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch: shape {tuple(x.shape)}")
    if x.shape[0] < min_count:
        raise ValueError(f"{name} must hold at least {min_count} images, got {x.shape[0]}")
    # max(|x|) is NaN/inf exactly when some entry is: ~7x cheaper on CPU than
    # isfinite(x).all(), which builds a full bool tensor (this runs on every attribute call).
    if not torch.isfinite(x.abs().max()):
        raise ValueError(f"{name} contains NaN or inf values")
    return x, single


def check_model_output(out: object, n: int, name: str = "model") -> Tensor:
    """Check that a model output is `(N, K)` logits or an `(N,)`/`(N, 1)` regression output."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(out).__name__}")
    ok = out.dim() in (1, 2) and out.shape[0] == n
    if not ok:
        raise ValueError(
            f"{name} output must be (N, K) logits or an (N,)/(N, 1) regression output with "
            f"N={n}, got shape {tuple(out.shape)}"
        )
    return out


def num_classes(out: Tensor) -> int:
    """Number of classes K of a model output; 1 for a regression output."""
    return 1 if out.dim() == 1 else out.shape[1]


def is_regression(out: Tensor) -> bool:
    """True for an `(N,)` or `(N, 1)` output, which is treated as one scalar per sample."""
    return num_classes(out) == 1


def resolve_target(
    target: TargetLike,
    n: int,
    k: int,
    predicted: Tensor | None = None,
    scalar_output: bool = False,
    name: str = "target",
) -> Tensor | None:
    """Turn Captum-style `target` into a `(N,)` long tensor (or None for a scalar output).

    Args:
        target: None (the predicted class), an int, or a per-sample sequence/tensor.
        n: batch size N.
        k: number of classes K of the model output (1 for `(N,)`/`(N, 1)`).
        predicted: `(N,)` predicted classes, used when `target` is None.
        scalar_output: the model returns `(N,)`, where no class index applies.
        name: argument name used in error messages.

    Returns:
        `(N,)` long tensor, or None for a regression output with `target=None`.

    Raises:
        TypeError: `target` is not an int, integer sequence or integer tensor.
        ValueError: wrong length, or a class index outside `0..K-1`.
    """
    if target is None:
        if k == 1:
            return None
        if predicted is None:
            raise ValueError(f"{name}=None needs the model's predictions")
        return predicted.long()
    if scalar_output:
        raise ValueError(f"{name} must be None for a model with (N,) output, got {target!r}")
    if isinstance(target, bool | str | bytes):
        raise TypeError(
            f"{name} must be None, an int, a sequence of ints or a tensor, got {type(target).__name__}"
        )
    if isinstance(target, int):
        t = torch.full((n,), target, dtype=torch.long)
    elif isinstance(target, Tensor | Sequence):
        try:
            t = torch.as_tensor(target)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must hold integer class indices: {err}") from err
        if t.is_floating_point() or t.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer class indices, got dtype {t.dtype}")
        if t.dim() == 0:
            t = t.expand(n)
        if t.dim() != 1 or t.shape[0] != n:
            raise ValueError(
                f"{name} must have one entry per sample (length {n}), got shape {tuple(t.shape)}"
            )
        t = t.long()
    else:
        raise TypeError(
            f"{name} must be None, an int, a sequence of ints or a tensor, got {type(target).__name__}"
        )
    if ((t < 0) | (t >= k)).any():
        raise ValueError(f"{name} out of range: model has {k} classes (0..{k - 1}), got {t.tolist()}")
    return t


def split_several_targets(target: TargetLike, n: int, name: str = "target") -> tuple[Tensor | None, TargetLike]:
    """Several targets per input as rows: `(rows, flat_target)`, or `(None, target)` otherwise.

    Args:
        target: Captum-style target, or several per input: a list of N lists / tensors (their
            lengths may differ) or an `(N, M)` tensor.
        n: number of inputs N.
        name: argument name used in error messages.

    Returns:
        `rows (R,)` long, the input each (input, target) pair belongs to, ordered input-major,
        and the `(R,)` flat targets; or `(None, target)` unchanged when there is at most one
        target per input.

    Raises:
        ValueError: not one list per input, or an input with no target.

    Example:
        >>> rows, flat = split_several_targets([[3, 5], [1]], 2)
        >>> rows.tolist(), flat.tolist()
        ([0, 0, 1], [3, 5, 1])
    """

    def nested(item: object) -> bool:
        return (isinstance(item, Tensor) and item.dim() > 0) or (
            isinstance(item, Sequence) and not isinstance(item, str | bytes)
        )

    if isinstance(target, Tensor) and target.dim() == 2:
        per_input = list(target)
    elif isinstance(target, Sequence) and not isinstance(target, str | bytes) and any(nested(t) for t in target):
        per_input = list(target)
    else:
        return None, target
    if len(per_input) != n:
        raise ValueError(
            f"{name}: several targets per input need one list per input (N={n}), got {len(per_input)}"
        )
    flat = []
    for i, item in enumerate(per_input):
        if not nested(item):
            item = [item]
        values = torch.as_tensor(item).reshape(-1)
        if values.numel() == 0:
            raise ValueError(f"{name}: input {i} has no target; every input needs at least one")
        flat.append(values)
    counts = torch.tensor([v.numel() for v in flat])
    return torch.repeat_interleave(torch.arange(n), counts), torch.cat(flat)

