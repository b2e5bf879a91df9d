"""What a new user relies on: the choices made for them are the right ones and say so."""

from __future__ import annotations

import logging

import torch
from torch import nn

import xai_gen as xg
from xai_gen.explainers.gradcam import auto_layer


class Block(nn.Module):
    """A residual block whose 1x1 stride-2 shortcut convolution runs after the main branch."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(torch.relu(self.bn(self.conv1(x))))
        return torch.relu(out + self.shortcut(x))


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = nn.Sequential(Block(4, 8))
        self.layer2 = nn.Sequential(Block(8, 8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layer2(self.layer1(self.stem(x)))).flatten(1))


def test_gradcam_auto_picks_the_block_that_reaches_the_head(caplog) -> None:
    torch.manual_seed(0)
    model, x = TinyResNet().eval(), torch.rand(2, 3, 16, 16)
    # Registration order would give the shortcut convolution: one branch of the sum only.
    assert [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)][-1] == "layer2.0.shortcut"
    assert auto_layer(model, x) == "layer2.0"
    with caplog.at_level(logging.INFO, logger="xai_gen.explainers.gradcam"):
        exp = xg.GradCAM().attribute(model, x, target=1)
    assert exp.params["layer"] == "auto" and exp.params["layer_name"] == "layer2.0"
    assert "'layer2.0'" in caplog.text
    same = xg.GradCAM(layer="layer2.0").attribute(model, x, target=1)
    torch.testing.assert_close(exp.attributions, same.attributions)
