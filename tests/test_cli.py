"""`xai-gen explain` and `xai-gen compare` on tiny bundles handed in through `bundle_loader`."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import xai_gen as xg
from xai_gen.cli import build_parser, main
from xai_gen.cli import compare as compare_cli
from xai_gen.cli import explain as explain_cli
from xai_gen.cli._setup import ALL_METHODS, parse_methods
from xai_gen.data import ImageSplit
from xai_gen.latent import nets


def tiny_bundle() -> SimpleNamespace:
    """Untrained small models and random 28x28 images: enough to exercise the commands."""
    torch.manual_seed(0)
    lm = xg.LatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=4, image_shape=(1, 28, 28), width=4),
        nets.spec("dcgan_encoder", out_dim=4, image_shape=(1, 28, 28), width=4),
    )
    images = torch.rand(12, 1, 28, 28) * 2 - 1
    return SimpleNamespace(
        classifier=xg.SmallCNN(width=4, hidden=8),
        latent_model=lm,
        conditional_model=None,
        test=ImageSplit(images, torch.arange(12) % 10),
    )


def loader(calls: list[str]):
    def load(dataset: str, cache_dir: Path, progress: bool) -> SimpleNamespace:
        calls.append(dataset)
        return tiny_bundle()

    return load


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_explain_writes_the_grid_and_the_timing_table(tmp_path, capsys):
    calls: list[str] = []
    args = parse(
        "explain", "--n", "3", "--methods", "saliency,gradcam", "--out", str(tmp_path / "ex")
    )
    assert explain_cli.run(args, bundle_loader=loader(calls)) == 0
    assert calls == ["mnist"]
    assert (tmp_path / "ex" / "grid.png").stat().st_size > 0
    timing = (tmp_path / "ex" / "timing.md").read_text()
    assert "| saliency |" in timing and "| gradcam |" in timing and "3 mnist images" in timing
    assert "grid.png" in capsys.readouterr().out


def test_compare_writes_a_report_per_data_set_and_an_index(tmp_path):
    calls: list[str] = []
    out = tmp_path / "report"
    args = parse(
        "compare",
        "--data",
        "all",
        "--methods",
        "saliency,occlusion",
        "--n",
        "4",
        "--metrics",
        "sparseness,deletion_auc",
        "--out",
        str(out),
    )
    assert compare_cli.run(args, bundle_loader=loader(calls)) == 0
    assert calls == ["mnist", "synthetic-cxr"]
    for dataset in calls:
        files = {p.name for p in (out / dataset).iterdir()}
        assert files == {
            "results.md",
            "results.json",
            "figure_grid.png",
            "metrics.png",
            "timing.png",
        }
    index = (out / "README.md").read_text()
    assert "Wall time:" in index and "## mnist" in index and "## synthetic-cxr" in index
    assert "| occlusion |" in index and "sparseness ↑" in index


def test_methods_all_means_the_eight_bundled_explainers():
    assert parse_methods("all") == list(ALL_METHODS) and len(ALL_METHODS) == 8
    assert parse_methods(" saliency ,lime") == ["saliency", "lime"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "--methods", "saliency,nope", "--out", "x"], "unknown explainer"),
        (["explain", "--n", "0", "--out", "x"], "--n must be >= 1"),
        (["explain", "--methods", "saliency,saliency", "--out", "x"], "twice"),
        (["compare", "--metrics", "bogus"], "unknown metric"),
        (["compare", "--n", "-1"], "--n must be >= 1"),
        (["compare", "--device", "nonsense"], "--device"),
    ],
)
def test_bad_values_give_a_clean_error_and_exit_code_2(
    argv, message, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # nothing may be trained or written: the check comes first
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["explain"],
        ["explain", "--data", "cifar", "--out", "x"],
        ["compare", "--n", "many"],
        ["compare", "--bogus"],
    ],
)
def test_malformed_command_lines_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: xai-gen" in capsys.readouterr().err


def test_explain_gif_animates_the_methods_with_frames(tmp_path, capsys):
    out = tmp_path / "ex"
    args = parse("explain", "--n", "2", "--methods", "saliency,latent_shift", "--gif", "--out", str(out))
    assert explain_cli.run(args, bundle_loader=loader([])) == 0
    assert sorted(p.name for p in (out / "gifs").iterdir()) == ["latent_shift.gif"]
    assert "latent_shift.gif" in capsys.readouterr().out
    args = parse("explain", "--n", "2", "--methods", "saliency", "--gif", "--out", str(tmp_path / "none"))
    assert explain_cli.run(args, bundle_loader=loader([])) == 0
    assert "none of the methods records frames" in capsys.readouterr().out
