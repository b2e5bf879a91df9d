"""`compare` on the data-set job engine: the summary from the shards equals the in-memory one,
a resumed comparison reports what an uninterrupted one does, and the driver reads the shards."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from test_compare_counterfactuals import latent_model, patients, tiny_model

import xai_gen as xg
from xai_gen.cli import build_parser
from xai_gen.cli import compare as compare_cli
from xai_gen.compare import compare, make_explainers
from xai_gen.data import ImageSplit
from xai_gen.evaluation.plan import sample_index
from xai_gen.jobs import Work, comparison_from_job, data_source, read_shard, run_job, shard_path
from xai_gen.jobs.shards import write_shard
from xai_gen.latent import nets

METHODS = {"saliency": "saliency", "gvr": "gvr", "gvr_paper": "gvr"}
PARAMS = {"gvr": {"max_steps": 10}, "gvr_paper": {"max_steps": 30}}
# Ground truth, counterfactual, random (infidelity), explainer re-running and Quantus metrics.
METRICS = ["pointing_game", "counterfactual_error", "validity", "oracle_agreement", "cout",
           "infidelity", "max_sensitivity", "sparseness", "quantus:Sparseness"]
OPTIONS = {"cout": {"n_steps": 4}, "infidelity": {"n_perturb_samples": 3},
           "max_sensitivity": {"n_perturb_samples": 2}}
N, BATCH, SHARD, EXPENSIVE = 6, 2, 4, 4  # expensive_n: whole batches (max_sensitivity fails on one sample)


def test_summary_from_shards_equals_the_in_memory_summary(tmp_path):
    model, lm = tiny_model(), latent_model()
    data = patients(model)
    resources = {"latent_model": lm, "oracle": model, "progress": False}
    built = make_explainers(list(METHODS), resources, PARAMS, METHODS)
    memory = compare(
        dict(zip(METHODS, built)), model, data, metrics=METRICS, n=N, seed=3, batch_size=BATCH,
        expensive_n=EXPENSIVE, available={"latent_model": lm, "oracle": model}, metric_options=OPTIONS,
        progress=False, name="patients",
    )
    work = Work(
        data_source("patients", data), model, list(METHODS), resources=resources, params=PARAMS,
        kinds={"gvr_paper": "gvr"}, metrics=METRICS, metric_options=OPTIONS,
        selection=sample_index(len(data.images), N, 3), seed=3, batch_size=BATCH, shard_size=SHARD,
        expensive_n=EXPENSIVE, features=model, explained_class=True,
    )
    summary = run_job(work, tmp_path / "job", progress=False)
    shards = comparison_from_job(
        work, summary, name="patients", class_names=data.class_names, ground_truth_class=1
    )
    assert summary.shards == 2 and shards.errors == memory.errors == {}
    assert shards.methods == memory.methods and shards.metrics == memory.metrics
    assert shards.groups == memory.groups and len(shards.groups) > 1
    for method in METHODS:
        assert sorted(shards.values[method]) == sorted(memory.values[method])
        for metric, want in memory.values[method].items():
            np.testing.assert_allclose(shards.values[method][metric], want, rtol=1e-6, err_msg=metric)
    assert shards.values["gvr"]["max_sensitivity"].shape == (EXPENSIVE,)
    assert np.isnan(shards.values["gvr"]["pointing_game"]).any()  # ground truth: its class only
    assert shards.frechet.keys() == memory.frechet.keys() == {"gvr", "gvr_paper"}
    for method, value in memory.frechet.items():
        assert math.isclose(shards.frechet[method], value, rel_tol=1e-5, abs_tol=1e-9)
    assert math.isclose(shards.meta["frechet_floor"], memory.meta["frechet_floor"], rel_tol=1e-5, abs_tol=1e-9)
    assert _metric_cells(shards.to_markdown()) == _metric_cells(memory.to_markdown())
    torch.testing.assert_close(shards.images, memory.images)
    for method in METHODS:
        torch.testing.assert_close(shards.explanations[method].attributions, memory.explanations[method].attributions)


def _metric_cells(markdown: str) -> list[list[str]]:
    """Every table cell of a report except the costs (seconds, peak memory), which vary."""
    rows, costs, in_table = [], set(), False
    for line in markdown.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not in_table:  # a table's first row is its header
            costs = {i for i, c in enumerate(cells) if "explanation" in c or "memory" in c}
            in_table = True
        rows.append([c for i, c in enumerate(cells) if i not in costs])
    return rows


def _numbers(path) -> dict:
    """results.json without what a rerun changes: timings, memory, the job's folder."""
    report = json.loads(path.read_text())
    for key in ("wall_seconds", "wall_seconds_per_method", "job"):
        report["meta"].pop(key)
    for method in report["methods"].values():
        method.pop("seconds_per_explanation"), method.pop("peak_memory_bytes")
    return report


