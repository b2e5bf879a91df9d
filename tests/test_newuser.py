"""What a new user relies on: the choices made for them are the right ones and say so."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
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


def test_model_output_error_quotes_the_users_batch() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.Unflatten(1, (5, 1)))
    with pytest.raises(ValueError, match=r"N=3, got shape \(3, 5, 1\)"):
        xg.Saliency().attribute(model, torch.rand(3, 1, 2, 2))


# -- command line ---------------------------------------------------------------------------
def _tiny_loader(seen: list[Path]):
    from test_cli import tiny_bundle

    def load(dataset: str, cache_dir: Path, progress: bool):
        seen.append(Path(cache_dir))
        return tiny_bundle()

    return load


def test_cache_dir_flag_and_environment_variable(tmp_path, monkeypatch) -> None:
    from tempfile import mkdtemp

    from xai_gen.cli import build_parser
    from xai_gen.cli import explain as explain_cli
    from xai_gen.cli._setup import CACHE_ENV

    def run(*extra: str) -> Path:
        seen: list[Path] = []
        args = build_parser().parse_args(
            ["explain", "--n", "2", "--methods", "saliency", "--out", mkdtemp(dir=tmp_path), *extra])
        assert explain_cli.run(args, bundle_loader=_tiny_loader(seen)) == 0
        return seen[0]

    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert Path("runs") not in run().parents and run().is_absolute()  # per-user, not the cwd
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert run() == tmp_path / "env"
    assert run("--cache-dir", str(tmp_path / "flag")) == tmp_path / "flag"
    help_text = build_parser()._subparsers._group_actions[0].choices["explain"].format_help()
    assert "--cache-dir" in help_text and CACHE_ENV in help_text and "--no-progress" in help_text


def _trained(cache: Path) -> set[str]:
    """The components trained into a data set's cache folder."""
    return {p.stem for p in cache.glob("*.safetensors")}


def test_retrain_trains_only_the_models_the_methods_and_metrics_need(tmp_path, monkeypatch) -> None:
    from bundle_utils import digits, use_tiny_bundles

    from xai_gen.cli import build_parser
    from xai_gen.cli import compare as compare_cli
    from xai_gen.cli import explain as explain_cli

    use_tiny_bundles(monkeypatch, (digits(60, 0), digits(20, 1)))
    cache = tmp_path / "cache"

    def compare(methods: str, metrics: str) -> set[str]:
        args = build_parser().parse_args(
            ["compare", "--data", "mnist", "--methods", methods, "--metrics", metrics, "--n", "2", "--retrain",
             "--quiet", "--cache-dir", str(cache), "--out", str(tmp_path / "r")])
        assert compare_cli.run(args) == 0
        return _trained(cache / "mnist")

    assert compare("saliency", "sparseness") == {"classifier"}
    # On-manifold deletion needs the autoencoder; no method has counterfactuals, so no oracle.
    assert compare("saliency", "on_manifold_deletion_auc,oracle_agreement") == {"classifier", "autoencoder"}
    args = build_parser().parse_args(
        ["explain", "--data", "mnist", "--methods", "latent_traversal", "--n", "1", "--retrain", "--quiet",
         "--cache-dir", str(cache), "--out", str(tmp_path / "ex")])
    assert explain_cli.run(args) == 0
    # On MNIST the traversal walks GVR's path on the autoencoder: the conditional model stays untrained.
    assert _trained(cache / "mnist") == {"classifier", "autoencoder"}


def test_explain_caps_the_figure_and_saves_every_row(tmp_path) -> None:
    from xai_gen.cli import build_parser
    from xai_gen.cli import explain as explain_cli

    args = build_parser().parse_args(["explain", "--n", "6", "--figure-rows", "2", "--methods",
                                      "saliency", "--out", str(tmp_path)])
    assert explain_cli.run(args, bundle_loader=_tiny_loader([])) == 0
    from xai_gen.jobs import read_index

    assert len(read_index(tmp_path)) == 6  # every row is kept as data, in the job's shards
    from PIL import Image

    assert Image.open(tmp_path / "grid.png").height < 2 * 110 * 1.25 + 200  # two rows, not six


