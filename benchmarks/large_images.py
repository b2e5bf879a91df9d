"""GVR and Latent Shift at 128 and 224 px RGB through a ResNet-18 classifier: time and peak memory.

    python -m benchmarks.large_images --markdown docs/generated/large_images.md

A ResNet-18 layout (He et al. 2016: basic blocks [2, 2, 2, 2], 64-512 channels; written here,
no torchvision) with 14 outputs, untrained (cost does not depend on the weights), and a
feature-map latent model (`spatial_encoder` / `spatial_decoder`, three stride-2 stages, code
`(4, H/8, W/8)`), batch 8. Each case runs in a fresh process and reports its peak RSS
(`ru_maxrss`, the whole process: Python, torch and the models included) and the seconds per
image of `attribute` (GVR: at most 20 Adam steps, its default stop rule; Latent Shift: its
defaults).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from xai_gen.compare.report import markdown_table

BATCH = 8
SIZES = (128, 224)
METHODS = ("gvr", "latent_shift")


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.skip(x))


class ResNet18(nn.Module):
    """ResNet-18: `(N, C, H, W)` -> `(N, num_classes)` logits."""

    def __init__(self, in_channels: int = 3, num_classes: int = 14) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_Block(cin, cout, stride), _Block(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(512, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layers(self.stem(x)).mean(dim=(2, 3)))


def run_case(method: str, size: int) -> dict[str, float]:
    """One case in this process: seconds per image and peak RSS."""
    import xai_gen as xg
    from xai_gen.latent import LatentModel, nets

    torch.manual_seed(0)
    model = ResNet18().eval()
    shape = [3, size, size]
    lm = LatentModel.from_specs(
        nets.spec("spatial_decoder", image_shape=shape, latent_channels=4, stages=3, width=16),
        nets.spec("spatial_encoder", image_shape=shape, latent_channels=4, stages=3, width=16),
    )
    x = torch.rand(BATCH, *shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    explainer = (
        xg.GVR(lm, max_steps=20, progress=False) if method == "gvr" else xg.LatentShift(lm)
    )
    started = time.perf_counter()
    explainer.attribute(model, x)
    seconds = (time.perf_counter() - started) / BATCH
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {"seconds_per_image": seconds, "peak_rss_bytes": float(peak)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--case", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]))))
        return 0
    rows = []
    for size in SIZES:
        for method in METHODS:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.large_images", "--case", method, str(size)],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            rows.append([method, f"{size} x {size} RGB", str(BATCH), f"{r['seconds_per_image']:.2f}",
                         f"{r['peak_rss_bytes'] / 2**30:.2f}"])
            print(rows[-1], flush=True)
    table = markdown_table(["method", "images", "batch", "seconds / image", "peak RSS (GiB)"], rows)
    threads = torch.get_num_threads()
    text = (f"ResNet-18 (14 outputs) and a `(4, H/8, W/8)` feature-map latent model, torch "
            f"{torch.__version__} ({threads} threads), `python -m benchmarks.large_images`.\n\n{table}\n")
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
