"""A job's output folder: shard files written atomically, verified on resume, and the index table.

Layout of `OUT/`:

* `job.json`: what the job is (data, model fingerprint, methods, metrics, seed, sizes); a
  resumed job must match it.
* `shards/shard-000000.safetensors`, ...: one file per shard (see `Work.explain_shard`),
  written to a temporary name and renamed, so a file that exists is complete.
* `index.csv`: one row per item, written when every shard is done: `item` (position in
  the job), `id`, `label`, `shard`, `row` (in the shard's tensors; -1 if skipped),
  `status` (`ok` or `skipped`), `reason`, then per method `<method>/target` and
  `<method>/<metric>` for every metric evaluated.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import safetensors
import torch
from safetensors.torch import load_file
from torch import Tensor

from xai_gen._io import META_KEY
from xai_gen.evaluation.gather import merge_counts
from xai_gen.explainer import Explanation
from xai_gen.jobs.work import SHARD_KIND, tensor_digest

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "INDEX_NAME",
    "first_explanations",
    "load_shard", "read_index", "read_shard", "shard_path", "verify_shard"]

#: File name of the index table in a job's folder.
INDEX_NAME = "index.csv"
_TMP = ".tmp"


def shard_path(out: str | Path, shard: int) -> Path:
    """Where shard `shard` of the job in `out` lives.

    Example:
        >>> shard_path("run", 3).as_posix()
        'run/shards/shard-000003.safetensors'
    """
    return Path(out) / "shards" / f"shard-{shard:06d}.safetensors"


def write_shard(out: str | Path, shard: int, blob: bytes) -> Path:
    """Write one shard's bytes atomically: to a temporary file, flushed, then renamed."""
    path = shard_path(out, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + _TMP)
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def remove_partial(out: str | Path) -> None:
    """Delete temporary files a killed run left behind."""
    for tmp in (Path(out) / "shards").glob(f"*{_TMP}"):
        tmp.unlink()


def _meta(path: Path) -> dict[str, Any]:
    with safetensors.safe_open(str(path), framework="pt") as f:
        raw = (f.metadata() or {}).get(META_KEY)
    meta = json.loads(raw) if raw else {}
    if meta.get("kind") != SHARD_KIND:
        raise ValueError(f"{path} is not a shard of an xai-gen job")
    return meta


