"""The same work timed under two versions of xai_gen: is a refactor slower?

The models must be identical for both versions, but each version reads only its own file
formats, so `export` (run with the current code) pickles the shipped MNIST modules as plain
`nn.Module`s, and `time` (run with the version on `PYTHONPATH`) rebuilds the latent model and
times, in one process:

* GVR with the paper's settings (an older version's defaults) on the linear latent head,
  1,000 held-out digits, best of 3 — the batched GVR benchmark; the row-steps printed must be
  equal across versions, or the two did different work;
* Saliency and Grad-CAM on 100 digits through the adapter and through Captum directly (the
  version's own `baselines.captum_reference`, as `benchmarks.adapter_ratios`), alternating
  5 rounds of 20 calls (minimum and median ratios).

    python -m benchmarks.versions export runs/versions/models.pt
    git worktree add --detach /tmp/old <commit>
    PYTHONPATH=/tmp/old python benchmarks/versions.py time runs/versions/models.pt
    PYTHONPATH=$PWD python benchmarks/versions.py time runs/versions/models.pt

(Run as a file, not with `-m`: `-m` puts the current folder first on the import path, which
would shadow the other version. The first line printed names the xai_gen that ran.)
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch


def export(path: Path) -> None:
    """Pickle the shipped MNIST generator, encoder, head, classifier and 1,000 test digits."""
    from xai_gen.bundles import mnist_bundle

    bundle = mnist_bundle(progress=False)
    lm = bundle.latent_model
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"generator": lm.generator, "encoder": lm.encoder, "latent_dim": lm.latent_dim,
                "image_shape": tuple(lm.image_shape), "head": bundle.latent_classifier.head,
                "classifier": bundle.classifier, "images": bundle.test.images[:1000].contiguous()}, path)
    print(f"wrote {path}")


def _min_median(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[0], times[len(times) // 2]


def time_version(path: Path, threads: int) -> None:
    """Time GVR and two adapters with the xai_gen that is imported."""
    import xai_gen as xg
    from baselines import captum_reference as direct  # the same Captum calls as adapter_ratios
    from xai_gen.latent.classifier import LatentClassifier

    warnings.simplefilter("ignore")
    torch.set_num_threads(threads)
    parts = torch.load(path, weights_only=False)  # our own file, written by `export`
    lm = xg.LatentModel(parts["generator"], parts["encoder"], parts["latent_dim"], parts["image_shape"]).eval()
    head, clf, x = LatentClassifier(lm, parts["head"]).eval(), parts["classifier"].eval(), parts["images"]
    with torch.no_grad():
        targets = head(x).argmax(1)
    paper = getattr(xg.GVR, "paper", None)  # older versions: the defaults were the paper's
    gvr = paper(lm, progress=False) if paper else xg.GVR(lm, progress=False)
    gvr.attribute(head, x[:2], target=targets[:2])
    best, row_steps = float("inf"), 0
    for _ in range(3):
        start = time.perf_counter()
        exp = gvr.attribute(head, x, target=targets)
        best, row_steps = min(best, time.perf_counter() - start), int(exp.steps.sum())
    print(f"xai_gen {xg.__file__}")
    print(f"GVR paper settings, latent head, 1,000 digits: best of 3 {best:.3f} s, row-steps {row_steps}")
    xs = x[:100]
    with torch.no_grad():
        ts = clf(xs).argmax(1)
    pairs = {
        "saliency": (lambda: xg.Saliency().attribute(clf, xs, target=ts), lambda: direct.saliency(clf, xs, ts)),
        "gradcam": (lambda: xg.GradCAM(layer="conv.3").attribute(clf, xs, target=ts),
                    lambda: direct.gradcam(clf, xs, ts, layer="conv.3")),
    }
    for name, (adapter, captum_call) in pairs.items():
        rounds = [(_min_median(adapter, 20), _min_median(captum_call, 20)) for _ in range(5)]
        a_min, d_min = min(r[0][0] for r in rounds), min(r[1][0] for r in rounds)
        a_med = sorted(r[0][1] for r in rounds)[2]
        d_med = sorted(r[1][1] for r in rounds)[2]
        print(f"{name}: adapter {a_min * 1e3:.2f} ms, Captum {d_min * 1e3:.2f} ms (minima); "
              f"ratio of minima {a_min / d_min:.3f}, of medians {a_med / d_med:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("export", "time"))
    parser.add_argument("path", type=Path, help="the exported models")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    export(args.path) if args.action == "export" else time_version(args.path, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
