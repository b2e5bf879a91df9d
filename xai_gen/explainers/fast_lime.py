"""LIME on superpixels with lime's kernel and ridge, batched across images and samples in torch."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from xai_gen.explainer import register_explainer
from xai_gen.explainers._lime_batched import paint, segment_images, segment_weights
from xai_gen.explainers.lime import Lime


@register_explainer("fast_lime")
class FastLime(Lime):
    """LIME with lime's segmentation, sampling, kernel and ridge, but one batched computation.

    The same method as [`Lime`][xai_gen.Lime], with the same hyper-parameters and defaults:
    scikit-image superpixels (`SEGMENTATION_DEFAULTS`), the on/off patterns lime draws for
    `random_state=seed`, the kernel `sqrt(exp(-d^2 / kernel_width^2))` on the cosine
    distance and `Ridge(alpha=1)` with the kernel as sample weights, every superpixel kept
    (lime's default `num_features`). What differs is how it runs: the perturbed images of all
    images of the batch are built on the fly in torch and scored in model calls of
    `batch_size` that cut across images, and the ridge models of all images are solved in one
    batched linear solve. The maps equal `Lime`'s up to floating-point rounding (float64
    ridge here, scikit-learn's there). It subclasses `Lime` for that reason: the
    hyper-parameters (fields), their checks, the example settings and the input check are
    `Lime`'s; only `_explain` differs.

    The speed-up over `Lime` is lime's per-sample Python work (a copy of the image and one
    mask per switched-off superpixel, for every sample); the model's own cost on the
    `N * num_samples` perturbed images is the same for both, so the gain is large when the
    model is cheap or on a GPU, and small when a CPU model dominates the time.

    Args:
        num_samples: perturbed images per explained image.
        segmentation: "quickshift", "slic" or "felzenszwalb".
        segmentation_params: skimage parameters that override `SEGMENTATION_DEFAULTS`.
        hide_color: value of a switched-off superpixel; None uses each superpixel's mean.
        batch_size: perturbed images per model call, taken across images; when set it wins
            over `memory_budget`. None: sized from it.
        seed: seeds the patterns (each image's own, as lime's `random_state`) and quickshift.
        kernel_width: width of the exponential kernel on the cosine distance.
        progress: tqdm bar over the perturbed images.
        memory_budget: what the perturbed images of one model call may occupy: `"auto"` (a
            quarter of the free memory, at most 512 MiB), bytes, or None (all `N * num_samples`
            in one call). The cost of one image is measured on probes of the model (one and two images);
            the maps are the same. On a CPU, `"auto"` calls the model on at most 128 images
            (`AUTO_CPU_ROWS` of `xai_gen._core.budget`), about where a CPU is fastest.

    `attribute(model, x, target)` takes `x: (N, C, H, W)` with C = 1 or 3 and returns
    attributions `(N, C, H, W)`: each pixel holds its superpixel's weight, on every channel.
    Logits `(N, K)` are explained through their softmax; a regression output `(N,)`/`(N, 1)`
    as it is.

    Example:
        >>> import torch
        >>> from xai_gen import FastLime
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> x = torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8)
        >>> exp = FastLime(num_samples=50, segmentation="slic", progress=False).attribute(net, x, target=2)
        >>> exp.attributions.shape, exp.attributions.dtype
        (torch.Size([1, 1, 8, 8]), torch.float32)
    """

    def _explain(self, model: Callable[[Tensor], Tensor], x: Tensor, target: Tensor | None) -> Tensor:
        segments = segment_images(x, self.segmentation, self.segmentation_params, self.seed)
        # A call holds its perturbed images, built from a bool mask per pixel.
        rows = self.rows_per_call(model, x, extra=x[0, 0].numel())
        weights = segment_weights(
            model, x, target, segments, self.num_samples, self.hide_color, rows or x.shape[0] * self.num_samples,
            self.seed, self.kernel_width, self.progress,
        )
        return paint(weights, segments, x.shape[1])
