"""The comparison report: its markdown tables, the index of a multi-data-set run, the files.

`markdown_table` is the package's one table writer (`xai_gen._markdown`, which imports nothing
from `xai_gen`, so recipes and the docs use it without importing the runner).
"""

from __future__ import annotations

import math
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from xai_gen._markdown import markdown_table
from xai_gen._version import __version__
from xai_gen.metrics import METRICS

if TYPE_CHECKING:
    from xai_gen.compare.result import ComparisonResult

__all__ = [
    "counterfactual_markdown",
    "index_markdown",
    "markdown_table",
    "report_markdown",
    "results_markdown",
    "save_report",
]


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}g}"


def _fmt_bytes(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value / 2**20:.1f} MiB"


def _best(result: ComparisonResult, summary: dict, metric: str) -> str | None:
    """The method with the best mean of `metric`; None without a direction or a rival."""
    direction = result.higher_is_better.get(metric)
    scored = {
        m: s[metric]["mean"]
        for m, s in summary.items()
        if metric in s and math.isfinite(s[metric]["mean"])
    }
    if direction is None or len(scored) < 2:
        return None
    return (max if direction else min)(scored, key=scored.get)


def _cell(stats: dict[str, float] | None, bold: bool) -> str:
    """`mean ± half-width` of one method and metric; "–" where the metric does not apply."""
    if stats is None:
        return "–"
    text = _fmt(stats["mean"])
    if math.isfinite(stats["ci_high"]):
        text += f" ± {_fmt(stats['ci_high'] - stats['mean'], 2)}"
    return f"**{text}**" if bold else text


#: Order of the metric families (`MetricInfo.category`) when tables are split by family;
#: other families (a Quantus category we have no table for) follow in alphabetical order.
FAMILIES = (
    "faithfulness", "robustness", "localisation", "complexity", "randomisation", "counterfactual", "traversal",
)


def metric_family(result: ComparisonResult, metric: str) -> str:
    """The family of `metric` in `result`: as `compare` recorded it from the metric registry
    (`meta["families"]`; Quantus' metrics by their Quantus category), else the registry's.

    Example:
        >>> import torch
        >>> from xai_gen.compare import ComparisonResult
        >>> r = ComparisonResult([], [], {}, {}, {}, {}, torch.zeros(0), {}, meta={"families": {"quantus:X": "axiomatic"}})
        >>> metric_family(r, "deletion_auc"), metric_family(r, "quantus:X"), metric_family(r, "quantus:Y")
        ('faithfulness', 'axiomatic', 'quantus')
    """
    recorded = result.meta.get("families", {}).get(metric)
    if recorded:
        return str(recorded)
    return METRICS[metric].category if metric in METRICS else "quantus"


def _family_tables(result: ComparisonResult, summary: dict, best: dict) -> list[str]:
    """One table per metric family, each with the method column, then one of the cost: a
    reader compares like with like, and no table is wider than its family."""
    from xai_gen.viz.charts import arrow

    families = {m: metric_family(result, m) for m in result.evaluated}
    present = sorted(set(families.values()), key=lambda f: (f not in FAMILIES, FAMILIES.index(f) if f in FAMILIES else 0, f))
    tables = []
    for fam in present:
        cols = [m for m in result.evaluated if families[m] == fam]
        head = [fam, *[f"{m} {arrow(result.higher_is_better.get(m))}".strip() for m in cols]]
        rows = [[method, *[_cell(summary.get(method, {}).get(m), best[m] == method) for m in cols]]
                for method in result.methods]
        tables.append(markdown_table(head, rows))
    cost = [[m, _fmt(result.seconds.get(m, math.nan)), _fmt_bytes(result.peak_memory.get(m, math.nan))]
            for m in result.methods]
    tables.append(markdown_table(["cost", "s / explanation ↓", "peak memory ↓"], cost))
    return tables


