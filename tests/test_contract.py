"""Every registered explainer keeps the same contract on a model nobody here wrote.

The foreign model has 3 channels at 32x32, BatchNorm and Dropout left in train mode, and
comes in a classification and a regression flavour. Each explainer must return attributions
of the input's shape, dtype and device, leave the model exactly as it was, and give the same
result twice.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import xai_gen as xg
from xai_gen.latent import ConditionalLatentModel, LatentModel, nets

SHAPE = (3, 32, 32)
BUILTINS = ["saliency", "integrated_gradients", "occlusion", "gradcam", "lime", "gvr", "latent_traversal"]


class ForeignNet(nn.Module):
    """Conv-BN-ReLU-Dropout twice, global pooling, a linear head with `out` outputs."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.3),
            nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout2d(0.3),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(8 * 16, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def foreign(out: int) -> nn.Module:
    torch.manual_seed(0)
    net = ForeignNet(out)
    net(torch.randn(4, *SHAPE))  # move BN running stats away from their init
    return net.train()


def latent(conditional: bool = False) -> LatentModel:
    torch.manual_seed(0)
    g = nets.spec("dcgan_generator", latent_dim=6, image_shape=SHAPE, width=4)
    e = nets.spec("dcgan_encoder", out_dim=6, image_shape=SHAPE, width=4)
    if conditional:
        return ConditionalLatentModel.from_specs(g, e, structural_dim=4).eval()
    return LatentModel.from_specs(g, e).eval()


def build(name: str, regression: bool) -> xg.Explainer:
    """Small, fast settings per method; the generative ones get a latent model of this shape."""
    small = {
        "integrated_gradients": {"n_steps": 8},
        "lime": {"num_samples": 40, "progress": False},
        "gvr": {"latent_model": latent(), "max_steps": 5, "progress": False},
        "latent_traversal": {"latent_model": latent(conditional=not regression), "steps": 3,
                             "invert_steps": 3, "progress": False},
    }
    params = small.get(name, {})
    if name == "gvr" and regression:
        params["cutoff"] = -1e6  # a cut-off never reached: runs max_steps
    if name == "latent_traversal" and regression:
        params["gvr_params"] = {"max_steps": 3, "cutoff": -1e6, "progress": False}
    return xg.get_explainer(name, **params)


def state(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [p.grad for p in model.parameters()],
    )


def test_every_builtin_is_registered():
    assert set(BUILTINS) <= set(xg.list_explainers())


@pytest.mark.parametrize("regression", [False, True], ids=["classes", "regression"])
@pytest.mark.parametrize("name", BUILTINS)
def test_foreign_model_contract(name, regression):
    model = foreign(1 if regression else 4)
    x = torch.rand(2, *SHAPE) * 2 - 1
    before = state(model)
    explainer = build(name, regression)
    first = explainer.attribute(model, x)
    assert first.attributions.shape == x.shape
    assert first.attributions.dtype == x.dtype and first.attributions.device == x.device
    assert torch.isfinite(first.attributions).all()
    assert first.method == name and first.seconds > 0
    after = state(model)
    for key in before[0]:
        assert torch.equal(before[0][key], after[0][key]), f"{name} changed {key}"
    assert before[1] == after[1], f"{name} changed train/eval mode"
    assert before[2] == after[2], f"{name} changed requires_grad"
    assert all(g is None for g in after[3]), f"{name} left gradients on the model"
    again = explainer.attribute(model, x)
    torch.testing.assert_close(again.attributions, first.attributions, rtol=0, atol=0)


@pytest.mark.parametrize("name", BUILTINS)
def test_nan_input_and_bad_target_raise(name):
    model = foreign(4)
    explainer = build(name, regression=False)
    bad = torch.zeros(1, *SHAPE)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        explainer.attribute(model, bad)
    with pytest.raises(ValueError, match="out of range"):
        explainer.attribute(model, torch.zeros(1, *SHAPE), target=4)
