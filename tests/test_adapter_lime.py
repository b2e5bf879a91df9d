"""The LIME adapter: same maps as direct lime, seeds, shapes, regression, hygiene, errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from lime import lime_image
from torch import nn
from tqdm.auto import tqdm

import xai_gen as xg
from baselines.fixture import make_inputs, make_model, make_targets
from baselines.lime_reference import lime_maps
from xai_gen.explainers.lime import SEGMENTATION_DEFAULTS, make_segmenter

SAMPLES = 150  # enough for a stable ridge fit on ~20-40 superpixels, small enough to be fast


def lime(**params) -> xg.Lime:
    return xg.Lime(**{"num_samples": SAMPLES, "progress": False, **params})


@pytest.mark.parametrize("segmentation", sorted(SEGMENTATION_DEFAULTS))
def test_adapter_equals_direct_lime(segmentation):
    model, x, targets = make_model(), make_inputs(3), make_targets(3)
    reference = lime_maps(model, x, targets, segmentation, num_samples=SAMPLES)
    got = lime(segmentation=segmentation).attribute(model, x, targets).attributions
    assert reference.abs().amax(dim=(1, 2, 3)).gt(0).all()  # a real map, not all zeros
    assert torch.equal(got, reference)


def test_seed_fixes_the_map():
    model, x = make_model(), make_inputs(2)
    first, again, other = (lime(seed=s).attribute(model, x, 3).attributions for s in (0, 0, 1))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_map_does_not_depend_on_the_rest_of_the_batch():
    model, x = make_model(), make_inputs(3)
    batch = lime().attribute(model, x, 2).attributions
    # Same perturbations and seed; only the model calls' batch shape differs, which may change
    # the outputs' last bits with the BLAS kernel: close, not bit-identical.
    torch.testing.assert_close(lime().attribute(model, x[1:2], 2).attributions, batch[1:2], atol=1e-6, rtol=1e-5)


def test_shape_dtype_device_and_predicted_target():
    model, x = copy.deepcopy(make_model()).double(), make_inputs(2).double()
    exp = lime(segmentation="slic").attribute(model, x)
    assert exp.method == "lime" and exp.params["num_samples"] == SAMPLES
    assert exp.attributions.shape == x.shape
    assert exp.attributions.dtype == torch.float64 and exp.attributions.device == x.device
    assert torch.equal(exp.targets, model(x).argmax(dim=1))
    assert xg.get_explainer("lime", num_samples=5).params["num_samples"] == 5


@pytest.mark.parametrize("hide_color", [None, -1.0])
@pytest.mark.parametrize("flat", [False, True])
def test_linear_regression_recovers_superpixel_contributions(hide_color, flat):
    # A linear model is exactly linear in LIME's on/off features: switching superpixel s off
    # changes the output by sum_{p in s} w_p (fill_p - x_p), so the weights must match that.
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(28 * 28, 1)] + ([nn.Flatten(0)] if flat else [])
    model, x = nn.Sequential(*layers), make_inputs(1)
    exp = xg.Lime(num_samples=1000, hide_color=hide_color, progress=False).attribute(model, x)
    assert exp.targets is None

    image = x[0, 0].double().numpy()
    segments = make_segmenter("quickshift", None, 0)(np.repeat(image[..., None], 3, axis=-1))
    means = np.array([image[segments == s].mean() for s in range(segments.max() + 1)])
    fill = means[segments] if hide_color is None else np.full_like(image, hide_color)
    w = model[1].weight.detach().double().reshape(28, 28).numpy()
    contribution = w * (image - fill)
    expected = np.array([contribution[segments == s].sum() for s in range(segments.max() + 1)])
    # Within 2 % of the largest contribution: lime's ridge (alpha=1) shrinks the weights by ~1 %.
    tolerance = 0.02 * np.abs(expected).max()
    got = exp.attributions[0, 0].numpy()
    np.testing.assert_allclose(got, expected[segments], rtol=0, atol=tolerance)


def rgb_model() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
        nn.Flatten(), nn.Linear(4 * 15 * 15, 5),
    ).train()
    net(torch.rand(2, 3, 32, 32)).sum().backward()  # gradients the call must leave alone
    net[0].bias.requires_grad_(False)
    return net


def model_state(net: nn.Module) -> tuple:
    params = list(net.parameters())
    return (
        {k: v.clone() for k, v in net.state_dict().items()},
        [m.training for m in net.modules()],
        [p.requires_grad for p in params],
        [None if p.grad is None else p.grad.clone() for p in params],
    )


def test_rgb_model_in_train_mode_comes_back_unchanged():
    net, x = rgb_model(), torch.rand(2, 3, 32, 32)
    before = model_state(net)
    maps = [lime(segmentation="felzenszwalb").attribute(net, x, 4).attributions for _ in range(2)]
    after = model_state(net)
    assert before[0].keys() == after[0].keys()
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])  # BN statistics too
    assert before[1:3] == after[1:3]
    grads = zip(before[3], after[3], strict=True)
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in grads)
    assert torch.equal(maps[0], maps[1])  # Dropout was off: eval mode inside the call
    assert maps[0].shape == x.shape and torch.equal(maps[0][:, 0], maps[0][:, 2])


def test_progress_bar_over_images_only(capsys):
    model, x = make_model(), make_inputs(2)
    lime(progress=True).attribute(model, x, 1)
    err = capsys.readouterr().err
    assert "LIME" in err and "2/2" in err and f"{SAMPLES}/{SAMPLES}" not in err
    lime().attribute(model, x, 1)
    assert capsys.readouterr().err == ""
    assert lime_image.tqdm is tqdm  # lime's own bar is restored afterwards


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"segmentation": "watershed"}, ValueError, "segmentation"),
        ({"num_samples": 0}, ValueError, "num_samples"),
        ({"num_samples": 2.5}, TypeError, "num_samples"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"segmentation_params": {"max_distance": 3}}, ValueError, "segmentation_params"),
        ({"segmentation_params": [("max_dist", 3)]}, TypeError, "segmentation_params"),
        ({"hide_color": "black"}, TypeError, "hide_color"),
        ({"seed": -1}, ValueError, "seed"),
        ({"kernel_width": 0}, ValueError, "kernel_width"),
    ],
)
def test_bad_params_raise(params, error, match):
    with pytest.raises(error, match=match):
        xg.Lime(**params)
    with pytest.raises(error, match=match):  # also as a per-call override
        xg.Lime(progress=False).attribute(make_model(), make_inputs(1), 0, **params)


def test_bad_channels_raise():
    net = nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 3))
    with pytest.raises(ValueError, match="channels"):
        lime().attribute(net, torch.rand(1, 2, 8, 8))
