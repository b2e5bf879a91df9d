"""A training process killed with SIGKILL resumes from its last checkpoint and loses nothing before it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from processes import sigkill_when
from recipe_utils import run, same_weights, without_seconds

from xai_gen._io import load_tensors

TESTS = Path(__file__).resolve().parent
# One thread in both processes, so that the killed-and-resumed run and the reference run
# execute the very same float operations.
CHILD = """
import sys, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from recipe_utils import run
run("autoencoder", {out!r}, epochs=500, checkpoint_seconds=0.0)
"""


def _checkpoint_step(path: Path) -> int:
    try:
        return load_tensors(path)[1].meta["step"]
    except (FileNotFoundError, ValueError):
        return -1


def test_sigkill_mid_run_then_resume(tmp_path):
    out = tmp_path / "run"
    ckpt = out / "autoencoder.ckpt.safetensors"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(tests=str(TESTS), out=str(out))],
        stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    # Kill hard once a few steps are checkpointed.
    sigkill_when(child, lambda: _checkpoint_step(ckpt) >= 4, 1200, 0.1)
    saved = load_tensors(ckpt, kind="checkpoint")[1].meta  # the kill left a whole checkpoint
    done = saved["step"]
    assert done >= 4

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = run("autoencoder", out, resume=True, epochs=500, stop_after=done + 3)
        reference = run("autoencoder", None, epochs=500, stop_after=done + 3)
    finally:
        torch.set_num_threads(threads)
    assert resumed.meta["steps"] == done + 3
    # Everything logged before the kill is kept, and the continuation is the uninterrupted run.
    assert resumed.meta["history"][: len(saved["history"])] == saved["history"]
    assert without_seconds(resumed.meta["history"]) == without_seconds(reference.meta["history"])
    assert same_weights(resumed, reference)
