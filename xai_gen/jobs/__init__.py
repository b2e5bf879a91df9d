"""Explain whole data sets: streamed, sharded, resumable, in one process or on Ray.

`run_job(Work(source, model, methods, ...), out)` explains every item shard by shard
(`Work.explain_shard`), writes each shard as a safetensors file, then one index table
(`read_index`); `load_shard` reads a shard back as `Explanation`s.
"""

from xai_gen.jobs.job import ENGINES, JobSummary, RayOptions, job_fingerprint, run_job
from xai_gen.jobs.shards import INDEX_NAME, load_shard, read_index, read_shard, shard_path
from xai_gen.jobs.sources import FolderSource, Item, Source, TensorSource, medmnist_source
from xai_gen.jobs.work import TARGETS, Work

__all__ = [
    "ENGINES",
    "INDEX_NAME",
    "TARGETS",
    "FolderSource",
    "Item",
    "JobSummary",
    "RayOptions",
    "Source",
    "TensorSource",
    "Work",
    "job_fingerprint",
    "load_shard",
    "medmnist_source",
    "read_index",
    "read_shard",
    "run_job",
    "shard_path",
]
