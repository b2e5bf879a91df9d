"""Frechet distances between feature sets, and feature moments gathered batch by batch.

A Frechet distance compares two Gaussians fitted to the features a classifier gives two image
sets (FID's construction, in a small classifier's features). `frechet_distance` fits them to
two feature sets held in memory; `FeatureMoments` merges a set's mean and scatter one batch at
a time, so a data-set job's memory is `O(D^2)` whatever the number of items, and its result
equals fitting all the features at once (up to float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from torch import Tensor, nn

from xai_gen._core.batching import chunked
from xai_gen._core.devices import model_device
from xai_gen._core.state import evaluating

__all__ = ["FeatureMoments", "classifier_features", "frechet_distance", "gaussian_frechet"]


def frechet_distance(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (as FID, Heusel et al. 2017).

    `|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`, matrix square root by
    `scipy.linalg.sqrtm`, in float64.

    Args:
        a: `(N, D)` features.
        b: `(M, D)` features.

    Returns:
        the distance (>= 0 up to rounding).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(500, 3, generator=g)
        >>> round(frechet_distance(x, x), 6), round(frechet_distance(x, x + 2.0), 4)
        (0.0, 12.0)
    """
    a = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach().cpu() if isinstance(b, Tensor) else b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"features must be (N, D) and (M, D) with N, M >= 2, got {a.shape} and {b.shape}")
    return gaussian_frechet(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def gaussian_frechet(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Frechet distance between two Gaussians given by means `(D,)` and covariances `(D, D)`.

    `frechet_distance` fits them to two feature sets; a data-set job accumulates them shard by
    shard (`FeatureMoments`) without holding the features.

    Example:
        >>> d = gaussian_frechet(np.zeros(2), np.eye(2), np.ones(2), np.eye(2))
        >>> round(d, 4)
        2.0
    """
    mu_a, mu_b = np.asarray(mu_a, dtype=np.float64), np.asarray(mu_b, dtype=np.float64)
    # A tiny ridge keeps the product invertible when some feature never varies (dead ReLUs);
    # it moves the distance by about 1e-6 per dimension.
    ridge = 1e-6 * np.eye(len(mu_a))
    cov_a = np.asarray(cov_a, dtype=np.float64) + ridge
    cov_b = np.asarray(cov_b, dtype=np.float64) + ridge
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    # sqrtm of a product of covariances can pick up tiny imaginary parts from rounding.
    root = np.real(root)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))
    return max(value, 0.0)


def classifier_features(classifier: nn.Module, images: Tensor) -> Tensor:
    """Penultimate features `(N, D)` of a classifier: `classifier.features(x)` (e.g. `SmallCNN`)."""
    if not hasattr(classifier, "features"):
        raise TypeError("reference_classifier must have a .features(x) method (e.g. xai_gen.models.SmallCNN)")
    dev = model_device(classifier)
    with evaluating(classifier):
        return chunked(lambda b: classifier.features(b.to(dev)).cpu(), images)



@dataclass
class FeatureMoments:
    """Count, mean `(D,)` and scatter `(D, D)` (summed outer products of the deviations).

    Batches are merged with the pairwise update of Chan, Golub and LeVeque (1979), which
    stays accurate where summing raw squares would cancel.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(10, 3))
        >>> m = FeatureMoments().add(x[:4]).add(x[4:])
        >>> bool(np.allclose(m.covariance(), np.cov(x, rowvar=False)))
        True
    """

    count: int = 0
    mean: np.ndarray | None = None
    scatter: np.ndarray | None = None

    def add(self, features: Tensor | np.ndarray) -> FeatureMoments:
        """Merge a batch of features `(B, D)` into the moments (in place); returns self."""
        x = np.asarray(features.detach().cpu() if isinstance(features, Tensor) else features, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (B, D), got shape {x.shape}")
        if len(x) == 0:
            return self
        mean, deviation = x.mean(0), x - x.mean(0)
        scatter = deviation.T @ deviation
        if self.count == 0 or self.mean is None or self.scatter is None:
            self.count, self.mean, self.scatter = len(x), mean, scatter
            return self
        total = self.count + len(x)
        delta = mean - self.mean
        self.scatter = self.scatter + scatter + np.outer(delta, delta) * self.count * len(x) / total
        self.mean = self.mean + delta * len(x) / total
        self.count = total
        return self

    def covariance(self) -> np.ndarray:
        """`(D, D)` the sample covariance (divided by count - 1, as `numpy.cov`)."""
        if self.count < 2 or self.scatter is None:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        return self.scatter / (self.count - 1)

    def frechet(self, other: FeatureMoments) -> float:
        """Frechet distance between the Gaussians of these moments and `other`'s."""
        return gaussian_frechet(self.mean, self.covariance(), other.mean, other.covariance())
