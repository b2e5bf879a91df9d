"""MkDocs hook: the API and CLI reference pages, generated from the code on every build.

* **API reference.** Every name in the `__all__` of `xai_gen` and of its public subpackages
  (`PUBLIC_MODULES`) gets one virtual page `reference/<module>.<Name>.md` holding a
  mkdocstrings directive `::: <module>.<Name>`; a name exported from two places (e.g.
  `xai_gen.LatentModel` and `xai_gen.latent.LatentModel`) gets one page, at its first public
  path, and the index lists the other path beside it. The pages and `reference/index.md` are
  added to the nav under "API reference", so a new export appears without editing the docs.
* **CLI reference.** `cli.md` is the `--help` text of every (sub)command of the parser that
  `xai_gen.cli.build_parser()` returns, so it cannot drift from the code.

`tests/test_docs.py` imports `public_symbols` and `reference_pages` from here to check that
every public symbol has a page and a docstring.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import inspect
import os
import re
from dataclasses import dataclass
from typing import Any

from xai_gen.compare.report import markdown_table

#: Modules whose `__all__` is the public API, in the order the reference lists them.
PUBLIC_MODULES = (
    "xai_gen",
    "xai_gen.explainers",
    "xai_gen.latent",
    "xai_gen.data",
    "xai_gen.recipes",
    "xai_gen.bundles",
    "xai_gen.datasets",
    "xai_gen.metrics",
    "xai_gen.compare",
    "xai_gen.evaluation",
    "xai_gen.viz",
    "xai_gen.interop",
    "xai_gen.jobs",
)

#: The nav entry (in mkdocs.yml) whose children the hook fills in.
NAV_TITLE = "API reference"
REFERENCE_DIR = "reference"
CLI_PAGE = "cli.md"


@dataclass(frozen=True)
class Symbol:
    """One public name: `module.name`, and the reference page that documents its object."""

    module: str
    name: str
    page_path: str  # the public path whose page documents the object, e.g. "xai_gen.LatentModel"

    @property
    def path(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def page(self) -> str:
        return f"{REFERENCE_DIR}/{self.page_path}.md"


def existing_public_modules() -> list[Any]:
    """The modules of `PUBLIC_MODULES` that exist (subpackages land one by one)."""
    modules = []
    for name in PUBLIC_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
    return modules


def _identity(obj: Any) -> int | None:
    """Objects that can be exported twice (classes, functions, modules) are shared by identity;
    constants never are, since equal small values may be the same object by accident."""
    if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
        return id(obj)
    return None


def public_symbols() -> list[Symbol]:
    """Every name in the `__all__` of the existing public modules, with its page."""
    symbols: list[Symbol] = []
    first_path: dict[int, str] = {}
    for module in existing_public_modules():
        for name in getattr(module, "__all__", ()):
            path = f"{module.__name__}.{name}"
            key = _identity(getattr(module, name))
            page_path = first_path.setdefault(key, path) if key is not None else path
            symbols.append(Symbol(module.__name__, name, page_path))
    return symbols


def directive_target(path: str) -> str:
    """The path mkdocstrings should render for the public name `path`.

    Normally `path` itself. When a package re-exports a function under the name of one of its
    submodules (`xai_gen.data.synthetic_cxr`, the function from `xai_gen/data/synthetic_cxr.py`),
    static analysis resolves the name to the submodule; the object's defining path is used instead.
    """
    module_name, name = path.rsplit(".", 1)
    module = importlib.import_module(module_name)
    obj = getattr(module, name)
    # A public module that is no package (`xai_gen.datasets`) has no submodules to clash with.
    if inspect.ismodule(obj) or not hasattr(module, "__path__") or importlib.util.find_spec(path) is None:
        return path
    return f"{obj.__module__}.{obj.__qualname__}"


def summary(obj: Any) -> str:
    """First line of an object's docstring (empty for constants without one)."""
    if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
        return ""
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def reference_pages(symbols: list[Symbol]) -> dict[str, str]:
    """`{src_uri: markdown}` of the reference pages and their index."""
    aliases: dict[str, list[str]] = {}
    for s in symbols:
        if s.path != s.page_path:
            aliases.setdefault(s.page_path, []).append(s.path)
    pages: dict[str, str] = {}
    for s in symbols:
        if s.path != s.page_path:
            continue
        also = "".join(f"\n\nAlso exported as `{a}`." for a in aliases.get(s.path, []))
        target = directive_target(s.path)
        if target in PUBLIC_MODULES:
            # A public subpackage exported as a name (`xai_gen.metrics`): its members have pages
            # of their own, so this page shows the module's docstring and points to them.
            anchor = target.replace(".", "")
            also += f"\n\nIts public names: [`{target}` in the API reference](index.md#{anchor})."
            target += "\n    options:\n      members: false"
        pages[s.page] = f"---\ntitle: {s.name}\n---\n\n::: {target}{also}\n"
    rows = ["# API reference", "", _INDEX_INTRO, ""]
    for module in dict.fromkeys(s.module for s in symbols):
        table = []
        for s in (s for s in symbols if s.module == module):
            obj = getattr(importlib.import_module(s.module), s.name)
            text = summary(obj)
            if s.path != s.page_path:
                text = f"same object as [`{s.page_path}`]({s.page_path}.md)"
            table.append([f"[`{s.name}`]({s.page_path}.md)", text])
        rows += [f"## `{module}`", "", markdown_table(["name", "summary"], table), ""]
    pages[f"{REFERENCE_DIR}/index.md"] = "\n".join(rows)
    return pages


