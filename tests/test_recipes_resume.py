"""Checkpoints: a stopped or budget-limited run resumes exactly where it stopped, for every recipe."""

from __future__ import annotations

import pytest
import torch
from recipe_utils import RECIPES, run, same_weights, without_seconds

from xai_gen.recipes._checkpoint import load_checkpoint, save_checkpoint
from xai_gen.recipes._loop import TrainConfig, TrainingLoop


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_stop_then_resume_equals_the_uninterrupted_run(recipe, tmp_path):
    full = run(recipe, tmp_path / "full")
    # Step 5 is inside a logging window for every recipe (3 steps per epoch, or log_every 2).
    part = run(recipe, tmp_path / "part", stop_after=5)
    assert part.meta["steps"] == 5 and part.meta["stopped"] == "stop_after"
    resumed = run(recipe, tmp_path / "part", resume=True)
    assert resumed.meta["steps"] == full.meta["steps"] == full.meta["total_steps"]
    assert resumed.meta["stopped"] is None
    # History rows written before the stop are kept; later ones are what the full run logged.
    assert without_seconds(resumed.meta["history"]) == without_seconds(full.meta["history"])
    assert same_weights(resumed, full)


def test_budget_stops_cleanly_and_resume_continues(tmp_path):
    # A budget of 60 microseconds is spent by the first step, whatever the machine.
    short = run("autoencoder", tmp_path, minutes=1e-6)
    assert short.meta["stopped"] == "budget" and short.meta["steps"] == 1
    assert (tmp_path / "autoencoder.ckpt.safetensors").is_file()
    assert (tmp_path / "autoencoder.safetensors").is_file()
    done = run("autoencoder", tmp_path, resume=True)
    assert done.meta["steps"] == done.meta["total_steps"] and done.meta["stopped"] is None
    assert same_weights(done, run("autoencoder"))


def test_resuming_a_finished_run_trains_nothing(tmp_path):
    first = run("classifier", tmp_path)
    again = run("classifier", tmp_path, resume=True)
    assert same_weights(first, again) and again.meta["history"] == first.meta["history"]


def test_resume_with_another_config_is_refused(tmp_path):
    run("autoencoder", tmp_path, stop_after=2)
    with pytest.raises(ValueError, match=r"config differs \(lr"):
        run("autoencoder", tmp_path, resume=True, lr=0.5)
    # Budgets and lengths may change between a run and its resumption.
    longer = run("autoencoder", tmp_path, resume=True, epochs=3)
    assert longer.meta["steps"] == longer.meta["total_steps"] == (3 + 1) * 3


def test_resume_without_out_dir_is_refused():
    with pytest.raises(ValueError, match="resume=True needs an out_dir"):
        run("classifier", None, resume=True)


def test_checkpoint_of_another_recipe_is_refused(tmp_path):
    run("classifier", tmp_path, stop_after=1)
    (tmp_path / "classifier.ckpt.safetensors").rename(tmp_path / "head.ckpt.safetensors")
    with pytest.raises(ValueError, match="is a checkpoint of 'classifier', not of 'head'"):
        run("head", tmp_path, resume=True)


def test_truncated_and_foreign_checkpoints_are_refused(tmp_path):
    run("classifier", tmp_path, stop_after=1)
    ckpt = tmp_path / "classifier.ckpt.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:-64])
    with pytest.raises(ValueError, match="truncated or foreign"):
        run("classifier", tmp_path, resume=True)
    model = run("classifier", tmp_path / "other")
    (tmp_path / "other" / "classifier.safetensors").replace(ckpt)  # a weights file, not a checkpoint
    with pytest.raises(ValueError, match="expected a 'checkpoint'"):
        run("classifier", tmp_path, resume=True)
    assert model.meta["steps"] > 0


def test_adam_state_and_random_state_round_trip_bit_exactly(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.5, 0.9))
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
    gen = torch.Generator().manual_seed(7)
    torch.rand(5, generator=gen)
    path = save_checkpoint(tmp_path / "c.safetensors", {"net": net}, {"opt": opt}, {"g": gen}, {"step": 3})
    expected_global, expected_gen = torch.rand(3), torch.rand(3, generator=gen)

    torch.manual_seed(123)
    net2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters(), lr=1.0)
    gen2 = torch.Generator()
    meta = load_checkpoint(path, {"net": net2}, {"opt": opt2}, {"g": gen2})
    assert meta["step"] == 3
    assert torch.equal(torch.rand(3), expected_global) and torch.equal(torch.rand(3, generator=gen2), expected_gen)
    assert torch.equal(net.weight, net2.weight)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"] and b["param_groups"][0]["betas"] == (0.5, 0.9)
    for pid, state in a["state"].items():
        for k, v in state.items():
            assert torch.equal(v, b["state"][pid][k]), (pid, k)
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file must be renamed away"


def test_loop_validates_its_arguments():
    with pytest.raises(ValueError, match="minutes"):
        TrainingLoop("x", TrainConfig(minutes=0), 1, 1, {}, {})
    with pytest.raises(ValueError, match="total_steps"):
        TrainingLoop("x", TrainConfig(), 0, 1, {}, {})
