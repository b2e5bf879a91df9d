"""The Ray engine: the same `Work.explain_shard` on a pool of Ray Data actors.

Each actor receives the job's `Work` (model, latent model, data source) once, builds the
explainers once and sets torch's thread count to its CPU share: two processes each running
torch's default thread count on two cores slowed GVR 4-25x on our machines through thread
oversubscription. Actors return the shard files' bytes; the driver writes them, so a
cluster needs no shared file system and the driver holds at most a few shards at a time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from xai_gen.jobs.shards import write_shard
from xai_gen.jobs.work import Work

__all__ = ["ShardActor", "run_on_ray"]


@dataclass
class RayOptions:
    """How the Ray engine runs.

    Attributes:
        address: an existing cluster (`"auto"`, `"ray://head:10001"`, `"head:6379"`); None
            starts a local Ray for the job and stops it afterwards.
        workers: actors in the pool; None: the cluster's CPUs divided by `cpus_per_worker`.
        cpus_per_worker: CPUs each actor reserves; it also sets the actor's torch threads.
        gpus_per_worker: GPUs each actor reserves (e.g. 1, or 0.5 to share one).
        num_cpus: CPUs of the local Ray started when `address` is None (None: all).
    """

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    num_cpus: int | None = None



class ShardActor:
    """A Ray Data actor that explains shards: `{"shard": (B,)}` -> `{"shard", "blob"}`."""

    def __init__(self, work: Work, threads: int) -> None:
        torch.set_num_threads(max(1, threads))
        self.work = work
        self.work.explainers()  # models onto the device and explainers built, once per actor

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shards = [int(k) for k in batch["shard"]]
        blobs = np.empty(len(shards), dtype=object)
        blobs[:] = [self.work.explain_shard(k) for k in shards]
        return {"shard": np.asarray(shards, dtype=np.int64), "blob": blobs}


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - fails without the [data] extra
    except ImportError as err:
        raise ImportError(
            "the Ray engine needs Ray Data: pip install 'xai-gen[ray]' (or 'ray[data]')"
        ) from err
    return ray


def run_on_ray(work: Work, todo: list[int], out: Path, bar: tqdm, options: RayOptions) -> None:
    """Explain shards `todo` of `work` on Ray and write them to `out`, updating `bar`."""
    if not todo:
        return
    if options.cpus_per_worker <= 0 or options.gpus_per_worker < 0:
        raise ValueError(
            "cpus_per_worker must be > 0 and gpus_per_worker >= 0, got "
            f"{options.cpus_per_worker} and {options.gpus_per_worker}"
        )
    if options.workers is not None and options.workers < 1:
        raise ValueError(f"workers must be >= 1, got {options.workers}")
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "include_dashboard": False}
        if options.address is None:
            kwargs["num_cpus"] = options.num_cpus or os.cpu_count()
            # Workers import xai_gen the way this process does (e.g. from a checkout).
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}}
        ray.init(address=options.address, **kwargs)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # our own bar shows throughput and ETA
        workers = options.workers or max(
            1, int(ray.cluster_resources().get("CPU", 1) // options.cpus_per_worker)
        )
        shards = ray.data.from_items([{"shard": k} for k in todo], override_num_blocks=len(todo))
        results = shards.map_batches(
            ShardActor,
            fn_constructor_kwargs={"work": work, "threads": int(options.cpus_per_worker)},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=options.cpus_per_worker,
            num_gpus=options.gpus_per_worker,
        )
        for batch in results.iter_batches(batch_size=1, batch_format="numpy"):
            for shard, blob in zip(batch["shard"], batch["blob"]):
                write_shard(out, int(shard), bytes(blob))
                bar.update(len(work.shard_items(int(shard))))
    finally:
        if started_here:
            ray.shutdown()
