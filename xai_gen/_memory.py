"""Peak memory of a block of code: CUDA allocator statistics on GPU, sampled RSS on CPU."""

from __future__ import annotations

import ctypes
import os
import resource
import sys
import threading
from pathlib import Path
from types import TracebackType

import torch

__all__ = ["PeakMemory"]

_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss() -> int:
    """Resident set size of this process in bytes (Linux `/proc/self/statm`)."""
    return int(_STATM.read_text().split()[1]) * _PAGE


def _release_free_memory() -> None:
    """Hand memory freed by earlier work back to the OS (glibc `malloc_trim`), where possible.

    Without this, freed heap pages stay resident and a later block that reuses them shows no
    RSS growth: the measurement would depend on what ran before.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)  # the process's own symbols include libc's
        except (OSError, AttributeError):  # not glibc (e.g. musl): measure without trimming
            pass


def _max_rss() -> int:
    """Peak RSS of the process so far in bytes (`ru_maxrss` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class PeakMemory:
    """Context manager measuring how much memory a block needed at its peak, in bytes.

    What is measured (`self.method` names it):

    * ``"cuda_max_allocated"`` on a CUDA device: `torch.cuda.max_memory_allocated` during the
      block minus the memory allocated when it started — exact for tensors, blind to the
      caching allocator's reserve and to CPU memory.
    * ``"rss_sampled"`` on CPU under Linux: the process's resident set size read from
      `/proc/self/statm` every `interval` seconds by a background thread; the peak minus
      the RSS at the start, after freed heap memory was handed back to the OS (glibc
      `malloc_trim`) so that earlier work does not hide this block's needs. `tracemalloc` is
      not used because it does not see PyTorch's allocations. It is an estimate: a spike
      shorter than `interval` can be missed, memory still held by caches (Python objects,
      the allocator's arenas) is not counted again, and other threads of the process count.
    * ``"ru_maxrss_delta"`` elsewhere: growth of the process's all-time peak RSS; blocks that
      stay under an earlier peak read 0.

    Args:
        device: the device the block computes on.
        interval: sampling period of the CPU sampler, in seconds.

    Example:
        >>> import torch
        >>> with PeakMemory("cpu") as mem:
        ...     x = torch.ones(4_000_000)
        >>> mem.peak >= 0, mem.method in ("rss_sampled", "ru_maxrss_delta")
        (True, True)
    """

    #: What each measurement method reports, in words (for reports).
    DESCRIPTIONS = {
        "cuda_max_allocated": "growth of CUDA max_memory_allocated",
        "rss_sampled": "growth of the process RSS, sampled every 2 ms",
        "ru_maxrss_delta": "growth of the process's peak RSS (ru_maxrss)",
    }

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.002) -> None:
        self.device = torch.device(device)
        self.interval = interval
        self.peak = 0
        if self.device.type == "cuda":
            self.method = "cuda_max_allocated"
        elif _STATM.is_file():
            self.method = "rss_sampled"
        else:
            self.method = "ru_maxrss_delta"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = 0
        self._high = 0

    @property
    def description(self) -> str:
        """What `peak` measures, in words."""
        return self.DESCRIPTIONS[self.method]

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._high = max(self._high, _rss())

    def __enter__(self) -> PeakMemory:
        if self.method == "cuda_max_allocated":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        elif self.method == "rss_sampled":
            _release_free_memory()
            self._start = self._high = _rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self._start = _max_rss()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.method == "cuda_max_allocated":
            torch.cuda.synchronize(self.device)
            high = torch.cuda.max_memory_allocated(self.device)
        elif self.method == "rss_sampled":
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            high = max(self._high, _rss())
        else:
            high = _max_rss()
        self.peak = max(0, high - self._start)
