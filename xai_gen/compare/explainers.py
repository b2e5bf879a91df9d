"""Registered explainers built by name, each handed the shared resources its constructor takes."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from xai_gen.explainer import Explainer, explainer_class, get_explainer


def make_explainers(
    names: Sequence[str],
    resources: Mapping[str, Any] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    kinds: Mapping[str, str] | None = None,
) -> list[Explainer]:
    """Build registered explainers by name, handing each the resources its constructor takes.

    A resource (e.g. `latent_model`) is passed to an explainer only if its constructor has a
    parameter of that name, so one mapping serves pixel and generative methods alike.
    `params[name]` holds per-method hyper-parameters and overrides the resources.

    Args:
        names: registry names (see `xai_gen.list_explainers`).
        resources: constructor arguments shared by every method that accepts them.
        params: method name -> constructor arguments for that method only.
        kinds: method name -> registry name, for methods named otherwise (two settings of
            one explainer, e.g. `{"gvr_paper": "gvr"}`); a name not listed is its own kind.

    Returns:
        The explainers, in the order of `names`.

    Raises:
        ValueError: an unknown name, or a method missing a required constructor argument.

    Example:
        >>> [type(e).__name__ for e in make_explainers(["saliency"], {"latent_model": None})]
        ['Saliency']
        >>> [type(e).__name__ for e in make_explainers(["ig", "ig_8"], {}, {"ig_8": {"n_steps": 8}},
        ...                                            {"ig": "integrated_gradients", "ig_8": "integrated_gradients"})]
        ['IntegratedGradients', 'IntegratedGradients']
    """
    resources, params, kinds = dict(resources or {}), dict(params or {}), dict(kinds or {})
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"params name method(s) {unknown} that are not in names {list(names)}")
    out = []
    for name in names:
        kind = kinds.get(name, name)
        cls = explainer_class(kind)
        accepted = inspect.signature(cls).parameters
        kwargs = {k: v for k, v in resources.items() if k in accepted}
        kwargs.update(params.get(name, {}))
        missing = [
            p.name
            for p in accepted.values()
            if p.default is p.empty
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            and p.name not in kwargs
        ]
        if missing:
            raise ValueError(
                f"explainer {name!r} needs {missing}; pass them in resources or params"
            )
        out.append(get_explainer(kind, **kwargs))
    return out
