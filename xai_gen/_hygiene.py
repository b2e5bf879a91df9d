"""Model hygiene: explainers leave the model exactly as they found it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def preserved(model: nn.Module, eval_mode: bool = True) -> Iterator[nn.Module]:
    """Run a block with `model` in eval mode and with frozen parameters, then restore it.

    Restores, also when the block raises: every submodule's train/eval flag, every
    parameter's `requires_grad` flag and `.grad` (gradients the block created are dropped).
    Parameters are frozen inside the block so that no gradient is accumulated on them;
    gradients with respect to inputs and activations still flow.

    Eval mode matters: a BatchNorm left in train mode would otherwise update its running
    statistics and Dropout would make attributions random.

    Args:
        model: any `nn.Module`; a plain callable (not a module) is passed through untouched.
        eval_mode: put the model in eval mode inside the block.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout()).train()
        >>> with preserved(net):
        ...     net.training
        False
        >>> net.training
        True
    """
    if not isinstance(model, nn.Module):
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    try:
        if eval_mode:
            model.eval()
        for p in params:
            p.requires_grad_(False)
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag, grad in zip(params, flags, grads, strict=True):
            p.requires_grad_(flag)
            p.grad = grad
