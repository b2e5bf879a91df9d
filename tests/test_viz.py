"""Figures: symmetric scaling, the papers' sign colours, grid layout, no pyplot state."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from xai_gen import Explanation
from xai_gen.viz import normalize_symmetric, overlay, plot_explanation, plot_grid, signed_cmap
from xai_gen.viz.charts import plot_costs, plot_metric_bars
from xai_gen.viz.grid import frame_strip


def _rgba_of(image, value: float) -> np.ndarray:
    """The colour an AxesImage gives a data value."""
    return np.asarray(image.cmap(image.norm(value)))


def _explanation(n: int = 3, seed: int = 0, **extra) -> Explanation:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 6, 6, generator=gen)
    return Explanation(torch.randn(n, 1, 6, 6, generator=gen), x, torch.arange(n), "demo", **extra)


def test_normalize_symmetric_uses_the_largest_magnitude_for_both_signs():
    out = normalize_symmetric(torch.tensor([[-2.0, 1.0], [0.0, 0.5]]))
    np.testing.assert_allclose(out, [[-1.0, 0.5], [0.0, 0.25]])
    assert np.abs(normalize_symmetric(np.array([3.0, -1.0]))).max() == 1.0
    assert (normalize_symmetric(np.zeros((2, 2))) == 0).all()
    with pytest.raises(ValueError, match="NaN"):
        normalize_symmetric(np.array([np.nan, 1.0]))


def test_signed_cmap_purple_positive_orange_negative_transparent_zero():
    cmap = signed_cmap()
    purple, orange, zero = np.asarray(cmap(1.0)), np.asarray(cmap(0.0)), np.asarray(cmap(0.5))
    assert purple[2] > purple[1] and purple[0] > purple[1]  # blue and red over green
    assert orange[0] > orange[1] > orange[2]  # red over green over blue
    assert zero[3] == 0.0 and purple[3] == orange[3] == 1.0
    opaque = np.asarray(signed_cmap(transparent=False)(0.5))
    assert opaque[3] == 1.0 and opaque[:3].min() > 0.9  # white-ish, not transparent
    with pytest.raises(ValueError, match="odd"):
        signed_cmap(n=10)


def test_overlay_scales_signed_maps_symmetrically_and_keeps_the_sign_colours():
    ax = Figure().subplots()
    attribution = np.array([[0.5, -0.25], [0.0, 0.1]])
    shown = overlay(ax, np.zeros((2, 2)), attribution)
    np.testing.assert_allclose(shown.get_array(), attribution / 0.5)
    assert shown.get_clim() == (-1.0, 1.0)
    assert _rgba_of(shown, 1.0)[2] > _rgba_of(shown, 1.0)[1]  # positive -> purple
    assert _rgba_of(shown, -0.5)[0] > _rgba_of(shown, -0.5)[2]  # negative -> orange
    assert _rgba_of(shown, 0.0)[3] == 0.0  # zero lets the image through


def test_overlay_unsigned_maps_use_a_sequential_scale_from_zero():
    ax = Figure().subplots()
    shown = overlay(ax, torch.zeros(1, 4, 4), torch.tensor([[[0.0, 2.0], [1.0, 4.0]]]))
    assert shown.get_clim() == (0.0, 1.0)
    np.testing.assert_allclose(shown.get_array(), [[0.0, 0.5], [0.25, 1.0]])
    assert shown.cmap.name != signed_cmap().name
    # A coarse map (Grad-CAM's layer resolution) is stretched over the whole 4x4 image.
    assert shown.get_extent() == [-0.5, 3.5, 3.5, -0.5]
    with pytest.raises(ValueError, match="alpha"):
        overlay(ax, torch.zeros(4, 4), torch.zeros(4, 4), alpha=2.0)


def test_grid_has_rows_times_columns_axes_with_generative_extras():
    plain = _explanation()
    gvr = _explanation(
        counterfactuals=torch.rand(3, 1, 6, 6), success=torch.tensor([True, False, True])
    )
    traversal = _explanation(frames=torch.rand(3, 11, 1, 6, 6), probabilities=torch.rand(3, 11))
    fig = plot_grid(
        plain.inputs, {"demo": plain, "gvr": gvr, "latent_traversal": traversal}, frames=4
    )
    assert isinstance(fig, Figure)
    # input + demo + (gvr, counterfactual) + (traversal, frame strip) = 6 columns, 3 rows
    assert len(fig.axes) == 3 * 6
    titles = [ax.get_title() for ax in fig.axes[:6]]
    assert titles == [
        "input",
        "demo",
        "gvr",
        "gvr\ncounterfactual",
        "latent_traversal",
        "latent_traversal\nframes",
    ]
    assert fig.axes[6 + 3].get_xlabel() == "not converted"  # row 1's failed counterfactual
    strip = fig.axes[5].get_images()[0].get_array()
    assert strip.shape == (6, 4 * 6)
    assert len(plot_grid(plain.inputs, {"demo": plain}, max_rows=2).axes) == 2 * 2


def test_grid_rejects_mismatched_input():
    exp = _explanation(n=2)
    with pytest.raises(ValueError, match="fewer"):
        plot_grid(torch.rand(3, 1, 6, 6), {"demo": exp})
    with pytest.raises(ValueError, match="at least one"):
        plot_grid(exp.inputs, {})
    with pytest.raises(ValueError, match="count"):
        frame_strip(np.zeros((3, 4, 4)), count=0)


def test_plot_explanation_draws_input_and_overlay_without_pyplot_state():
    before = plt.get_fignums()
    fig = plot_explanation(_explanation(), index=2)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["input (class 2)", "demo"]
    assert plt.get_fignums() == before
    with pytest.raises(ValueError, match="index"):
        plot_explanation(_explanation(n=2), index=5)


def test_charts_draw_one_panel_per_metric_and_two_cost_panels():
    summary = {
        "a": {
            "m1": {"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5},
            "m2": {"mean": 0.1, "ci_low": np.nan, "ci_high": np.nan},
        },
        "b": {"m1": {"mean": 2.0, "ci_low": 1.0, "ci_high": 3.0}},
    }
    fig = plot_metric_bars(summary, ["m1", "m2"], {"m1": True, "m2": False})
    assert [ax.get_title() for ax in fig.axes] == ["m1 ↑", "m2 ↓"]
    assert len(fig.axes[1].patches) == 1  # only "a" has m2
    assert len(plot_costs({"a": 0.1, "b": 1.0}, {"a": 1.0, "b": 2.0}).axes) == 2


def test_plot_explanation_dispatches_generative_explanations_to_their_layouts():
    gvr = _explanation(
        counterfactuals=torch.rand(3, 1, 6, 6), extras={"reconstructions": torch.rand(3, 1, 6, 6)}
    )
    titles = [ax.get_title() for ax in plot_explanation(gvr, index=1).axes[:4]]
    assert titles == [
        "original",
        "reconstruction g(z0)",
        "counterfactual g(z*)",
        "GVR g(z0) - g(z*)",
    ]
    # frames win over counterfactuals: a traversal that also reports its end image is a traversal
    traversal = _explanation(
        frames=torch.rand(3, 5, 1, 6, 6),
        probabilities=torch.rand(3, 5),
        counterfactuals=torch.rand(3, 1, 6, 6),
    )
    fig = plot_explanation(traversal, count=5)
    assert [ax.get_title() for ax in fig.axes[:6]] == [
        "n=0",
        "n=1",
        "n=2",
        "n=3",
        "n=4",
        "last - first",
    ]


def test_save_gif_animates_each_frame_of_every_row_side_by_side(tmp_path):
    from PIL import Image

    from xai_gen.viz import save_gif

    x = torch.zeros(3, 1, 4, 4)
    # Row i, frame t is constant i * 10 + t: every picture of the GIF differs from the next.
    frames = (torch.arange(3)[:, None] * 10 + torch.arange(4)[None, :]).float().view(3, 4, 1, 1, 1).expand(3, 4, 1, 4, 4)
    exp = Explanation(x, x, None, "demo", frames=frames.clone())
    path = exp.save_gif(tmp_path / "sub" / "demo.gif", max_rows=2, scale=3, bounce=False)
    gif = Image.open(path)
    assert gif.n_frames == 4 and gif.size == ((4 + 2 + 4) * 3, 4 * 3)  # two rows, a 2-px gap
    first = np.asarray(gif.convert("L"))
    # Each row is scaled over its own frames: frame 0 is that row's darkest.
    assert first[0, 0] == 0 and first[0, -1] == 0 and first[0, 4 * 3] == 255  # the gap is white
    assert Image.open(save_gif(exp, tmp_path / "b.gif")).n_frames == 4 + 2  # forward, then back
    rgb = Explanation(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), None, "demo", frames=torch.rand(1, 3, 3, 4, 4))
    assert Image.open(rgb.save_gif(tmp_path / "rgb.gif")).size == (4 * 32, 4 * 32)  # default: >= 128 px


def test_save_gif_refuses_an_explanation_without_frames(tmp_path):
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="saliency: this explanation has no frames"):
        Explanation(x, x, None, "saliency").save_gif(tmp_path / "x.gif")
    with pytest.raises(ValueError, match="max_rows"):
        Explanation(x, x, None, "demo", frames=torch.rand(1, 2, 1, 4, 4)).save_gif(tmp_path / "x.gif", max_rows=0)