def read_shard(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """A shard's tensors and metadata (rows, seconds per method, metric errors).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable shard (truncated, foreign).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no shard at {path}")
    try:
        return load_file(str(path)), _meta(path)
    except (safetensors.SafetensorError, OSError, RuntimeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable shard: {err}") from err


def verify_shard(path: str | Path, job_id: str, shard: int) -> str | None:
    """Why the shard file cannot be kept (None when it is whole and belongs to this job)."""
    try:
        tensors, meta = read_shard(path)
    except (FileNotFoundError, ValueError) as err:
        return str(err)
    if meta.get("job") != job_id or meta.get("shard") != shard:
        return f"{path} belongs to another job or shard"
    if tensor_digest(tensors, meta["rows"]) != meta.get("digest"):
        return f"{path}: checksum mismatch"
    return None


def load_shard(path: str | Path) -> dict[str, Explanation]:
    """The explanations in one shard, per method, rows in item order.

    Example:
        >>> import tempfile, torch
        >>> from xai_gen import SmallCNN
        >>> from xai_gen.jobs import TensorSource, Work
        >>> work = Work(TensorSource("demo", torch.rand(3, 1, 8, 8)), SmallCNN(image_size=8), ["saliency"])
        >>> path = write_shard(tempfile.mkdtemp(), 0, work.explain_shard(0))
        >>> load_shard(path)["saliency"].attributions.shape
        torch.Size([3, 1, 8, 8])
    """
    tensors, meta = read_shard(path)
    out = {}
    for method, seconds in meta["seconds"].items():
        prefix = f"{method}/"
        fields = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if "attributions" not in fields:
            continue
        extras = {k.split(".", 1)[1]: v for k, v in fields.items() if k.startswith("extras.")}
        out[method] = Explanation(
            attributions=fields["attributions"],
            inputs=tensors["inputs"],
            targets=fields.get("targets"),
            method=method,
            params=meta.get("params", {}).get(method, {}),
            counterfactuals=fields.get("counterfactuals"),
            frames=fields.get("frames"),
            probabilities=fields.get("probabilities"),
            success=fields.get("success"),
            steps=fields.get("steps"),
            contrasts=fields.get("contrasts"),
            seconds=seconds,
            extras=extras,
            parts=frozenset(meta.get("parts", {}).get(method, ())),
        )
    return out


def first_explanations(
    out: str | Path, num_shards: int, rows: int
) -> tuple[Tensor, dict[str, Explanation]]:
    """The first `rows` explained images of a finished job and each method's explanations.

    Returns:
        `(images (R, C, H, W), method -> Explanation of those R images)`; R <= `rows`
        (fewer when the job explained fewer), an empty dict when it explained none.
    """
    parts: dict[str, list[Explanation]] = {}
    have = 0
    for shard in range(num_shards):
        if have >= rows:
            break
        loaded = load_shard(shard_path(out, shard))
        for method, exp in loaded.items():
            parts.setdefault(method, []).append(exp)
        have += len(next(iter(loaded.values()))) if loaded else 0
    explanations = {m: Explanation.cat(p)[:rows] for m, p in parts.items()}
    images = next(iter(explanations.values())).inputs if explanations else torch.empty(0)
    return images, explanations


def index_columns(methods: list[str], metrics: list[str]) -> list[str]:
    """The index table's columns for a job with these methods and metrics."""
    columns = ["item", "id", "label", "shard", "row", "status", "reason"]
    for method in methods:
        columns += [f"{method}/target", *(f"{method}/{m}" for m in metrics)]
    return columns


def write_index(
    out: str | Path, num_shards: int, methods: list[str], metrics: list[str]
) -> dict[str, Any]:
    """Write `OUT/index.csv` from the shards, one shard at a time (memory does not grow).

    Returns:
        `{"path", "explained", "skipped", "seconds" (per method, summed), "peak_memory" (per
        method, the largest), "errors" (first message of each failed method/metric),
        "notices" (per method, the explainer's warnings -> batches that raised them)}`.
    """
    out = Path(out)
    stats: dict[str, Any] = {
        "explained": 0,
        "skipped": 0,
        "seconds": {},
        "peak_memory": {},
        "errors": {},
        "notices": {},
    }
    path = out / INDEX_NAME
    tmp = path.with_name(path.name + _TMP)
    columns = index_columns(methods, metrics)
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for shard in range(num_shards):
            tensors, meta = read_shard(shard_path(out, shard))
            row_of = {int(p): i for i, p in enumerate(tensors["item"].tolist())}
            stats["explained"] += len(row_of)
            stats["skipped"] += len(meta["rows"]) - len(row_of)
            for method, seconds in meta["seconds"].items():
                stats["seconds"][method] = stats["seconds"].get(method, 0.0) + seconds
            for method, peak in meta["peak_memory"].items():
                stats["peak_memory"][method] = max(stats["peak_memory"].get(method, 0.0), peak)
            for key, message in meta["errors"].items():
                stats["errors"].setdefault(key, message)
            merge_counts(stats["notices"], meta.get("notices", {}))
            for position, item_id, label, reason in meta["rows"]:
                row = row_of.get(position, -1)
                cells = [position, item_id, "" if label is None else label, shard, row]
                cells += ["ok" if reason is None else "skipped", reason or ""]
                for method in methods:
                    for key in ["targets", *(f"metric/{m}" for m in metrics)]:
                        value = tensors.get(f"{method}/{key}")
                        cell = "" if value is None or row < 0 else value[row].item()
                        cells.append("" if cell != cell else cell)  # NaN -> empty
                writer.writerow(cells)
    os.replace(tmp, path)
    return {"path": path, **stats}


def read_index(out: str | Path) -> pd.DataFrame:
    """The index table of the job in `out` as a pandas DataFrame (one row per item).

    Example:
        >>> import tempfile, torch
        >>> from xai_gen import SmallCNN
        >>> from xai_gen.jobs import TensorSource, Work, run_job
        >>> out = tempfile.mkdtemp()
        >>> work = Work(TensorSource("demo", torch.rand(5, 1, 8, 8)), SmallCNN(image_size=8), ["saliency"], shard_size=2)
        >>> _ = run_job(work, out, progress=False)
        >>> read_index(out)[["item", "shard", "row", "status"]].values.tolist()[-1]
        [4, 2, 0, 'ok']
    """
    import pandas as pd

    path = Path(out) / INDEX_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {INDEX_NAME} in {out}: has the job finished?")
    return pd.read_csv(path, keep_default_na=False, na_values=[""])
