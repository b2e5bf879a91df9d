"""Data-set jobs: shards, the index table, bad items, resume after SIGKILL, the Ray engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from processes import sigkill_when

import xai_gen as xg
from xai_gen.cli import main
from xai_gen.jobs import (
    FolderSource,
    RayOptions,
    TensorSource,
    Work,
    load_shard,
    read_index,
    read_shard,
    run_job,
    shard_path,
)


def tiny_model(path: Path | None = None) -> xg.SmallCNN:
    torch.manual_seed(0)
    model = xg.SmallCNN(width=4, hidden=8).eval()
    if path is not None:
        xg.save_classifier(model, path)
    return model


def write_npz(path: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        f"{s}_{k}": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        if k == "images"
        else rng.integers(0, 10, (n, 1), dtype=np.uint8)
        for s in ("train", "val", "test")
        for k in ("images", "labels")
    }
    np.savez(path, **arrays)
    return path


def assert_same_shards(a: Path, b: Path, num_shards: int) -> None:
    """Every shard holds the same tensors and item rows (timings aside)."""
    for shard in range(num_shards):
        ta, ma = read_shard(shard_path(a, shard))
        tb, mb = read_shard(shard_path(b, shard))
        assert sorted(ta) == sorted(tb)
        for key in ta:
            assert torch.equal(ta[key], tb[key]), f"shard {shard}: {key} differs"
        assert ma["rows"] == mb["rows"]
    assert (a / "index.csv").read_text() == (b / "index.csv").read_text()


def small_work(n: int = 10, **kw) -> Work:
    torch.manual_seed(1)
    images = torch.rand(n, 1, 28, 28) * 2 - 1
    return Work(
        TensorSource("demo", images, torch.arange(n) % 10),
        tiny_model(),
        ["saliency", "integrated_gradients"],
        metrics=["sparseness"],
        shard_size=4,
        batch_size=3,
        **kw,
    )


def test_shards_and_index_hold_every_item(tmp_path):
    work = small_work()
    summary = run_job(work, tmp_path, progress=False)
    assert (summary.items, summary.explained, summary.skipped, summary.shards) == (10, 10, 0, 3)
    index = read_index(tmp_path)
    assert index["item"].tolist() == list(range(10))
    assert index["shard"].tolist() == [0] * 4 + [1] * 4 + [2] * 2
    assert set(index["status"]) == {"ok"}
    assert index["saliency/sparseness"].notna().all()
    # A shard reads back as explanations whose rows match the index.
    exps = load_shard(shard_path(tmp_path, 1))
    assert set(exps) == {"saliency", "integrated_gradients"}
    assert exps["saliency"].targets.tolist() == index["saliency/target"][4:8].astype(int).tolist()
    assert torch.equal(exps["saliency"].inputs, work.source.images[4:8])


def test_an_existing_job_needs_resume_and_must_be_the_same_job(tmp_path):
    run_job(small_work(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="resume"):
        run_job(small_work(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="different job.*seed"):
        run_job(small_work(seed=1), tmp_path, resume=True, progress=False)
    again = run_job(small_work(), tmp_path, resume=True, progress=False)
    assert (again.reused, again.redone) == (3, 0)


def test_resume_redoes_a_corrupt_shard_and_keeps_the_others(tmp_path):
    ref = tmp_path / "ref"
    run_job(small_work(), ref, progress=False)
    out = tmp_path / "out"
    run_job(small_work(), out, progress=False)
    kept = shard_path(out, 0).stat().st_mtime_ns
    broken = shard_path(out, 1)
    broken.write_bytes(broken.read_bytes()[:-10])  # truncated
    summary = run_job(small_work(), out, resume=True, progress=False)
    assert (summary.reused, summary.redone) == (2, 1)
    assert shard_path(out, 0).stat().st_mtime_ns == kept
    assert_same_shards(out, ref, 3)


def test_an_item_the_explainer_fails_on_is_skipped_with_the_error(tmp_path):
    class FailsOnBrightImages(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = tiny_model()

        def forward(self, x):
            if (x.flatten(1).mean(1) > 0.5).any():
                raise RuntimeError("too bright")
            return self.net(x)

    images = torch.zeros(4, 1, 28, 28)
    images[2] = 0.9
    work = Work(TensorSource("demo", images), FailsOnBrightImages(), ["saliency"], batch_size=4)
    summary = run_job(work, tmp_path, progress=False)
    index = read_index(tmp_path)
    assert (summary.explained, summary.skipped) == (3, 1)
    assert index["status"].tolist() == ["ok", "ok", "skipped", "ok"]
    assert "too bright" in index["reason"][2]


def test_folder_with_a_corrupt_png_and_an_image_missing_from_the_csv(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(root / f"{i}.png")
    (root / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # corrupt
    csv = tmp_path / "labels.csv"
    csv.write_text("image,label\n0.png,1\n1.png,2\n2.png,3\n3.png,4\n")  # 4.png has no row
    model = tmp_path / "model.safetensors"
    tiny_model(model)
    out = tmp_path / "out"
    argv = ["explain", "--data", f"folder:{root}", "--labels", str(csv), "--model", str(model)]
    argv += ["--methods", "saliency", "--target", "label", "--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    index = read_index(out).set_index("id")
    assert index["status"].to_dict() == {
        "0.png": "ok",
        "1.png": "ok",
        "2.png": "ok",
        "3.png": "skipped",
        "4.png": "skipped",
    }
    assert "cannot decode" in index.loc["3.png", "reason"]
    assert index.loc["4.png", "reason"] == "no row in the labels CSV"
    # The label was explained, as asked.
    assert index.loc[["0.png", "1.png", "2.png"], "saliency/target"].tolist() == [1, 2, 3]
    assert (out / "grid.png").stat().st_size > 0


def test_folder_source_records_a_csv_row_naming_a_missing_file(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text("image,label\na.png,0\ngone.png,1\n")
    source = FolderSource(tmp_path, 8, 1, tmp_path / "labels.csv")
    assert [source.load(i).reason is None for i in range(len(source))] == [True, False]
    assert source.load(1).reason.startswith("file not found")


def test_model_from_an_import_path_on_medmnist_data(tmp_path):
    npz = write_npz(tmp_path / "tiny.npz", 6)
    out = tmp_path / "out"
    argv = ["explain", "--data", f"medmnist:{npz}:val", "--model", "xai_gen.models:SmallCNN"]
    argv += ["--methods", "saliency", "--metrics", "sparseness", "--n", "4", "--out", str(out)]
    assert main(argv) == 0
    index = read_index(out)
    assert len(index) == 4 and index["saliency/sparseness"].notna().all()
    assert index["id"].str.startswith("tiny[").all()


# One torch thread in every process, so that the killed-and-resumed run and the reference
# run execute the very same float operations.
KILLED = [sys.executable, "-m", "xai_gen.cli", "explain", "--methods", "lime", "--threads", "1"]


def test_sigkill_mid_job_then_resume_gives_the_uninterrupted_shards(tmp_path):
    npz = write_npz(tmp_path / "digits.npz", 40)
    model = tmp_path / "model.safetensors"
    tiny_model(model)
    args = ["--data", f"medmnist:{npz}", "--model", str(model), "--shard-size", "4"]
    args += ["--batch-size", "4"]
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    child = subprocess.Popen([*KILLED, *args, "--out", str(out)], stderr=subprocess.PIPE, env=env)
    # Kill hard once a few shards are written.
    sigkill_when(child, lambda: len(list((out / "shards").glob("*.safetensors"))) >= 2, 3000, 0.05)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.safetensors")}
    assert 2 <= len(before) < 10 and not (out / "index.csv").exists()

    assert main([*KILLED[3:], *args, "--out", str(out), "--resume"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.safetensors")}
    assert len(after) == 10 and all(after[name] == t for name, t in before.items())  # kept
    assert not list((out / "shards").glob("*.tmp"))
    ref = tmp_path / "ref"
    assert main([*KILLED[3:], *args, "--out", str(ref)]) == 0
    assert_same_shards(out, ref, 10)


@pytest.mark.ray
def test_ray_with_two_workers_writes_the_same_shards(tmp_path):
    import ray.data  # noqa: F401 - the test command installs the ray extra: a missing one fails here

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray actor of one CPU
    try:
        run_job(small_work(), tmp_path / "local", progress=False)
    finally:
        torch.set_num_threads(threads)
    summary = run_job(
        small_work(),
        tmp_path / "ray",
        engine="ray",
        ray=RayOptions(num_cpus=2, workers=2),
        progress=False,
    )
    assert (summary.explained, summary.shards) == (10, 3)
    assert_same_shards(tmp_path / "local", tmp_path / "ray", 3)
