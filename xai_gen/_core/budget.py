"""Memory budgets: how many rows of an expanded batch one call may hold at once.

Methods that expand a batch (Integrated Gradients' path points, Occlusion's patched copies,
LIME's perturbed samples, GVR's rows, the frames of the latent walks, deletion curves) split
their work so that the memory it needs stays under a budget, instead of asking the user for a
chunk size. The cost of one row is what a second row adds to a probe of one: on a CUDA device
the growth of the allocator's peak, elsewhere the bytes of every tensor autograd keeps for the
backward pass (the activations), which is what grows with the chunk."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from xai_gen._core.validators import is_int

__all__ = [
    "AUTO_CAP",
    "AUTO_CPU_ROWS",
    "MemoryBudget",
    "available_bytes",
    "budget_rows",
    "check_budget",
    "resolve_budget",
    "row_bytes",
    "rows_within",
]

#: A budget: `"auto"`, a number of bytes, or None (no bound: one call for everything).
MemoryBudget = int | str | None

#: The most `"auto"` grants: past a few hundred MiB per call, larger chunks bring no speed on a
#: CPU (the kernels are already saturated) and only risk the machine's memory.
AUTO_CAP = 512 * 2**20

#: The most rows `"auto"` gives one call on a CPU, whatever the memory allows: past about this
#: many rows a CPU computes each row more slowly, as the activations outgrow its caches. On one
#: thread, 1,000 FastLIME samples of 30 MNIST digits through the benchmark `SmallCNN` cost as
#: much CPU time in calls of 128 or 256 images, 1.4x as much in calls of 1,024 and 1.7x in
#: calls of 2,048. A GPU takes what the memory allows.
AUTO_CPU_ROWS = 128

_MEMINFO = Path("/proc/meminfo")


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Memory that can still be allocated on `device`, in bytes.

    CUDA: the driver's free memory (`torch.cuda.mem_get_info`). CPU: `MemAvailable` of
    `/proc/meminfo` on Linux, else the physical memory (`os.sysconf`).

    Example:
        >>> available_bytes("cpu") > 0
        True
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if _MEMINFO.is_file():
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_budget(value: object, name: str = "memory_budget") -> None:
    """Raise a `TypeError`/`ValueError` naming `name` unless `value` is a valid budget.

    Example:
        >>> check_budget("auto"); check_budget(2**30); check_budget(None)
    """
    if value is None or value == "auto":
        return
    if not is_int(value):
        raise TypeError(f"{name} must be 'auto', a number of bytes or None, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1 byte, got {value}")


def resolve_budget(budget: MemoryBudget, device: torch.device | str = "cpu") -> int | None:
    """The budget in bytes: `"auto"` is a quarter of the free memory, at most `AUTO_CAP`.

    Args:
        budget: `"auto"`, bytes, or None (no bound).
        device: where the work runs.

    Returns:
        Bytes, or None for no bound.

    Example:
        >>> resolve_budget(10_000), resolve_budget(None), 0 < resolve_budget("auto") <= AUTO_CAP
        (10000, None, True)
    """
    check_budget(budget)
    if budget == "auto":
        return min(AUTO_CAP, available_bytes(device) // 4)
    return budget  # type: ignore[return-value]


def _probe_bytes(fn: Callable[[Tensor], Tensor], rows: Tensor, backward: bool) -> int:
    """Bytes a call of `fn` on `rows` holds: the CUDA peak growth, or on the CPU the input,
    what autograd saves for the backward pass (twice with `backward`) and the output."""
    # A copy: a view (x[:1]) would share, and be counted as, the storage of the whole batch.
    probe = rows.detach().clone().requires_grad_(True)
    base = probe.numel() * probe.element_size()
    if probe.is_cuda:
        torch.cuda.synchronize(probe.device)
        torch.cuda.reset_peak_memory_stats(probe.device)
        start = torch.cuda.memory_allocated(probe.device)
        with torch.enable_grad():
            out = fn(probe)
            if backward:
                out.float().sum().backward()
        torch.cuda.synchronize(probe.device)
        return max(base, int(torch.cuda.max_memory_allocated(probe.device) - start))
    saved: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        # Count each storage once: autograd saves views of the same activation several times.
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(probe)
    activations = sum(saved.values()) + out.numel() * out.element_size()
    # The backward pass holds about as much again in gradients of those activations.
    return base + activations * (2 if backward else 1)


def row_bytes(fn: Callable[[Tensor], Tensor], row: Tensor, backward: bool = True) -> int:
    """Memory one more row adds to a call of `fn`, measured on probes of one and two rows.

    The difference leaves out what a call holds whatever its size: autograd also saves the
    weights a layer multiplies by, and counting them as a row's would shrink the chunks
    several-fold for a model whose weights outweigh one row's activations.

    Args:
        fn: the computation that will run on chunks, e.g. a model.
        row: `(1, ...)` one input row.
        backward: the chunk is differentiated (gradient methods): the probes build the graph.
            Forward-only work needs less; this bound is used for both.

    Returns:
        Bytes per row (at least the row's own size).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1000), torch.nn.ReLU())
        >>> row_bytes(net, torch.rand(1, 1, 4, 4)) >= 1000 * 4
        True
    """
    one = _probe_bytes(fn, row, backward)
    two = _probe_bytes(fn, torch.cat([row, row]), backward)
    return max(row.numel() * row.element_size(), two - one)


def rows_within(budget: int | None, per_row: int, total: int) -> int:
    """How many of `total` rows one call may take: all of them without a budget, at least one.

    Example:
        >>> rows_within(1000, 300, 10), rows_within(None, 300, 10), rows_within(10, 300, 10)
        (3, 10, 1)
    """
    if budget is None:
        return total
    return max(1, min(total, budget // max(per_row, 1)))


def budget_rows(
    budget: MemoryBudget,
    fn: Callable[[Tensor], Tensor],
    row: Tensor,
    backward: bool = True,
    extra: int = 0,
    cpu_speed_cap: bool = True,
) -> int | None:
    """Rows one call of `fn` may take under `budget`, from probes of one and two rows (`row_bytes`).

    Args:
        budget: `"auto"`, bytes, or None (no bound).
        fn: the computation that will run on chunks of rows.
        row: `(1, ...)` one input row of `fn`.
        backward: the chunks are differentiated (see `row_bytes`).
        extra: bytes per row held outside `fn`, e.g. a copy made to build the row.
        cpu_speed_cap: `"auto"` on a CPU gives at most `AUTO_CPU_ROWS` rows, the speed limit
            of a call there; False for work whose time does not grow that way.

    Returns:
        Rows per call (at least one), or None for no bound; no probe runs then.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1000))
        >>> per_row = row_bytes(net, torch.rand(1, 1, 4, 4))
        >>> budget_rows(10 * per_row, net, torch.rand(1, 1, 4, 4)), budget_rows(None, net, torch.rand(1, 1, 4, 4))
        (10, None)
    """
    limit = resolve_budget(budget, row.device)
    if limit is None:
        return None
    rows = max(1, limit // max(row_bytes(fn, row, backward) + extra, 1))
    if cpu_speed_cap and budget == "auto" and row.device.type == "cpu":
        rows = min(rows, AUTO_CPU_ROWS)
    return rows
