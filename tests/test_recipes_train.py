"""Recipes learn: losses fall, inversion beats the encoder, files round-trip, bad files are refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from recipe_utils import images, labels, run, same_weights, tiny_generator, tiny_lm
from torch import nn

from xai_gen import recipes
from xai_gen.latent import ConditionalLatentModel, LatentClassifier, LatentModel, nets
from xai_gen.models import load_classifier
from xai_gen.recipes.conditional_gan import class_consistency
from xai_gen.recipes.wgan_gp import critic_step


def _mse(lm: LatentModel, x: torch.Tensor) -> float:
    with torch.no_grad():
        return F.mse_loss(lm.reconstruct(x), x).item()


@pytest.fixture(scope="module")
def autoencoder() -> LatentModel:
    return run("autoencoder", epochs=15, batch_size=8, adversarial_epochs=0, lr=1e-2)


def test_autoencoder_lowers_the_held_out_error(autoencoder):
    x = images(8, 1)
    assert _mse(autoencoder, x) < 0.1 * _mse(tiny_lm(), x)
    history = autoencoder.meta["history"]
    assert [row["epoch"] for row in history] == list(range(1, 16))
    assert history[-1]["laplacian"] < history[0]["laplacian"]
    assert autoencoder.meta["metrics"]["test_mse"] == pytest.approx(_mse(autoencoder, x), rel=1e-4)


def test_invert_beats_the_autoencoders_encoder(autoencoder):
    x = images(8, 1)
    z = autoencoder.invert(x, steps=40, lr=0.05)
    with torch.no_grad():
        refined = F.mse_loss(autoencoder.decode(z), x).item()
    assert refined < 0.9 * _mse(autoencoder, x)


def test_classifier_and_heads_learn():
    clf = run("classifier", epochs=6, lr=1e-2)
    assert clf.meta["history"][-1]["loss"] < clf.meta["history"][0]["loss"]
    head = run("head", epochs=10)
    assert head.meta["history"][-1]["loss"] < head.meta["history"][0]["loss"]
    assert head.meta["metrics"]["train_accuracy"] > 0.5
    targets = images().mean((1, 2, 3))  # a continuous target the codes can predict
    reg = recipes.train_head(tiny_lm(), images(), targets, "linear", "regression",
                             recipes.HeadConfig(epochs=20, batch_size=16), progress=False)
    rows = reg.meta["history"]
    assert rows[-1]["train_mse"] < rows[0]["train_mse"] and reg(images()[:2]).shape == (2, 1)


def test_encoder_lowers_the_validation_loss_against_a_frozen_generator(autoencoder):
    generator = autoencoder.generator  # a decoder that can draw the data
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    cfg = recipes.EncoderConfig(width=4, epochs=10, batch_size=8, lr=1e-2)
    lm = recipes.train_encoder(generator, images(), cfg, progress=False)
    rows = lm.meta["history"]
    assert set(rows[0]) >= {"train_mse", "train_laplacian", "val_mse", "val_laplacian"}
    assert rows[-1]["val_laplacian"] < 0.5 * rows[0]["val_laplacian"]
    assert lm.meta["data"]["n_train"] == 45 and lm.meta["data"]["n_validation"] == 3  # 15 : 1
    assert same_weights(lm.generator, generator) and lm.generator is not generator
    assert all(torch.equal(v, generator.state_dict()[k]) for k, v in before.items())
    assert all(p.requires_grad for p in generator.parameters())


def test_wgan_critic_steps_raise_the_wasserstein_estimate():
    torch.manual_seed(0)
    critic = nets.build(nets.spec("dcgan_encoder", out_dim=1, image_shape=(1, 28, 28), width=4))
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    real, fake = images(16), torch.zeros(16, 1, 28, 28)
    gen = torch.Generator().manual_seed(0)
    logs = [critic_step(critic, opt, real, fake, 10.0, gen) for _ in range(15)]
    assert logs[-1]["wasserstein"] > logs[0]["wasserstein"] + 0.1
    g = run("wgan_gp")
    assert g.meta["steps"] == 6 and {"critic", "wasserstein", "gp", "generator"} <= set(g.meta["history"][0])


@pytest.mark.parametrize(
    ("recipe", "start", "first_decayed", "length"),
    # wgan_gp: 6 steps, decay from step 4 (step 4 at the full rate, step 5 at half of it);
    # conditional_autoencoder: 3 epochs of 3 steps, decay from epoch 2, i.e. from step 6.
    [("wgan_gp", 4, 5, {"steps": 8}), ("conditional_autoencoder", 2, 7, {"epochs": 3})],
)
def test_learning_rate_decay_changes_only_the_steps_after_its_start(recipe, start, first_decayed, length, tmp_path):
    stop = {"stop_after": first_decayed}
    assert same_weights(run(recipe, **stop), run(recipe, **stop, lr_decay_start=start))
    decayed = run(recipe, lr_decay_start=start)
    assert not same_weights(decayed, run(recipe))
    # A run stopped inside the decay resumes onto the uninterrupted run's weights.
    run(recipe, tmp_path, **stop, lr_decay_start=start)
    assert same_weights(run(recipe, tmp_path, resume=True, lr_decay_start=start), decayed)
    with pytest.raises(ValueError, match="decay must start in"):
        run(recipe, lr_decay_start=100)
    # The run may grow before its decay has begun, not after.
    run(recipe, tmp_path / "early", stop_after=first_decayed - 1, lr_decay_start=start)
    longer = run(recipe, tmp_path / "early", resume=True, lr_decay_start=start, **length)
    assert longer.meta["steps"] == longer.meta["total_steps"] > decayed.meta["total_steps"]
    with pytest.raises(ValueError, match="learning rate has been falling since step"):
        run(recipe, tmp_path, resume=True, lr_decay_start=start, **length)


class _Brightness(nn.Module):
    """Binary classifier: positive exactly when the mean pixel is above `-offset` (logits (N, 2))."""

    def __init__(self, offset: float = 0.0) -> None:
        super().__init__()
        self.offset = offset
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x.flatten(1).mean(1) + self.offset) * self.scale
        return torch.stack([-m, m], dim=1)


def test_conditional_gan_learns_the_class_from_the_frozen_classifier():
    clf = _Brightness(offset=0.85)  # the bump images have mean pixels around -0.85
    cfg = recipes.ConditionalGANConfig(
        structural_dim=4, class_dim=2, width=4, steps=120, batch_size=16, lr=5e-3, classifier_weight=5.0,
        log_every=20, consistency_z1=50, encoder=recipes.EncoderConfig(width=4, epochs=2, batch_size=16))
    cond = recipes.train_conditional_gan(images(), labels(), clf, cfg, progress=False)
    assert isinstance(cond, ConditionalLatentModel) and cond.structural_dim == 4 and cond.class_dim == 2
    assert cond.meta["history"][-1]["classifier_ce"] < 0.1 * cond.meta["history"][0]["classifier_ce"]
    # Untrained, every sample is grey and "positive" (3 of 4 right); trained (0.96 here) well above.
    assert cond.meta["metrics"]["class_consistency"] > 0.85
    assert clf.scale.requires_grad and clf.scale.item() == 20.0  # the classifier is untouched
    x = images(6, 2)
    with torch.no_grad():
        start = F.mse_loss(cond.reconstruct(x), x, reduction="none").flatten(1).mean(1)
    z = cond.invert(x, classifier=clf, steps=30, lam=0.1)
    with torch.no_grad():
        refined = F.mse_loss(cond.decode(z), x, reduction="none").flatten(1).mean(1)
    assert refined.mean() < start.mean()


def _decoder(value_of_z2: nn.Module) -> ConditionalLatentModel:
    cond = ConditionalLatentModel.from_specs(
        nets.spec("dcgan_generator", latent_dim=6, image_shape=(1, 28, 28), width=4),
        nets.spec("dcgan_encoder", out_dim=6, image_shape=(1, 28, 28), width=4), structural_dim=4)
    cond.generator = value_of_z2
    return cond


class _Z2Norm(nn.Module):
    """Generator stand-in: a constant image whose value is |z2| (0 exactly when z2 = 0)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, 4:].norm(dim=1).view(-1, 1, 1, 1).expand(-1, 1, 28, 28)


