"""Time ratio adapter / direct Captum per method: from pytest-benchmark results, or interleaved.

`METHODS` pairs each xai_gen adapter (its defaults) with the same Captum call made directly
(`baselines.captum_reference`, same settings); `benchmarks/test_bench_adapters.py` times both.
Benchmarks tagged `benchmark.extra_info["role"]` = `"adapter"`/`"direct"` and grouped by method
are paired and the ratios of their minimum and median times compared with `TARGET`. The minimum
is the steadier figure on a shared machine (contention only adds time), but pytest-benchmark
runs all rounds of one entry before the other, so a load change in between biases the ratio;
`--interleaved` alternates adapter and direct calls instead:

    python -m pytest benchmarks/test_bench_adapters.py --benchmark-json=runs/bench/adapters.json
    python -m benchmarks.adapter_ratios runs/bench/adapters.json
    python -m benchmarks.adapter_ratios --interleaved
    python -m benchmarks.adapter_ratios --interleaved --methods saliency,gradcam --rounds 200 --cpu-time

`--cpu-time` times each call by the CPU time of the calling thread with one torch thread:
on a machine shared with other jobs it counts only this call's own work, where wall time
also counts the time other jobs held the CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from statistics import median
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

import xai_gen as xg
from baselines import captum_reference as direct

#: The adapters should cost at most this much more than calling Captum directly.
TARGET = 1.05

#: method -> (adapter with its defaults, direct Captum function, its settings matching them).
METHODS: dict[str, tuple[xg.Explainer, Callable[..., Tensor], dict[str, Any]]] = {
    "saliency": (xg.Saliency(), direct.saliency, {"abs": True}),
    "integrated_gradients": (
        xg.IntegratedGradients(),
        direct.integrated_gradients,
        {"n_steps": 50, "method": "gausslegendre", "baseline": 0.0},
    ),
    "occlusion": (
        xg.Occlusion(),
        direct.occlusion,
        {"window": 8, "stride": 4, "baseline": 0.0, "perturbations_per_eval": 32},
    ),
    # GradCAM(layer="auto") resolves to SmallCNN's last conv, `conv.3`.
    "gradcam": (xg.GradCAM(), direct.gradcam, {"layer": "conv.3", "interpolate_mode": "bilinear"}),
}

#: Interleaved rounds per method (each round: one adapter call and one direct call).
ROUNDS = {"saliency": 30, "integrated_gradients": 4, "occlusion": 6, "gradcam": 30}


def calls(method: str, model: nn.Module, x: Tensor, target: Tensor) -> dict[str, Callable[[], Tensor]]:
    """`{"adapter": ..., "direct": ...}`: zero-argument calls of `method` on `x: (N, C, H, W)`."""
    explainer, captum_fn, settings = METHODS[method]
    return {
        "adapter": lambda: explainer.attribute(model, x, target=target).attributions,
        "direct": lambda: captum_fn(model, x, target, **settings),
    }


def ratios(benchmarks: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Pair adapter and direct timings per group.

    Args:
        benchmarks: pytest-benchmark entries (`Metadata.as_dict()`, or the `"benchmarks"` list
            of a `--benchmark-json` file) with `group`, `extra_info.role` and `stats`.

    Returns:
        `{group: {"adapter_min", "direct_min", "min_ratio", "median_ratio"}}` (seconds and
        ratios) for every group that has both roles; the last entry of a role wins.
    """
    by_group: dict[str, dict[str, dict[str, float]]] = {}
    for bench in benchmarks:
        role = (bench.get("extra_info") or {}).get("role")
        if role in ("adapter", "direct") and bench.get("group"):
            by_group.setdefault(bench["group"], {})[role] = bench["stats"]
    out = {}
    for group, roles in sorted(by_group.items()):
        if {"adapter", "direct"} <= roles.keys():
            a, d = roles["adapter"], roles["direct"]
            out[group] = {
                "adapter_min": a["min"],
                "direct_min": d["min"],
                "min_ratio": a["min"] / d["min"],
                "median_ratio": a["median"] / d["median"],
            }
    return out


def format_ratios(benchmarks: Iterable[dict[str, Any]]) -> str:
    """A plain-text table of `ratios(benchmarks)`; empty when nothing pairs up."""
    rows = ratios(benchmarks)
    if not rows:
        return ""
    lines = [
        f"{'method':24s} {'adapter min':>12s} {'direct min':>12s} {'ratio min':>10s} "
        f"{'ratio median':>13s}  target <= {TARGET}"
    ]
    for group, r in rows.items():
        flag = "ok" if r["min_ratio"] <= TARGET else "over"
        lines.append(
            f"{group:24s} {1e3 * r['adapter_min']:10.2f}ms {1e3 * r['direct_min']:10.2f}ms "
            f"{r['min_ratio']:10.3f} {r['median_ratio']:13.3f}  {flag}"
        )
    return "\n".join(lines)


def interleaved(rounds: dict[str, int] | None = None, clock: Callable[[], float] = time.perf_counter) -> list[dict[str, Any]]:
    """Time adapter and direct calls alternately on the benchmark digits.

    Uses the benchmark suite's classifier (`runs/bench/classifier.safetensors`, trained if
    missing) and digits with explicit targets. `clock` reads the time (wall time by default).
    Returns entries in the layout `ratios` reads.
    """
    from benchmarks.conftest import first_test_digits, reference_classifier
    from xai_gen.data import mnist_5k

    data = mnist_5k()
    model = reference_classifier(data)
    digits = first_test_digits(data, model)
    out = []
    for method, n in (rounds or ROUNDS).items():
        pair = calls(method, model, digits.images, digits.targets)
        times: dict[str, list[float]] = {"adapter": [], "direct": []}
        for fn in pair.values():
            fn()  # warm-up
        for i in tqdm(range(n), desc=method, leave=False):
            # Alternate which goes first, so neither always follows the other.
            for role in ("adapter", "direct") if i % 2 == 0 else ("direct", "adapter"):
                start = clock()
                pair[role]()
                times[role].append(clock() - start)
        for role, t in times.items():
            stats = {"min": min(t), "median": median(t), "rounds": len(t)}
            out.append({"group": method, "extra_info": {"role": role}, "stats": stats})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="adapter / direct Captum time ratios")
    parser.add_argument("json", type=Path, nargs="?", help="a pytest-benchmark --benchmark-json file")
    parser.add_argument("--interleaved", action="store_true", help="measure, alternating calls")
    parser.add_argument("--methods", default=",".join(ROUNDS), help="with --interleaved: comma-separated methods")
    parser.add_argument("--rounds", type=int, help="with --interleaved: rounds per method (default: ROUNDS)")
    parser.add_argument("--cpu-time", action="store_true", help="with --interleaved: thread CPU time, one torch thread")
    args = parser.parse_args(argv)
    if args.interleaved == (args.json is not None):
        parser.error("give either a JSON file or --interleaved")
    if args.interleaved:
        unknown = sorted(set(args.methods.split(",")) - set(ROUNDS))
        if unknown:
            parser.error(f"unknown method(s) {unknown}; known: {sorted(ROUNDS)}")
        rounds = {m: args.rounds or ROUNDS[m] for m in args.methods.split(",")}
        clock = time.perf_counter
        if args.cpu_time:
            torch.set_num_threads(1)
            clock = time.thread_time
        entries = interleaved(rounds, clock)
    else:
        entries = json.loads(args.json.read_text())["benchmarks"]
    table = format_ratios(entries)
    print(table or f"no adapter/direct pairs in {args.json}")
    return 0 if table else 1


if __name__ == "__main__":
    raise SystemExit(main())
