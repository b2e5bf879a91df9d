"""What `explain` and `compare` share: method lists, data-set bundles and per-data-set settings.

Choices made here (the main job, `make demo`, must stay within minutes on 2 CPU cores):

* **One model explained by every method.** Every explainer — GVR and latent traversal
  included — explains the same image classifier (`bundle.classifier`, a `SmallCNN`). GVR
  reaches it through the decoder, `model(latent_model.decode(z))`, so its counterfactual is
  scored by the very model the pixel methods explain and all metrics are comparable.
  (Explaining the linear `LatentClassifier` instead would be the GVR paper's own set-up, and
  much faster, but a different model from the other columns.)
* **Latent traversal on MNIST uses `path="gvr"`** on the autoencoder: the conditional model is
  a 4-vs-9 generator and cannot traverse the other eight digits of a 10-class comparison. Its
  attribution and counterfactual are then GVR's own (the walk ends at GVR's `z*`), so the two
  rows share those metrics; the traversal adds the frames and their monotonicity. On
  synthetic chest X-rays, whose classifier is binary (healthy vs. disease), the traversal
  walks the conditional model's class latent as in the traversal paper (`path="conditional"`).
* **LIME runs as `fast_lime`**, the batched engine: it computes the maps of the `lime`
  parity adapter (up to rounding) without lime's per-sample Python work, but evaluates the
  model as often. On MNIST it runs at lime's default 1,000 perturbations: about 3x the
  adapter's cost at 200 (20 digits, measured under load). On the 64 x 64 X-rays 1,000 would
  cost about 6x the adapter at 200 (5 images), several minutes more with the metrics that
  re-run the explainer, so it keeps 200 there. The adapter stays available by name
  (`--methods lime`), at 200 perturbations.
* **Cheaper settings than the papers where the cost would dominate** (`DATASETS`): the `lime`
  adapter with 200 perturbations (default 1,000); GVR with at most 100 steps (paper: 500; on the MNIST
  bundle 100 and 500 steps convert the same share of digits); occlusion on the 64 x 64
  X-rays with stride 8 (64 windows instead of 225); the traversal's Eq. 2 inversion in 100
  steps (default 200); the deletion and insertion curves in 14 steps (default 28);
  infidelity and max sensitivity with 5 perturbations (default 10). The metrics that re-run
  the explainer (max sensitivity, randomisation) run on the first `--expensive-n` samples
  (default 5). Integrated Gradients and Occlusion size their passes from their default
  `memory_budget="auto"` rather than from a hand-set chunk size.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import torch
from torch import nn

from xai_gen.explainer import bundled_explainers, list_explainers
from xai_gen.explainers.gvr import GVR

#: What `--methods all` means: every explainer bundled with xai-gen (see `bundled_explainers`)
#: except the `lime` parity adapter, whose maps `fast_lime` computes (up to rounding) in less
#: time; `--methods lime` runs it.
ALL_METHODS = tuple(m for m in bundled_explainers() if m != "lime")
#: Constructor settings every data set shares (see the module docstring).
_CHEAPER_EXPLAINERS: dict[str, dict[str, Any]] = {
    "lime": {"num_samples": 200},
    "gvr": {"max_steps": 100},
}
#: Further configurations `compare` runs beside a chosen method, each under its own name:
#: `gvr_paper` is GVR as the paper runs it on MNIST (plain Algorithm 2, 500 steps), beside
#: `gvr` at the package's defaults and the step cap above. `GVR.PAPER` lists the settings that
#: switch off what GVR adds to the paper (read only where this GVR version has it).
METHOD_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "gvr": {"gvr_paper": {**getattr(GVR, "PAPER", {}), "max_steps": 500}}
}
#: Metric settings every data set shares (see the module docstring).
_CHEAPER_METRICS: dict[str, dict[str, Any]] = {
    "deletion_auc": {"n_steps": 14},
    "insertion_auc": {"n_steps": 14},
    "on_manifold_deletion_auc": {"n_steps": 14},
    "infidelity": {"n_perturb_samples": 5},
    "max_sensitivity": {"n_perturb_samples": 5},
}


@dataclass(frozen=True)
class DatasetSettings:
    """What `explain` and `compare` use for one data set, in one place.

    Attributes:
        folder: sub-folder of `--cache-dir` its bundle is cached in.
        bundle: name of the `xai_gen.recipes.bundle` function that loads it (the shipped
            files) or, with `--retrain`, trains it (first use) and caches it.
        explainers: method -> constructor settings; a method not listed keeps its defaults.
        metric_options: metric -> options for `compare`.
    """

    folder: str
    bundle: str
    explainers: dict[str, dict[str, Any]]
    metric_options: dict[str, dict[str, Any]]


#: The data sets the commands know.
DATASETS: dict[str, DatasetSettings] = {
    "mnist": DatasetSettings(
        folder="mnist",
        bundle="mnist_bundle",
        explainers={
            **_CHEAPER_EXPLAINERS,
            "latent_traversal": {"path": "gvr", "gvr_params": {"max_steps": 100}},
        },
        metric_options=_CHEAPER_METRICS,
    ),
    "synthetic-cxr": DatasetSettings(
        folder="synthetic-cxr",
        bundle="synthetic_cxr_bundle",
        explainers={
            **_CHEAPER_EXPLAINERS,
            "occlusion": {"window": 8, "stride": 8},
            "fast_lime": {"num_samples": 200},
            "latent_traversal": {"path": "conditional", "invert_steps": 100},
        },
        metric_options=_CHEAPER_METRICS,
    ),
}

#: `load_bundle(dataset, cache_dir, progress[, preset]) -> bundle`: the shipped bundle, or
#: (`preset="fast"`, `--retrain`) trained on first use and cached.
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
                   help="train the models afresh (fast preset, cached in the --cache-dir folder) instead "
                   "of using the pretrained bundles shipped with the package")
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
    """Extra arguments of the bundle loader: `--retrain` trains the fast preset into the cache."""
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


def load_bundle(dataset: str, cache_dir: Path, progress: bool = True, preset: str = "shipped") -> Any:
    """The models and data of `dataset`: the shipped pretrained bundle (default; nothing is
    trained), or with `preset="fast"` trained afresh and cached under `cache_dir/<dataset>`."""
    from xai_gen.recipes import bundle

    settings = DATASETS[dataset]
    make = getattr(bundle, settings.bundle)
    return make(cache_dir=Path(cache_dir) / settings.folder, progress=progress, preset=preset)


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


def setup_for(dataset: str, bundle: Any, methods: list[str]) -> Setup:
    """The model, held-out data and per-method settings of one data set's bundle."""
    lm = bundle.latent_model
    params = {m: dict(p) for m, p in DATASETS[dataset].explainers.items()}
    if params["latent_traversal"]["path"] == "conditional":
        params["latent_traversal"]["latent_model"] = bundle.conditional_model
    return Setup(
        model=bundle.classifier,
        data=bundle.test,
        resources={"latent_model": lm, "progress": False},
        params={k: v for k, v in params.items() if k in methods},
        available={"latent_model": lm},
    )
