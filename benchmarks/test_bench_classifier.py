"""The reference classifier's gradient-free forward pass, with its pooling and with `nn.MaxPool2d`.

`SmallCNN` pools passes without a gradient in channels-last memory (`xai_gen.models._pool_channels_last`),
the pass every perturbation metric, LIME and occlusion repeat thousands of times. This times
100 images of each bundled size both ways, with untrained weights (the values do not matter
for the time; they are identical either way, tests/test_files.py).

    OMP_NUM_THREADS=1 python -m pytest benchmarks/test_bench_classifier.py --benchmark-only
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from xai_gen.models import SmallCNN


def _with_plain_pooling(model: SmallCNN) -> nn.Module:
    return nn.Sequential(
        *[nn.MaxPool2d(2) if isinstance(m, nn.MaxPool2d) else m for m in model.conv], model.fc, model.out
    )


@pytest.mark.parametrize("image_size", [28, 64])
@pytest.mark.parametrize("pooling", ["channels_last", "plain"])
def test_bench_classifier_forward(benchmark: Any, image_size: int, pooling: str) -> None:
    benchmark.group = f"classifier forward, 100 images {image_size}x{image_size}"
    torch.manual_seed(0)
    model = SmallCNN(image_size=image_size, num_classes=2).eval()
    net = model if pooling == "channels_last" else _with_plain_pooling(model)
    x = torch.randn(100, 1, image_size, image_size)
    with torch.no_grad():
        benchmark.pedantic(net, args=(x,), rounds=10, iterations=1, warmup_rounds=1)