_INDEX_INTRO = (
    "Every public name of `xai_gen`: the `__all__` of the package and of its public "
    "subpackages. These pages are generated from the docstrings on every build "
    "(`docs/hooks.py`), so they always match the installed code."
)


def reference_nav(symbols: list[Symbol]) -> list[Any]:
    """The nav subtree: the index, then one section per module with its own pages."""
    nav: list[Any] = [f"{REFERENCE_DIR}/index.md"]
    for module in dict.fromkeys(s.module for s in symbols):
        own = [{s.name: s.page} for s in symbols if s.module == module and s.path == s.page_path]
        if own:
            nav.append({module: own})
    return nav


# -- CLI --------------------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _walk(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = [parser]
    for child in _subparsers(parser).values():
        out += _walk(child)
    return out


def cli_page() -> str:
    """Markdown of the CLI reference: every parser's `--help`, at a fixed width of 100."""
    from xai_gen.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal width; fix it for the page
    try:
        parsers = _walk(build_parser())
        helps = [(p.prog, p.format_help()) for p in parsers]
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    lines = [
        "# CLI reference",
        "",
        "The `xai-gen` command is installed with the package. This page is generated from "
        "`xai_gen.cli.build_parser()` on every docs build, so every option below exists.",
        "",
    ]
    for prog, text in helps:
        lines += [f"## `{prog}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(lines)


# -- live tables ------------------------------------------------------------------------------
# A page writes `<!-- xai-gen:NAME -->` on a line of its own; the hook replaces it with the
# table built from the registries, so the tables list exactly what the code registers.


def _api_link(path: str, text: str | None = None) -> str:
    """Markdown link from a top-level page to the reference page of `path`."""
    for s in public_symbols():
        if s.path == path:
            return f"[`{text or s.name}`]({s.page})"
    return f"`{text or path}`"


def _where(obj: Any) -> str:
    """The public path of a class or function (first module of PUBLIC_MODULES exporting it)."""
    for s in public_symbols():
        module = importlib.import_module(s.module)
        if getattr(module, s.name) is obj:
            return s.path
    return f"{obj.__module__}.{obj.__qualname__}"


def explainers_table() -> str:
    """Registered explainers: name, class, constructor defaults."""
    from xai_gen.explainer import explainer_class, list_explainers

    rows = []
    for name in list_explainers():
        cls = explainer_class(name)
        params = [
            f"`{p.name}`" if p.default is p.empty else f"`{p.name}={p.default!r}`"
            for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
        ]
        rows.append([f"`{name}`", _api_link(_where(cls)), ", ".join(params) or "-"])
    return markdown_table(["registry name", "class", "hyper-parameters (defaults)"], rows)


def metrics_table() -> str:
    """The metric registry: name, category, direction, what it needs."""
    from xai_gen.metrics import METRICS

    rows = []
    for name, info in METRICS.items():
        needs = [", ".join(f"`{n}`" for n in sorted(info.needs))] if info.needs else []
        needs += [
            " or ".join("{" + ", ".join(f"`{n}`" for n in sorted(g)) + "}" for g in info.needs_one_of)
        ] if info.needs_one_of else []
        better = "higher ↑" if info.higher_is_better else "lower ↓"
        link = _api_link(f"xai_gen.metrics.{name}", name)
        rows.append([link, info.category, better, "; ".join(needs) or "-"])
    return markdown_table(["metric", "category", "better", "needs"], rows)


def _attribute_docs(cls: type) -> dict[str, str]:
    """`name: description` pairs of the `Attributes:` sections of `cls` and its bases."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        lines = (inspect.getdoc(klass) or "").splitlines() if klass.__doc__ else []
        current, inside = None, False
        for line in lines:
            if line.strip() in ("Attributes:", "Args:"):
                inside = True
                continue
            if inside and line and not line.startswith(" "):
                inside = False
            m = re.match(r"^ {4}(\w+)(?: \([^)]*\))?: (.*)$", line) if inside else None
            if m:
                current = m[1]
                out[current] = m[2].strip()
            elif inside and current and line.startswith("        "):
                out[current] += " " + line.strip()
    return out


def _config_table(cls: type, names: list[str], docs: dict[str, str]) -> str:
    defaults = {f.name: f for f in dataclasses.fields(cls)}
    rows = []
    for name in names:
        f = defaults[name]
        if f.default is not dataclasses.MISSING:
            value = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            value = repr(f.default_factory())
        else:
            value = "required"
        rows.append([f"`{name}`", f"`{value}`", docs.get(name, "")])
    return markdown_table(["setting", "default", "meaning"], rows)


def recipes_table() -> str:
    """Every recipe config of `xai_gen.recipes.__all__`: its own settings and their defaults."""
    import xai_gen.recipes as recipes

    exported = [getattr(recipes, n) for n in recipes.__all__]
    configs = [c for c in exported if inspect.isclass(c) and dataclasses.is_dataclass(c)]
    trainers = [f for f in exported if inspect.isfunction(f) and "config" in inspect.signature(f).parameters]
    lines: list[str] = []
    shared = {b: None for c in configs for b in c.__mro__[1:] if dataclasses.is_dataclass(b)}
    for cls in (c for c in configs if c not in shared):
        bases = [b for b in cls.__mro__[1:] if dataclasses.is_dataclass(b)]
        inherited = {f.name for b in bases for f in dataclasses.fields(b)}
        own = [f.name for f in dataclasses.fields(cls) if f.name not in inherited and f.repr]
        users = [
            f.__name__ for f in trainers
            if cls.__name__ in str(inspect.signature(f).parameters["config"].annotation)
        ]
        used_by = f" — `{'`, `'.join(users)}`" if users else ""
        lines += [f"### `{cls.__name__}`{used_by}", "", (inspect.getdoc(cls) or "").split("\n\n")[0], ""]
        lines += [_config_table(cls, own, _attribute_docs(cls)), ""]
    for base in shared:
        names = [f.name for f in dataclasses.fields(base)]
        lines += [f"### Settings every recipe shares (`{base.__name__}`)", ""]
        lines += [_config_table(base, names, _attribute_docs(base)), ""]
    return "\n".join(lines)


LIVE_TABLES = {
    "explainers-table": explainers_table,
    "metrics-table": metrics_table,
    "recipes-table": recipes_table,
}
_PLACEHOLDER = re.compile(r"^<!-- xai-gen:([a-z-]+) -->$", re.MULTILINE)


def fill_placeholders(markdown: str) -> str:
    """Replace every `<!-- xai-gen:NAME -->` line by the live table NAME."""

    def table(m: re.Match[str]) -> str:
        if m[1] not in LIVE_TABLES:
            raise ValueError(f"unknown docs placeholder {m[0]!r}; known: {sorted(LIVE_TABLES)}")
        return LIVE_TABLES[m[1]]()

    return _PLACEHOLDER.sub(table, markdown)


# -- MkDocs events ----------------------------------------------------------------------------


def _fill_nav(nav: list[Any], children: list[Any]) -> bool:
    for i, entry in enumerate(nav):
        if isinstance(entry, dict):
            (title, value), = entry.items()
            if title == NAV_TITLE:
                nav[i] = {title: children}
                return True
            if isinstance(value, list) and _fill_nav(value, children):
                return True
    return False


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages and put the reference into the nav."""
    from mkdocs.structure.files import File

    symbols = public_symbols()
    pages = reference_pages(symbols)
    pages[CLI_PAGE] = cli_page()
    for uri, content in pages.items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))
    if config["nav"] is not None and not _fill_nav(config["nav"], reference_nav(symbols)):
        raise ValueError(f"mkdocs.yml nav has no {NAV_TITLE!r} entry for the generated reference")
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the live tables."""
    return fill_placeholders(markdown)
