"""Each bundled data set's settings, declared once: its data and what the commands run on it.

One `DatasetSettings` per data set (`DATASETS`) holds what depends on the data set alone:

* **the data** (`data`): the signature of the training data stored in every bundle file
  (data set, size, seed, split), and the conditional model's class pair (`pair`);
* **what `explain` and `compare` run** (`explainers`, `metric_options`).

The models trained on it (the bundle's components and their recipe configs) are declared in
`xai_gen.bundles.spec`; this module imports nothing from the rest of the package.

Choices of the commands' settings (the main job, `make demo`, must stay within minutes on 2
CPU cores):

* **Latent traversal on MNIST walks GVR's path** (`path="gvr"`) on the autoencoder: the
  conditional model is a 4-vs-9 generator and cannot traverse the other eight digits of a
  10-class comparison. Its attribution and counterfactual are then GVR's own (the walk ends at
  GVR's `z*`), so the two rows share those metrics; the traversal adds the frames and their
  monotonicity. On synthetic chest X-rays, whose classifier is binary (healthy vs. disease),
  the traversal walks the conditional model's class latent as in the traversal paper
  (`path="conditional"`, `latent_model=CONDITIONAL`).
* **LIME runs as `fast_lime`**, the batched engine: it computes the maps of the `lime` parity
  adapter (up to rounding) without lime's per-sample Python work, but evaluates the model as
  often. On MNIST it runs at lime's default 1,000 perturbations: about 3x the adapter's cost at
  200 (20 digits, measured under load). On the 64 x 64 X-rays 1,000 would cost about 6x the
  adapter at 200 (5 images), several minutes more with the metrics that re-run the explainer,
  so it keeps 200 there. The adapter stays available by name (`--methods lime`), at 200
  perturbations.
* **Cheaper settings than the papers where the cost would dominate**: the `lime` adapter with
  200 perturbations (default 1,000); GVR with at most 100 steps (paper: 500; on the MNIST
  bundle 100 and 500 steps convert the same share of digits); occlusion on the 64 x 64 X-rays
  with stride 8 (64 windows instead of 225); the traversal's Eq. 2 inversion in 100 steps
  (default 200); the deletion and insertion curves in 14 steps (default 28); infidelity and max
  sensitivity with 5 perturbations (default 10). Integrated Gradients and Occlusion size their
  passes from their default `memory_budget="auto"` rather than from a hand-set chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONDITIONAL",
    "DATASETS",
    "MNIST",
    "SYNTHETIC_CXR",
    "DatasetSettings",
]

CONDITIONAL = "conditional_model"
"""A data set's explainer setting `latent_model=CONDITIONAL` names the bundle's conditional model
`G(z1, z2)`; a latent explainer without a `latent_model` setting walks the bundle's autoencoder."""


# -- one declaration per data set ------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSettings:
    """Everything that depends on one bundled data set.

    Attributes:
        name: the data set's name in the commands (`--data`) and its folder in a bundle
            directory (`<dir>/<name>/<component>.safetensors`).
        data: signature of the bundle's training data (data set, size, seed, split), stored
            in every bundle file; `image_size` is the side of its images.
        pair: `(negative, positive)` classes of the conditional model.
        explainers: method -> constructor settings in `explain` / `compare`; a method not
            listed keeps its defaults. `latent_model=CONDITIONAL` names the bundle's
            conditional model.
        metric_options: metric -> options in `compare` (and `explain --metrics`).
    """

    name: str
    data: dict[str, Any]
    pair: tuple[int, int]
    explainers: dict[str, dict[str, Any]]
    metric_options: dict[str, dict[str, Any]]

    @property
    def image_size(self) -> int:
        """Side of the data set's square images."""
        return int(self.data["image_size"])


#: Constructor settings every data set shares (see the module docstring).
_CHEAPER_EXPLAINERS: dict[str, dict[str, Any]] = {
    "lime": {"num_samples": 200},
    "gvr": {"max_steps": 100},
}
#: Metric settings every data set shares (see the module docstring).
_CHEAPER_METRICS: dict[str, dict[str, Any]] = {
    "deletion_auc": {"n_steps": 14},
    "insertion_auc": {"n_steps": 14},
    "on_manifold_deletion_auc": {"n_steps": 14},
    "infidelity": {"n_perturb_samples": 5},
    "max_sensitivity": {"n_perturb_samples": 5},
}

MNIST = DatasetSettings(
    name="mnist",
    data={"dataset": "mnist_5k", "n": 5000, "image_size": 28, "seed": 0,
          "split": "per digit: first 400 train, last 100 test"},
    pair=(4, 9),
    explainers={
        **_CHEAPER_EXPLAINERS,
        "latent_traversal": {"path": "gvr", "gvr_params": {"max_steps": 100}},
    },
    metric_options=_CHEAPER_METRICS,
)
"""MNIST: `mnist_5k`'s 4,000 / 1,000 digits, ten classes; the conditional pair is 4 -> 9."""

SYNTHETIC_CXR = DatasetSettings(
    name="synthetic-cxr",
    data={"dataset": "synthetic_cxr", "n": 2000, "image_size": 64, "seed": 0,
          "split": "first 80 % train, last 20 % test"},
    pair=(0, 1),
    explainers={
        **_CHEAPER_EXPLAINERS,
        "occlusion": {"window": 8, "stride": 8},
        "fast_lime": {"num_samples": 200},
        "latent_traversal": {"path": "conditional", "invert_steps": 100, "latent_model": CONDITIONAL},
    },
    metric_options=_CHEAPER_METRICS,
)
"""Synthetic chest X-rays: 2,000 64 x 64 patients, healthy (0) vs. diseased (1), with ground truth."""

DATASETS: dict[str, DatasetSettings] = {d.name: d for d in (MNIST, SYNTHETIC_CXR)}
"""The bundled data sets by name."""
