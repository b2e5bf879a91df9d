"""The Captum adapters against Captum called directly, plus shapes, targets and model hygiene."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import xai_gen as xg
from baselines.captum_reference import CASES, N_INPUTS, write_references
from baselines.fixture import make_inputs, make_model, make_targets
from xai_gen.explainers.gradcam import resolve_layer


def adapters() -> list[xg.Explainer]:
    """One of each adapter, with small settings where the default would only cost time."""
    return [xg.Saliency(), xg.IntegratedGradients(n_steps=8), xg.Occlusion(), xg.GradCAM()]


ADAPTER_IDS = ["saliency", "integrated_gradients", "occlusion", "gradcam"]
each_adapter = pytest.mark.parametrize("explainer", adapters(), ids=ADAPTER_IDS)


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    path = tmp_path_factory.mktemp("baselines") / "captum.safetensors"
    write_references(path)
    return load_file(str(path))


@pytest.mark.parametrize("case", list(CASES))
def test_adapter_matches_captum_reference(case: str, references: dict[str, torch.Tensor]) -> None:
    fn, settings = CASES[case]
    x, target = make_inputs(N_INPUTS), make_targets(N_INPUTS)
    torch.testing.assert_close(references["inputs"], x)
    exp = xg.get_explainer(fn.__name__, **settings).attribute(make_model(), x, target=target)
    assert exp.method == fn.__name__
    torch.testing.assert_close(exp.attributions, references[case], rtol=1e-5, atol=1e-6)
    assert exp.attributions.abs().sum() > 0


@each_adapter
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device_follow_x(explainer: xg.Explainer, dtype: torch.dtype) -> None:
    model, x = make_model().to(dtype), make_inputs(3).to(dtype)
    exp = explainer.attribute(model, x)
    a = exp.attributions
    assert (a.shape, a.dtype, a.device) == (x.shape, x.dtype, x.device)
    assert torch.isfinite(a).all()
    assert exp.targets.tolist() == model(x).argmax(1).tolist()


@each_adapter
def test_target_forms_agree(explainer: xg.Explainer) -> None:
    model, x = make_model(), make_inputs(4)
    predicted = model(x).argmax(1)

    def attr(target: object) -> torch.Tensor:
        return explainer.attribute(model, x, target=target).attributions

    torch.testing.assert_close(attr(None), attr(predicted.tolist()))
    torch.testing.assert_close(attr(3), attr(torch.full((4,), 3)))
    torch.testing.assert_close(attr([3, 3, 3, 3]), attr(torch.tensor(3)))
    # The target really reaches Captum: another class gives another map.
    assert not torch.allclose(attr(3), attr(5))


class Squeeze(nn.Module):
    """A regression head `(N, 1)` -> `(N,)`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def regression_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 1)
    ).eval()


@each_adapter
def test_regression_outputs(explainer: xg.Explainer) -> None:
    net, x = regression_net(), make_inputs(3)
    column = explainer.attribute(net, x)  # (N, 1) output
    flat = explainer.attribute(Squeeze(net), x)  # (N,) output
    assert column.targets is None and flat.targets is None
    assert column.attributions.shape == x.shape
    torch.testing.assert_close(column.attributions, flat.attributions)
    torch.testing.assert_close(column.attributions, explainer.attribute(net, x, target=0).attributions)
    assert column.attributions.abs().sum() > 0


def foreign_model() -> nn.Module:
    """3 channels, 32x32, BatchNorm and Dropout, handed over in train mode with a frozen layer."""
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 7),
    )
    net[0].weight.requires_grad_(False)
    return net.train()


def snapshot(model: nn.Module) -> dict[str, object]:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
        "hooks": [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()],
    }


@each_adapter
def test_foreign_model_is_handed_back_unchanged(explainer: xg.Explainer) -> None:
    model = foreign_model()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    before = snapshot(model)
    first = explainer.attribute(model, x, target=[1, 6])
    second = explainer.attribute(model, x, target=[1, 6])
    after = snapshot(model)
    assert first.attributions.shape == x.shape
    # Eval mode inside: Dropout off, so two calls agree; BatchNorm statistics untouched.
    torch.testing.assert_close(first.attributions, second.attributions)
    assert after.keys() == before.keys()
    for key in ("training", "requires_grad", "grads", "hooks"):
        assert after[key] == before[key], key
    for name, value in before["state"].items():
        assert torch.equal(after["state"][name], value), name


@pytest.mark.parametrize("explainer", [xg.Occlusion(), xg.GradCAM()], ids=["occlusion", "gradcam"])
def test_one_map_over_all_channels(explainer: xg.Explainer) -> None:
    # Occlusion's window spans all C channels and Grad-CAM's map is repeated over them.
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    a = explainer.attribute(foreign_model(), x, target=0).attributions
    assert torch.equal(a, a[:, :1].expand_as(a))
    assert a.abs().sum() > 0


@pytest.mark.parametrize("explainer", [xg.Saliency(), xg.IntegratedGradients(n_steps=4), xg.GradCAM()])
def test_gradients_flow_under_caller_no_grad(explainer: xg.Explainer) -> None:
    model, x = make_model(), make_inputs(2)
    expected = explainer.attribute(model, x, target=1).attributions
    with torch.no_grad():
        torch.testing.assert_close(explainer.attribute(model, x, target=1).attributions, expected)


