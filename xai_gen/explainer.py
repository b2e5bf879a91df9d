"""The one interface: `Explainer.attribute(model, x, target) -> Explanation`, and the registry.

`Explanation` and `PARTS` live in `xai_gen.explanation` and are importable from here too."""

from __future__ import annotations

import dataclasses
import sys
import time
import types
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from xai_gen._core.checks import (
    TargetLike,
    check_images,
    check_model_output,
    num_classes,
    resolve_target,
    split_several_targets,
)
from xai_gen._core.labels import class_names_of
from xai_gen._core.state import preserved
from xai_gen.explanation import PARTS, Explanation, _json_safe

__all__ = [
    "PARTS",
    "Explainer",
    "Explanation",
    "get_explainer",
    "list_explainers",
    "register_explainer",
]


class Explainer(ABC):
    """Base class of every explainer.

    A subclass declares its hyper-parameters once, as annotated class attributes: every
    subclass is made a dataclass, so they become constructor arguments (in declaration order,
    base fields first), `params` and the `repr`. `__post_init__` is the one validator; it runs
    on construction and again on the copy that `attribute(..., **overrides)` makes, so a
    per-call value is checked exactly like a constructor value. `_explain` reads the settings
    from `self`.

    `attribute` validates the input, keeps the model untouched (train/eval mode,
    `requires_grad`, `.grad`), resolves Captum-style targets and times the call. Subclasses
    implement `_explain`, declare what their explanations provide in `provides` (keys of
    `PARTS`) and register themselves with `@register_explainer("name")`.

    Example:
        >>> import torch
        >>> class Scaled(Explainer):
        ...     scale: float = 1.0
        ...     def _explain(self, model, x, target):
        ...         return self.scale * x
        >>> Scaled(2.0), Scaled(2.0).attribute(torch.nn.Flatten(), torch.ones(1, 1, 1, 1), scale=3.0).params
        (Scaled(scale=2.0), {'scale': 3.0})
    """

    name: ClassVar[str] = ""
    #: The method's first model call is a plain forward of the batch (or of a part of it), so
    #: `attribute` checks the output there instead of running a probe first.
    first_call_is_checked: ClassVar[bool] = False
    #: Parts (keys of `PARTS`) that every explanation of this explainer declares.
    provides: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # `dataclass` reads string annotations through the class's module, which a class built
        # by exec() under a made-up module name lacks: lend it an empty one meanwhile.
        lent = cls.__module__ not in sys.modules
        if lent:
            sys.modules[cls.__module__] = types.ModuleType(cls.__module__)
        try:
            # Identity equality and hashing (an explainer holds models), our own `repr`.
            dataclasses.dataclass(cls, eq=False, repr=False)
        finally:
            if lent:
                del sys.modules[cls.__module__]
        unknown = sorted(set(cls.provides) - set(PARTS))
        if unknown:
            raise ValueError(f"{cls.__name__}.provides names unknown parts {unknown}; known: {sorted(PARTS)}")

    @property
    def params(self) -> dict[str, Any]:
        """The hyper-parameters, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_json_safe(v)!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    @classmethod
    def example_settings(cls, regression: bool = False) -> dict[str, Any]:
        """Small, fast settings that still run the whole method, for examples and smoke tests.

        Models the explainer needs (fields without a default, such as a `latent_model`) are
        not included: the caller supplies them.

        Args:
            regression: settings for a model with one output `(N,)`/`(N, 1)` rather than logits.

        Returns:
            Constructor arguments (empty: the defaults are already fast).
        """
        return {}

    def check_inputs(self, x: Tensor) -> None:  # noqa: B027 - optional hook
        """Hook for method-specific input checks (e.g. the LatentModel's image shape)."""

    @abstractmethod
    def _explain(self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None) -> Tensor | Explanation:
        """Compute attributions for a validated batch, with the settings held by `self`.

        Args:
            model: the model, in eval mode with frozen parameters.
            x: `(N, C, H, W)` finite floating tensor.
            target: `(N,)` long class per sample, or None for a regression output.

        Returns:
            `(N, C, H, W)` attributions, or a full `Explanation`.
        """

    def _with(self, overrides: dict[str, Any]) -> Explainer:
        """This explainer, or a validated copy with `overrides` applied (self is unchanged)."""
        if not overrides:
            return self
        accepted = sorted(f.name for f in fields(self) if f.init)  # type: ignore[arg-type]
        unknown = sorted(set(overrides) - set(accepted))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.attribute() got unknown argument(s) {unknown}; "
                f"accepted: {accepted}"
            )
        return dataclasses.replace(self, **overrides)  # type: ignore[type-var]

    def attribute(
        self,
        model: Callable[[Tensor], Tensor],
        x: Tensor,
        target: TargetLike = None,
        **overrides: Any,
    ) -> Explanation:
        """Explain `model`'s output on `x`.

        Args:
            model: any callable (usually an `nn.Module`) mapping `(N, C, H, W)` to logits
                `(N, K)` or a regression output `(N,)`/`(N, 1)`. It is run in eval mode and
                handed back exactly as it came in.
            x: `(N, C, H, W)` floating images; a single `(C, H, W)` image is treated as a
                batch of one (the result keeps the batch dimension).
            target: as in Captum: None (the predicted class), an int, or one per sample; or
                several per input, as a list of N lists (lengths may differ) or an `(N, M)`
                tensor: then the result has one row per (input, target) pair, input-major, with
                `inputs` repeated (e.g. `target=[[3, 5], [1]]` gives rows (x0, 3), (x0, 5),
                (x1, 1)). Per-row settings of a method (such as GVR's per-input `contrast`)
                then count rows, not inputs.
            **overrides: per-call values of the explainer's hyper-parameters.

        Returns:
            An `Explanation` whose `attributions` have the shape, dtype and device of `x`
            (`(R, C, H, W)` with R rows when several targets per input are given).

        Example:
            >>> import torch
            >>> from xai_gen import Saliency
            >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
            >>> e = Saliency().attribute(net, torch.rand(2, 1, 2, 2), target=[[0, 2], [1]])
            >>> e.targets.tolist(), tuple(e.attributions.shape)
            ([0, 2, 1], (3, 1, 2, 2))

        Raises:
            TypeError: `model` is not callable, `x` is not a floating tensor, or an unknown
                keyword argument.
            ValueError: wrong shapes, NaN/inf, a target out of range, or a model output that
                is neither `(N, K)` nor `(N,)`/`(N, 1)`.
        """
        if not callable(model):
            raise TypeError(f"model must be a callable nn.Module, got {type(model).__name__}")
        x, _ = check_images(x)
        run = self._with(overrides)
        run.check_inputs(x)
        rows, target = split_several_targets(target, x.shape[0])
        if rows is not None:
            # One row per (input, target) pair, input-major: repeating the inputs lets every
            # method explain all pairs in one batched call rather than one call per target.
            x = x[rows.to(x.device)]
        n = x.shape[0]
        start = time.perf_counter()
        # One hygiene context for the checks and the method: entering it walks every module and
        # parameter, which is a measurable share of a fast method such as Saliency.
        with preserved(model):
            if target is not None and run.first_call_is_checked and isinstance(model, nn.Module):
                # The method's own first model call is checked (a hook), as the probe would be:
                # a separate probe pass would be a measurable share of a one-pass method.
                targets = resolve_target(target, n, sys.maxsize).to(x.device)
                with _checking_first_call(model, x, target):
                    result = run._explain(model, x, targets)
            else:
                targets = _checked_targets(model, x, target)
                result = run._explain(model, x, targets)
        if isinstance(result, Tensor):
            result = Explanation(attributions=result, inputs=x, targets=targets, method=self.name)
        result.attributions = result.attributions.detach().to(device=x.device, dtype=x.dtype)
        result.method = self.name
        # A method may report what it resolved (e.g. the layer Grad-CAM's "auto" chose).
        result.params = _json_safe({**run.params, **result.params})
        result.parts = result.parts | run.provides
        if result.class_names is None:
            result.class_names = class_names_of(model)
        _check_parts(result)
        result.seconds = time.perf_counter() - start
        return result