def test_top_level_help_is_for_users(capsys) -> None:
    from xai_gen.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "add_parser" not in out and "xai-gen COMMAND --help" in out


def test_non_terminal_progress_is_sparse(tmp_path, capsys) -> None:
    from tqdm.auto import tqdm

    from xai_gen.cli._progress import progress_output

    with progress_output():
        for _ in tqdm(range(2000), desc="work", mininterval=0):
            pass
    err = capsys.readouterr().err
    assert "\r" not in err and "2000/2000" in err and err.count("\n") <= 3
    with progress_output(quiet=True):
        for _ in tqdm(range(50), desc="work", mininterval=0):
            pass
    assert "work" not in capsys.readouterr().err


def test_train_errors_name_the_users_arguments(tmp_path) -> None:
    from xai_gen.cli import build_parser
    from xai_gen.cli import train as train_cli
    from xai_gen.latent import nets

    lm = xg.LatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=4, image_shape=(1, 28, 28), width=4),
        nets.spec("dcgan_encoder", out_dim=4, image_shape=(1, 28, 28), width=4))
    lm.save(tmp_path / "autoencoder.safetensors")
    args = build_parser().parse_args(["train", "head", "--data", "synthetic-cxr", "--n", "40", "--size", "32",
                                      "--out", str(tmp_path), "--quiet"])
    with pytest.raises(ValueError, match=r"--size 32 gives images of shape \(1, 32, 32\).*--size 28"):
        train_cli.run(args)
    args = build_parser().parse_args(["train", "head", "--data", "mnist", "--set", "epochs=0", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="--set epochs=0"):
        train_cli.run(args)


# -- colour, value range, class names ---------------------------------------------------------
def test_rgb_overlay_and_autoencoder_keep_colour(tmp_path) -> None:
    from matplotlib.figure import Figure

    from xai_gen.recipes import AutoencoderConfig, quality_report, train_autoencoder
    from xai_gen.viz.overlay import overlay

    red = torch.full((3, 8, 8), -1.0)
    red[0] = 1.0
    ax = Figure().subplots()
    overlay(ax, red, torch.rand(3, 8, 8))
    shown = ax.images[0].get_array()
    assert shown.shape == (8, 8, 3) and shown[..., 0].min() == 1.0 and shown[..., 1].max() == 0.0

    torch.manual_seed(0)
    x = torch.full((40, 3, 16, 16), -1.0)
    x[:, 0, 4:12, 4:12] = 1.0  # a red square on black
    lm = train_autoencoder(x[:32], AutoencoderConfig(latent_dim=4, width=4, epochs=1), progress=False)
    report = quality_report(lm, x[32:], tmp_path)
    metrics = report["metrics"]
    assert {f"reconstruction_mse_channel_{c}" for c in range(3)} <= set(metrics)
    assert metrics["colour_spread_inputs"] > 0.2
    assert (tmp_path / report["figures"]["reconstruction_channels"]).stat().st_size > 0


def test_inputs_outside_the_latent_models_range_raise_or_warn() -> None:
    lm = xg.LatentModel(nn.Identity(), nn.Identity(), 4, (1, 2, 2))  # value_range (-1, 1)
    with pytest.raises(ValueError, match=r"\[0, 255\].*expects \[-1, 1\]"):
        lm.check_value_range(torch.tensor([0.0, 255.0, 3.0, 4.0]).view(1, 1, 2, 2))
    with pytest.warns(UserWarning, match=r"only one half of the latent model's range \[-1, 1\]"):
        lm.check_value_range(torch.tensor([0.0, 0.5, 0.25, 1.0]).view(1, 1, 2, 2))
    lm.check_value_range(torch.tensor([-1.0, 0.5, 0.25, 1.0]).view(1, 1, 2, 2))  # silent
    # max-sensitivity's perturbations step a little outside the range: accepted, not an error
    lm.check_value_range(torch.tensor([-1.02, 0.5, 0.25, 1.02]).view(1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"expects \[-1, 1\]"):
        lm.check_value_range(torch.tensor([-1.0, 0.5, 0.25, 1.2]).view(1, 1, 2, 2))


def test_class_names_reach_the_saved_model_the_explanation_and_the_plot(tmp_path) -> None:
    from PIL import Image

    from xai_gen.data import ImageFolderDataset
    from xai_gen.models import load_classifier, save_classifier
    from xai_gen.recipes import ClassifierConfig, train_classifier

    for name in ("ring", "circle"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray((torch.rand(8, 8, 3) * 255).byte().numpy()).save(tmp_path / name / f"{i}.png")
    split = ImageFolderDataset(tmp_path, size=8).to_split(progress=False)
    assert split.class_names == ["circle", "ring"]  # alphabetical indices, now with their names
    clf = train_classifier(split.images, split.labels, ClassifierConfig(epochs=1, width=4, hidden=8),
                           progress=False, data={"class_names": split.class_names})
    clf = load_classifier(save_classifier(clf, tmp_path / "clf.safetensors"))
    exp = xg.Saliency().attribute(clf, split.images[:2], target=[0, 1])
    assert exp.class_names == ("circle", "ring")
    assert xg.Explanation.load(exp.save(tmp_path / "e.safetensors")).class_names == ("circle", "ring")
    fig = xg.viz.plot_grid(split.images[:2], {"saliency": exp})
    assert "class 'ring'" in [ax.get_ylabel() for ax in fig.axes]
    gvr = xg.Explanation(exp.attributions, exp.inputs, exp.targets, "gvr", counterfactuals=exp.inputs,
                         contrasts=torch.tensor([1, 0]), class_names=exp.class_names)
    from xai_gen.viz.generative import plot_gvr

    assert plot_gvr(gvr, 0)._suptitle.get_text().startswith("why 'circle' rather than 'ring'")


def test_comparison_and_job_name_the_classes_the_data_set_names() -> None:
    from xai_gen.cli._job import _bundled_source
    from xai_gen.compare import compare
    from xai_gen.data import synthetic_cxr
    from xai_gen.viz import plot_grid

    torch.manual_seed(0)
    data = synthetic_cxr(6, size=16, seed=0)
    model = xg.SmallCNN(image_size=16, num_classes=2, width=4, hidden=8)  # records no class names
    r = compare(["saliency"], model, data, metrics=["sparseness"], n=4, progress=False)
    exp = r.explanations["saliency"]
    assert exp.class_names == ("healthy", "diseased")
    labels = {ax.get_ylabel() for ax in plot_grid(r.images, r.explanations).axes}
    assert {"class 'healthy'", "class 'diseased'"} & labels
    assert _bundled_source("synthetic-cxr", type("B", (), {"test": data})()).class_names == ("healthy", "diseased")


# -- comparison report ------------------------------------------------------------------------
def test_report_tables_split_by_family_and_the_shared_gvr_path_is_stated() -> None:
    import numpy as np

    from xai_gen.compare import ComparisonResult
    from xai_gen.compare.report import index_markdown, results_markdown

    values = {m: {"deletion_auc": np.array([0.1, 0.2]), "sparseness": np.array([0.5, 0.6]),
                  "validity": np.array([1.0, 1.0])} for m in ("gvr", "latent_traversal")}
    r = ComparisonResult(["gvr", "latent_traversal"], ["deletion_auc", "sparseness", "validity"],
                         {"deletion_auc": False, "sparseness": True, "validity": True}, values,
                         {"gvr": 1.0, "latent_traversal": 1.0}, {}, torch.zeros(0), {},
                         meta={"params": {"latent_traversal": {"path": "gvr"}}})
    split = results_markdown(r, by_family=True)
    headers = [line for line in split.splitlines() if line.startswith("| ") and "---" not in line
               and not line.startswith(("| gvr", "| latent"))]
    assert headers == ["| faithfulness | deletion_auc ↓ |", "| complexity | sparseness ↑ |",
                       "| counterfactual | validity ↑ |", "| cost | s / explanation ↓ | peak memory ↓ |"]
    assert "latent_traversal walks GVR's path" in split
    assert "| faithfulness |" in index_markdown({"mnist": r}, 1.0, "xai-gen compare")
    r.meta["params"]["latent_traversal"]["path"] = "conditional"
    assert "walks GVR's path" not in results_markdown(r)
