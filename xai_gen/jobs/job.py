"""`run_job`: explain a whole data set shard by shard, in one process or on Ray, resumably."""

from __future__ import annotations

import functools
import json
import shutil
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from xai_gen._version import __version__
from xai_gen.explainer import _json_safe
from xai_gen.jobs.ray_engine import RayOptions, run_on_ray
from xai_gen.jobs.shards import remove_partial, shard_path, verify_shard, write_index, write_shard
from xai_gen.jobs.work import Work

__all__ = ["ENGINES", "JobSummary", "RayOptions", "job_fingerprint", "run_job", "source_digest"]

#: The engines `run_job` can run on.
ENGINES = ("local", "ray")
JOB_FILE = "job.json"


@dataclass
class JobSummary:
    """What a finished job did.

    Attributes:
        out: the job's folder.
        items: items in the job.
        explained: items explained by every method.
        skipped: items recorded as skipped (reasons in the index).
        shards: shards in the job.
        reused: shards kept from an earlier run (verified).
        redone: shards found broken on resume and explained again.
        seconds: per method, the seconds `attribute` took, summed over the shards.
        peak_memory: per method, the largest peak memory of a batch in bytes (0 unless
            `work.measure_memory`).
        wall: seconds this run took.
        errors: `"method/metric"` -> the first error message of a metric that failed.
        notices: per method, the warnings its `attribute` calls raised -> in how many batches.
    """

    out: Path
    items: int
    explained: int
    skipped: int
    shards: int
    reused: int
    redone: int
    seconds: dict[str, float] = field(default_factory=dict)
    peak_memory: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)
    notices: dict[str, dict[str, int]] = field(default_factory=dict)


def _crc_tensors(module: nn.Module, crc: int) -> int:
    for key, value in module.state_dict().items():
        crc = zlib.crc32(key.encode(), crc)
        crc = zlib.crc32(value.detach().cpu().contiguous().numpy().tobytes(), crc)
    return crc


@functools.cache
def source_digest() -> str:
    """A checksum of the installed package's Python source: a job run by other code is
    another job (a resumed or reused run must not mix in shards that code would not write).

    Example:
        >>> len(source_digest())
        8
    """
    root = Path(__file__).resolve().parent.parent
    crc = 0
    for path in sorted(root.rglob("*.py")):
        crc = zlib.crc32(path.relative_to(root).as_posix().encode(), crc)
        crc = zlib.crc32(path.read_bytes(), crc)
    return f"{crc:08x}"


