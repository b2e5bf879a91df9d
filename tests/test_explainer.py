"""The Explainer base: targets, bad input, hygiene, registry and Explanation files."""

from __future__ import annotations

import pytest
import torch
from call_sizes import BatchSizes
from torch import nn

import xai_gen as xg
from xai_gen.explainer import Explainer, register_explainer


@register_explainer("_test_gradient")
class GradientTimesOne(Explainer):
    """Plain input gradient of the target logit: enough to exercise the base class."""

    scale: float = 1.0

    def _explain(self, model, x, target):
        scale = self.scale
        x = x.detach().requires_grad_(True)
        out = model(x)
        y = out.reshape(len(x), -1)[:, 0] if target is None else out.gather(1, target[:, None])
        (grad,) = torch.autograd.grad(y.sum(), x)
        return scale * grad


@register_explainer("_test_raises")
class Raises(Explainer):
    def _explain(self, model, x, target):
        model(x).sum()
        raise RuntimeError("boom")


def tiny_cnn(k: int = 5, channels: int = 3) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(channels, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 6 * 6, k)
    )
    return net.train()


def snapshot(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
    )


def assert_unchanged(model: nn.Module, before) -> None:
    after = snapshot(model)
    for k in before[0]:
        assert torch.equal(before[0][k], after[0][k]), k
    assert before[1:3] == after[1:3]
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(before[3], after[3]))


def test_targets_follow_captum_semantics():
    net, x = tiny_cnn(), torch.randn(3, 3, 8, 8)
    e = GradientTimesOne()
    with torch.no_grad():
        predicted = net.eval()(x).argmax(1)
    net.train()
    assert torch.equal(e.attribute(net, x).targets, predicted)  # the same eval-mode pass on the same batch
    assert e.attribute(net, x, target=2).targets.tolist() == [2, 2, 2]
    assert e.attribute(net, x, target=[0, 1, 4]).targets.tolist() == [0, 1, 4]
    assert e.attribute(net, x, target=torch.tensor([4, 3, 2])).targets.tolist() == [4, 3, 2]


@pytest.mark.parametrize(
    ("target", "error", "match"),
    [
        (5, ValueError, "out of range"),
        (-1, ValueError, "out of range"),
        ([0, 1], ValueError, "one entry per sample"),
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, "integer"),
        ("a", TypeError, "target"),
        (True, TypeError, "got bool"),
    ],
)
def test_bad_targets(target, error, match):
    with pytest.raises(error, match=match):
        GradientTimesOne().attribute(tiny_cnn(), torch.randn(3, 3, 8, 8), target=target)


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.randn(3, 8), ValueError, "shape"),
        (torch.randn(2, 8, 8), ValueError, "could not run"),
        (torch.randn(1, 2, 3, 8, 8), ValueError, "shape"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.long), TypeError, "floating"),
        (torch.zeros(0, 3, 8, 8), ValueError, "empty"),
        (torch.full((1, 3, 8, 8), float("nan")), ValueError, "NaN"),
        (torch.full((1, 3, 8, 8), float("inf")), ValueError, "inf"),
        ([[1.0]], TypeError, "torch.Tensor"),
    ],
)
def test_bad_inputs(x, error, match):
    with pytest.raises(error, match=match):
        GradientTimesOne().attribute(tiny_cnn(), x)


def test_bad_model_output_and_model():
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="model output"):
        GradientTimesOne().attribute(nn.Identity(), x)  # (N, C, H, W) output
    with pytest.raises(TypeError, match="callable"):
        GradientTimesOne().attribute("not a model", x)
    with pytest.raises(TypeError, match="unknown argument"):
        GradientTimesOne().attribute(tiny_cnn(), x, n_steps=3)


def test_single_image_and_dtype_device():
    net = tiny_cnn().double()
    e = GradientTimesOne().attribute(net, torch.randn(3, 8, 8, dtype=torch.float64))
    assert e.attributions.shape == (1, 3, 8, 8)
    assert e.attributions.dtype == torch.float64


def test_regression_output_targets():
    torch.manual_seed(0)
    reg = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1))
    x = torch.randn(2, 3, 8, 8)
    assert GradientTimesOne().attribute(reg, x).targets is None
    assert GradientTimesOne().attribute(reg, x, target=0).targets.tolist() == [0, 0]
    flat = nn.Sequential(reg, nn.Flatten(0))  # (N,) output
    assert GradientTimesOne().attribute(flat, x).attributions.shape == x.shape
    with pytest.raises(ValueError, match="must be None"):
        GradientTimesOne().attribute(flat, x, target=0)


def test_model_unchanged_also_when_explainer_raises():
    net = tiny_cnn()
    net[0].weight.grad = torch.ones_like(net[0].weight)
    net[-1].bias.requires_grad_(False)
    before = snapshot(net)
    GradientTimesOne().attribute(net, torch.randn(2, 3, 8, 8))
    assert_unchanged(net, before)
    with pytest.raises(RuntimeError, match="boom"):
        Raises().attribute(net, torch.randn(2, 3, 8, 8))
    assert_unchanged(net, before)


def test_overrides_and_params():
    net, x = tiny_cnn(), torch.randn(2, 3, 8, 8)
    e = GradientTimesOne(scale=2.0)
    base = e.attribute(net, x, target=1)
    doubled = e.attribute(net, x, target=1, scale=4.0)
    torch.testing.assert_close(doubled.attributions, 2 * base.attributions)
    assert base.params == {"scale": 2.0} and doubled.params == {"scale": 4.0}
    assert e.params == {"scale": 2.0}  # overrides do not stick