def _shared_path_note(result: ComparisonResult) -> list[str]:
    """Say so when latent traversal walked GVR's path: then it repeats GVR's attribution and
    counterfactual, and equal values in the two rows are one measurement, not two."""
    params = result.meta.get("params", {}).get("latent_traversal", {})
    if params.get("path") != "gvr" or "gvr" not in result.methods:
        return []
    return [
        "latent_traversal walks GVR's path here (`path='gvr'`): its attribution and counterfactual "
        "are GVR's own, so the two rows share those metrics (one measurement shown twice); the "
        "traversal adds its frames and their monotonicity."
    ]


def _results_tables(result: ComparisonResult, by_family: bool) -> list[str]:
    """The results table(s): one per metric family and one of the cost, or one wide table."""
    from xai_gen.viz.charts import arrow

    summary = result.summary()
    cols = result.evaluated
    best = {m: _best(result, summary, m) for m in cols}
    if by_family:
        return _family_tables(result, summary, best)
    head = [
        "method",
        *[f"{m} {arrow(result.higher_is_better.get(m))}".strip() for m in cols],
        "s / explanation ↓",
        "peak memory ↓",
    ]
    rows = [
        [
            method,
            *[_cell(summary.get(method, {}).get(m), best[m] == method) for m in cols],
            _fmt(result.seconds.get(method, math.nan)),
            _fmt_bytes(result.peak_memory.get(method, math.nan)),
        ]
        for method in result.methods
    ]
    return [markdown_table(head, rows)]


def _results_notes(result: ComparisonResult) -> list[str]:
    """The notes that read the results tables: data, cells, memory, what did not apply, errors."""
    cols = result.evaluated
    meta = result.meta
    # `compare` records which metrics re-ran the explainer (Quantus' among them); a result
    # built by hand falls back on the registry.
    rerun_metrics = meta.get("rerun_metrics")
    if rerun_metrics is None:
        rerun_metrics = [m for m in cols if m in METRICS and "explainer" in METRICS[m].needs]
    rerun = [m for m in cols if m in rerun_metrics]
    notes = [
        f"Data: {meta.get('data', '?')}; n = {meta.get('n', '?')} samples, "
        f"seed {meta.get('seed', '?')}, device {meta.get('device', '?')}."
        + (
            f" Metrics that re-run the explainer ({', '.join(rerun)}) use the first "
            f"{meta.get('expensive_n', '?')} samples."
            if rerun
            else ""
        ),
        "Cells: mean ± half-width of the 95 % Student-t interval over samples; bold = best; "
        "↑ higher is better, ↓ lower is better; – = not applicable.",
        f"Peak memory of `attribute`: {meta.get('memory', '?')}.",
    ]
    skipped = [m for m in result.metrics if m not in cols]
    if skipped:
        notes.append(f"Not applicable to any method here: {', '.join(skipped)}.")
    notes += _shared_path_note(result)
    notes += [f"Error in {k}: {v}" for k, v in result.errors.items()]
    notes += _warning_notes(result)
    return notes


def _warning_notes(result: ComparisonResult) -> list[str]:
    """One note per method and metric that raised warnings: how many, and the first one."""
    notes = []
    for method, per_metric in result.meta.get("warnings", {}).items():
        for metric, texts in per_metric.items():
            total = sum(texts.values())
            first = next(iter(texts))
            others = f" ({len(texts) - 1} other message(s))" if len(texts) > 1 else ""
            notes.append(f"Warnings in {method}/{metric}: {total}, e.g. “{first}”{others}.")
    return notes


def results_markdown(result: ComparisonResult, by_family: bool = True) -> str:
    """The results tables and the notes that read them.

    Rows are methods; each metric family (faithfulness, robustness, localisation / ground
    truth, complexity, randomisation, counterfactual, traversal; Quantus' metrics by their
    Quantus category) has its own table, headed by the family's name, with ↑/↓ on each
    metric; a last table holds the cost (seconds per explanation, peak memory).

    Args:
        result: what `compare` measured.
        by_family: False: one wide table of every metric and the cost instead.

    Returns:
        Markdown text ending with a newline.

    Example:
        >>> import torch
        >>> from xai_gen.compare import ComparisonResult
        >>> r = ComparisonResult(["saliency"], [], {}, {}, {"saliency": 0.5}, {}, torch.zeros(0), {})
        >>> print(results_markdown(r).splitlines()[2])
        | saliency | 0.5 | – |
    """
    return "\n\n".join(_results_tables(result, by_family)) + "\n\n" + "\n".join(_results_notes(result)) + "\n"