def _bundle():
    bundle = type("Bundle", (), {})()
    bundle.classifier, bundle.latent_model, bundle.conditional_model = tiny_model(), latent_model(), None
    images = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(5)) * 2 - 1
    bundle.test = ImageSplit(images, torch.arange(20) % 2)
    return bundle


def _compare(out, *extra: str) -> int:
    args = build_parser().parse_args(
        ["compare", "--data", "mnist", "--methods", "saliency,gvr", "--n", "16", "--batch-size", "2",
         "--shard-size", "4", "--metrics", "sparseness,infidelity,validity,max_sensitivity",
         "--expensive-n", "4", "--out", str(out), "--quiet", *extra]
    )
    return compare_cli.run(args, bundle_loader=lambda *a, **k: _bundle())


def test_interrupted_compare_resumes_to_the_uninterrupted_numbers(tmp_path, monkeypatch):
    assert _compare(tmp_path / "whole") == 0
    explain_shard, calls = Work.explain_shard, []

    def dies_after_two_shards(self: Work, shard: int) -> bytes:
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is stopped with two shards on disk
        calls.append(shard)
        return explain_shard(self, shard)

    monkeypatch.setattr(Work, "explain_shard", dies_after_two_shards)
    with pytest.raises(KeyboardInterrupt):
        _compare(tmp_path / "cut")
    job = tmp_path / "cut" / "jobs" / "mnist"
    kept = {p.name: p.stat().st_mtime_ns for p in (job / "shards").glob("*.safetensors")}
    assert len(kept) == 2 and not (tmp_path / "cut" / "mnist" / "results.json").exists()
    monkeypatch.setattr(Work, "explain_shard", explain_shard)
    with pytest.raises(ValueError, match="--resume"):
        run_job(compare_cli._work(*_work_args(tmp_path / "cut")), job, progress=False)
    assert _compare(tmp_path / "cut", "--resume") == 0
    assert all((job / "shards" / name).stat().st_mtime_ns == t for name, t in kept.items())
    for name in ("results.json", "results.md"):
        cut, whole = tmp_path / "cut" / "mnist" / name, tmp_path / "whole" / "mnist" / name
        if name == "results.json":  # exact: the same process, threads and batches compute every value
            assert _numbers(cut) == _numbers(whole)
        else:
            assert _metric_cells(cut.read_text()) == _metric_cells(whole.read_text())
    assert re.search(r"n = 16 samples", (tmp_path / "cut" / "mnist" / "results.md").read_text())


def test_reuse_keeps_an_identical_run_and_recomputes_a_changed_one(tmp_path, monkeypatch):
    from xai_gen.jobs import job as job_module

    assert _compare(tmp_path / "r", "--reuse") == 0
    shards = tmp_path / "r" / "jobs" / "mnist" / "shards"
    first = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.safetensors")}
    report = _numbers(tmp_path / "r" / "mnist" / "results.json")
    explain_shard, calls = Work.explain_shard, []
    monkeypatch.setattr(Work, "explain_shard", lambda self, k: calls.append(k) or explain_shard(self, k))
    assert _compare(tmp_path / "r", "--reuse") == 0
    assert calls == [] and {p.name: p.stat().st_mtime_ns for p in shards.glob("*.safetensors")} == first
    assert _numbers(tmp_path / "r" / "mnist" / "results.json") == report
    # Other code is another job: with --reuse it is recomputed, with --resume refused.
    monkeypatch.setattr(job_module, "source_digest", lambda: "changed!")
    with pytest.raises(ValueError, match="package source"):
        _compare(tmp_path / "r", "--resume")
    assert calls == []
    assert _compare(tmp_path / "r", "--reuse") == 0
    assert len(calls) == len(first)
    assert _numbers(tmp_path / "r" / "mnist" / "results.json") == report


