"""The shared helpers: image checks with explicit options, devices, chunked calls, model state."""

from __future__ import annotations

import pytest
import torch
from recipe_utils import images, labels, tiny_generator, tiny_lm
from torch import nn

from xai_gen._core.batching import chunked
from xai_gen._core.checks import check_images
from xai_gen._core.devices import model_device, resolve_device
from xai_gen._core.state import evaluating, frozen_copy, preserved
from xai_gen.recipes.encoder import EncoderConfig, fit_encoder
from xai_gen.recipes.heads import HeadConfig, train_head


def test_check_images_options_decide_single_images_and_counts():
    batch, single = check_images(torch.zeros(1, 4, 4))
    assert batch.shape == (1, 1, 4, 4) and single
    with pytest.raises(ValueError, match="images must be a float tensor"):
        check_images(torch.zeros(1, 4, 4), "images", allow_single=False)
    with pytest.raises(ValueError, match="at least 3 images, got 2"):
        check_images(torch.zeros(2, 1, 4, 4), "images", min_count=3)
    with pytest.raises(TypeError, match="train_x must be a floating-point tensor"):
        check_images(torch.zeros(2, 1, 4, 4, dtype=torch.long), "train_x")


def test_resolve_device_names_the_argument():
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="--device"):
        resolve_device("gpu0", "--device")
    assert model_device(lambda x: x) == torch.device("cpu")


def test_chunked_matches_one_call_and_calls_in_chunks():
    sizes = []

    def double(b: torch.Tensor) -> torch.Tensor:
        sizes.append(len(b))
        return b * 2

    x = torch.arange(7.0)
    assert torch.equal(chunked(double, x, 3), x * 2) and sizes == [3, 3, 1]
    sizes.clear()
    assert torch.equal(chunked(double, x, None), x * 2) and sizes == [7]


def test_state_managers_restore_modes_flags_and_grads_also_on_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    net[0].weight.requires_grad_(False)
    net[0].bias.grad = torch.ones(2)
    with pytest.raises(RuntimeError), evaluating(net, nn.Linear(1, 1)):
        assert not net.training and not torch.is_grad_enabled()
        raise RuntimeError
    assert net.training and net[1].training
    assert not net[0].weight.requires_grad and net[0].bias.requires_grad
    assert torch.equal(net[0].bias.grad, torch.ones(2))
    with preserved(net):
        assert not any(p.requires_grad for p in net.parameters())
    copy_ = frozen_copy(net)
    assert copy_ is not net and not copy_.training and net.training


def test_fit_encoder_leaves_the_callers_generator_as_it_was():
    generator = tiny_generator().train()
    next(generator.parameters()).requires_grad_(False)  # a caller's own freezing must survive too
    modes = [m.training for m in generator.modules()]
    flags = [p.requires_grad for p in generator.parameters()]
    weights = {k: v.clone() for k, v in generator.state_dict().items()}
    fit_encoder(generator, images(16), EncoderConfig(width=4, epochs=1, batch_size=8), progress=False)
    assert [m.training for m in generator.modules()] == modes
    assert [p.requires_grad for p in generator.parameters()] == flags
    assert all(torch.equal(v, generator.state_dict()[k]) for k, v in weights.items())


def test_train_head_leaves_the_latent_model_as_it_was():
    lm = tiny_lm().train()
    head = train_head(lm, images(16), labels(16), config=HeadConfig(epochs=1, batch_size=8), progress=False)
    assert lm.training and all(m.training for m in lm.modules())
    assert head.latent_model is not lm and not head.training
