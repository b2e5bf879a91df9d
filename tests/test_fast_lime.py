"""FastLime: lime's maps from one batched computation; its engine's pieces against lime's own."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics
import torch
from lime import lime_image
from sklearn.linear_model import Ridge
from torch import nn

import xai_gen as xg
from baselines.fixture import make_inputs, make_model, make_targets
from baselines.lime_reference import lime_maps
from xai_gen.explainers import _lime_batched as engine
from xai_gen.explainers.lime import SEGMENTATION_DEFAULTS

SAMPLES = 150


def fast(**params) -> xg.FastLime:
    return xg.FastLime(**{"num_samples": SAMPLES, "progress": False, **params})


def close_to(got: torch.Tensor, reference: torch.Tensor) -> None:
    """Equal up to float rounding: the two ridge solvers and float32 maps differ in the last bits."""
    assert reference.abs().amax(dim=(1, 2, 3)).gt(0).all()  # a real map, not all zeros
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-4 * float(reference.abs().max()))


@pytest.mark.parametrize("segmentation", sorted(SEGMENTATION_DEFAULTS))
def test_same_maps_as_lime(segmentation):
    model, x, targets = make_model(), make_inputs(3), make_targets(3)
    reference = lime_maps(model, x, targets, segmentation, num_samples=SAMPLES)
    close_to(fast(segmentation=segmentation).attribute(model, x, targets).attributions, reference)


def rgb_model(out: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 7 * 7, out))


@pytest.mark.parametrize("hide_color", [None, -1.0])
@pytest.mark.parametrize("out", [1, 5], ids=["regression", "classes"])
def test_same_maps_as_the_lime_adapter_rgb(hide_color, out):
    model, x = rgb_model(out), torch.rand(2, 3, 16, 16) * 2 - 1
    params = {"num_samples": SAMPLES, "hide_color": hide_color, "segmentation": "slic", "progress": False}
    reference = xg.Lime(**params).attribute(model, x).attributions
    got = xg.FastLime(**params).attribute(model, x)
    close_to(got.attributions, reference)
    assert got.method == "fast_lime" and torch.equal(got.attributions[:, 0], got.attributions[:, 2])


def test_seeded_and_independent_of_batch_and_chunking():
    model, x = make_model(), make_inputs(3)
    first = fast().attribute(model, x, 2).attributions
    assert torch.equal(first, fast().attribute(model, x, 2).attributions)
    assert not torch.allclose(first, fast(seed=1).attribute(model, x, 2).attributions)
    # An image's map is its own: alone, or scored in chunks that cut across images.
    alone = fast(batch_size=7).attribute(model, x[1:2], 2).attributions
    close_to(alone, first[1:2])  # the model's float32 sums differ in the last bits per batch size


def test_model_calls_cut_across_images():
    sizes = []
    model = make_model()

    def counting(batch: torch.Tensor) -> torch.Tensor:
        sizes.append(len(batch))
        return model(batch)

    x = make_inputs(3)
    segments = engine.segment_images(x, "slic", None, 0)
    engine.segment_weights(counting, x, make_targets(3), segments, 10, None, 7, 0, 0.25)
    assert sizes == [7, 7, 7, 7, 2]  # 3 images x 10 samples in calls of 7


def test_independent_draws_agree():
    # Patterns from two seeds on the same superpixels: only LIME's sampling noise remains, and
    # at 1,000 samples the weights must still agree. (Seed 0 gives lime's own maps, see above.)
    model, x, targets = make_model(), make_inputs(4), make_targets(4)
    segments = engine.segment_images(x, "quickshift", None, 0)
    first, second = (
        engine.segment_weights(model, x, targets, segments, 1000, None, 1024, seed, 0.25)
        for seed in (0, 1)
    )
    counts = (segments.flatten(1).amax(dim=1) + 1).tolist()
    correlations = [np.corrcoef(a[:s], b[:s])[0, 1] for a, b, s in zip(first, second, counts, strict=True)]
    assert np.mean(correlations) >= 0.9


def test_masks_are_lime_draws():
    segments = np.repeat(np.arange(6), 4).reshape(4, 6)  # 6 superpixels on a 4x6 image
    image = np.zeros((4, 6, 3))
    explainer = lime_image.LimeImageExplainer(random_state=3)
    data, _ = explainer.data_labels(
        image, image, segments, lambda b: np.zeros((len(b), 2)), num_samples=20
    )
    masks = engine.draw_masks(torch.tensor([6, 2]), 20, seed=3)
    assert np.array_equal(masks[0].numpy(), data.astype(bool))
    assert masks[1, 0, :2].all() and not masks[1, :, 2:].any()  # padding stays off


def test_kernel_is_lime_kernel_on_cosine_distance():
    rng = np.random.RandomState(0)
    data = rng.randint(0, 2, (50, 9))
    data[0], data[1] = 1, 0
    distances = sklearn.metrics.pairwise_distances(data, data[:1], metric="cosine").ravel()
    expected = np.sqrt(np.exp(-(distances**2) / 0.25**2))
    padded = torch.zeros(1, 50, 12, dtype=torch.bool)
    padded[0, :, :9] = torch.from_numpy(data.astype(bool))
    got = engine.kernel_weights(padded, torch.tensor([9]), 0.25)[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_weighted_ridge_is_sklearn_ridge():
    rng = np.random.RandomState(0)
    features = rng.randint(0, 2, (3, 40, 5)).astype(float)
    scores, weights = rng.rand(3, 40), rng.rand(3, 40)
    features[2, :, 4] = 0  # a padding column: weight 0, the others unchanged
    beta, intercept = engine.weighted_ridge(torch.from_numpy(features), torch.from_numpy(scores), torch.from_numpy(weights))
    for i in range(3):
        used = 4 if i == 2 else 5
        ridge = Ridge(alpha=1.0).fit(features[i, :, :used], scores[i], sample_weight=weights[i])
        np.testing.assert_allclose(beta[i, :used].numpy(), ridge.coef_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(float(intercept[i]), ridge.intercept_, rtol=1e-10)
    # Exact: the padding column is exactly zero after centring, so its row and column of the
    # system are zero but for alpha on the diagonal, and the solve gives 0 / alpha.
    assert float(beta[2, 4]) == 0.0


def test_progress_bar(capsys):
    model, x = make_model(), make_inputs(2)
    fast(progress=True).attribute(model, x, 1)
    err = capsys.readouterr().err
    assert "LIME" in err and f"{2 * SAMPLES}/{2 * SAMPLES}" in err
    fast().attribute(model, x, 1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"segmentation": "watershed"}, ValueError, "segmentation"),
        ({"num_samples": 0}, ValueError, "num_samples"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"segmentation_params": {"max_distance": 3}}, ValueError, "segmentation_params"),
        ({"kernel_width": -1}, ValueError, "kernel_width"),
    ],
)
def test_bad_params_raise(params, error, match):
    with pytest.raises(error, match=match):
        xg.FastLime(**params)
    with pytest.raises(error, match=match):  # also as a per-call override
        fast().attribute(make_model(), make_inputs(1), 0, **params)


def test_bad_channels_raise():
    net = nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 3))
    with pytest.raises(ValueError, match="channels"):
        fast().attribute(net, torch.rand(1, 2, 8, 8))


def test_ridge_in_groups_equals_one_solve(monkeypatch):
    model, x, targets = make_model(), make_inputs(3), make_targets(3)
    segments = engine.segment_images(x, "slic", None, 0)
    whole = engine.segment_weights(model, x, targets, segments, 50, None, 64, 0, 0.25)
    monkeypatch.setattr(engine, "RIDGE_GROUP_BYTES", 1)  # one image per solve
    torch.testing.assert_close(engine.segment_weights(model, x, targets, segments, 50, None, 64, 0, 0.25), whole)


def test_more_superpixels_than_samples_solves_the_same_ridge_in_its_dual_form():
    from xai_gen.explainers._lime_batched import RIDGE_ALPHA, weighted_ridge

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 10, 40, generator=g).round()  # 10 samples, 40 superpixels
    y, w = torch.rand(3, 10, generator=g), torch.rand(3, 10, generator=g)
    beta, intercept = weighted_ridge(x, y, w)
    # The primal normal equations, written out: the same minimiser, other rounding.
    xd, yd, wd = x.double(), y.double(), w.double()
    total = wd.sum(1, keepdim=True)
    mean_x, mean_y = (wd[..., None] * xd).sum(1, keepdim=True) / total[..., None], (wd * yd).sum(1, keepdim=True) / total
    centred = xd - mean_x
    gram = (wd[..., None] * centred).transpose(1, 2) @ centred + RIDGE_ALPHA * torch.eye(40, dtype=torch.float64)
    primal = torch.linalg.solve(gram, (wd[..., None] * centred).transpose(1, 2) @ (yd - mean_y)[..., None])[..., 0]
    torch.testing.assert_close(beta, primal, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(intercept, mean_y[:, 0] - (mean_x[:, 0] * primal).sum(1), atol=1e-12, rtol=1e-10)
    ridge = Ridge(alpha=RIDGE_ALPHA).fit(xd[0].numpy(), yd[0].numpy(), sample_weight=wd[0].numpy())
    np.testing.assert_allclose(beta[0].numpy(), ridge.coef_, atol=1e-10)  # as LIME's own fit
    np.testing.assert_allclose(float(intercept[0]), ridge.intercept_, atol=1e-10)
