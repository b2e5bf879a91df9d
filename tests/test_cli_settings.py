"""Command-line settings: `--set` reads each value as its field's declared type; data-set settings."""

from __future__ import annotations

import inspect

import pytest

from xai_gen import recipes
from xai_gen.cli._overrides import apply_overrides, parse_value
from xai_gen.cli._setup import DATASETS
from xai_gen.explainer import explainer_class


@pytest.mark.parametrize(
    ("text", "hint", "value"),
    [
        ("3", int, 3),
        ("3", float, 3.0),
        ("1e-3", float | None, 1e-3),
        ("None", int | None, None),
        ("false", bool, False),
        ("0.5, 0.9", tuple[float, float], (0.5, 0.9)),
        ("1,2,3", tuple[int, ...], (1, 2, 3)),
        ("adam", str, "adam"),
    ],
)
def test_values_are_read_as_the_declared_type(text, hint, value):
    parsed = parse_value(text, hint, "key")
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("text", "hint", "match"),
    [
        ("2.5", int, "key: cannot read '2.5' as int"),
        ("none", int, "cannot read 'none' as int"),
        ("yes", bool, "expected true or false"),
        ("0.5", tuple[float, float], "expected 2 comma-separated values"),
    ],
)
def test_bad_values_name_the_key(text, hint, match):
    with pytest.raises(ValueError, match=match):
        parse_value(text, hint, "key")


def test_unknown_keys_list_the_accepted_ones():
    with pytest.raises(ValueError, match=r"encoder\.depth.*accepted: \[.*'latent_weight'"):
        apply_overrides(recipes.ConditionalGANConfig(), ["encoder.depth=3"])
    with pytest.raises(ValueError, match="group of settings"):
        apply_overrides(recipes.ConditionalGANConfig(), ["encoder=3"])
    with pytest.raises(ValueError, match="single setting"):
        apply_overrides(recipes.ConditionalGANConfig(), ["lr.x=3"])


def test_every_data_set_setting_is_a_parameter_of_its_explainer():
    for dataset, settings in DATASETS.items():
        for method, params in settings.explainers.items():
            accepted = inspect.signature(explainer_class(method)).parameters
            unknown = set(params) - set(accepted)
            assert not unknown, f"{dataset}: {method} takes no {sorted(unknown)}"
