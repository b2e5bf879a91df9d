"""The one evaluation pipeline: defaults declared once, notices said once per method in plain
words, metric warnings counted per method and shown in the report, metric providers."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from test_compare import fake_data, tiny_model

from xai_gen import Explainer, register_explainer
from xai_gen.cli import build_parser
from xai_gen.compare import compare
from xai_gen.evaluation import plan
from xai_gen.evaluation.summary import notice_lines
from xai_gen.jobs import Work
from xai_gen.metrics import METRICS, MetricInfo, MetricProvider, register_provider, resolve_metrics
from xai_gen.metrics.registry import _PROVIDERS


@register_explainer("_test_evaluation_warns")
class Warns(Explainer):
    """Saliency-shaped maps of zeros, with a notice on every call that names the batch size."""

    def _explain(self, model, x, target):
        warnings.warn(f"Warns: {len(x)} of {len(x)} rows already done", UserWarning, stacklevel=2)
        return torch.zeros_like(x)


def _warning_metric(model, x, attributions, target):
    warnings.warn("noisy metric", RuntimeWarning, stacklevel=2)
    return torch.zeros(len(x), dtype=torch.float64)


@pytest.fixture
def noisy_provider():
    provider = register_provider(
        MetricProvider("test:", lambda name: (name, MetricInfo(_warning_metric, True, "complexity")), lambda m: False)
    )
    yield provider
    _PROVIDERS.pop(provider.prefix)


def test_every_default_is_the_plans():
    compare_defaults = inspect.signature(compare).parameters
    assert compare_defaults["batch_size"].default == Work.__dataclass_fields__["batch_size"].default == plan.BATCH_SIZE
    assert compare_defaults["expensive_n"].default == Work.__dataclass_fields__["expensive_n"].default == plan.EXPENSIVE_N
    assert Work.__dataclass_fields__["shard_size"].default == plan.SHARD_SIZE
    assert plan.SHARD_SIZE % plan.BATCH_SIZE == 0  # whole batches: shards seed as memory does
    for command in ("compare", "explain"):
        args = build_parser().parse_args([command, "--out", "unused"])
        assert (args.batch_size, args.shard_size) == (plan.BATCH_SIZE, plan.SHARD_SIZE)
    assert build_parser().parse_args(["compare"]).expensive_n == plan.EXPENSIVE_N


def test_notices_are_said_once_per_method_in_plain_words(capsys):
    r = compare(["_test_evaluation_warns"], tiny_model(), fake_data(), metrics=[], n=5, batch_size=2, progress=False)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "Warns:" in line]
    # Three batches (2, 2, 1 rows): two kinds of text that differ only in numbers, one line.
    assert lines == ["FakeData: _test_evaluation_warns: Warns: 2 of 2 rows already done (and 2 more batches like it)"]
    assert ".py:" not in err and "UserWarning" not in err
    assert r.meta["notices"] == {"_test_evaluation_warns": {"Warns: 2 of 2 rows already done": 2,
                                                            "Warns: 1 of 1 rows already done": 1}}
    assert notice_lines(r.meta["notices"], "FakeData") == lines


def test_a_users_warning_filters_still_decide(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = compare(["_test_evaluation_warns"], tiny_model(), fake_data(), metrics=[], n=2, progress=False)
    assert r.meta["notices"] == {} and "Warns:" not in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = compare(["_test_evaluation_warns", "saliency"], tiny_model(), fake_data(), metrics=[], n=2, progress=False)
    assert r.methods == ["saliency"] and "UserWarning: Warns" in r.errors["_test_evaluation_warns"]


def test_metric_warnings_are_counted_per_method_and_shown_in_the_report(noisy_provider, capsys):
    r = compare(["saliency"], tiny_model(), fake_data(), metrics=["test:noisy"], n=5, batch_size=2, progress=False)
    assert r.meta["warnings"] == {"saliency": {"test:noisy": {"noisy metric": 3}}}  # once per batch
    assert "Warnings in saliency/test:noisy: 3, e.g. “noisy metric”" in r.to_markdown()
    assert "noisy metric" not in capsys.readouterr().err


def test_a_provider_resolves_its_names_and_an_unknown_object_is_refused(noisy_provider):
    assert list(resolve_metrics(["sparseness", "test:x"])) == ["sparseness", "test:x"]
    with pytest.raises(ValueError, match="'test:<Name>'"):
        resolve_metrics("nope")
    with pytest.raises(TypeError, match="provider's metric object"):
        resolve_metrics([object()])
    assert "test:x" not in METRICS


def test_a_jobs_fingerprint_is_derived_from_its_plan():
    from dataclasses import replace

    from xai_gen import SmallCNN
    from xai_gen.jobs import TensorSource
    from xai_gen.jobs.job import job_fingerprint

    torch.manual_seed(0)
    base = Work(TensorSource("demo", torch.zeros(4, 1, 8, 8)), SmallCNN(image_size=8), ["saliency"],
                metrics=["sparseness"])
    changes = [{"seed": 1}, {"batch_size": 2}, {"expensive_n": 1}, {"metrics": ["complexity"]},
               {"methods": ["saliency", "occlusion"]}, {"metric_options": {"sparseness": {"per_pixel": True}}}]
    prints = {job_fingerprint(replace(base, **change)) for change in changes}
    assert len(prints) == len(changes) and job_fingerprint(base) not in prints
    # How a run measures is not what it computes: the same job.
    assert job_fingerprint(replace(base, measure_memory=True)) == job_fingerprint(base)
    assert set(base.plan().describe()) == {"methods", "metrics", "metric_options", "seed", "batch_size", "expensive_n"}


def test_a_job_keeps_the_notices_and_warnings_of_memory(tmp_path, noisy_provider):
    from xai_gen.jobs import comparison_from_job, data_source, run_job

    data = fake_data(6)
    memory = compare(["_test_evaluation_warns"], tiny_model(), data, metrics=["test:noisy"], n=None,
                     batch_size=2, progress=False)
    work = Work(data_source("fake", data), tiny_model(), ["_test_evaluation_warns"], metrics=["test:noisy"],
                batch_size=2, shard_size=4)
    summary = run_job(work, tmp_path / "job", progress=False)
    shards = comparison_from_job(work, summary)
    assert summary.notices == shards.meta["notices"] == memory.meta["notices"]
    assert shards.meta["warnings"] == memory.meta["warnings"] == {"_test_evaluation_warns": {"test:noisy": {"noisy metric": 3}}}
