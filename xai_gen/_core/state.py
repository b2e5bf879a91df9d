"""Leave a model as found: the context managers explainers, metrics and recipes all use.

* `preserved(model)`: eval mode and frozen parameters inside, every flag restored after.
* `evaluating(*modules)`: the same for several modules, under `torch.no_grad()` (inference).
* `frozen_copy(module)`: a copy to compute with while the caller's module stays untouched
  (for work that must also move it to another device).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch
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


@contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """`preserved` for each of `modules`, under `torch.no_grad()`: inference that changes nothing.

    Example:
        >>> import torch
        >>> a, b = torch.nn.Dropout().train(), torch.nn.Linear(2, 2)
        >>> with evaluating(a, b):
        ...     a.training, b(torch.ones(1, 2)).requires_grad
        (False, False)
        >>> a.training, b.weight.requires_grad
        (True, True)
    """
    with ExitStack() as stack:
        for module in modules:
            stack.enter_context(preserved(module))
        stack.enter_context(torch.no_grad())
        yield


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy in eval mode with frozen parameters; the original is not touched.

    For work that must also move the module (to the training device) or keep it frozen for a
    whole run, where a context manager around the caller's module would not do.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(2, 2).train()
        >>> copy_ = frozen_copy(net)
        >>> copy_.training, copy_.weight.requires_grad, net.training, net.weight.requires_grad
        (False, False, True, True)
    """
    return copy.deepcopy(module).eval().requires_grad_(False)