def test_registry():
    assert "_test_gradient" in xg.list_explainers()
    assert isinstance(xg.get_explainer("_test_gradient", scale=3.0), GradientTimesOne)
    with pytest.raises(ValueError, match="unknown explainer"):
        xg.get_explainer("no-such-method")
    with pytest.raises(ValueError, match="already registered"):

        @register_explainer("_test_gradient")
        class Other(Explainer):
            def _explain(self, model, x, target):
                return x

    with pytest.raises(TypeError, match="Explainer subclass"):
        register_explainer("_test_bad")(object)


def test_explanation_save_load_roundtrip(tmp_path):
    e = GradientTimesOne().attribute(tiny_cnn(), torch.randn(2, 3, 8, 8), target=[1, 2])
    e.success = torch.tensor([True, False])
    e.extras["monotonicity"] = torch.tensor([0.5, -1.0])
    path = e.save(tmp_path / "e.safetensors")
    back = xg.Explanation.load(path)
    assert back.method == "_test_gradient" and back.params == {"scale": 1.0}
    for name in ("attributions", "inputs", "targets", "success"):
        assert torch.equal(getattr(back, name), getattr(e, name))
    assert torch.equal(back.extras["monotonicity"], e.extras["monotonicity"])
    assert back.counterfactuals is None
    arrays = e.numpy()
    assert arrays["attributions"].shape == (2, 3, 8, 8) and "extras.monotonicity" in arrays


def test_explanation_load_refuses_foreign_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"a": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not written by xai-gen"):
        xg.Explanation.load(path)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="not a readable"):
        xg.Explanation.load(tmp_path / "junk.safetensors")


def test_explanation_save_with_extras_sharing_memory(tmp_path):
    """GVR's extras can be views of other fields; safetensors refuses shared storage."""
    e = GradientTimesOne().attribute(tiny_cnn(), torch.randn(2, 3, 8, 8), target=[1, 2])
    e.success = torch.tensor([True, False])
    e.extras["decoded_success"] = e.success
    e.extras["first_map"] = e.attributions[:1]
    back = xg.Explanation.load(e.save(tmp_path / "shared.safetensors"))
    assert torch.equal(back.extras["decoded_success"], e.success)
    assert torch.equal(back.extras["first_map"], e.attributions[:1])


def test_explanation_parts_are_checked_kept_and_saved(tmp_path):
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="known parts"):
        xg.Explanation(x, x, None, "demo", parts={"counterfactuals"})
    e = GradientTimesOne().attribute(tiny_cnn(), x)
    assert e.parts == frozenset()
    e.counterfactuals, e.parts = x.clone(), frozenset({"counterfactual"})
    assert e[1].parts == e.parts and xg.Explanation.cat([e, e]).parts == e.parts
    assert xg.Explanation.load(e.save(tmp_path / "e.safetensors")).parts == {"counterfactual"}


def test_declared_parts_must_be_delivered():
    class Claims(Explainer):
        provides = frozenset({"counterfactual"})

        def _explain(self, model, x, target):
            return x.clone()

    with pytest.raises(RuntimeError, match="counterfactual"):
        Claims().attribute(tiny_cnn(), torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="unknown parts"):

        class Typo(Explainer):
            provides = frozenset({"counterfactuals"})

            def _explain(self, model, x, target):
                return x


def test_overrides_are_validated_like_constructor_values():
    with pytest.raises(ValueError, match="stride must be <= window"):
        xg.Occlusion(window=4, stride=8)
    occlusion = xg.Occlusion(window=4, stride=2)
    with pytest.raises(ValueError, match="stride must be <= window"):
        occlusion.attribute(tiny_cnn(), torch.randn(1, 3, 8, 8), stride=8)
    assert occlusion.params["stride"] == 2


@pytest.mark.parametrize("explainer", [xg.Saliency(), xg.GradCAM(layer="inner.0")], ids=["saliency", "gradcam"])
def test_one_pass_methods_run_no_probe_and_reuse_the_prediction_pass(explainer):
    x = torch.randn(4, 3, 8, 8)
    spy = BatchSizes(tiny_cnn().eval())
    explainer.attribute(spy, x, target=1)
    assert spy.sizes == [4]  # the method's own pass is checked: no one-image probe
    spy.sizes.clear()
    explainer.attribute(spy, x)
    assert spy.sizes == [4, 4]  # predicted classes (which check the output too), then the method
    assert not spy._forward_hooks


@pytest.mark.parametrize(
    ("model", "target", "x", "match"),
    [
        (tiny_cnn(), 5, torch.randn(2, 3, 8, 8), "out of range"),
        (nn.Identity(), 0, torch.randn(2, 3, 8, 8), r"model output .* N=2"),
        (tiny_cnn(), 0, torch.randn(2, 2, 8, 8), "could not run"),
        (nn.Sequential(nn.Flatten(), nn.Linear(192, 1), nn.Flatten(0)), 0, torch.randn(2, 3, 8, 8), "must be None"),
    ],
    ids=["target", "output", "run", "regression"],
)
def test_the_checked_first_call_raises_what_the_probe_raised(model, target, x, match):
    with pytest.raises(ValueError, match=match):
        xg.Saliency().attribute(model, x, target=target)
    assert not model._forward_hooks
