"""`xai-gen train RECIPE`: every recipe from the command line, writing weights and a report."""

from __future__ import annotations

import json

import pytest
from recipe_utils import same_weights

from xai_gen import recipes
from xai_gen.cli import main
from xai_gen.cli.train import apply_overrides
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel
from xai_gen.models import load_classifier

DATA = ["--data", "synthetic-cxr", "--n", "40", "--size", "32", "--quiet"]
TINY = {
    "autoencoder": ["latent_dim=8", "width=4", "epochs=1"],
    "classifier": ["epochs=1", "width=4", "hidden=8"],
    "head": ["epochs=2"],
    "wgan_gp": ["latent_dim=8", "width=4", "steps=2", "batch_size=8", "log_every=1"],
    "encoder": ["width=4", "epochs=1"],
    "conditional_gan": ["structural_dim=6", "class_dim=2", "width=4", "steps=2", "log_every=1",
                        "consistency_z1=4", "log_consistency_z1=2", "encoder.width=4", "encoder.epochs=1"],
}


def train(recipe, out, *extra):
    sets = [a for s in TINY[recipe] for a in ("--set", s)]
    return main(["train", recipe, *DATA, "--out", str(out), *sets, *extra])


def report(out, recipe):
    return json.loads((out / f"{recipe}.report.json").read_text())


def test_autoencoder_then_heads(tmp_path, capsys):
    assert train("autoencoder", tmp_path) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["metrics"]["reconstruction_mse"] == report(tmp_path, "autoencoder")["metrics"]["reconstruction_mse"]
    lm = LatentModel.load(tmp_path / "autoencoder.safetensors")
    assert lm.image_shape == (1, 32, 32) and lm.meta["data"]["name"] == "synthetic_cxr"
    for name in ("reconstructions", "samples", "loss_curves"):
        assert (tmp_path / f"autoencoder.{name}.png").is_file()
    assert train("head", tmp_path, "--task", "regression") == 0
    head = LatentClassifier.load(tmp_path / "head.safetensors")
    assert head.meta["task"] == "regression" and "test_mse" in report(tmp_path, "head")["metrics"]
    assert same_weights(head.latent_model, lm)


def test_wgan_then_encoder_with_a_reference_classifier(tmp_path):
    assert train("classifier", tmp_path) == 0
    assert "test_accuracy" in report(tmp_path, "classifier")["metrics"]
    assert train("wgan_gp", tmp_path) == 0
    assert "fd_samples" in report(tmp_path, "wgan_gp")["metrics"]  # classifier.safetensors is the reference
    assert train("encoder", tmp_path) == 0
    lm = LatentModel.load(tmp_path / "encoder.safetensors")
    assert same_weights(lm.generator, recipes.load_generator(tmp_path / "generator.safetensors"))
    assert {"val_mse", "val_laplacian"} <= set(lm.meta["history"][0])


def test_conditional_gan_trains_its_binary_classifier(tmp_path):
    assert train("conditional_gan", tmp_path) == 0
    cond = ConditionalLatentModel.load(tmp_path / "conditional_gan.safetensors")
    assert (cond.structural_dim, cond.class_dim) == (6, 2)
    assert load_classifier(tmp_path / "binary_classifier" / "classifier.safetensors").out.out_features == 2
    assert "class_consistency" in report(tmp_path, "conditional_gan")["training_metrics"]


def test_stop_then_resume_from_the_command_line(tmp_path, capsys):
    assert train("autoencoder", tmp_path, "--set", "stop_after=1", "--set", "epochs=2") == 0
    assert json.loads(capsys.readouterr().out)["stopped"] == "stop_after"
    assert train("autoencoder", tmp_path, "--set", "epochs=2", "--resume") == 0
    done = json.loads(capsys.readouterr().out)
    assert done["stopped"] is None and done["steps"] == 2  # 32 training patients: one batch per epoch


def test_bad_arguments_exit_with_a_message(tmp_path, capsys):
    assert main(["train", "autoencoder", *DATA, "--out", str(tmp_path), "--set", "depth=3"]) == 2
    assert "unknown config field" in capsys.readouterr().err
    assert main(["train", "autoencoder", "--data", "imagenet", "--out", str(tmp_path)]) == 2
    assert "--data must be" in capsys.readouterr().err
    assert main(["train", "encoder", *DATA, "--out", str(tmp_path / "empty")]) == 2
    assert "no weights file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "gan", *DATA, "--out", str(tmp_path)])


def test_overrides_reach_nested_configs_and_keep_types():
    cfg = apply_overrides(recipes.ConditionalGANConfig(), ["lr=0.001", "betas=0.1,0.2", "minutes=2",
                                                           "encoder.latent_weight=0.5", "stop_after=none"])
    assert cfg.lr == 0.001 and cfg.betas == (0.1, 0.2) and cfg.minutes == 2.0 and cfg.stop_after is None
    assert cfg.encoder.latent_weight == 0.5
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides(recipes.HeadConfig(), ["epochs"])
    with pytest.raises(ValueError, match="cannot read 'x' as int"):
        apply_overrides(recipes.HeadConfig(), ["epochs=x"])


def test_autoencoder_kl_trains_monais_network_and_resumes_to_the_same_weights(tmp_path, capsys):
    tiny = ["--set", "channels=8,8", "--set", "latent_channels=2", "--set", "norm_num_groups=4",
            "--set", "batch_size=16", "--set", "epochs=2", "--set", "adversarial_weight=0.1",
            "--set", "adversarial_start=1", "--set", "discriminator_channels=4"]
    run = ["train", "autoencoder_kl", *DATA, *tiny]
    assert main([*run, "--out", str(tmp_path / "whole")]) == 0
    whole = LatentModel.load(tmp_path / "whole" / "autoencoder_kl.safetensors")
    assert whole.latent_shape == (2, 16, 16) and whole.meta["recipe"] == "autoencoder_kl"
    assert "adversarial" in whole.meta["history"][-1] and "test_mse" in whole.meta["metrics"]
    assert main([*run, "--out", str(tmp_path / "parts"), "--set", "stop_after=2"]) == 0
    assert main([*run, "--out", str(tmp_path / "parts"), "--resume"]) == 0
    parts = LatentModel.load(tmp_path / "parts" / "autoencoder_kl.safetensors")
    assert same_weights(parts, whole)  # the data order and the code noise are the loop's