class _Constant(nn.Module):
    def __init__(self, logit: float) -> None:
        super().__init__()
        self.logit = nn.Parameter(torch.tensor(logit))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit.expand(len(x), 1)


@pytest.mark.parametrize(("classifier", "expected"), [
    (_Brightness(), 1.0),   # positive exactly when z2 != 0: always right
    (_Constant(5.0), 0.75),  # always positive: right on the 3 positive samples of 4
    (_Constant(-5.0), 0.25),  # always negative: right on the 1 negative sample of 4
])
def test_class_consistency_known_values(classifier, expected):
    assert class_consistency(_decoder(_Z2Norm()), classifier, n_z1=37, seed=3, batch_size=10) == expected


def test_weights_files_round_trip_bit_exactly(tmp_path):
    for recipe, load in [("autoencoder", LatentModel.load), ("encoder", LatentModel.load),
                         ("wgan_gp", recipes.load_generator), ("classifier", load_classifier),
                         ("head", LatentClassifier.load), ("conditional_gan", ConditionalLatentModel.load)]:
        model = run(recipe, tmp_path / recipe)
        name = {"wgan_gp": "generator"}.get(recipe, recipe)
        back = load(tmp_path / recipe / f"{name}.safetensors")
        assert same_weights(model, back), recipe
        assert back.meta["recipe"] == recipe and back.meta["history"] == model.meta["history"], recipe
        assert not back.training


