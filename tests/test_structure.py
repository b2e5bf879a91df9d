"""The package's shape: no import circles, and no docstring or comment that goes stale.

The import graph is read from the source with `ast` (every `import` statement, also those
inside functions, except type-only ones under `if TYPE_CHECKING:`), so a circle is found even
when a deferred import keeps it from failing at run time.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xai_gen"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(tree: ast.AST, known: set[str]) -> set[str]:
    """The `known` modules a syntax tree imports (type-only imports left out)."""
    found: set[str] = set()
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in known:
                    found.add(submodule)
                elif node.module in known:
                    found.add(node.module)
        found |= _imports(node, known)
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module name -> the package modules it imports."""
    known = set(modules)
    return {name: _imports(ast.parse(path.read_text()), known) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as `[a, b, ..., a]`, or None (depth-first search with three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_sees_deferred_imports_but_not_type_only_ones(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n")
    graph = import_graph({"pkg.a": pkg / "a.py", "pkg.b": pkg / "b.py"})
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": set()}


def test_no_import_circles():
    cycle = find_cycle(import_graph(MODULES))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def _texts(path: Path) -> list[tuple[int, str]]:
    """`(line, text)` of every docstring and comment of a source file."""
    source = path.read_text()
    out = [
        (node.body[0].lineno, ast.get_docstring(node, clean=False) or "")
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and ast.get_docstring(node) is not None
    ]
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    out += [(tok.start[0], tok.string) for tok in tokens if tok.type == tokenize.COMMENT]
    return out


#: A design document that is not shipped with the package.
OUTSIDE_DOCUMENT = re.compile(r"\bDESIGN\b")
#: A wall-clock measurement ("156 s", "0.3 ms", "80 CPU-seconds"): true of one machine on one
#: day; measured timings belong in the generated benchmark pages.
TIMING = re.compile(r"(?<![\w.])\d[\d.,]*(?:-\d[\d.]*)?\s?(?:ms|s|CPU-seconds|seconds|minutes)\b")


@pytest.mark.parametrize(
    ("pattern", "text", "hit"),
    [
        (OUTSIDE_DOCUMENT, "as DESIGN §3 decides", True),
        (OUTSIDE_DOCUMENT, "the design of the loop", False),
        (TIMING, "156 s measured on one thread", True),
        (TIMING, "rows cost 0.6-1.0 ms per row", True),
        (TIMING, "about 80 CPU-seconds", True),
        (TIMING, "the `minutes` budgets and 15:1 splits", False),
    ],
)
def test_patterns_catch_what_they_name(pattern, text, hit):
    assert bool(pattern.search(text)) is hit


@pytest.mark.parametrize("name", sorted(MODULES))
def test_docstrings_and_comments_cite_nothing_outside_and_carry_no_timings(name):
    bad = [
        f"{MODULES[name].name}:{line}: {m.group(0)!r}"
        for line, text in _texts(MODULES[name])
        for pattern in (OUTSIDE_DOCUMENT, TIMING)
        if (m := pattern.search(text))
    ]
    assert not bad, bad