def test_gradcam_layer_choices_agree() -> None:
    model, x = make_model(), make_inputs(2)
    assert resolve_layer(model) is model.features[3]
    maps = [xg.GradCAM(layer=layer).attribute(model, x, target=2).attributions
            for layer in ("auto", "features.3", model.features[3])]
    torch.testing.assert_close(maps[0], maps[1])
    torch.testing.assert_close(maps[0], maps[2])
    # ReLU commutes with nearest upsampling (not with bilinear): the map's positive part.
    signed, relu = (xg.GradCAM(relu=r, interpolate_mode="nearest").attribute(model, x, target=2)
                    for r in (False, True))
    torch.testing.assert_close(relu.attributions, signed.attributions.clamp(min=0))
    assert (signed.attributions < 0).any()


@pytest.mark.parametrize(
    ("model", "layer", "error", "match"),
    [
        (nn.Sequential(nn.Flatten(), nn.Linear(784, 3)), "auto", ValueError, "no nn.Conv2d"),
        (make_model(), "features.9", ValueError, "'features.9' is not a submodule"),
        (make_model(), nn.Conv2d(1, 2, 3), ValueError, "not a submodule"),
        (make_model(), "head.1", ValueError, r"must output \(N, C, h, w\)"),
        (make_model(), 3, TypeError, "layer must be"),
        (lambda x: x.flatten(1), "auto", TypeError, "nn.Module model"),
    ],
    ids=["auto-no-conv", "unknown-name", "foreign-module", "linear-layer", "int", "plain-callable"],
)
def test_gradcam_layer_errors(model, layer, error, match) -> None:
    with pytest.raises(error, match=match):
        xg.GradCAM(layer=layer).attribute(model, make_inputs(2), target=0)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: xg.Occlusion(window=4, stride=5), ValueError, "stride must be <= window"),
        (lambda: xg.Occlusion(window=0), ValueError, "window must be >= 1"),
        (lambda: xg.Occlusion(perturbations_per_eval=1.5), TypeError, "perturbations_per_eval"),
        (lambda: xg.IntegratedGradients(method="simpson"), ValueError, "method must be one of"),
        (lambda: xg.IntegratedGradients(n_steps=0), ValueError, "n_steps must be >= 1"),
        (lambda: xg.IntegratedGradients(internal_batch_size=-2), ValueError, "internal_batch_size"),
        (lambda: xg.GradCAM(interpolate_mode="cubic"), ValueError, "interpolate_mode"),
    ],
)
def test_bad_hyper_parameters(make, error, match) -> None:
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    ("explainer", "overrides", "error", "match"),
    [
        (xg.Occlusion(), {"stride": 9}, ValueError, "stride must be <= window"),
        (xg.Occlusion(), {"window": 30, "stride": 4}, ValueError, "larger than the image"),
        (xg.Occlusion(), {"baseline": torch.zeros(2, 28, 28)}, ValueError, "does not broadcast"),
        (xg.IntegratedGradients(), {"baseline": "black"}, TypeError, "baseline must be"),
        (xg.Saliency(), {"abs": "yes"}, TypeError, "abs must be a bool"),
    ],
)
def test_bad_overrides(explainer, overrides, error, match) -> None:
    with pytest.raises(error, match=match):
        explainer.attribute(make_model(), make_inputs(2), target=0, **overrides)


@pytest.mark.parametrize("explainer", [xg.IntegratedGradients(n_steps=8), xg.Occlusion()], ids=["ig", "occlusion"])
def test_tensor_baseline_broadcasts(explainer: xg.Explainer) -> None:
    model, x = make_model(), make_inputs(2)
    fill = explainer.attribute(model, x, target=4, baseline=-1.0).attributions
    per_image = explainer.attribute(model, x, target=4, baseline=torch.full((1, 28, 28), -1.0)).attributions
    torch.testing.assert_close(per_image, fill)
    assert not torch.allclose(fill, explainer.attribute(model, x, target=4).attributions)


def test_registry_and_params() -> None:
    assert {"saliency", "integrated_gradients", "occlusion", "gradcam"} <= set(xg.list_explainers())
    exp = xg.get_explainer("occlusion", window=6, stride=3).attribute(make_model(), make_inputs(1))
    assert exp.params == {
        "window": 6, "stride": 3, "baseline": 0.0, "perturbations_per_eval": None, "memory_budget": "auto"
    }
    assert xg.GradCAM().params == {"layer": "auto", "relu": False, "interpolate_mode": "bilinear"}


def test_gradcam_auto_traces_once_per_model_structure() -> None:
    calls = []
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    net.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    x = torch.randn(4, 1, 8, 8)
    first = xg.GradCAM().attribute(net, x, target=0)
    again = xg.GradCAM().attribute(net, x, target=0)
    assert calls == [1, 4, 4]  # one trace of one image, then the method's passes only
    assert first.params["layer_name"] == again.params["layer_name"] == "2"
    net[2] = nn.Sequential(nn.Conv2d(2, 2, 3))  # a new structure is traced again
    assert xg.GradCAM().attribute(net, x, target=0).params["layer_name"] == "2.0"