#: Columns of the counterfactual table: metric (or "frechet", "oracle_of_valid") -> heading.
COUNTERFACTUAL_COLUMNS = {
    "validity": "validity",
    "oracle_agreement": "oracle agreement",
    "oracle_of_valid": "oracle agreement of valid",
    "cout": "COUT",
    "proximity_l1": "proximity L1",
    "realism": "realism",
    "frechet": "Frechet",
    "counterfactual_error": "counterfactual error",
    "steps": "steps",
}


def _oracle_of_valid(result: ComparisonResult, method: str) -> dict[str, float] | None:
    """Oracle agreement of the counterfactuals the explained model counts as valid."""
    values = result.values.get(method, {})
    if "validity" not in values or "oracle_agreement" not in values:
        return None
    valid = np.flatnonzero(values["validity"] == 1)
    return result.for_samples(valid).summary()[method]["oracle_agreement"]


def counterfactual_markdown(result: ComparisonResult) -> str:
    """The counterfactual table: one row per method that returned counterfactuals.

    Columns (those measured for some method): validity, oracle agreement (of all rows and of
    the valid ones), COUT, proximity L1, realism (reconstruction error), the Frechet distance
    of the counterfactuals to the data set's images, counterfactual error, steps and seconds
    per explanation; "" when no method returned counterfactuals.

    Args:
        result: what `compare` measured.

    Returns:
        Markdown text (table and notes) ending with a newline, or "".

    Example:
        >>> import numpy as np, torch
        >>> from xai_gen.compare import ComparisonResult
        >>> v = {"gvr": {"validity": np.array([1.0, 1.0]), "oracle_agreement": np.array([1.0, 0.0])}}
        >>> r = ComparisonResult(["gvr"], ["validity", "oracle_agreement"], {"validity": True,
        ...     "oracle_agreement": True}, v, {"gvr": 0.1}, {}, torch.zeros(0), {})
        >>> print(counterfactual_markdown(r).splitlines()[2])
        | gvr | 1 ± 0 | 0.5 ± 6.4 | 0.5 ± 6.4 | 0.1 |
    """
    from xai_gen.viz.charts import arrow

    summary = result.summary()
    for method in result.values:
        of_valid = _oracle_of_valid(result, method)
        if of_valid is not None:
            summary[method]["oracle_of_valid"] = of_valid
    methods = [
        m
        for m in result.methods
        if m in result.frechet or any(k in summary.get(m, {}) for k in COUNTERFACTUAL_COLUMNS)
    ]
    if not methods:
        return ""
    higher = {**result.higher_is_better, "oracle_of_valid": True, "frechet": False}
    for method, value in result.frechet.items():
        summary[method]["frechet"] = {"mean": value, "ci_low": math.nan, "ci_high": math.nan}
    cols = [c for c in COUNTERFACTUAL_COLUMNS if any(c in summary.get(m, {}) for m in methods)]
    picked = {m: summary.get(m, {}) for m in methods}
    best = {}
    for c in cols:
        scored = {m: s[c]["mean"] for m, s in picked.items() if c in s and math.isfinite(s[c]["mean"])}
        best[c] = (max if higher[c] else min)(scored, key=scored.get) if len(scored) > 1 else None
    head = ["method", *[f"{COUNTERFACTUAL_COLUMNS[c]} {arrow(higher.get(c))}" for c in cols], "s / explanation ↓"]
    rows = [
        [m, *[_cell(picked[m].get(c), best[c] == m) for c in cols], _fmt(result.seconds.get(m, math.nan))]
        for m in methods
    ]
    floor = result.meta.get("frechet_floor")
    notes = [
        "",
        "Validity: the explained model puts the counterfactual in the contrast class (any other "
        "class when none was asked). Oracle agreement: a second classifier, trained apart "
        "(another architecture and seed), does too; \"of valid\": among the valid ones. COUT: "
        "AUC of the contrast class minus AUC of the original class as the counterfactual's pixels "
        "are inserted, most changed first (C3LT). Realism: the latent model's reconstruction "
        "error of the counterfactual. Frechet: of all counterfactuals to the data set's images, "
        "in the reference classifier's features"
        + (f" (the explained inputs themselves: {_fmt(floor)})" if floor is not None else "")
        + ". Counterfactual error: MSE(cf, true counterfactual) / MSE(x, true counterfactual), "
        "where ground truth applies.",
    ]
    return "\n".join([markdown_table(head, rows), *notes]) + "\n"


