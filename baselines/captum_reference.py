"""Captum called directly (no xai_gen) on the fixture: reference attributions and timings.

Computes Saliency, IntegratedGradients, Occlusion and LayerGradCam (upsampled with
`LayerAttribution.interpolate`) on `baselines.fixture` and writes them to a `.safetensors`
file, one tensor per case of `CASES`, with the inputs, targets and settings. The adapter tests
build each xai_gen explainer from the same `CASES` (the function name is the registry name,
the settings dict its keyword arguments) and compare with these tensors.

Usage:
    python -m baselines.captum_reference [OUT.safetensors] [--n N]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import captum
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion, Saliency
from safetensors.torch import save_file
from torch import Tensor, nn

from baselines.fixture import make_inputs, make_model, make_targets

#: Fixture images the references are computed on.
N_INPUTS = 6
#: Default output file.
DEFAULT_PATH = Path("runs/baselines/captum_reference.safetensors")


def saliency(model: nn.Module, x: Tensor, target: Tensor | None, abs: bool = True) -> Tensor:
    """`captum.attr.Saliency`, with Captum's default `abs=True`."""
    return Saliency(model).attribute(x.detach().requires_grad_(True), target=target, abs=abs)


def integrated_gradients(
    model: nn.Module,
    x: Tensor,
    target: Tensor | None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    baseline: float | Tensor | None = None,
    internal_batch_size: int | None = None,
) -> Tensor:
    """`captum.attr.IntegratedGradients`; defaults are Captum's (baseline None = zeros)."""
    return IntegratedGradients(model).attribute(
        x,
        baselines=baseline,
        target=target,
        n_steps=n_steps,
        method=method,
        internal_batch_size=internal_batch_size,
    )


def occlusion(
    model: nn.Module,
    x: Tensor,
    target: Tensor | None,
    window: int = 8,
    stride: int = 4,
    baseline: float | Tensor | None = None,
    perturbations_per_eval: int = 1,
) -> Tensor:
    """`captum.attr.Occlusion` with a square window over all channels; `perturbations_per_eval`
    defaults to Captum's 1 (the adapter batches 32: the references show it changes nothing)."""
    c = x.shape[1]
    return Occlusion(model).attribute(
        x,
        sliding_window_shapes=(c, window, window),
        strides=(c, stride, stride),
        baselines=baseline,
        target=target,
        perturbations_per_eval=perturbations_per_eval,
    )


def gradcam(
    model: nn.Module,
    x: Tensor,
    target: Tensor | None,
    layer: str = "features.3",
    relu: bool = False,
    interpolate_mode: str = "bilinear",
) -> Tensor:
    """`captum.attr.LayerGradCam` on `layer` (the fixture's last conv), upsampled to the input
    size and repeated over the input channels."""
    cam = LayerGradCam(model, model.get_submodule(layer)).attribute(
        x, target=target, relu_attributions=relu
    )
    cam = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode)
    return cam.expand(-1, x.shape[1], -1, -1)


#: case name -> (direct Captum function, settings). The function's name is the xai_gen registry
#: name and the settings are keyword arguments of both the function and the xai_gen explainer;
#: `{}` checks that the explainer's defaults reproduce the function's (Captum's) defaults.
CASES: dict[str, tuple[Callable[..., Tensor], dict[str, Any]]] = {
    "saliency": (saliency, {}),
    "saliency_signed": (saliency, {"abs": False}),
    "integrated_gradients": (integrated_gradients, {}),
    "integrated_gradients_black": (
        integrated_gradients,
        {"n_steps": 20, "method": "riemann_trapezoid", "baseline": -1.0, "internal_batch_size": 16},
    ),
    "occlusion": (occlusion, {}),
    "occlusion_black": (occlusion, {"window": 6, "stride": 3, "baseline": -1.0}),
    "gradcam": (gradcam, {}),
    "gradcam_relu": (gradcam, {"layer": "features.0", "relu": True, "interpolate_mode": "nearest"}),
}


def compute_references(n: int = N_INPUTS) -> tuple[dict[str, Tensor], dict[str, float]]:
    """Run every case of `CASES` on the fixture.

    Returns:
        Tensors `{"inputs": (n, 1, 28, 28), "targets": (n,), <case>: (n, 1, 28, 28)}` and the
        seconds each case took.
    """
    model, x, target = make_model(), make_inputs(n), make_targets(n)
    tensors = {"inputs": x, "targets": target}
    seconds = {}
    with torch.no_grad():
        model(x)  # warm-up, so the first case's time is not one-off set-up
    for case, (fn, settings) in CASES.items():
        start = time.perf_counter()
        tensors[case] = fn(model, x, target, **settings).detach().contiguous()
        seconds[case] = time.perf_counter() - start
    return tensors, seconds


def write_references(path: str | Path = DEFAULT_PATH, n: int = N_INPUTS) -> dict[str, float]:
    """Compute the references and write them to `path` (safetensors, settings as JSON metadata).

    Returns:
        Seconds per case.
    """
    tensors, seconds = compute_references(n)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "settings": json.dumps({case: settings for case, (_, settings) in CASES.items()}),
        "methods": json.dumps({case: fn.__name__ for case, (fn, _) in CASES.items()}),
        "torch": torch.__version__,
        "captum": captum.__version__,
    }
    save_file(tensors, str(path), metadata=meta)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT_PATH), help="output .safetensors")
    parser.add_argument("--n", type=int, default=N_INPUTS, help="number of fixture images")
    args = parser.parse_args(argv)
    seconds = write_references(args.path, args.n)
    print(f"captum {captum.__version__}, torch {torch.__version__}, {args.n} images -> {args.path}")
    for case, s in seconds.items():
        print(f"{case:28s} {1000 * s:9.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
