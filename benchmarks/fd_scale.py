"""What a Fréchet distance means on the shipped bundles: the distance that *real* images score
when they are changed in small, known ways.

The bundles' quality figures give each latent model's Fréchet distance to the held-out images,
in the explained classifier's penultimate features, beside the real-vs-real floor (as many
training images as held-out ones). This script puts a scale beside them: the same distance
for the floor's training images after a 3 x 3 or 5 x 5 box blur, at half or a quarter of the
resolution (average-pooled, then bilinear back), 0.05 brighter, or with pixel noise of
standard deviation 0.05. A model whose samples were real patients, only blurred by 3 x 3,
would score the `box 3 x 3` row.

Run: `python -m benchmarks.fd_scale [--out runs/fd_scale] [--threads 1]`. Writes
`results.md` and `results.json` to `--out`; `docs/gen_figures.py --only fd_scale` copies the
table to the Recipes page.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from xai_gen.bundles.build import prepare_data
from xai_gen.bundles.quality import frechet_figures
from xai_gen.bundles.shipped import SHIPPED_DIR, load_shipped, read_provenance, shipped_datasets
from xai_gen.compare.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
#: The shipped latent models whose own sample distances stand under the scale.
LATENT_MODELS = ("autoencoder", "conditional", "wgan_gp")


def box_blur(images: Tensor, size: int) -> Tensor:
    """Mean over a `size x size` window (edges replicated), `(N, C, H, W)` -> same shape."""
    pad = size // 2
    return F.avg_pool2d(F.pad(images, (pad, pad, pad, pad), mode="replicate"), size, stride=1)


def lower_resolution(images: Tensor, factor: int) -> Tensor:
    """Average-pool by `factor`, then bilinear back to the input size."""
    small = F.avg_pool2d(images, factor)
    return F.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False)


def changes(seed: int = 0) -> dict[str, Callable[[Tensor], Tensor]]:
    """Name -> change of a batch `(N, C, H, W)` in [-1, 1] (results clamped to that range)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "box 3 x 3": lambda x: box_blur(x, 3),
        "box 5 x 5": lambda x: box_blur(x, 5),
        "half resolution": lambda x: lower_resolution(x, 2),
        "quarter resolution": lambda x: lower_resolution(x, 4),
        "brightness + 0.05": lambda x: (x + 0.05).clamp(-1, 1),
        "pixel noise, sd 0.05": lambda x: (x + 0.05 * torch.randn(x.shape, generator=gen)).clamp(-1, 1),
    }


def measure(dataset: str) -> dict[str, float]:
    """Fréchet distances of the changed training images to the held-out ones, the floor, and
    the shipped latent models' sample distances (from their files), for one bundle."""
    data = prepare_data(dataset)
    classifier = load_shipped(dataset, names=["classifier"])["classifier"]
    n = len(data["xt"])
    training = data["x"][:n]
    changed = {name: change(training) for name, change in changes().items()}
    figures = frechet_figures(classifier, changed, data["xt"], data["x"])
    for name in LATENT_MODELS:
        quality = read_provenance(SHIPPED_DIR / dataset / f"{name}.safetensors")["quality"]
        figures[f"shipped {name}: fd_samples"] = quality["fd_samples"]
        figures[f"shipped {name}: fd_floor"] = quality["fd_floor"]
    return figures


def markdown(results: dict[str, dict[str, float]]) -> str:
    header = ["images", *results]
    keys = [("floor (training images as they are)", "fd_floor"), *((name, f"fd_{name}") for name in changes())]
    rows = [[label, *(f"{r[key]:.1f}" for r in results.values())] for label, key in keys]
    for model in LATENT_MODELS:
        rows.append([f"*shipped `{model}`'s samples (its floor)*",
                     *(f"{r[f'shipped {model}: fd_samples']:.1f} ({r[f'shipped {model}: fd_floor']:.1f})"
                       for r in results.values())])
    sizes = ", ".join(f"{d}: {int(r['fd_n'])}" for d, r in results.items())
    lines = ["# What a Fréchet distance means", "",
             markdown_table(header, rows), "",
             "Fréchet distance to the held-out images in the explained classifier's penultimate features, "
             f"{sizes} images per side. "
             "Each row but the last three changes the floor's training images. The last three are the "
             "shipped models' own figures, each beside the floor it was measured with (MNIST's conditional "
             "model draws 4s and 9s and is judged against the held-out 4s and 9s).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "fd_scale")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {dataset: measure(dataset) for dataset in shipped_datasets()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    text = markdown(results)
    (args.out / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
