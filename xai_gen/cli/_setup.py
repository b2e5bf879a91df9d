"""What `explain` and `compare` share: method lists, data-set bundles and what each run needs.

The per-data-set settings (which explainer and metric settings the commands use, and why) are
declared in `xai_gen.datasets`. Every explainer explains the same image classifier
(`bundle.classifier`, a `SmallCNN`); GVR reaches it through the decoder,
`model(latent_model.decode(z))`, so its counterfactual is scored by the very model the pixel
methods explain and all metrics are comparable. (Explaining the linear `LatentClassifier`
instead would be the GVR paper's own set-up, and much faster, but a different model from the
other columns.) The metrics that re-run the explainer (max sensitivity, randomisation) run on
the first `--expensive-n` samples (default 5).

A run loads (and with `--retrain` trains) only the bundle's models its methods and metrics
need (`bundle_parts`): what each explainer's constructor requires (a `latent_model`) and what
each metric needs beside the explanation (a latent model, the oracle) where the methods'
declared parts make it applicable.
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import torch
from torch import nn

from xai_gen.bundles import load_bundle
from xai_gen.datasets import DATASETS
from xai_gen.explainer import PARTS, bundled_explainers, explainer_class, list_explainers
from xai_gen.explainers.gvr import GVR
from xai_gen.metrics import METRICS

#: What `--methods all` means: every explainer bundled with xai-gen (see `bundled_explainers`)
#: except the `lime` parity adapter, whose maps `fast_lime` computes (up to rounding) in less
#: time; `--methods lime` runs it.
ALL_METHODS = tuple(m for m in bundled_explainers() if m != "lime")
#: Further configurations `compare` runs beside a chosen method, each under its own name:
#: `gvr_paper` is GVR as the paper runs it on MNIST (plain Algorithm 2, 500 steps), and
#: `gvr_residual` GVR with residual counterfactuals (`x + g(z*) - g(z0)`), beside `gvr` at
#: the package's defaults and the data set's step cap (`xai_gen.datasets`). `GVR.PAPER` lists the settings that
#: switch off what GVR adds to the paper (read only where this GVR version has it).
METHOD_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "gvr": {
        "gvr_paper": {**getattr(GVR, "PAPER", {}), "max_steps": 500},
        # The input plus the decoded change: keeps what the autoencoder cannot reconstruct.
        "gvr_residual": {"counterfactual": "residual"},
    }
}
#: `loader(dataset, cache_dir, progress[, preset]) -> bundle`: the models and data of a data
#: set, handed to the commands by tests in place of `xai_gen.bundles.load_bundle` (which also
#: takes `parts`).
BundleLoader = Callable[[str, Path, bool], Any]


def add_shared_arguments(p: argparse.ArgumentParser) -> None:
    """The options `explain` and `compare` share: methods, seed, device, cache folder."""
    p.add_argument(
        "--methods", default="all", help="'all' or a comma-separated list of explainer names"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the sample draw and the methods (default 0)"
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda or auto (default cpu)")
    p.add_argument("--retrain", action="store_true",
                   help="train the models afresh (the shipped recipes at the fast preset, cached in the "
                   "--cache-dir folder) instead of using the pretrained bundles shipped with the package")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"folder the trained bundles are cached in (default: ${CACHE_ENV} if set, else the "
        f"per-user cache folder, here {default_cache_dir()})",
    )
    p.add_argument(
        "--quiet", "--no-progress", dest="quiet", action="store_true",
        help="no progress bars (when the output is not a terminal they are sparse lines anyway)",
    )


#: Environment variable that moves the bundle cache (overridden by `--cache-dir`).
CACHE_ENV = "XAI_GEN_CACHE_DIR"


def default_cache_dir() -> Path:
    """Where bundles are cached without `--cache-dir`: `$XAI_GEN_CACHE_DIR`, else the per-user
    cache folder (platformdirs), so that every working folder shares one cache.

    Example:
        >>> import os
        >>> os.environ[CACHE_ENV] = "/tmp/xg"; str(default_cache_dir())
        '/tmp/xg'
        >>> del os.environ[CACHE_ENV]
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("xai-gen"))


def cache_dir(args: argparse.Namespace) -> Path:
    """The cache folder the command uses: `--cache-dir`, else `default_cache_dir()`."""
    return args.cache_dir if args.cache_dir is not None else default_cache_dir()


def loader_options(args: argparse.Namespace) -> dict[str, Any]:
    """Extra arguments of the bundle loader: `--retrain` trains the fast preset into the cache
    (`xai_gen.bundles.load_bundle`)."""
    return {"preset": "fast"} if getattr(args, "retrain", False) else {}


def parse_methods(spec: str) -> list[str]:
    """`"all"` or a comma-separated list of registry names -> the names, validated.

    Example:
        >>> parse_methods("saliency, occlusion")
        ['saliency', 'occlusion']
    """
    names = (
        list(ALL_METHODS)
        if spec.strip() == "all"
        else [m.strip() for m in spec.split(",") if m.strip()]
    )
    if not names:
        raise ValueError("--methods names no method; give 'all' or a comma-separated list")
    known = list_explainers()
    unknown = [m for m in names if m not in known]
    if unknown:
        raise ValueError(f"--methods: unknown explainer(s) {unknown}; registered: {known}")
    if len(set(names)) != len(names):
        raise ValueError(f"--methods lists a method twice: {names}")
    return names


