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
without signal is skipped and counted, see `mean_correlation`). Times are CPU seconds of this
process (one torch thread), with wall seconds beside them: other jobs on a shared machine
stretch the wall time, not the CPU time. "model alone" is the model's time on the same number
of perturbed images in the same batches: neither engine can be faster than that. Rows: the reference MNIST `SmallCNN` (benchmarks/conftest.py), the
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

#: Superpixel weights all below this are rounding noise: a real score difference of a float32
#: probability is >= ~6e-8 and gives weights many orders of magnitude larger.
NO_SIGNAL = 1e-12


@dataclass(frozen=True)
class Timing:
    """Seconds of one call: CPU time of this process, and wall time."""

    cpu: float
    wall: float


@dataclass(frozen=True)
class Row:
    """One line of the table: CPU and wall seconds, correlations as means over images."""

    case: str
    images: int
    lime: Timing
    fast: Timing
    model: Timing
    same_draws: float
    independent_draws: float
    skipped: int


def timed(fn: Callable[[], Tensor], rounds: int) -> tuple[Timing, Tensor]:
    """The fastest of `rounds` calls of `fn` (by CPU time), and its last result.

    CPU time (`time.process_time`, one torch thread) is what the call computed; other jobs on
    a shared machine stretch the wall time but not that.
    """
    best, out = None, None
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        out = fn()
        t = Timing(time.process_time() - cpu, time.perf_counter() - wall)
        best = t if best is None or t.cpu < best.cpu else best
    return best, out


def per_segment(maps: Tensor, segments: Tensor) -> list[np.ndarray]:
    """Each image's superpixel weights, read back from its map `(N, C, H, W)`."""
    out = []
    for heat, seg in zip(maps[:, 0].double(), segments, strict=True):
        weights = torch.zeros(int(seg.max()) + 1, dtype=torch.float64)
        out.append(weights.scatter_(0, seg.flatten(), heat.flatten()).numpy())
    return out


def mean_correlation(reference: list[np.ndarray], other: list[np.ndarray]) -> tuple[float, int]:
    """Mean Pearson correlation over images, and how many images were skipped.

    An image is skipped when its reference weights are all below `NO_SIGNAL` in magnitude:
    the model gave every perturbed image the same score to float32 precision (a saturated
    softmax), so both engines return rounding noise (~1e-31) and there is nothing to correlate.
    Where the reference has weights and the other side is constant, the correlation counts as 0.
    """
    values = []
    for u, v in zip(reference, other, strict=True):
        if np.abs(u).max() < NO_SIGNAL:
            continue
        values.append(float(np.corrcoef(u, v)[0, 1]) if v.std() > 0 else 0.0)
    return float(np.mean(values)), len(reference) - len(values)


def model_alone(model: nn.Module, x: Tensor, samples: int, batch_size: int) -> Timing:
    """Time of the model on `len(x) * samples` images in batches of `batch_size`."""
    total = len(x) * samples
    batch = x[torch.arange(batch_size) % len(x)]

    def run() -> Tensor:
        with torch.no_grad():
            for first in range(0, total, batch_size):
                out = model(batch[: min(batch_size, total - first)])
        return out

    return timed(run, 1)[0]


def compare_case(
    case: str, model: nn.Module, x: Tensor, target: Tensor, samples: int, rounds: int
) -> Row:
    """Time `Lime` and `FastLime` on `x` and correlate their superpixel weights."""
    lime = xg.Lime(num_samples=samples, progress=False)
    fast = xg.FastLime(num_samples=samples, progress=False)
    lime_t, lime_maps = timed(lambda: lime.attribute(model, x, target).attributions, rounds)
    fast_t, fast_maps = timed(lambda: fast.attribute(model, x, target).attributions, rounds)
    batch_size = fast.rows_per_call(model, x) or len(x) * samples  # what FastLime's calls take
    model_t = model_alone(model, x, samples, batch_size)
    segments = segment_images(x, "quickshift", None, seed=0)
    reference = per_segment(lime_maps, segments)
    same, skipped = mean_correlation(reference, per_segment(fast_maps, segments))
    with torch.no_grad():
        other = segment_weights(model, x, target, segments, samples, None, batch_size, 1, 0.25)
    independent, _ = mean_correlation(reference, [w[: len(r)].numpy() for w, r in zip(other, reference, strict=True)])
    return Row(case, len(x), lime_t, fast_t, model_t, same, independent, skipped)


def linear_model(seed: int = 0) -> nn.Module:
    """A seeded linear 10-class model on 28x28 digits: almost free to evaluate."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()


def format_table(rows: list[Row], samples: int) -> str:
    """The markdown table of the rows: CPU seconds, wall seconds in parentheses."""
    lines = [
        f"| case ({samples} samples) | images | lime, CPU s (wall) | FastLime, CPU s (wall) "
        "| speed-up, CPU (wall) | model alone, CPU s | corr., same draws | corr., independent draws |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        skipped = f" ({r.skipped} skipped)" if r.skipped else ""
        lines.append(
            f"| {r.case} | {r.images} | {r.lime.cpu:.2f} ({r.lime.wall:.1f}) "
            f"| {r.fast.cpu:.2f} ({r.fast.wall:.1f}) "
            f"| {r.lime.cpu / r.fast.cpu:.1f}x ({r.lime.wall / r.fast.wall:.1f}x) | {r.model.cpu:.2f} "
            f"| {r.same_draws:.4f}{skipped} | {r.independent_draws:.3f}{skipped} |"
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
