"""Explain whole data sets: streamed, sharded, resumable, in one process or on Ray.

`run_job(Work(source, model, methods, ...), out)` explains every item shard by shard
(`Work.explain_shard`), writes each shard as a safetensors file, then one index table
(`read_index`); `load_shard` reads a shard back as `Explanation`s; `comparison_from_job`
computes a comparison's summary from the shards (what `xai-gen compare` reports).
"""

from xai_gen.jobs.comparison import comparison_from_job
from xai_gen.jobs.job import JobSummary, run_job
from xai_gen.jobs.models import load_model
from xai_gen.jobs.ray_engine import RayOptions
from xai_gen.jobs.shards import first_explanations, load_shard, read_index, read_shard, shard_path
from xai_gen.jobs.sources import (
    FolderSource,
    Item,
    Source,
    TensorSource,
    data_source,
    medmnist_source,
)
from xai_gen.jobs.work import Work

__all__ = [
    "FolderSource",
    "Item",
    "JobSummary",
    "RayOptions",
    "Source",
    "TensorSource",
    "Work",
    "comparison_from_job",
    "data_source",
    "first_explanations",
    "load_model",
    "load_shard",
    "medmnist_source",
    "read_index",
    "read_shard",
    "run_job",
    "shard_path",
]
