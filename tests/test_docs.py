"""The documentation site: generated API reference, docstrings, code examples, figures.

* Every public symbol (the `__all__` of `xai_gen` and of its public subpackages) has a
  generated reference page and a docstring, as mkdocstrings (griffe) reads it.
* Every fenced ```` ```python ```` block of every page runs; the blocks of one page share a
  namespace and run in order, in a temporary working directory. A block that must not run is
  marked by the line `<!-- docs-test: skip -->` right above its fence (the pages use none).
* Every figure and generated table a page refers to exists (they are committed, so that
  `mkdocs build --strict` needs no trained models).
"""

from __future__ import annotations

import importlib.util
import inspect
import pkgutil
import re
import sys
from pathlib import Path

import griffe
import pytest

import xai_gen
import xai_gen.explainer as explainer_module

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "generated" not in p.relative_to(DOCS).parts)
SKIP_MARKER = "<!-- docs-test: skip -->"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^`]*)$")


def _load_docs_module(name: str):
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


hooks = _load_docs_module("hooks")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """`(line number, code)` of every fenced python block not marked with `SKIP_MARKER`."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = m["indent"], m["fence"]
        lang = m["info"].strip().split(" ")[0].lstrip(".").lower()
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j].strip() == fence), len(lines)
        )
        body = [ln[len(indent) :] if ln.startswith(indent) else ln.lstrip() for ln in lines[i + 1 : end]]
        previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        if lang in ("python", "py") and previous != SKIP_MARKER:
            blocks.append((i + 1, "\n".join(body)))
        i = end + 1
    return blocks


def test_python_blocks_parser_honours_indent_and_marker():
    text = (
        "```python\nx = 1\n```\n\n"
        f"{SKIP_MARKER}\n```python\nraise SystemExit\n```\n\n"
        "!!! note\n    ```python\n    y = x + 1\n    ```\n\n```bash\nls\n```\n"
    )
    assert python_blocks(text) == [(1, "x = 1"), (11, "y = x + 1")]


# -- API reference --------------------------------------------------------------------------


def test_every_public_subpackage_is_in_the_reference():
    """A subpackage that exports names with `__all__` must be listed in PUBLIC_MODULES."""
    public = set(hooks.PUBLIC_MODULES)
    for info in pkgutil.iter_modules(xai_gen.__path__, "xai_gen."):
        leaf = info.name.rsplit(".", 1)[1]
        if not info.ispkg or leaf.startswith("_") or info.name == "xai_gen.cli":
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "__all__"):
            assert info.name in public, f"{info.name} has __all__ but is not in docs/hooks.py"


def test_every_public_symbol_has_a_reference_page():
    symbols = hooks.public_symbols()
    pages = hooks.reference_pages(symbols)
    nav = hooks.reference_nav(symbols)
    nav_pages = {p for section in nav[1:] for (_, items) in section.items() for e in items for p in e.values()}
    expected = {
        f"{module.__name__}.{name}"
        for module in hooks.existing_public_modules()
        for name in getattr(module, "__all__", ())
    }
    assert {s.path for s in symbols} == expected
    for s in symbols:
        assert s.page in pages, f"{s.path} has no reference page"
        assert f"::: {hooks.directive_target(s.page_path)}\n" in pages[s.page]
        assert s.page in nav_pages, f"{s.page} is not in the nav"
        assert f"({s.page_path}.md)" in pages["reference/index.md"]
    # An object exported twice is documented once, at its first public path.
    by_page = {s.page_path for s in symbols}
    assert "xai_gen.LatentModel" in by_page and "xai_gen.latent.LatentModel" not in by_page


@pytest.fixture(scope="module")
def griffe_package():
    """xai_gen as mkdocstrings reads it: statically, with the project's griffe extensions."""
    examples = _load_docs_module("griffe_examples").ExampleSections()
    settings = _load_docs_module("griffe_settings").ExplainerSettings()
    return griffe.load(
        "xai_gen",
        search_paths=[str(ROOT)],
        extensions=griffe.load_extensions(examples, settings),
        resolve_aliases=True,
        resolve_external=False,
    )


def test_every_public_symbol_has_a_docstring(griffe_package):
    missing = []
    for s in hooks.public_symbols():
        target = hooks.directive_target(s.path)
        obj = griffe_package[target.removeprefix("xai_gen.")]
        if obj.docstring is None or not obj.docstring.value.strip():
            missing.append(s.path)
    assert not missing, f"public symbols without a docstring: {missing}"


def test_example_sections_render_as_code(griffe_package):
    """`Example:` is read as an examples section (a console block), not Markdown text."""
    sections = griffe_package["register_explainer"].docstring.parse("google")
    kinds = [s.kind.value for s in sections]
    assert "examples" in kinds and "admonition" not in kinds


def test_explainer_settings_show_their_types_and_defaults(griffe_package):
    """Each explainer's settings reach the reference as parameters with the declared type and
    default, base settings first and `memory_budget` keyword-only, as the constructor has them."""
    for name in explainer_module.bundled_explainers():
        cls = explainer_module.explainer_class(name)
        documented = griffe_package[f"{cls.__module__.removeprefix('xai_gen.')}.{cls.__qualname__}"].parameters
        real = list(inspect.signature(cls).parameters.values())
        assert [p.name for p in documented][1:] == [p.name for p in real], name
        for doc, param in zip(list(documented)[1:], real, strict=True):
            assert doc.annotation is not None, (name, doc.name)
            assert doc.kind.value == param.kind.description, (name, doc.name)
            if param.default is inspect.Parameter.empty:
                assert doc.default is None, (name, doc.name)
            elif isinstance(param.default, bool | int | float | str | tuple | type(None)):
                assert eval(str(doc.default), {}) == param.default, (name, doc.name)
            else:
                assert doc.default is not None, (name, doc.name)
    kappa = griffe_package["explainers.gvr.GVR"].parameters["kappa"]
    assert (str(kappa.annotation), str(kappa.default)) == ("float", "0.9999")


def test_cli_page_documents_every_subcommand():
    from xai_gen.cli import build_parser

    page = hooks.cli_page()
    names = hooks._subparsers(build_parser())
    assert names, "the CLI has no subcommands"
    for name in names:
        assert f"## `xai-gen {name}`" in page


def test_live_tables_list_the_registries():
    """The hook's tables name every registered explainer, metric and recipe config."""
    import xai_gen.recipes as recipes
    from xai_gen.metrics import METRICS

    filled = hooks.fill_placeholders(
        "<!-- xai-gen:explainers-table -->\n<!-- xai-gen:metrics-table -->\n<!-- xai-gen:recipes-table -->"
    )
    assert "<!-- xai-gen:" not in filled
    for name in xai_gen.list_explainers():
        assert f"| `{name}` |" in filled
    for name in METRICS:
        assert f"[`{name}`]" in filled
    for name in recipes.__all__:
        if name.endswith("Config"):
            assert f"`{name}`" in filled
    with pytest.raises(ValueError, match="unknown docs placeholder"):
        hooks.fill_placeholders("<!-- xai-gen:nonsense -->")


# -- pages ----------------------------------------------------------------------------------


def test_pages_are_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        rel = page.relative_to(DOCS).as_posix()
        assert f": {rel}" in nav, f"docs/{rel} is not in the nav of mkdocs.yml"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_figures_and_snippets_exist(page):
    text = page.read_text()
    for target in re.findall(r'^\s*--8<--\s+"([^"]+)"', text, flags=re.MULTILINE):
        assert (DOCS / target).is_file(), f"{page.name}: missing snippet {target}"
        text += (DOCS / target).read_text()  # its figures are relative to the including page
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text):
        if "://" not in target:
            assert (page.parent / target).is_file(), f"{page.name}: missing figure {target}"


RUNNABLE = [p for p in PAGES if python_blocks(p.read_text())]


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_code_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    registry = dict(explainer_module._REGISTRY)  # a page may register its own explainer
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    try:
        for line, code in python_blocks(page.read_text()):
            try:
                exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
            except Exception as err:
                raise AssertionError(f"{page.name}, block at line {line} failed: {err!r}") from err
    finally:
        explainer_module._REGISTRY.clear()
        explainer_module._REGISTRY.update(registry)