def _work_args(out):
    """The arguments `compare_cli._work` builds the mnist job of `_compare` from."""
    from xai_gen.cli._setup import METHOD_VARIANTS, setup_for

    args = build_parser().parse_args(
        ["compare", "--data", "mnist", "--methods", "saliency,gvr", "--n", "16", "--batch-size", "2",
         "--shard-size", "4", "--metrics", "sparseness,infidelity,validity,max_sensitivity",
         "--expensive-n", "4", "--out", str(out)]
    )
    names = ["saliency", "gvr", *METHOD_VARIANTS["gvr"]]
    variants = dict.fromkeys(METHOD_VARIANTS["gvr"], "gvr")
    setup = setup_for("mnist", _bundle(), ["saliency", "gvr"])
    return args, "mnist", setup, names, variants, args.metrics.split(",")


class Unreadable:
    """A source whose items cannot be loaded: the summary must not need them."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def item_id(self, index: int) -> str:
        return f"x[{index}]"

    def load(self, index: int):
        raise AssertionError("the summary loaded an image")


def test_the_summary_is_read_from_the_shard_files(tmp_path):
    images = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    work = Work(xg.jobs.TensorSource("x", images), tiny_model(), ["saliency"], metrics=["sparseness"],
                shard_size=4, batch_size=2, explained_class=True)
    summary = run_job(work, tmp_path, progress=False)
    # Change one value in the last shard: the summary must show it.
    tensors, meta = read_shard(shard_path(tmp_path, 2))
    tensors["saliency/metric/sparseness"][1] = 123.0
    from safetensors.torch import save

    from xai_gen._io import META_KEY

    write_shard(tmp_path, 2, save(tensors, metadata={META_KEY: json.dumps(meta)}))
    work.source = Unreadable(10)
    result = comparison_from_job(work, summary, figure_rows=3)
    values = result.values["saliency"]["sparseness"]
    assert values.shape == (10,) and values[9] == 123.0
    assert result.summary()["saliency"]["sparseness"]["mean"] == pytest.approx(values.mean())
    # Only the figure's rows are held as images.
    assert result.images.shape[0] == 3 and len(result.explanations["saliency"]) == 3


@pytest.mark.ray
def test_compare_on_ray_reports_the_local_numbers(tmp_path):
    import ray.data  # noqa: F401 - the test command installs the ray extra: a missing one fails here

    def bundle(*args, **kwargs):
        torch.manual_seed(0)  # xai_gen's own classes only: the Ray workers import them
        b = type("Bundle", (), {})()
        b.classifier, b.conditional_model = xg.SmallCNN(width=4, hidden=8).eval(), None
        b.latent_model = xg.LatentModel.from_specs(
            nets.spec("dcgan_generator", latent_dim=4, image_shape=(1, 28, 28), width=4),
            nets.spec("dcgan_encoder", out_dim=4, image_shape=(1, 28, 28), width=4),
        )
        b.test = ImageSplit(torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8) % 10)
        return b

    argv = ["compare", "--data", "mnist", "--methods", "saliency,gvr", "--n", "8", "--batch-size", "2",
            "--shard-size", "4", "--metrics", "sparseness,validity,proximity_l1", "--quiet"]
    local = build_parser().parse_args([*argv, "--out", str(tmp_path / "local"), "--threads", "1"])
    ray_args = build_parser().parse_args(
        [*argv, "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"]
    )
    assert compare_cli.run(local, bundle_loader=bundle) == 0
    assert compare_cli.run(ray_args, bundle_loader=bundle) == 0
    ours, theirs = (_numbers(tmp_path / d / "mnist" / "results.json") for d in ("local", "ray"))
    # Exact: one torch thread per actor as locally, and the same batches: the same float operations.
    assert ours == theirs and ours["meta"]["n"] == 8
