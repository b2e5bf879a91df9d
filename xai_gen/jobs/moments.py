"""Mean and covariance of feature vectors, gathered batch by batch, for set-level metrics.

A Frechet distance compares two Gaussians fitted to feature sets. A data-set job stores each
item's features in its shard; the driver merges them here one shard at a time, so its memory
is `O(D^2)` whatever the number of items, and the result equals fitting all the features at
once (up to float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

__all__ = ["FeatureMoments"]


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
        # Imported here: the recipes package is heavy and only set-level metrics need it.
        from xai_gen.recipes.report import gaussian_frechet

        return gaussian_frechet(self.mean, self.covariance(), other.mean, other.covariance())
