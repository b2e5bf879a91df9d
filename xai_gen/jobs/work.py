"""The unit of work of a data-set job: explain one shard of items, return the shard file's bytes.

Both engines (one process, Ray actors) call `Work.explain_shard` and write the bytes it
returns, so they produce the same shards. Every random draw is seeded from the job's seed,
the method's name and the batch's first item, never from process state, so a shard's
content does not depend on which process computed it, in which order, or after a restart.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn

from xai_gen._core.validators import check_int
from xai_gen._io import META_KEY
from xai_gen._version import __version__
from xai_gen.compare.explainers import make_explainers
from xai_gen.evaluation.gather import Gathered
from xai_gen.evaluation.loop import Batch, BatchResult, explain_batch, features_of
from xai_gen.evaluation.plan import BATCH_SIZE, EXPENSIVE_N, SHARD_SIZE, Plan
from xai_gen.explainer import Explainer, Explanation
from xai_gen.jobs.sources import Item, Source
from xai_gen.metrics._common import prepare_target
from xai_gen.metrics.registry import resolve_metrics

__all__ = ["SHARD_KIND", "TARGETS", "Work", "tensor_digest"]

#: `kind` recorded in every shard file's metadata.
SHARD_KIND = "explanation_shard"
#: What a job explains: the model's predicted class, or the data set's label.
TARGETS = ("predicted", "label")


def tensor_digest(tensors: dict[str, Tensor], rows: list[list[Any]]) -> str:
    """A checksum of a shard's tensors and item rows, written into it and checked on resume."""
    digest = zlib.crc32(json.dumps(rows).encode())
    for key in sorted(tensors):
        digest = zlib.crc32(key.encode(), digest)
        digest = zlib.crc32(tensors[key].contiguous().numpy().tobytes(), digest)
    return f"{digest:08x}"


def _costs(parts: dict[str, list[BatchResult]]) -> dict[str, Any]:
    """Per method, what the shard's batches cost and said: seconds, memory, notices (text ->
    batches that raised it), metric warnings (metric -> text -> count) and metric errors."""
    got = Gathered(list(parts))
    for name, results in parts.items():
        for r in results:
            got.add_costs(name, r.seconds, r.metric_seconds, r.peak_memory, dict.fromkeys(r.notices, 1), r.warnings, r.errors)
    return {
        "seconds": got.seconds, "metric_seconds": got.metric_seconds, "peak_memory": got.peak,
        "notices": got.notices, "warnings": got.warnings, "errors": got.errors,
    }


def _load(source: Source, index: int) -> Item:
    """`source.load`, with any failure turned into a skipped item (never a crashed job)."""
    try:
        item = source.load(index)
    except Exception as err:  # noqa: BLE001 - a bad item is recorded, not fatal
        return Item(source.item_id(index), None, reason=f"cannot load: {type(err).__name__}: {err}")
    if item.reason is None and not torch.isfinite(item.image).all():
        item.reason, item.image = "non-finite pixel values (NaN or inf)", None
    return item


