"""Griffe extension: read a Google-style `Example:` section as `Examples:`.

The project's docstrings end with an `Example:` section holding a doctest (the doctests run
in CI). Griffe's Google parser only knows the plural title and would render the singular one
as an admonition of plain Markdown, where `>>>` becomes a nested block quote. Renaming the
title before parsing gives the rendered page a highlighted, copyable Python console block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rewrite `Example:` section titles to `Examples:` on every object's docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