def test_bad_generator_files_are_refused(tmp_path):
    path = recipes.save_generator(tiny_generator(), tmp_path / "g.safetensors")
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(ValueError, match="truncated or foreign"):
        recipes.load_generator(truncated)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="truncated or foreign"):
        recipes.load_generator(junk)
    with pytest.raises(ValueError, match="expected a 'generator'"):
        recipes.load_generator(tiny_lm().save(tmp_path / "lm.safetensors"))
    with pytest.raises(ValueError, match="no .spec"):
        recipes.save_generator(nn.Linear(2, 2), tmp_path / "x.safetensors")


def test_bad_training_inputs_are_named():
    with pytest.raises(ValueError, match="images must be a float tensor"):
        recipes.train_autoencoder(torch.zeros(4, 28, 28), progress=False)
    with pytest.raises(ValueError, match="images contains NaN"):
        recipes.train_autoencoder(torch.full((4, 1, 28, 28), float("nan")), progress=False)
    with pytest.raises(ValueError, match="labels must be a \\(N,\\) tensor of 0"):
        recipes.train_conditional_gan(images(), torch.arange(48), _Brightness(), progress=False)
    with pytest.raises(ValueError, match="task must be one of"):
        recipes.train_head(tiny_lm(), images(), labels(), task="ranking", progress=False)
    with pytest.raises(ValueError, match="head kind"):
        recipes.train_head(tiny_lm(), images(), labels(), kind="forest", progress=False)
    with pytest.raises(ValueError, match="device"):
        recipes.train_classifier(images(), labels(), progress=False,
                                 device="cuda" if not torch.cuda.is_available() else "tpu")



def test_conditional_autoencoder_puts_the_class_in_z2_alone():
    clf = _Brightness(offset=0.85)
    x = images()
    y = clf(x).argmax(1)  # the classes as the frozen classifier sees them
    assert 0 < int(y.sum()) < len(y)
    cfg = recipes.ConditionalAutoencoderConfig(structural_dim=4, class_dim=2, width=4, epochs=40, batch_size=16,
                                               lr=5e-3, warmup_epochs=5, consistency_z1=50)
    cond = recipes.train_conditional_autoencoder(x, y, clf, cfg, progress=False)
    rows = cond.meta["history"]
    assert isinstance(cond, ConditionalLatentModel) and (cond.structural_dim, cond.class_dim) == (4, 2)
    assert rows[-1]["laplacian"] < rows[0]["laplacian"]
    # Untrained, every sample is grey and "positive" (3 of 4 right); trained well above.
    assert cond.meta["metrics"]["class_consistency"] > 0.85
    assert clf.scale.requires_grad and clf.scale.item() == 20.0  # the classifier is untouched
    # z2 = 0 decodes the negative class from any z1, a growing z2 raises P(positive).
    z1 = torch.randn(20, 4, generator=torch.Generator().manual_seed(1))
    z2 = torch.randn(20, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        p = torch.stack([clf(cond.generate(z1, t * z2)).softmax(1)[:, 1] for t in (0.0, 0.5, 1.0)], 1)
    assert (p[:, 0] < 0.5).float().mean() >= 0.9
    assert (p[:, 2] > p[:, 0]).float().mean() >= 0.9


def test_mmd_to_normal_is_small_for_normal_codes_only():
    g = torch.Generator().manual_seed(0)
    prior = torch.randn(256, 4, generator=g)
    assert recipes.mmd_to_normal(torch.randn(256, 4, generator=g), prior) < 0.02
    assert recipes.mmd_to_normal(torch.randn(256, 4, generator=g) * 0.2, prior) > 0.1