@dataclass
class Work:
    """Everything a worker needs to explain any shard of a job (picklable, sent to Ray actors).

    Args:
        source: the data set (see `xai_gen.jobs.sources`).
        model: the classifier every method explains.
        methods: registry names of the explainers.
        resources: constructor arguments shared by the explainers that take them
            (e.g. `latent_model`); modules among them move to `device` with the model.
        params: method name -> its constructor arguments.
        kinds: method name -> registry name, for a method named otherwise (a second
            configuration of one explainer, e.g. `{"gvr_paper": "gvr"}`).
        metrics: per-sample metrics evaluated on every explanation where applicable: names
            of `xai_gen.metrics.METRICS` or `"quantus:<ClassName>"`.
        metric_options: metric name -> keyword options of that metric.
        selection: `(M,)` source indices of the job's items, or None for all items.
        seed: the job's seed.
        batch_size: items per `attribute` call.
        shard_size: items per shard (the last shard may be shorter).
        target: `"predicted"` (explain the model's prediction) or `"label"` (the item's label).
        expensive_n: metrics that re-run the explainer (max sensitivity, randomisation) are
            evaluated on the job's first `expensive_n` items only.
        device: where the model runs.
        measure_memory: record each method's peak memory per batch (`PeakMemory`) in the
            shard's metadata (a sampling thread per call; off by default).
        features: a classifier with `.features(x) -> (B, D)` (e.g. `SmallCNN`): the shard
            then holds the features of each input and of each counterfactual, from which
            set-level metrics (a Frechet distance) are computed without the images.
        explained_class: record the class each item is explained as (`explained`), which
            groups a comparison's samples by true and explained class.
        job_id: the job's fingerprint, written into every shard.
    """

    source: Source
    model: nn.Module
    methods: list[str]
    resources: dict[str, Any] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    selection: Tensor | None = None
    seed: int = 0
    batch_size: int = BATCH_SIZE
    shard_size: int = SHARD_SIZE
    target: str = "predicted"
    expensive_n: int = EXPENSIVE_N
    device: str = "cpu"
    measure_memory: bool = False
    features: nn.Module | None = None
    explained_class: bool = False
    job_id: str = ""
    _explainers: list[Explainer] | None = field(default=None, init=False, repr=False)
    _plan: Plan | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_int(self.batch_size, "batch_size", 1)
        check_int(self.shard_size, "shard_size", 1)
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if not self.methods:
            raise ValueError("methods must name at least one explainer")

    def __getstate__(self) -> dict[str, Any]:
        # Explainers and metrics are rebuilt where the work runs, next to the model on its device.
        return {**self.__dict__, "_explainers": None, "_plan": None}

    def __len__(self) -> int:
        return len(self.source) if self.selection is None else len(self.selection)

    @property
    def num_shards(self) -> int:
        """How many shards the job's items fill."""
        return -(-len(self) // self.shard_size)

    def shard_items(self, shard: int) -> range:
        """Positions (in the job's item list) of shard `shard`'s items."""
        if not 0 <= shard < self.num_shards:
            raise IndexError(f"shard {shard} out of range for {self.num_shards} shards")
        return range(shard * self.shard_size, min((shard + 1) * self.shard_size, len(self)))

    def source_index(self, position: int) -> int:
        """The source index of the job's item at `position`."""
        return position if self.selection is None else int(self.selection[position])

    def explainers(self) -> list[Explainer]:
        """The explainers, built once per process with the model on `device`."""
        if self._explainers is None:
            device = torch.device(self.device)
            self.model = self.model.to(device).eval()

            def move(values: dict[str, Any]) -> dict[str, Any]:
                return {k: v.to(device) if isinstance(v, nn.Module) else v for k, v in values.items()}

            self.resources = move(self.resources)
            self.params = {m: move(p) for m, p in self.params.items()}
            if self.features is not None:
                self.features = self.features.to(device).eval()
            self._explainers = make_explainers(self.methods, self.resources, self.params, self.kinds)
        return self._explainers

    def plan(self) -> Plan:
        """The job's settings as the evaluation loop reads them; its metrics (ours and
        Quantus') are resolved once per process."""
        if self._plan is None:
            self._plan = Plan(
                methods=tuple(self.methods),
                metrics=resolve_metrics(self.metrics),
                metric_options=self.metric_options,
                seed=self.seed,
                batch_size=self.batch_size,
                expensive_n=self.expensive_n,
                measure_memory=self.measure_memory,
            )
        return self._plan

    def explain_shard(self, shard: int) -> bytes:
        """Explain every item of `shard`; returns the shard file (safetensors bytes).

        Tensors: `item` `(M,)` positions of the explained items, `inputs` `(M, C, H, W)`, and
        per method `<method>/<field>` (attributions, targets, counterfactuals, frames, ...,
        as in `Explanation.numpy()`) and `<method>/metric/<name>` `(M,)` float64; with
        `features`, `input_features` `(M, D)` and `<method>/counterfactual_features`; with
        `explained_class`, `explained` `(M,)`. The metadata holds one row
        `[position, id, label, reason]` per item of the shard (reason None for an explained
        item), the seconds each method's `attribute` took and those its metrics took.
        """
        explainers = self.explainers()
        device = torch.device(self.device)
        rows, good = [], []
        for position in self.shard_items(shard):
            item = _load(self.source, self.source_index(position))
            if item.reason is None and good and item.image.shape != good[0][1].image.shape:
                item.reason = (
                    f"image shape {tuple(item.image.shape)} differs from "
                    f"{tuple(good[0][1].image.shape)}"
                )
            if item.reason is None and self.target == "label" and not isinstance(item.label, int):
                item.reason = f"target='label' needs an integer label, got {item.label!r}"
            rows.append([position, item.id, item.label, item.reason])
            if item.reason is None:
                good.append((position, item))
        parts: dict[str, list[BatchResult]] = {}
        failed: dict[int, str] = {}
        for name, explainer in zip(self.methods, explainers):
            parts[name] = []
            for start in range(0, len(good), self.batch_size):
                batch = good[start : start + self.batch_size]
                parts[name] += self._explain_batch(name, explainer, batch, device, failed)
        kept = [p for p, _ in good if p not in failed]
        for row in rows:
            if row[0] in failed:
                row[3] = failed[row[0]]
        tensors = self._tensors(kept, dict(good), parts)
        if kept:
            tensors.update(self._per_input(tensors["inputs"]))
        meta = {
            "job": self.job_id,
            "shard": shard,
            "rows": rows,
            "digest": tensor_digest(tensors, rows),
            "params": {m: p[0].explanation.params for m, p in parts.items() if p},
            "parts": {m: sorted(p[0].explanation.parts) for m, p in parts.items() if p},
            **_costs(parts),
        }
        header = {"kind": SHARD_KIND, "version": __version__, **meta}
        return safetensors_bytes(tensors, metadata={META_KEY: json.dumps(header)})

    def _explain_batch(
        self,
        name: str,
        explainer: Explainer,
        batch: list[tuple[int, Item]],
        device: torch.device,
        failed: dict[int, str],
    ) -> list[BatchResult]:
        """One `attribute` call on the batch; if it fails, one call per item to find the bad ones."""
        x = torch.stack([item.image for _, item in batch]).to(device)
        target = (
            torch.tensor([item.label for _, item in batch], device=device)
            if self.target == "label"
            else None
        )
        truth = {
            k: torch.stack([item.truth[k] for _, item in batch]).to(device)
            for k in batch[0][1].truth
        }
        positions = [p for p, _ in batch]
        try:
            return [
                explain_batch(
                    self.plan(), name, explainer, self.model, Batch(x, target, truth, positions),
                    self.resources, self.features,
                )
            ]
        except Exception as err:  # noqa: BLE001 - retried item by item below
            if len(batch) == 1:
                failed.setdefault(positions[0], f"{name} failed: {type(err).__name__}: {err}")
                return []
            return [part for one in batch for part in self._explain_batch(name, explainer, [one], device, failed)]

    def _per_input(self, inputs: Tensor) -> dict[str, Tensor]:
        """What a comparison needs of each kept input: its features and explained class."""
        out = {}
        device = torch.device(self.device)
        if self.features is not None:
            out["input_features"] = features_of(self.features, inputs)
        if self.explained_class:
            explained = prepare_target(self.model, inputs.to(device), None, self.batch_size)
            if explained is not None:  # a regression output explains no class
                out["explained"] = explained.cpu().to(torch.int64)
        return out

    def _tensors(
        self, kept: list[int], items: dict[int, Item], parts: dict[str, list[BatchResult]]
    ) -> dict[str, Tensor]:
        """The shard's tensors, restricted to the items every method explained."""
        tensors = {"item": torch.tensor(kept, dtype=torch.int64)}
        if kept:
            tensors["inputs"] = torch.stack([items[p].image for p in kept]).contiguous()
        for name, method_parts in parts.items():
            if not method_parts:
                continue
            exp = Explanation.cat([p.explanation for p in method_parts])
            row_of = {q: i for i, q in enumerate(q for p in method_parts for q in p.positions)}
            rows = torch.tensor([row_of[p] for p in kept], dtype=torch.long)
            for key, value in exp[rows].numpy().items():
                if key != "inputs":
                    tensors[f"{name}/{key}"] = torch.from_numpy(value.copy())
            # A metric is kept when every batch could evaluate it.
            for metric in set.intersection(*(set(p.metrics) for p in method_parts)):
                values = torch.cat([p.metrics[metric] for p in method_parts])
                tensors[f"{name}/metric/{metric}"] = values[rows].contiguous()
            if all(p.features is not None for p in method_parts):
                features = torch.cat([p.features for p in method_parts])
                tensors[f"{name}/counterfactual_features"] = features[rows].contiguous()
        return tensors
