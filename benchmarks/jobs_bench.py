"""Data-set jobs: throughput of the engines, Ray's overhead, and the driver's peak memory.

    python -m benchmarks.jobs_bench throughput --markdown docs/generated/jobs_throughput.md
    python -m benchmarks.jobs_bench overhead --markdown docs/generated/jobs_overhead.md
    python -m benchmarks.jobs_bench memory --markdown docs/generated/jobs_memory.md

Throughput explains MNIST test digits with the settings of `xai-gen explain` (Saliency,
Integrated Gradients, GVR with at most 100 steps on the MNIST bundle's classifier and
autoencoder; the bundle is trained on first use and cached in `runs/mnist`). Each engine
gets the 2 CPUs of the machine: one process with 2 torch threads; Ray with 1 worker
(1 CPU, 1 thread) or 2 workers (1 CPU, 1 thread each). The Ray timings start after
`ray.init` (a running cluster) and include starting the actors. Memory runs `xai-gen explain`
with Saliency over a folder of 1,000 or 10,000 PNG digits (the 1,000 test digits repeated)
in a fresh process (an untrained `SmallCNN`: memory does not depend on the weights) and
reports its peak RSS (`ru_maxrss`): flat when the job streams.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from xai_gen.cli import build_parser
from xai_gen.cli._job import build_work
from xai_gen.compare.report import markdown_table
from xai_gen.jobs import RayOptions, run_job

ROOT = Path(__file__).resolve().parents[1]
#: Images per method in the throughput runs (GVR costs about 100 model steps per image).
THROUGHPUT_N = {"saliency": 1000, "integrated_gradients": 500, "gvr": 200}
#: Engines of the throughput table: (label, engine, local threads, Ray workers).
ENGINES = (("1 process (2 threads)", "local", 2, None), ("Ray, 1 worker", "ray", None, 1),
           ("Ray, 2 workers", "ray", None, 2))


def mnist_work(method: str, n: int, shard_size: int = 100, batch_size: int = 50) -> Any:
    """The `Work` of `xai-gen explain --data mnist --methods METHOD --n N` (bundled models)."""
    args = build_parser().parse_args(
        ["explain", "--data", "mnist", "--methods", method, "--n", str(n), "--out", "unused",
         "--shard-size", str(shard_size), "--batch-size", str(batch_size),
         "--cache-dir", str(ROOT / "runs")]
    )
    return build_work(args, [method], [])


def timed_job(work: Any, engine: str, threads: int | None, workers: int | None) -> float:
    """Wall seconds of one job into a fresh folder."""
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        run_job(work, out, engine=engine, threads=threads,
                ray=RayOptions(workers=workers, cpus_per_worker=1), progress=False)
        return time.perf_counter() - started


def throughput() -> list[dict[str, Any]]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    rows = []
    try:
        for method, n in THROUGHPUT_N.items():
            work = mnist_work(method, n)
            for label, engine, threads, workers in ENGINES:
                seconds = timed_job(work, engine, threads, workers)
                rows.append({"method": method, "engine": label, "images": n,
                             "seconds": seconds, "images_per_s": n / seconds})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        ray.shutdown()
    return rows


def overhead() -> list[dict[str, Any]]:
    """A small job (100 digits, Saliency): local vs. Ray started and stopped by the job."""
    work = mnist_work("saliency", 100)
    rows = []
    for label, engine, workers in (("1 process", "local", None), ("Ray, 2 workers (local Ray started by the job)", "ray", 2)):
        seconds = timed_job(work, engine, 2 if engine == "local" else None, workers)
        rows.append({"engine": label, "images": 100, "seconds": seconds})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def digit_folder(root: Path, n: int) -> Path:
    """`n` PNG digits (the 1,000 MNIST test digits, repeated) in `root`."""
    from xai_gen.data import mnist_5k

    pixels = ((mnist_5k().test.images[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(pixels[i % len(pixels)].numpy()).save(root / f"{i:05d}.png")
    return root


DRIVER = """
import resource, sys, torch
from xai_gen.cli import main
rc = main(sys.argv[1:])
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(rc)
"""


def memory(sizes: tuple[int, ...] = (1000, 10000)) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model = tmp_path / "model.safetensors"
        from xai_gen.models import SmallCNN, save_classifier

        # Memory does not depend on the weights: an untrained classifier of the bundle's shape.
        torch.manual_seed(0)
        save_classifier(SmallCNN(), model)
        for n in sizes:
            folder = digit_folder(tmp_path / f"digits{n}", n)
            argv = ["explain", "--data", f"folder:{folder}", "--model", str(model),
                    "--methods", "saliency", "--threads", "2", "--out", str(tmp_path / f"out{n}")]
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", DRIVER, *argv], capture_output=True,
                                  text=True, env=os.environ.copy(), check=True)
            peak = int(done.stdout.split("PEAK_RSS_KB")[1].split()[0]) * 1024
            rows.append({"images": n, "peak_rss_mib": peak / 2**20,
                         "seconds": time.perf_counter() - started})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def throughput_markdown(rows: list[dict[str, Any]]) -> str:
    """Rows = methods, columns = engines, cells = images/s (seconds for the images)."""
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    table = []
    for method in dict.fromkeys(r["method"] for r in rows):
        cells = {r["engine"]: r for r in rows if r["method"] == method}
        first = next(iter(cells.values()))
        table.append(
            [f"{method} ({first['images']} images)"]
            + [f"{cells[e]['images_per_s']:.3g} img/s ({cells[e]['seconds']:.0f} s)" for e in engines]
        )
    return markdown_table(["method", *engines], table) + "\n"


def memory_markdown(rows: list[dict[str, Any]]) -> str:
    """One row per data-set size: the driver's peak RSS and the job's wall time."""
    table = [[f"{r['images']:,}", f"{r['peak_rss_mib']:.0f} MiB", f"{r['seconds']:.0f} s"] for r in rows]
    return markdown_table(["images", "driver peak RSS", "wall time"], table) + "\n"


def overhead_markdown(rows: list[dict[str, Any]]) -> str:
    """Wall time of the small job per engine."""
    table = [[r["engine"], f"{r['images']}", f"{r['seconds']:.1f} s"] for r in rows]
    return markdown_table(["engine", "images", "wall time"], table) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=("throughput", "overhead", "memory"))
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    np.random.seed(0)
    rows = {"throughput": throughput, "overhead": overhead, "memory": memory}[args.what]()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if args.markdown:
        tables = {"throughput": throughput_markdown, "overhead": overhead_markdown,
                  "memory": memory_markdown}
        args.markdown.write_text(tables[args.what](rows))


if __name__ == "__main__":
    main()
