"""A model applied to a large batch in chunks, which bounds the memory one call needs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def chunked(fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int | None = 500) -> Tensor:
    """`fn` applied to `x: (N, ...)` in chunks of `batch_size` rows, the results concatenated.

    Args:
        fn: a function of a batch, e.g. a model or `latent_model.encode`.
        x: `(N, ...)` inputs.
        batch_size: rows per call; None (or a batch no larger) calls `fn` once on all of `x`.

    Returns:
        `(N, ...)`: the outputs, in the order of `x`.

    Example:
        >>> chunked(lambda b: b * 2, torch.arange(5.0), batch_size=2)
        tensor([0., 2., 4., 6., 8.])
    """
    if batch_size is None or x.shape[0] <= batch_size:
        return fn(x)
    return torch.cat([fn(part) for part in x.split(batch_size)])
