"""Progress bars that suit where the output goes: live on a terminal, sparse lines in a log."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class SparseProgress(io.TextIOBase):
    """A text stream that passes ordinary text through and turns progress-bar redraws (text
    after a carriage return, as tqdm writes) into at most one line every `interval` seconds,
    plus the bar's final state; `quiet` drops the bars altogether.

    Args:
        stream: where the text goes (e.g. a log file behind `sys.stderr`).
        interval: seconds between two progress lines.
        quiet: drop every progress-bar redraw.

    Example:
        >>> out = io.StringIO()
        >>> log = SparseProgress(out, interval=3600)
        >>> for i in range(100):
        ...     _ = log.write(f"\\rstep {i}/100")
        >>> _ = log.write("\\n"); _ = log.write("done\\n")
        >>> out.getvalue()
        'step 0/100\\nstep 99/100\\ndone\\n'
    """

    def __init__(self, stream: TextIO, interval: float = 30.0, quiet: bool = False) -> None:
        super().__init__()
        self.stream, self.interval, self.quiet = stream, interval, quiet
        self._pending: str | None = None
        self._last = -float("inf")

    def writable(self) -> bool:
        return True

    def _emit(self, line: str) -> None:
        if not self.quiet:
            self.stream.write(line.rstrip() + "\n")
        self._last, self._pending = time.monotonic(), None

    def write(self, s: str) -> int:
        if "\r" in s:
            state = next((p for p in reversed(s.split("\r")) if p.strip()), None)
            if state is not None:
                self._pending = state
                if time.monotonic() - self._last >= self.interval:
                    self._emit(state)
        elif not s.strip() and s and self._pending is not None:
            self._emit(self._pending)  # a bar closed: its final state, in place of the newline
        elif s:
            self.stream.write(s)
        return len(s)

    def flush(self) -> None:
        self.stream.flush()


@contextmanager
def progress_output(quiet: bool = False, interval: float = 30.0) -> Iterator[None]:
    """Within the block, progress bars on `sys.stderr` are live on a terminal, written as
    sparse lines (see `SparseProgress`) otherwise, and dropped with `quiet`.

    Example:
        >>> with progress_output(quiet=True):
        ...     pass
    """
    original = sys.stderr
    if original.isatty() and not quiet:
        yield
        return
    sys.stderr = SparseProgress(original, interval, quiet)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = original