def job_fingerprint(work: Work, data: str = "") -> str:
    """A fingerprint of everything that decides a job's shards: data, models, settings, and
    the package's source (`source_digest`).

    Example:
        >>> import torch
        >>> from xai_gen import SmallCNN
        >>> from xai_gen.jobs import TensorSource
        >>> w = Work(TensorSource("demo", torch.zeros(2, 1, 8, 8)), SmallCNN(image_size=8), ["saliency"])
        >>> job_fingerprint(w) == job_fingerprint(w), len(job_fingerprint(w))
        (True, 8)
    """
    crc = zlib.crc32(data.encode())
    for i in range(len(work.source)):
        crc = zlib.crc32(work.source.item_id(i).encode(), crc)
    modules = [work.model, *([work.features] if work.features is not None else [])] + [
        v
        for values in (work.resources, *work.params.values())
        for v in values.values()
        if isinstance(v, nn.Module)
    ]
    for module in modules:
        crc = _crc_tensors(module, crc)
    if work.selection is not None:
        crc = zlib.crc32(work.selection.numpy().tobytes(), crc)
    settings = {
        **work.plan().describe(),  # methods, metrics, options, seed, batch size, quota
        "params": _json_safe(work.params),
        "kinds": work.kinds,
        "features": work.features is not None,
        "explained_class": work.explained_class,
        "shard_size": work.shard_size,
        "target": work.target,
        "items": len(work),
        "source": source_digest(),
    }
    return f"{zlib.crc32(json.dumps(settings, sort_keys=True).encode(), crc):08x}"


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with `n` torch threads (None: unchanged), restoring the count afterwards."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _prepare(out: Path, work: Work, data: str, resume: bool, reuse: bool = False) -> dict[str, Any]:
    """Check `out` against the job (with `reuse`, replace another job), write `job.json`; returns it."""
    job = {
        "job": work.job_id,
        "data": data,
        "items": len(work),
        "shards": work.num_shards,
        "methods": work.methods,
        "metrics": work.metrics,
        "seed": work.seed,
        "shard_size": work.shard_size,
        "batch_size": work.batch_size,
        "target": work.target,
        "version": __version__,
        "source": source_digest(),
    }
    path = out / JOB_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        same = old.get("job") == work.job_id
        if reuse and not same:
            shutil.rmtree(out)  # another job's shards are replaced, never mixed in
        elif not (resume or reuse):
            raise ValueError(
                f"{out} already holds a job ({old.get('data')}); pass --resume (resume=True) "
                "to continue it, or choose another output folder"
            )
        elif not same:
            changed = sorted(
                ("package source" if k == "source" else k)
                for k in job
                if k not in ("job", "version") and old.get(k) != job[k]
            )
            raise ValueError(
                f"cannot resume: {out} holds a different job (changed: "
                f"{', '.join(changed) or 'model weights or data items'}); "
                "use another folder"
            )
    elif (out / "shards").is_dir() and any((out / "shards").iterdir()):
        raise ValueError(f"{out}/shards holds files but no {JOB_FILE}; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job, indent=2))
    return job


def run_job(
    work: Work,
    out: str | Path,
    *,
    resume: bool = False,
    reuse: bool = False,
    engine: str = "local",
    threads: int | None = None,
    ray: RayOptions | None = None,
    data: str = "",
    progress: bool = True,
) -> JobSummary:
    """Explain every item of `work` into shards under `out`, then write the index table.

    Shards already in `out` (from a killed or finished run of the same job) are verified and
    kept when `resume` is set; a broken one is explained again. Each shard is written once,
    atomically. A bad item (unreadable, non-finite, an explainer error on it) is recorded in
    the index as skipped with its reason; it never stops the job.

    Args:
        work: what to explain (data, model, methods, metrics, seed, sizes).
        out: the job's folder (see `xai_gen.jobs.shards` for its layout).
        resume: continue the job already in `out`; without it an existing job is an error.
        reuse: continue the job already in `out` when it is this one (same fingerprint, see
            `job_fingerprint`), replace it when it is another.
        engine: `"local"` (this process) or `"ray"` (Ray Data actors; needs `xai-gen[ray]`).
        threads: torch threads of the local engine (None: unchanged). The Ray engine gives
            each actor `ray.cpus_per_worker` threads.
        ray: options of the Ray engine.
        data: a description of the data, recorded in `job.json` and the fingerprint.
        progress: a progress bar with throughput and ETA (shown only on a terminal).

    Returns:
        A `JobSummary`.

    Raises:
        ValueError: an unknown engine, an existing job without `resume`, or resuming a
            different job.

    Example:
        >>> import tempfile, torch
        >>> from xai_gen import SmallCNN
        >>> from xai_gen.jobs import TensorSource
        >>> images = torch.rand(5, 1, 8, 8)
        >>> images[1] = float("nan")  # a bad item: recorded as skipped, not fatal
        >>> work = Work(TensorSource("demo", images), SmallCNN(image_size=8), ["saliency"], shard_size=2)
        >>> s = run_job(work, tempfile.mkdtemp(), progress=False)
        >>> s.items, s.explained, s.skipped, s.shards
        (5, 4, 1, 3)
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    started = time.perf_counter()
    out = Path(out)
    work.job_id = job_fingerprint(work, data)
    _prepare(out, work, data, resume, reuse)
    remove_partial(out)
    (out / "index.csv").unlink(missing_ok=True)
    done, redone = set(), 0
    for shard in range(work.num_shards):
        path = shard_path(out, shard)
        if path.exists():
            if verify_shard(path, work.job_id, shard) is None:
                done.add(shard)
            else:
                path.unlink()
                redone += 1
    todo = [k for k in range(work.num_shards) if k not in done]
    bar = tqdm(
        total=len(work),
        initial=sum(len(work.shard_items(k)) for k in done),
        unit="img",
        desc="explain",
        disable=None if progress else True,  # None: shown on a terminal only
        smoothing=0.1,
    )
    try:
        if engine == "ray":

            run_on_ray(work, todo, out, bar, ray or RayOptions())
        else:
            with torch_threads(threads):
                for shard in todo:
                    write_shard(out, shard, work.explain_shard(shard))
                    bar.update(len(work.shard_items(shard)))
    finally:
        bar.close()
    stats = write_index(out, work.num_shards, work.methods, work.metrics)
    return JobSummary(
        out=out,
        items=len(work),
        explained=stats["explained"],
        skipped=stats["skipped"],
        shards=work.num_shards,
        reused=len(done),
        redone=redone,
        seconds=stats["seconds"],
        peak_memory=stats["peak_memory"],
        wall=time.perf_counter() - started,
        errors=stats["errors"],
        notices={m: n for m, n in stats["notices"].items() if n},
    )