def report_markdown(result: ComparisonResult) -> str:
    """`ComparisonResult.to_markdown`: the results tables (one per metric family, see
    `results_markdown`), then the counterfactual table.

    Samples split into groups (true and explained class, on data with ground truth) get one
    set of results tables per group, with a note that says where ground truth was scored.

    Args:
        result: what `compare` measured.

    Returns:
        Markdown text ending with a newline.
    """
    parts = []
    if result.groups:
        truth = result.meta.get("ground_truth_metrics") or []
        parts.append(
            "Samples are grouped by true class and the class they are explained as. "
            + (
                f"Ground-truth metrics ({', '.join(truth)}) score only the samples of the class "
                "the ground truth marks, explained as that class; – elsewhere."
                if truth
                else ""
            )
            + "\n"
        )
        for name, index in result.groups.items():
            # Every group's tables have the same notes: they are written once, after the last.
            tables = _results_tables(result.for_samples(index), by_family=True)
            parts += [f"### {name} (n = {len(index)})\n", "\n\n".join(tables) + "\n"]
        parts.append("\n".join(_results_notes(result)) + "\n")
    else:
        parts.append(results_markdown(result))
    cf = counterfactual_markdown(result)
    if cf:
        parts += ["### Counterfactuals\n", cf]
    return "\n".join(parts)


def index_markdown(results: dict[str, ComparisonResult], wall: float, command: str) -> str:
    """The `README.md` of a multi-data-set report: command, wall time, each data set's tables
    (one per metric family, see `results_markdown`).

    Args:
        results: data-set name -> its result, saved under `<name>/` beside the index.
        wall: wall seconds of the whole run.
        command: the command line that made the report.

    Returns:
        Markdown text.
    """
    lines = [
        "# xai-gen comparison report",
        "",
        f"Command: `{command}`  ",
        f"Wall time: {wall:.1f} s (training of missing models included), xai-gen {__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"python {platform.python_version()}.",
        "",
    ]
    for dataset, result in results.items():
        lines += [
            f"## {dataset}",
            "",
            f"[table]({dataset}/results.md) · [JSON]({dataset}/results.json) · "
            f"[metrics]({dataset}/metrics.png) · [timing]({dataset}/timing.png)",
            "",
            f"![{dataset} explanations]({dataset}/figure_grid.png)",
            "",
            results_markdown(result),
        ]
    return "\n".join(lines)


def save_report(result: ComparisonResult, directory: str | Path) -> list[Path]:
    """`ComparisonResult.save`: the markdown, the JSON and the figures, in `directory`.

    Args:
        result: what `compare` measured.
        directory: the report folder (created if needed).

    Returns:
        The paths written.
    """
    from xai_gen.viz import plot_grid
    from xai_gen.viz.charts import plot_costs, plot_metric_bars

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.md", out / "results.json"]
    written[0].write_text(result.to_markdown())
    written[1].write_text(result.to_json())
    title = str(result.meta.get("data", ""))
    figures = []
    if result.explanations:
        figures.append(
            ("figure_grid.png", plot_grid(result.images, result.explanations, title=title))
        )
    if result.evaluated:
        bars = plot_metric_bars(
            result.summary(), result.evaluated, result.higher_is_better, title=title
        )
        figures.append(("metrics.png", bars))
    if result.seconds:
        figures.append(("timing.png", plot_costs(result.seconds, result.peak_memory, title=title)))
    for name, fig in figures:
        fig.savefig(out / name, dpi=110)
        written.append(out / name)
    return written
