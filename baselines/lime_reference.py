"""LIME called directly (lime 0.2.0.1, no xai_gen) on the fixture model: reference maps and timings.

The settings below are the ones `xai_gen.Lime` uses by default, spelled out by hand, so that
the adapter tests can check the adapter against this script map for map:

* a fresh `LimeImageExplainer(kernel_width, random_state=SEED)` per image;
* the image handed to lime stays in the model's range ([-1, 1]); the segmentation function
  sees it min-max scaled to [0, 1];
* quickshift gets `rng=SEED` itself (lime's `random_seed` is dropped by its wrapper for
  scikit-image >= 0.19, which renamed the argument);
* `classifier_fn` takes the first channel of lime's gray2rgb batch and returns the softmax;
* the map paints each superpixel with its weight in `explanation.local_exp[label]`.

Run from the repository root: `python -m baselines.lime_reference [OUT.safetensors]`
(default `runs/baselines/lime_reference.safetensors`).
Imports only torch, numpy, lime, skimage (through lime), safetensors and the fixture.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from lime.lime_image import LimeImageExplainer
from lime.wrappers.scikit_image import SegmentationAlgorithm
from safetensors.torch import save_file
from torch import nn

from baselines.fixture import make_inputs, make_model, make_targets

N_INPUTS = 4
NUM_SAMPLES = 1000
BATCH_SIZE = 256
SEED = 0
KERNEL_WIDTH = 0.25
HIDE_COLOR = None  # lime's default: each superpixel's mean
DEFAULT_PATH = Path("runs/baselines/lime_reference.safetensors")
SEGMENTATIONS = {
    "quickshift": {"kernel_size": 1, "max_dist": 5, "ratio": 0.3},
    "slic": {"n_segments": 49, "compactness": 20, "start_label": 0},
    "felzenszwalb": {"scale": 1, "sigma": 0.3, "min_size": 5},
}


def segmentation_fn(name: str, seed: int = SEED) -> Callable[[np.ndarray], np.ndarray]:
    """lime segmentation function: `(H, W, 3)` image in model range -> `(H, W)` segments."""
    extra = {"rng": seed} if name == "quickshift" else {}
    algorithm = SegmentationAlgorithm(name, **SEGMENTATIONS[name], **extra)

    def segment(image: np.ndarray) -> np.ndarray:
        span = image.max() - image.min()
        return algorithm((image - image.min()) / span if span > 0 else np.zeros_like(image))

    return segment


def probabilities_fn(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """lime `classifier_fn` for a 1-channel model: `(B, H, W, 3)` -> `(B, K)` softmax."""

    def predict(images: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(images[..., :1]).permute(0, 3, 1, 2).float().contiguous()
        with torch.no_grad():
            return torch.softmax(model(batch), dim=1).double().numpy()

    return predict


def lime_map(
    model: nn.Module,
    image: torch.Tensor,
    label: int,
    segmentation: str = "quickshift",
    num_samples: int = NUM_SAMPLES,
    seed: int = SEED,
) -> np.ndarray:
    """LIME heat map `(H, W)` float64 of one `(1, H, W)` image for class `label`."""
    explainer = LimeImageExplainer(kernel_width=KERNEL_WIDTH, random_state=seed)
    explanation = explainer.explain_instance(
        image[0].double().numpy(),
        probabilities_fn(model),
        labels=(label,),
        hide_color=HIDE_COLOR,
        top_labels=None,
        num_samples=num_samples,
        batch_size=BATCH_SIZE,
        segmentation_fn=segmentation_fn(segmentation, seed),
        random_seed=seed,
    )
    segments = explanation.segments
    weights = np.zeros(segments.max() + 1)
    for feature, weight in explanation.local_exp[label]:
        weights[feature] = weight
    return weights[segments]


def lime_maps(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    segmentation: str = "quickshift",
    num_samples: int = NUM_SAMPLES,
    seed: int = SEED,
) -> torch.Tensor:
    """Maps `(N, 1, H, W)` float32 for images `x: (N, 1, H, W)` and classes `targets: (N,)`."""
    maps = [
        lime_map(model, img, int(t), segmentation, num_samples, seed)
        for img, t in zip(x, targets, strict=True)
    ]
    return torch.from_numpy(np.stack(maps)).float()[:, None]


def write_references(path: str | Path = DEFAULT_PATH) -> dict[str, float]:
    """Write the fixture inputs, targets and one map set per segmentation to `path`.

    Returns:
        Seconds per segmentation algorithm (all `N_INPUTS` images).
    """
    model, x, targets = make_model(), make_inputs(N_INPUTS), make_targets(N_INPUTS)
    tensors = {"inputs": x, "targets": targets}
    seconds = {}
    for name in SEGMENTATIONS:
        start = time.perf_counter()
        tensors[name] = lime_maps(model, x, targets, name)
        seconds[name] = time.perf_counter() - start
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"num_samples": str(NUM_SAMPLES), "seed": str(SEED)})
    return seconds


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH
    for name, sec in write_references(out).items():
        print(f"lime {name}: {N_INPUTS} images x {NUM_SAMPLES} samples in {sec:.2f} s")
    print(f"wrote {out}")
