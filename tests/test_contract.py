"""Every registered explainer keeps the same contract on a model nobody here wrote.

The foreign model has 3 channels at 32x32, BatchNorm and Dropout left in train mode, and
comes in a classification and a regression flavour. Each explainer must return attributions
of the input's shape, dtype and device, leave the model exactly as it was, and give the same
result twice.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import textwrap
import typing

import pytest
import torch
from torch import nn

import xai_gen as xg
import xai_gen.explainer as explainer_module
from xai_gen.explainer import explainer_class
from xai_gen.latent import ConditionalLatentModel, LatentModel, nets

SHAPE = (3, 32, 32)
BUILTINS = ["saliency", "integrated_gradients", "occlusion", "gradcam", "lime", "gvr", "latent_traversal", "latent_shift"]
#: Every explainer registered when the tests are collected. Names with a leading underscore
#: are test doubles of other test modules (some fail on purpose) and are left out.
REGISTERED = [name for name in xg.list_explainers() if not name.startswith("_")]


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


def needs(cls: type[xg.Explainer]) -> dict[str, type]:
    """The settings an explainer cannot default: its fields without a default, by declared type."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


def supply(kind: type, regression: bool) -> object:
    """A value for a need, chosen by its type: a latent model of this shape (a conditional one,
    which must stand in for a plain `LatentModel`, for the classifier)."""
    if isinstance(kind, type) and issubclass(kind, LatentModel):
        return latent(conditional=not regression or issubclass(kind, ConditionalLatentModel))
    raise NotImplementedError(f"the contract test cannot supply a {kind!r}; teach `supply` how")


def build(name: str, regression: bool) -> xg.Explainer:
    """The explainer's own fast example settings, plus whatever it needs, keyed by type."""
    cls = explainer_class(name)
    supplied = {field: supply(kind, regression) for field, kind in needs(cls).items()}
    return cls(**supplied, **cls.example_settings(regression=regression))


def state(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [p.grad for p in model.parameters()],
    )


def test_every_builtin_is_registered():
    assert set(BUILTINS) <= set(xg.list_explainers())


def check_contract(name: str, regression: bool) -> None:
    """Attributions shaped like x, the model handed back untouched, the same result twice."""
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
    # Exact: the same call on the same batch in the same process runs the same float operations.
    torch.testing.assert_close(again.attributions, first.attributions, rtol=0, atol=0)


def check_bad_input(name: str) -> None:
    """NaN input and a target out of range are refused with errors that say so."""
    model = foreign(4)
    explainer = build(name, regression=False)
    bad = torch.zeros(1, *SHAPE)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        explainer.attribute(model, bad)
    with pytest.raises(ValueError, match="out of range"):
        explainer.attribute(model, torch.zeros(1, *SHAPE), target=4)


def check_overrides(name: str) -> None:
    """An unknown per-call setting is a TypeError naming the accepted ones; `params` round-trips."""
    explainer = build(name, regression=False)
    with pytest.raises(TypeError, match="accepted"):
        explainer.attribute(foreign(4), torch.zeros(1, *SHAPE), no_such_setting=1)
    assert type(explainer)(**explainer.params).params == explainer.params


@pytest.mark.parametrize("regression", [False, True], ids=["classes", "regression"])
@pytest.mark.parametrize("name", REGISTERED)
def test_foreign_model_contract(name, regression):
    check_contract(name, regression)


@pytest.mark.parametrize("name", REGISTERED)
def test_nan_input_and_bad_target_raise(name):
    check_bad_input(name)


@pytest.mark.parametrize("name", REGISTERED)
def test_unknown_override_is_refused(name):
    check_overrides(name)


PLUGIN = """
    import torch
    from xai_gen import Explainer, register_explainer


    @register_explainer("_plugin_gradient_x_input")
    class GradientXInput(Explainer):
        scale: float = 1.0

        def __post_init__(self):
            if not isinstance(self.scale, float):
                raise TypeError("scale must be a float")

        def _explain(self, model, x, target):
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                out = model(x)
                score = out.reshape(len(x)) if target is None else out.gather(1, target[:, None])
                (grad,) = torch.autograd.grad(score.sum(), x)
            return self.scale * x.detach() * grad
"""


def test_a_third_party_explainer_in_one_file_goes_through_the_contract(tmp_path, monkeypatch):
    (tmp_path / "my_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    # Register into a copy, so the throwaway explainer leaves the registry as it found it.
    monkeypatch.setattr(explainer_module, "_REGISTRY", dict(explainer_module._REGISTRY))
    module = importlib.import_module("my_plugin")
    try:
        assert "_plugin_gradient_x_input" in xg.list_explainers()
        for regression in (False, True):
            check_contract("_plugin_gradient_x_input", regression)
        check_bad_input("_plugin_gradient_x_input")
        check_overrides("_plugin_gradient_x_input")
        with pytest.raises(TypeError, match="scale"):  # its own validator guards overrides too
            module.GradientXInput().attribute(foreign(4), torch.zeros(1, *SHAPE), scale="big")
    finally:
        sys.modules.pop("my_plugin", None)


def test_an_overridden_latent_model_is_the_one_checked():
    torch.manual_seed(0)
    small = LatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=6, image_shape=(1, 28, 28), width=4),
        nets.spec("dcgan_encoder", out_dim=6, image_shape=(1, 28, 28), width=4),
    ).eval()
    gvr = xg.GVR(small, **xg.GVR.example_settings())
    x = torch.rand(1, *SHAPE)
    with pytest.raises(ValueError, match="latent model accepts"):
        gvr.attribute(foreign(4), x)
    assert gvr.attribute(foreign(4), x, latent_model=latent()).attributions.shape == x.shape
    assert gvr.latent_model is small
