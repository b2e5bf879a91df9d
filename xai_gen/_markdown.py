"""The one markdown table writer of the package (comparison reports, CLI, recipe reports, docs).

It imports nothing from `xai_gen`, so any module can use it without an import circle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def _cell(value: object) -> str:
    # A bare "|" would end the cell early; newlines would end the row.
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table: the header, a `---` rule, then one line per row.

    Cells are written with `str()`; format numbers before passing them. A `|` inside a cell
    is escaped so that it cannot split the cell.

    Args:
        header: the column names.
        rows: one sequence of cells per row, each as long as `header`.

    Returns:
        The table, one line per row, without a trailing newline.

    Raises:
        ValueError: a row whose length differs from the header's.

    Example:
        >>> print(markdown_table(["method", "seconds"], [["saliency", 0.02], ["a|b", "-"]]))
        | method | seconds |
        |---|---|
        | saliency | 0.02 |
        | a\\|b | - |
    """
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} cells but header has {len(header)}")
        lines.append("| " + " | ".join(map(_cell, row)) + " |")
    return "\n".join(lines)
