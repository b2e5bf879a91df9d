"""Griffe extension: the settings of an `Explainer` subclass as its constructor's parameters.

`Explainer.__init_subclass__` makes every subclass a dataclass when the class is created, so
each setting, declared once as an annotated class attribute, is a constructor argument with
its type and default. Griffe reads the source without running it and sees no `@dataclass`:
the reference would list every setting as required, with no type. This extension marks every
class derived from `Explainer` as a dataclass, as Python does at class creation, and griffe's
own dataclass support, which runs after the project's extensions, builds each `__init__` from
the declarations (types, defaults, keyword-only fields, base classes' settings first).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import griffe

#: The base class whose subclasses are made dataclasses at class creation.
EXPLAINER = "xai_gen.explainer.Explainer"


def _classes(obj: griffe.Module | griffe.Class) -> Iterator[griffe.Class]:
    """Every class defined in `obj` (not re-exported), nested ones included."""
    for member in obj.members.values():
        if member.is_alias:
            continue
        if isinstance(member, griffe.Class):
            yield member
        if isinstance(member, griffe.Module | griffe.Class):
            yield from _classes(member)


def _is_explainer(cls: griffe.Class) -> bool:
    try:
        lineage = [cls, *cls.mro()]
    except ValueError:  # a base griffe cannot resolve: not one of ours
        return False
    return any(c.path == EXPLAINER for c in lineage)


class ExplainerSettings(griffe.Extension):
    """Mark `Explainer` and its subclasses as dataclasses, so their settings document themselves."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for cls in _classes(pkg):
            if _is_explainer(cls) and "__init__" not in cls.members:
                dataclass = griffe.ExprName("dataclass", parent="dataclasses")
                cls.decorators.append(griffe.Decorator(dataclass, lineno=None, endlineno=None))
