"""LIME (Ribeiro et al. 2016) on superpixels, wrapping `lime.lime_image.LimeImageExplainer`."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from lime import lime_image
from lime.wrappers.scikit_image import SegmentationAlgorithm
from skimage import segmentation as _skseg
from torch import Tensor
from tqdm.auto import tqdm

from xai_gen._core.budget import MemoryBudget, budget_rows, check_budget
from xai_gen._core.validators import check_int, positive_int
from xai_gen.explainer import Explainer, register_explainer

#: Per-algorithm defaults, chosen on the 28x28 digits of `mnist_5k` (segmented after a min-max
#: scaling to [0, 1]) so that a digit gets several superpixels, not one blob: lime's own
#: quickshift default (kernel_size=4, max_dist=200, ratio=0.2, made for 224x224 photos) cuts a
#: digit into 1-3 segments. Measured on 11 test digits: quickshift ~20 segments (~11 on the
#: stroke), slic ~42 (~6 on the stroke, near-square cells), felzenszwalb ~15 (~8 on the
#: stroke). slic's `start_label=0` matters: lime numbers its features 0..S-1 after the labels.
SEGMENTATION_DEFAULTS: dict[str, dict[str, Any]] = {
    "quickshift": {"kernel_size": 1, "max_dist": 5, "ratio": 0.3},
    "slic": {"n_segments": 49, "compactness": 20, "start_label": 0},
    "felzenszwalb": {"scale": 1, "sigma": 0.3, "min_size": 5},
}
_ALGORITHMS = {
    "quickshift": _skseg.quickshift,
    "slic": _skseg.slic,
    "felzenszwalb": _skseg.felzenszwalb,
}


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def make_segmenter(
    segmentation: str, segmentation_params: dict[str, Any] | None, seed: int
) -> Callable[[np.ndarray], np.ndarray]:
    """The segmentation function handed to lime.

    The image lime passes in stays in the model's value range (so that `hide_color` and the
    segment means are model inputs); only the segmentation sees it min-max scaled to [0, 1],
    the range skimage's RGB -> Lab conversion expects. Labels are renumbered 0..S-1, the
    feature indices lime assumes.

    Args:
        segmentation: "quickshift", "slic" or "felzenszwalb".
        segmentation_params: overrides of `SEGMENTATION_DEFAULTS[segmentation]`.
        seed: quickshift's `rng` (its tie-breaking noise). lime's own `random_seed` no longer
            reaches quickshift: scikit-image renamed the argument, and lime's wrapper drops
            names the function does not take. slic and felzenszwalb are deterministic.

    Returns:
        A function `(H, W, 3) float -> (H, W) int` segments.
    """
    params = dict(SEGMENTATION_DEFAULTS[segmentation])
    if segmentation == "quickshift":
        params["rng"] = seed
    params.update(segmentation_params or {})
    algorithm = SegmentationAlgorithm(segmentation, **params)

    def segment(image: np.ndarray) -> np.ndarray:
        low, high = image.min(), image.max()
        unit = (image - low) / (high - low) if high > low else np.zeros_like(image)
        labels = algorithm(unit)
        return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)

    return segment


def _classifier_fn(
    model: Callable[[Tensor], Tensor], channels: int, like: Tensor
) -> Callable[[np.ndarray], np.ndarray]:
    """lime's `classifier_fn`: `(B, H, W, 3)` float64 images -> `(B, K)` float64 probabilities.

    A grayscale image reaches lime as gray2rgb's three equal channels, so the first `channels`
    are the model input. Logits `(B, K)` go through a softmax, since LIME fits probabilities;
    a regression output `(B,)`/`(B, 1)` is returned as one raw column (label 0).
    """

    def predict(images: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(images[..., :channels]).permute(0, 3, 1, 2)
        batch = batch.to(device=like.device, dtype=like.dtype).contiguous()
        with torch.no_grad():
            out = model(batch)
        if out.dim() == 1 or out.shape[1] == 1:
            out = out.reshape(-1, 1)
        else:
            out = torch.softmax(out, dim=1)
        return out.double().cpu().numpy()

    return predict


def _passthrough(iterable: Any, *args: Any, **kwargs: Any) -> Any:
    return iterable


@contextmanager
def _lime_bar_off() -> Iterator[None]:
    """Silence the tqdm bar lime 0.2.0.1 draws over the samples of every image.

    lime has no switch for it (no `progress_bar` argument in this release); one bar per image
    would bury the adapter's own bar over the batch.
    """
    original = lime_image.tqdm
    lime_image.tqdm = _passthrough
    try:
        yield
    finally:
        lime_image.tqdm = original


def segment_weights_map(explanation: lime_image.ImageExplanation, label: int) -> np.ndarray:
    """Heat map `(H, W)`: each pixel gets its superpixel's weight in lime's linear model."""
    weights = np.zeros(explanation.segments.max() + 1)
    for feature, weight in explanation.local_exp[label]:
        weights[feature] = weight
    return weights[explanation.segments]


@register_explainer("lime")
class Lime(Explainer):
    """LIME: a weighted linear model of the target probability on superpixels switched on/off.

    Each image is cut into superpixels (scikit-image); `num_samples` random on/off patterns
    replace the "off" superpixels with `hide_color`, the model scores them, and a ridge model
    weighted by an exponential kernel on the cosine distance (Ribeiro et al. 2016, eq. 1-2)
    gives one weight per superpixel. The map paints every pixel with its superpixel's weight,
    repeated over the channels. Wraps `lime.lime_image.LimeImageExplainer` (lime 0.2.0.1).

    Each image gets a fresh `LimeImageExplainer(random_state=seed)`, so an image's map does
    not depend on the other images of the batch. Cost: `num_samples` model evaluations per
    image, in batches of `batch_size` (sized from `memory_budget` unless set).

    Args:
        num_samples: perturbed images per explained image.
        segmentation: "quickshift", "slic" or "felzenszwalb".
        segmentation_params: skimage parameters that override `SEGMENTATION_DEFAULTS` (tuned
            for 28x28 digits: raise `kernel_size`/`max_dist` or `n_segments` for larger images).
            The segmentation sees the image min-max scaled to [0, 1].
        hide_color: value of a switched-off superpixel, in the model's input range (e.g. -1.0
            for the background of a [-1, 1] digit); None (lime's default) uses the mean of
            each superpixel.
        batch_size: perturbed images per model call, lime's `batch_size` (its default of 10
            makes calls tiny); when set it wins over `memory_budget`. None: sized from it.
        seed: seeds lime's sampling (`random_state`) and the segmentation; same seed, same map.
        kernel_width: width of lime's exponential kernel on the cosine distance.
        progress: tqdm bar over the images of the batch.
        memory_budget: what the perturbed images of one model call may occupy (lime's float64
            copies of them included): `"auto"` (a quarter of the free memory, at most 512 MiB),
            bytes, or None (all `num_samples` of an image in one call). The cost of one image
            is measured on probes of the model on one and two images; the maps are the same.

    `attribute(model, x, target)` takes `x: (N, C, H, W)` with C = 1 or 3 and returns
    attributions `(N, C, H, W)`. Logits `(N, K)` are explained through their softmax; a
    regression output `(N,)`/`(N, 1)` is explained as it is.

    Example:
        >>> import torch
        >>> from xai_gen import Lime
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x = torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8)
        >>> lime = Lime(num_samples=50, segmentation="slic", progress=False)
        >>> exp = lime.attribute(net, x, target=2)
        >>> exp.attributions.shape, exp.attributions.dtype
        (torch.Size([1, 1, 8, 8]), torch.float32)
    """

    num_samples: int = 1000
    segmentation: str = "quickshift"
    segmentation_params: dict[str, Any] | None = None
    hide_color: float | None = None
    batch_size: int | None = None
    seed: int = 0
    kernel_width: float = 0.25
    progress: bool = True
    memory_budget: MemoryBudget = "auto"

    def __post_init__(self) -> None:
        """Raise a `TypeError`/`ValueError` naming the first bad hyper-parameter."""
        positive_int(self.num_samples, "num_samples")
        positive_int(self.batch_size, "batch_size", allow_none=True)
        check_budget(self.memory_budget)
        if self.segmentation not in _ALGORITHMS:
            raise ValueError(f"segmentation must be one of {sorted(_ALGORITHMS)}, got {self.segmentation!r}")
        params = self.segmentation_params
        if params is not None:
            if not isinstance(params, dict):
                raise TypeError(f"segmentation_params must be a dict or None, got {type(params).__name__}")
            # lime's SegmentationAlgorithm silently drops unknown names: check them here instead.
            accepted = set(inspect.signature(_ALGORITHMS[self.segmentation]).parameters) - {"image"}
            unknown = sorted(set(params) - accepted)
            if unknown:
                raise ValueError(
                    f"segmentation_params {unknown} are not parameters of skimage's "
                    f"{self.segmentation}; accepted: {sorted(accepted)}"
                )
        if self.hide_color is not None and not _is_number(self.hide_color):
            raise TypeError(f"hide_color must be None or a number, got {type(self.hide_color).__name__}")
        check_int(self.seed, "seed", 0)
        if not _is_number(self.kernel_width) or self.kernel_width <= 0:
            raise ValueError(f"kernel_width must be a number > 0, got {self.kernel_width!r}")
        if not isinstance(self.progress, bool):
            raise TypeError(f"progress must be a bool, got {type(self.progress).__name__}")

    @classmethod
    def example_settings(cls, regression: bool = False) -> dict[str, Any]:
        """40 perturbed images per image instead of 1,000, no progress bar."""
        return {"num_samples": 40, "progress": False}

    def check_inputs(self, x: Tensor) -> None:
        """lime's segment means and the Lab conversion need grayscale or RGB images."""
        if x.shape[1] not in (1, 3):
            raise ValueError(f"x must have 1 or 3 channels for LIME, got shape {tuple(x.shape)}")

    def rows_per_call(
        self, model: Callable[[Tensor], Tensor], x: Tensor, extra: int = 0, cpu_speed_cap: bool = True
    ) -> int | None:
        """Perturbed images per model call: `batch_size`, else sized from `memory_budget` by
        forward probes of the model on `x: (N, C, H, W)`; None: no bound.

        Args:
            model: the model, parameters frozen.
            x: the images to explain.
            extra: bytes each perturbed image holds outside the model (copies made to build it).
            cpu_speed_cap: see `budget_rows`.
        """
        if self.batch_size is not None:
            return self.batch_size
        return budget_rows(self.memory_budget, model, x[:1], backward=False, extra=extra, cpu_speed_cap=cpu_speed_cap)

    def _explain(self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None) -> Tensor:
        n, channels = x.shape[:2]
        # lime builds every perturbed image as an (H, W, 3) float64 copy and stacks a batch of them.
        copies = 2 * 3 * 8 * x.shape[2] * x.shape[3]
        # No CPU speed cap: lime's own work per sample outweighs the model's, and the calls stay
        # those of lime run directly with a batch_size of at least num_samples.
        batch_size = self.rows_per_call(model, x, copies, cpu_speed_cap=False) or self.num_samples
        segment = make_segmenter(self.segmentation, self.segmentation_params, self.seed)
        predict = _classifier_fn(model, channels, x)
        labels = [0] * n if target is None else target.tolist()
        # lime wants (H, W, C) float64 arrays; a grayscale image goes in as (H, W).
        images = x.detach().permute(0, 2, 3, 1).double().cpu().numpy()
        maps = []
        with _lime_bar_off():
            for i in tqdm(range(n), desc="LIME", unit="image", disable=not self.progress):
                explainer = lime_image.LimeImageExplainer(
                    kernel_width=self.kernel_width, random_state=self.seed
                )
                explanation = explainer.explain_instance(
                    images[i, :, :, 0] if channels == 1 else images[i],
                    predict,
                    labels=(labels[i],),
                    hide_color=self.hide_color,
                    top_labels=None,
                    num_samples=self.num_samples,
                    batch_size=batch_size,
                    segmentation_fn=segment,
                    random_seed=self.seed,
                )
                maps.append(segment_weights_map(explanation, labels[i]))
        heat = torch.from_numpy(np.stack(maps)).to(device=x.device, dtype=x.dtype)
        return heat[:, None].repeat(1, channels, 1, 1)