def _run_checked(model: Callable[[Tensor], Tensor], x: Tensor, n: int) -> Tensor:
    """`model(x)` under no_grad, its output checked for `n` rows; a model error names x's shape."""
    with torch.no_grad():
        try:
            out = model(x)
        except RuntimeError as err:
            raise ValueError(f"model could not run on x of shape {tuple(x.shape)}: {err}") from err
    return check_model_output(out, n)


def _checked_targets(model: Callable[[Tensor], Tensor], x: Tensor, target: TargetLike) -> Tensor | None:
    """The `(N,)` targets, after checking the model's output on `x: (N, C, H, W)`.

    With `target=None` the whole batch is run once, for the predicted classes and the output
    check together. Otherwise a one-sample probe checks the output cheaply.
    """
    n = x.shape[0]
    if target is None:
        out = _run_checked(model, x, n)
        predicted = out.argmax(dim=1) if num_classes(out) > 1 else None
        return resolve_target(None, n, num_classes(out), predicted, scalar_output=out.dim() == 1)
    try:
        probe = _run_checked(model, x[:1], 1)
    except ValueError as err:
        if err.__cause__ is not None:  # the model failed to run: the message names x already
            raise
        # Quote the user's batch, not the one-sample probe they never passed.
        _run_checked(model, x, n)
        raise
    return resolve_target(target, n, num_classes(probe), scalar_output=probe.dim() == 1).to(x.device)


