"""LIME on superpixels for a whole batch at once: lime's algorithm, batched in torch.

The same steps as `lime.lime_image.LimeImageExplainer` with lime's defaults (what
`xai_gen.Lime` runs), written as plain functions over a batch:

1. `segment_images`: scikit-image superpixels per image, with `make_segmenter` (the function
   the parity adapter hands to lime), so both see identical segments.
2. `draw_masks`: the on/off patterns, `(N, num_samples, S)`, row 0 all on. Each image gets
   `numpy.random.RandomState(seed).randint(0, 2, num_samples * S)`, the very draw lime makes
   for an image of S superpixels with `random_state=seed`.
3. `score_perturbations`: the perturbed images of every (image, sample) pair, built on the
   fly in chunks of `batch_size` that cut across images, and the model's score of the target.
4. `kernel_weights`: lime's kernel `sqrt(exp(-d^2 / width^2))` on the cosine distance of each
   pattern to the all-on pattern.
5. `weighted_ridge`: lime's `Ridge(alpha=1, fit_intercept=True)` fitted with the kernel as
   sample weights, solved for all images in one batched linear solve. lime's default
   `feature_selection="auto"` with its default `num_features=100000` keeps every superpixel
   (it picks `highest_weights`, which returns the top 100000 features, i.e. all), so the
   ridge uses all of them here too.

Only step 1 loops over images in Python (scikit-image has no batched segmentation); steps
3-5 are tensor operations on the model's device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from xai_gen.explainers.lime import make_segmenter

#: lime's ridge penalty (`Ridge(alpha=1)` in `lime_base.LimeBase.explain_instance_with_data`).
RIDGE_ALPHA = 1.0
#: Bytes the float64 design matrices of one batched ridge solve may take: images are solved in
#: groups, since a batch of 1,000 images x 1,000 samples x 80 superpixels would need ~2 GB.
RIDGE_GROUP_BYTES = 64 * 2**20


def segment_images(
    x: Tensor, segmentation: str, segmentation_params: dict[str, Any] | None, seed: int
) -> Tensor:
    """Superpixels of every image, numbered 0..S_i-1 per image.

    Args:
        x: `(N, C, H, W)` images with C = 1 or 3, in the model's value range.
        segmentation: "quickshift", "slic" or "felzenszwalb".
        segmentation_params: overrides of the project's per-algorithm defaults.
        seed: quickshift's tie-breaking seed.

    Returns:
        `(N, H, W)` long labels on the CPU.

    Example:
        >>> import torch
        >>> seg = segment_images(torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8), "slic", None, 0)
        >>> seg.shape, int(seg.min())
        (torch.Size([1, 8, 8]), 0)
    """
    segment = make_segmenter(segmentation, segmentation_params, seed)
    # lime segments an (H, W, 3) float64 image: a grayscale one as gray2rgb's three copies.
    images = x.detach().permute(0, 2, 3, 1).double().cpu().numpy()
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return torch.from_numpy(np.stack([segment(image) for image in images])).long()


def draw_masks(num_segments: Tensor, num_samples: int, seed: int) -> Tensor:
    """lime's on/off patterns for every image, padded to the largest superpixel count.

    Args:
        num_segments: `(N,)` superpixels per image, S_i.
        num_samples: patterns per image, K.
        seed: seeds a fresh `numpy.random.RandomState` per image, as lime's
            `random_state=seed`, so an image's patterns do not depend on the rest of the batch.

    Returns:
        `(N, K, max S_i)` bool; row 0 is all on, columns >= S_i are off.

    Example:
        >>> import torch
        >>> masks = draw_masks(torch.tensor([3, 5]), 4, seed=0)
        >>> masks.shape, bool(masks[:, 0, :3].all()), bool(masks[0, :, 3:].any())
        (torch.Size([2, 4, 5]), True, False)
    """
    width = int(num_segments.max())
    masks = torch.zeros(len(num_segments), num_samples, width, dtype=torch.bool)
    for i, s in enumerate(num_segments.tolist()):
        draw = np.random.RandomState(seed).randint(0, 2, num_samples * s).reshape(num_samples, s)
        draw[0] = 1  # lime's first sample is the image itself
        masks[i, :, :s] = torch.from_numpy(draw.astype(bool))
    return masks


def fill_values(x: Tensor, segments: Tensor, hide_color: float | None) -> Tensor:
    """What a switched-off superpixel shows: each superpixel's mean per channel, or a constant.

    Args:
        x: `(N, C, H, W)` images.
        segments: `(N, H, W)` labels 0..S_i-1.
        hide_color: None for the superpixel means (lime's default), else the fill value.

    Returns:
        `(N, C, H, W)` fill image, dtype and device of `x`.

    Example:
        >>> import torch
        >>> x = torch.tensor([[[[0.0, 2.0], [4.0, 4.0]]]])
        >>> fill_values(x, torch.tensor([[[0, 0], [1, 1]]]), None)[0, 0].tolist()
        [[1.0, 1.0], [4.0, 4.0]]
    """
    if hide_color is not None:
        return torch.full_like(x, float(hide_color))
    n, c, h, w = x.shape
    # Means in float64, as lime computes them on its float64 copy of the image.
    flat = x.detach().double().reshape(n, c, h * w)
    labels = segments.to(x.device).reshape(n, 1, h * w).expand(n, c, h * w)
    width = int(segments.max()) + 1
    sums = flat.new_zeros(n, c, width).scatter_add_(2, labels, flat)
    counts = flat.new_zeros(n, c, width).scatter_add_(2, labels, torch.ones_like(flat))
    means = sums / counts.clamp_min(1)
    return means.gather(2, labels).reshape(n, c, h, w).to(x.dtype)


def target_scores(out: Tensor, target: Tensor | None) -> Tensor:
    """The score LIME fits: the target's softmax probability, or a regression output as it is.

    Args:
        out: `(B, K)` logits, or `(B,)`/`(B, 1)` regression output.
        target: `(B,)` long classes, or None for a regression output.

    Returns:
        `(B,)` float64.

    Example:
        >>> import torch
        >>> target_scores(torch.zeros(2, 4), torch.tensor([0, 3])).tolist()
        [0.25, 0.25]
    """
    if out.dim() == 1 or out.shape[1] == 1:
        return out.reshape(-1).double()
    probabilities = torch.softmax(out, dim=1)
    return probabilities.gather(1, target.reshape(-1, 1)).reshape(-1).double()


def score_perturbations(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    fill: Tensor,
    segments: Tensor,
    masks: Tensor,
    target: Tensor | None,
    batch_size: int,
    progress: bool = False,
) -> Tensor:
    """The model's score of every perturbed image, in model calls that cut across images.

    Sample k of image i shows `x[i]` where superpixel `segments[i]` is on in `masks[i, k]` and
    `fill[i]` elsewhere. The N*K perturbed images are never all held at once: each chunk of
    `batch_size` (image, sample) pairs is built, scored and dropped.

    Args:
        model: `(B, C, H, W) -> (B, K)` logits or `(B,)`/`(B, 1)` regression output.
        x: `(N, C, H, W)` images.
        fill: `(N, C, H, W)` values of switched-off superpixels.
        segments: `(N, H, W)` labels.
        masks: `(N, K, S)` bool patterns.
        target: `(N,)` long classes, or None for a regression output.
        batch_size: images per model call.
        progress: tqdm bar over the perturbed images.

    Returns:
        `(N, K)` float64 scores.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
        >>> x = torch.ones(2, 1, 2, 2)
        >>> masks = torch.ones(2, 3, 1, dtype=torch.bool)
        >>> score_perturbations(net, x, x, torch.zeros(2, 2, 2, dtype=torch.long), masks, None, 4).shape
        torch.Size([2, 3])
    """
    n, k = masks.shape[:2]
    device = x.device
    masks, segments = masks.to(device), segments.to(device).flatten(1)
    target = None if target is None else target.to(device)
    scores = torch.empty(n * k, dtype=torch.float64, device=device)
    with torch.no_grad(), tqdm(
        total=n * k, desc="LIME", unit="image", disable=not progress
    ) as bar:
        for start in range(0, n * k, batch_size):
            stop = min(start + batch_size, n * k)
            # A chunk holds the samples start..stop-1 of consecutive images; build each image's
            # part from its own x and fill by broadcasting, so neither is copied per sample.
            parts = []
            for i in range(start // k, (stop - 1) // k + 1):
                first, last = max(start - i * k, 0), min(stop - i * k, k)
                # Pixel on/off: each pixel takes its superpixel's bit of the pattern.
                on = masks[i, first:last].index_select(1, segments[i]).view(-1, 1, *x.shape[2:])
                parts.append(torch.where(on, x[i], fill[i]))
            out = model(torch.cat(parts))
            rows = None if target is None else target[torch.arange(start, stop, device=device) // k]
            scores[start:stop] = target_scores(out, rows)
            bar.update(stop - start)
    return scores.view(n, k)


def kernel_weights(masks: Tensor, num_segments: Tensor, kernel_width: float) -> Tensor:
    """lime's sample weights: `sqrt(exp(-d^2 / width^2))`, d the cosine distance to all-on.

    For a 0/1 pattern with m of S superpixels on, the cosine distance to the all-on pattern
    is `1 - sqrt(m / S)` (1 for the all-off pattern, as scikit-learn's cosine distance gives).

    Args:
        masks: `(N, K, S)` bool patterns (padding columns off).
        num_segments: `(N,)` superpixels per image.
        kernel_width: the kernel width.

    Returns:
        `(N, K)` float64 weights in (0, 1].

    Example:
        >>> import torch
        >>> w = kernel_weights(torch.tensor([[[True, True], [False, False]]]), torch.tensor([2]), 0.25)
        >>> round(float(w[0, 0]), 6), round(float(w[0, 1]), 6)
        (1.0, 0.000335)
    """
    on = masks.sum(dim=2, dtype=torch.float64)
    total = num_segments.to(device=masks.device, dtype=torch.float64)[:, None]
    distance = 1 - torch.sqrt(on / total)
    return torch.sqrt(torch.exp(-(distance**2) / kernel_width**2))


def weighted_ridge(
    features: Tensor, scores: Tensor, weights: Tensor, alpha: float = RIDGE_ALPHA
) -> tuple[Tensor, Tensor]:
    """Weighted ridge regression with an unpenalised intercept, for many problems at once.

    Minimises `sum_k w_k (y_k - b - X_k . beta)^2 + alpha |beta|^2` per problem, as
    scikit-learn's `Ridge(alpha, fit_intercept=True).fit(X, y, sample_weight=w)`: centre X
    and y on their weighted means, solve `(Xc^T W Xc + alpha I) beta = Xc^T W yc`. A column
    that is constant (e.g. padding) gets weight 0.

    Args:
        features: `(N, K, S)` design matrices.
        scores: `(N, K)` targets.
        weights: `(N, K)` sample weights.
        alpha: the ridge penalty (> 0).

    Returns:
        `beta: (N, S)` and `intercept: (N,)`, float64.

    Example:
        >>> import torch
        >>> X = torch.tensor([[[0.0], [1.0], [2.0]]])
        >>> beta, b = weighted_ridge(X, 1 + 2 * X[..., 0], torch.ones(1, 3), alpha=1e-9)
        >>> round(float(beta[0, 0]), 6), round(float(b[0]), 6)
        (2.0, 1.0)
    """
    features, scores, weights = features.double(), scores.double(), weights.double()
    total = weights.sum(dim=1, keepdim=True)
    feature_mean = (weights[..., None] * features).sum(dim=1, keepdim=True) / total[..., None]
    score_mean = (weights * scores).sum(dim=1, keepdim=True) / total
    centred = features - feature_mean
    k, s = centred.shape[1:]
    # One thread for the batched solve: torch parallelises the LU factorisations over the batch
    # and MKL each factorisation again inside, and that nesting spins for minutes on a busy
    # 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if s > k:
            # More superpixels than samples (large images): the dual (kernel) form solves a
            # K x K system instead of an S x S one, as scikit-learn's Ridge does then;
            # beta = A^T (A A^T + alpha I)^-1 b with A = W^1/2 Xc, b = W^1/2 yc.
            root = weights.sqrt()
            a = root[..., None] * centred
            kernel = a @ a.transpose(1, 2) + alpha * torch.eye(k, dtype=a.dtype, device=a.device)
            dual = torch.linalg.solve(kernel, (root * (scores - score_mean))[..., None])
            beta = (a.transpose(1, 2) @ dual)[..., 0]
        else:
            weighted = weights[..., None] * centred
            gram = weighted.transpose(1, 2) @ centred
            gram = gram + alpha * torch.eye(s, dtype=gram.dtype, device=gram.device)
            rhs = weighted.transpose(1, 2) @ (scores - score_mean)[..., None]
            beta = torch.linalg.solve(gram, rhs)[..., 0]
    finally:
        torch.set_num_threads(threads)
    intercept = score_mean[:, 0] - (feature_mean[:, 0] * beta).sum(dim=1)
    return beta, intercept


def segment_weights(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    target: Tensor | None,
    segments: Tensor,
    num_samples: int,
    hide_color: float | None,
    batch_size: int,
    seed: int,
    kernel_width: float,
    progress: bool = False,
) -> Tensor:
    """LIME's weight of every superpixel of every image (steps 2-5 of the module docstring).

    Args:
        model: `(B, C, H, W) -> (B, K)` logits or `(B,)`/`(B, 1)` regression output.
        x: `(N, C, H, W)` images.
        target: `(N,)` long classes, or None for a regression output.
        segments: `(N, H, W)` labels 0..S_i-1 (see `segment_images`).
        num_samples: perturbed images per image.
        hide_color: fill of a switched-off superpixel; None for its mean.
        batch_size: images per model call.
        seed: seed of the on/off patterns.
        kernel_width: width of the exponential kernel on the cosine distance.
        progress: tqdm bar over the perturbed images.

    Returns:
        `(N, max S_i)` float64 weights, 0 beyond an image's own S_i.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> x, seg = torch.randn(1, 1, 2, 2), torch.tensor([[[0, 0], [1, 1]]])
        >>> segment_weights(net, x, torch.tensor([1]), seg, 20, 0.0, 8, 0, 0.25).shape
        torch.Size([1, 2])
    """
    num_segments = segments.flatten(1).amax(dim=1) + 1
    masks = draw_masks(num_segments, num_samples, seed)
    fill = fill_values(x, segments, hide_color)
    scores = score_perturbations(model, x, fill, segments, masks, target, batch_size, progress)
    masks = masks.to(x.device)
    weights = kernel_weights(masks, num_segments.to(x.device), kernel_width)
    # weighted_ridge holds about three float64 copies of its (images, K, S) design matrices.
    group = max(1, RIDGE_GROUP_BYTES // (3 * 8 * masks[0].numel()))
    return torch.cat([
        weighted_ridge(masks[i : i + group].double(), scores[i : i + group], weights[i : i + group])[0]
        for i in range(0, len(masks), group)
    ])


def paint(weights: Tensor, segments: Tensor, channels: int) -> Tensor:
    """Heat maps `(N, channels, H, W)`: each pixel gets its superpixel's weight.

    Args:
        weights: `(N, S)` weight per superpixel.
        segments: `(N, H, W)` labels.
        channels: copies of the map along the channel axis.

    Example:
        >>> import torch
        >>> paint(torch.tensor([[1.0, 2.0]]), torch.tensor([[[0, 1]]]), 2).tolist()
        [[[[1.0, 2.0]], [[1.0, 2.0]]]]
    """
    segments = segments.to(weights.device)
    heat = weights.gather(1, segments.flatten(1)).view(segments.shape)
    return heat[:, None].expand(-1, channels, -1, -1).contiguous()
