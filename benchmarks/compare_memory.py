"""Peak memory of `xai-gen compare`'s driver at n = 1,000 and n = 5,000 MNIST digits.

    /usr/bin/time -v python -m benchmarks.compare_memory --n 1000 --out /tmp/cmp-1k
    /usr/bin/time -v python -m benchmarks.compare_memory --n 5000 --out /tmp/cmp-5k

The MNIST bundle's test split holds 1,000 digits, so `--n 5000` on it would compare the same
1,000. This runs the command's own code (`xai_gen.cli.compare.run`) on the bundle with its
test split replaced by all 5,000 digits of `mnist_5k` (train and test), and compares
Saliency and Latent Shift (counterfactuals, hence the Frechet distance from stored features)
with a few cheap per-sample metrics, so that both sizes finish in minutes on a busy 2-core
machine (GVR with its 500-step `gvr_paper` variant took 11 minutes per 250 digits there). `ru_maxrss` (the `Maximum
resident set size` line of `time -v`) should not grow with `--n`: the summary is read from
the shards one at a time.
"""

from __future__ import annotations

import argparse
import sys

import torch

from xai_gen.cli import build_parser
from xai_gen.cli import compare as compare_cli
from xai_gen.cli._setup import load_bundle
from xai_gen.data import ImageSplit, mnist_5k

METRICS = "sparseness,validity,proximity_l1,steps"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out", required=True)
    opts = p.parse_args(argv)
    torch.set_num_threads(1)

    def bundle(dataset, cache_dir, progress, **kwargs):
        b = load_bundle(dataset, cache_dir, progress, **kwargs)
        digits = mnist_5k()
        b.test = ImageSplit(
            torch.cat([digits.train.images, digits.test.images]),
            torch.cat([digits.train.labels, digits.test.labels]),
        )
        return b

    args = build_parser().parse_args(
        ["compare", "--data", "mnist", "--methods", "saliency,latent_shift", "--n", str(opts.n), "--metrics", METRICS,
         "--out", opts.out, "--quiet"]
    )
    return compare_cli.run(args, bundle_loader=bundle)


if __name__ == "__main__":
    sys.exit(main())
