"""`FastLime` against the `Lime` adapter (lime 0.2.0.1): speed-up and agreement of the weights.

Both explain the same images for the same classes with the same settings (the defaults:
1,000 samples, quickshift with `SEGMENTATION_DEFAULTS`, superpixel-mean hiding, seed 0), so
both use the same superpixels and the weights can be compared superpixel by superpixel:

* **same draws**: `FastLime(seed=0)` against `Lime(seed=0)`. Both draw lime's patterns, so
  this measures the numerical agreement of the two implementations.
* **independent draws**: the batched engine with patterns from seed 1 (superpixels still from
  seed 0) against `Lime(seed=0)`: the agreement one can expect from LIME's sampling noise at
  this many samples, whatever engine runs it.

Correlation is Pearson's over the superpixels of one image, averaged over the images (an image
whose weights are all equal on either side is skipped and counted). "model alone" is the time
the model takes on the same number of perturbed images in the same batches: neither engine
can be faster than that. Rows: the reference MNIST `SmallCNN` (benchmarks/conftest.py), the
64x64 synthetic X-ray `SmallCNN`, and a linear model on the same digits, where the model is
nearly free and the engines' own costs show.

    OMP_NUM_THREADS=1 python -m benchmarks.lime_speedup [--digits 100] [--xrays 20] [--samples 1000]
        [--out docs/generated/lime_speedup.md]

One torch thread (the machine is shared); each time is one run (`--rounds` to take the
minimum of several). `--out` writes the table with the command, the date and the machine's
load average (before and after) to a markdown snippet, which the docs include.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

import xai_gen as xg
from benchmarks.conftest import (
    cxr_classifier,
    first_test_cxr,
    first_test_digits,
    reference_classifier,
)
from xai_gen.data import mnist_5k
from xai_gen.explainers._lime_batched import segment_images, segment_weights


@dataclass(frozen=True)
class Row:
    """One line of the table: times in seconds, correlations as means over images."""

    case: str
    images: int
    lime_s: float
    fast_s: float
    model_s: float
    same_draws: float
    independent_draws: float
    skipped: int

    @property
    def speedup(self) -> float:
        return self.lime_s / self.fast_s


def best_time(fn: Callable[[], Tensor], rounds: int) -> tuple[float, Tensor]:
    """Minimum wall time of `rounds` calls of `fn`, and its last result."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def per_segment(maps: Tensor, segments: Tensor) -> list[np.ndarray]:
    """Each image's superpixel weights, read back from its map `(N, C, H, W)`."""
    out = []
    for heat, seg in zip(maps[:, 0].double(), segments, strict=True):
        weights = torch.zeros(int(seg.max()) + 1, dtype=torch.float64)
        out.append(weights.scatter_(0, seg.flatten(), heat.flatten()).numpy())
    return out


def mean_correlation(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, int]:
    """Mean Pearson correlation over images, and how many images were skipped (constant)."""
    values = [float(np.corrcoef(u, v)[0, 1]) for u, v in zip(a, b, strict=True) if u.std() > 0 and v.std() > 0]
    return float(np.mean(values)), len(a) - len(values)


def model_alone(model: nn.Module, x: Tensor, samples: int, batch_size: int) -> float:
    """Seconds the model takes on `len(x) * samples` images in batches of `batch_size`."""
    total = len(x) * samples
    batch = x[torch.arange(batch_size) % len(x)]
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, total, batch_size):
            model(batch[: min(batch_size, total - first)])
    return time.perf_counter() - start


def compare_case(
    case: str, model: nn.Module, x: Tensor, target: Tensor, samples: int, rounds: int
) -> Row:
    """Time `Lime` and `FastLime` on `x` and correlate their superpixel weights."""
    lime = xg.Lime(num_samples=samples, progress=False)
    fast = xg.FastLime(num_samples=samples, progress=False)
    lime_s, lime_maps = best_time(lambda: lime.attribute(model, x, target).attributions, rounds)
    fast_s, fast_maps = best_time(lambda: fast.attribute(model, x, target).attributions, rounds)
    model_s = model_alone(model, x, samples, fast.params["batch_size"])
    segments = segment_images(x, "quickshift", None, seed=0)
    reference = per_segment(lime_maps, segments)
    same, skipped = mean_correlation(reference, per_segment(fast_maps, segments))
    with torch.no_grad():
        other = segment_weights(model, x, target, segments, samples, None, fast.params["batch_size"], 1, 0.25)
    independent, _ = mean_correlation(reference, [w[: len(r)].numpy() for w, r in zip(other, reference, strict=True)])
    return Row(case, len(x), lime_s, fast_s, model_s, same, independent, skipped)


def linear_model(seed: int = 0) -> nn.Module:
    """A seeded linear 10-class model on 28x28 digits: almost free to evaluate."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()


def format_table(rows: list[Row], samples: int) -> str:
    """The markdown table of the rows."""
    lines = [
        f"| case ({samples} samples) | images | lime (s) | FastLime (s) | speed-up | model alone (s) "
        "| corr., same draws | corr., independent draws |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        skipped = f" ({r.skipped} skipped)" if r.skipped else ""
        lines.append(
            f"| {r.case} | {r.images} | {r.lime_s:.1f} | {r.fast_s:.1f} | {r.speedup:.1f}x "
            f"| {r.model_s:.1f} | {r.same_draws:.4f}{skipped} | {r.independent_draws:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--digits", type=int, default=100, help="MNIST test digits (default 100)")
    p.add_argument("--xrays", type=int, default=20, help="64x64 synthetic X-rays (default 20)")
    p.add_argument("--samples", type=int, default=1000, help="LIME samples per image (default 1000)")
    p.add_argument("--rounds", type=int, default=1, help="runs per engine, minimum taken (default 1)")
    p.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    data = mnist_5k()
    mnist_model = reference_classifier(data)
    digits = first_test_digits(data, mnist_model, args.digits)
    xray_model = cxr_classifier()
    xrays = first_test_cxr(xray_model, args.xrays)
    linear = linear_model()
    with torch.no_grad():
        linear_targets = linear(digits.images).argmax(dim=1)
    rows = [
        compare_case("MNIST, SmallCNN", mnist_model, digits.images, digits.targets, args.samples, args.rounds),
        compare_case("CXR 64x64, SmallCNN", xray_model, xrays.images, xrays.targets, args.samples, args.rounds),
        compare_case("MNIST, linear model", linear, digits.images, linear_targets, args.samples, args.rounds),
    ]
    table = format_table(rows, args.samples)
    print(table)
    if args.out:
        command = " ".join(["python -m benchmarks.lime_speedup", *(argv if argv is not None else sys.argv[1:])])
        note = (
            f"<!-- generated by `{command}`; do not edit -->\n\n{table}\n\n"
            f"*Measured {time.strftime('%Y-%m-%d')} with `{command}`, one torch thread, on "
            f"{os.cpu_count()} CPU cores shared with other jobs: load average "
            f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after.*\n"
        )
        args.out.write_text(note)
    return table


if __name__ == "__main__":
    main()