@contextmanager
def _checking_first_call(model: nn.Module, x: Tensor, target: TargetLike) -> Iterator[None]:
    """Check the output of `model`'s first call in the block, and `target` against it, as the
    probe of `_checked_targets` would: same errors, raised before the output is used."""
    n = x.shape[0]
    seen = False

    def check(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        nonlocal seen
        seen = True
        handle.remove()
        rows = args[0].shape[0] if args and isinstance(args[0], Tensor) else n
        try:
            check_model_output(out, rows)
        except ValueError:
            if rows != n:  # quote the user's batch
                _run_checked(module, x, n)
            raise
        resolve_target(target, n, num_classes(out), scalar_output=out.dim() == 1)

    handle = model.register_forward_hook(check)
    try:
        yield
    except RuntimeError as err:
        if seen:
            raise
        raise ValueError(f"model could not run on x of shape {tuple(x.shape)}: {err}") from err
    finally:
        handle.remove()


def _check_parts(e: Explanation) -> None:
    """An explainer's declared parts must come with their fields: metrics rely on them."""
    for part in sorted(e.parts):
        unset = [f for f in PARTS[part] if getattr(e, f) is None]
        if unset:
            raise RuntimeError(f"explainer {e.method!r} declares part {part!r} but left {unset} unset")


# The bundled explainers register themselves when `xai_gen` is imported (its `__init__` imports
# them), which Python does before any submodule such as this one: no import back from here.
_REGISTRY: dict[str, type[Explainer]] = {}
E = TypeVar("E", bound=type[Explainer])


def register_explainer(name: str) -> Callable[[E], E]:
    """Class decorator that registers an `Explainer` subclass under `name`.

    Example:
        >>> import torch
        >>> from xai_gen import Explainer, register_explainer, get_explainer
        >>> @register_explainer("input_times_one")
        ... class InputTimesOne(Explainer):
        ...     def _explain(self, model, x, target):
        ...         return x.clone()
        >>> get_explainer("input_times_one").attribute(torch.nn.Flatten(), torch.ones(1, 1, 2, 2)).method
        'input_times_one'
    """

    def deco(cls: E) -> E:
        if not (isinstance(cls, type) and issubclass(cls, Explainer)):
            raise TypeError(f"@register_explainer expects an Explainer subclass, got {cls!r}")
        old = _REGISTRY.get(name)
        if old is not None and old.__qualname__ != cls.__qualname__:
            raise ValueError(f"an explainer named {name!r} is already registered: {old.__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def list_explainers() -> list[str]:
    """Names of every registered explainer, sorted."""
    return sorted(_REGISTRY)


def get_explainer(name: str, **params: Any) -> Explainer:
    """Build a registered explainer by name, e.g. `get_explainer("gvr", latent_model=lm)`."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown explainer {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name](**params)


def bundled_explainers() -> tuple[str, ...]:
    """Names of the explainers shipped in `xai_gen.explainers`: attribution methods first, then
    the generative ones (whose explanations declare parts), alphabetically within each.

    Example:
        >>> bundled_explainers()[-3:]
        ('gvr', 'latent_shift', 'latent_traversal')
    """
    ours = [n for n in _REGISTRY if _REGISTRY[n].__module__.startswith("xai_gen.explainers.")]
    return tuple(sorted(ours, key=lambda n: (bool(_REGISTRY[n].provides), n)))


def explainer_class(name: str) -> type[Explainer]:
    """The class registered under `name`."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown explainer {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name]
