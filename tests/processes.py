"""Test helper: kill a child process hard once it has written enough to resume from."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable


def sigkill_when(child: subprocess.Popen, ready: Callable[[], bool], polls: int, interval: float) -> None:
    """Poll `ready()` (no timing is asserted) until it holds, then SIGKILL `child`.

    Fails with the child's stderr if it exited on its own first; the child is always reaped.
    """
    try:
        for _ in range(polls):
            if ready() or child.poll() is not None:
                break
            time.sleep(interval)
        assert child.poll() is None, child.stderr.read().decode()
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stderr.close()