def parse_datasets(spec: str) -> list[str]:
    """`"all"` or one data-set name -> the data sets to run."""
    if spec == "all":
        return list(DATASETS)
    if spec not in DATASETS:
        raise ValueError(f"--data must be one of {[*DATASETS, 'all']}, got {spec!r}")
    return [spec]


def open_bundle(
    args: argparse.Namespace, dataset: str, parts: Collection[str], loader: BundleLoader | None = None
) -> Any:
    """The bundle of `dataset` for a command: `load_bundle` with only the `parts` it needs, or a
    loader handed in (tests), called as `loader(dataset, cache_dir, progress[, preset])`."""
    progress, options = not args.quiet, loader_options(args)
    if loader is None:
        return load_bundle(dataset, cache_dir(args), progress, parts=parts, **options)
    return loader(dataset, cache_dir(args), progress, **options)


#: Metric needs that are models of a bundle (`Bundle` attributes): the rest come from the
#: explanation, the data or the explainer itself.
_MODEL_NEEDS = ("latent_model", "oracle")


def _latent_part(dataset: str, method: str) -> str:
    """The bundle model a latent explainer walks in on `dataset` (see `xai_gen.datasets.CONDITIONAL`)."""
    setting = DATASETS[dataset].explainers.get(method, {}).get("latent_model")
    return setting if isinstance(setting, str) else "latent_model"


def bundle_parts(dataset: str, methods: Collection[str], metrics: Collection[str]) -> set[str]:
    """The models of `dataset`'s bundle that a run of `methods` scored with `metrics` needs.

    Read from what the explainers and metrics declare, not from a list per method: a method
    needs the bundle model its constructor requires (a `latent_model`: the autoencoder, or the
    model the data set's settings name, e.g. the conditional model); a metric needs a model
    among its `needs` (a latent model, the oracle) when the methods can make it applicable,
    i.e. when the explanation fields it also needs are among the parts the methods declare
    (`Explainer.provides`): the oracle only for counterfactuals.

    Example:
        >>> sorted(bundle_parts("mnist", ["saliency"], ["sparseness"]))
        ['classifier']
        >>> sorted(bundle_parts("mnist", ["saliency"], ["on_manifold_deletion_auc", "oracle_agreement"]))
        ['classifier', 'latent_model']
        >>> sorted(bundle_parts("synthetic-cxr", ["latent_traversal"], ["oracle_agreement"]))
        ['classifier', 'conditional_model', 'oracle']
    """
    parts = {"classifier"}
    declared: set[str] = set()  # explanation fields the methods' declared parts guarantee
    for method in methods:
        cls = explainer_class(method)
        required = [p.name for p in inspect.signature(cls).parameters.values() if p.default is p.empty]
        if "latent_model" in required:
            parts.add(_latent_part(dataset, method))
        declared |= {f for part in cls.provides for f in PARTS[part]}
    undeclared = {f for fields in PARTS.values() for f in fields} - declared
    for metric in metrics:
        info = METRICS.get(metric)
        if info is None:  # a Quantus metric: it reads the explanation and the data only
            continue
        for group in (info.needs, *info.needs_one_of):
            if not group & undeclared:
                parts |= group & set(_MODEL_NEEDS)
    return parts


@dataclass
class Setup:
    """Everything `compare` needs for one data set.

    Attributes:
        model: the classifier every method explains.
        data: the held-out samples (an object with `.images`, and `.masks`/`.difference`
            where the data set has ground truth).
        resources: constructor arguments shared by the explainers that take them.
        params: per-method constructor arguments.
        available: extra inputs for the metrics (e.g. the latent model for realism).
    """

    model: nn.Module
    data: Any
    resources: dict[str, Any] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    available: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device) -> Setup:
        """Move the model and every module among the settings to `device` (in place)."""

        def move(settings: dict[str, Any]) -> dict[str, Any]:
            return {k: v.to(device) if isinstance(v, nn.Module) else v for k, v in settings.items()}

        self.model = self.model.to(device)
        self.resources, self.available = move(self.resources), move(self.available)
        self.params = {m: move(p) for m, p in self.params.items()}
        return self


def method_params(dataset: str, bundle: Any, methods: Collection[str]) -> dict[str, dict[str, Any]]:
    """The data set's constructor settings of `methods`, a model named by its bundle attribute
    (`latent_model=CONDITIONAL`) replaced by that model of `bundle`."""
    params = {m: dict(p) for m, p in DATASETS[dataset].explainers.items() if m in methods}
    for p in params.values():
        if isinstance(p.get("latent_model"), str):
            p["latent_model"] = getattr(bundle, p["latent_model"], None)
    return params


def setup_for(dataset: str, bundle: Any, methods: list[str]) -> Setup:
    """The model, held-out data and per-method settings of one data set's bundle (its latent
    model only where it was loaded, see `bundle_parts`)."""
    lm = getattr(bundle, "latent_model", None)
    shared = {} if lm is None else {"latent_model": lm}
    return Setup(
        model=bundle.classifier,
        data=bundle.test,
        resources={**shared, "progress": False},
        params=method_params(dataset, bundle, methods),
        available=dict(shared),
    )
