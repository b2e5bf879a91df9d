"""`--set KEY=VALUE`: settings of a config dataclass, each read as its declared field type."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def parse_value(text: str, hint: Any, key: str) -> Any:
    """`text` read as a value of the type `hint` (`int`, `float`, `bool`, `str`, `X | None`, `tuple[...]`).

    Args:
        text: the value as written on the command line; `none` means None where it is allowed;
            a tuple is written comma-separated.
        hint: the field's declared type.
        key: the setting's name, for error messages.

    Raises:
        ValueError: `text` is not a value of that type (the message names the key).

    Example:
        >>> parse_value("0.5,0.9", tuple[float, float], "betas")
        (0.5, 0.9)
        >>> parse_value("none", int | None, "stop_after") is None
        True
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if text.lower() == "none" and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return parse_value(text, option, key)
            except ValueError:
                continue
        raise ValueError(f"--set {key}: cannot read {text!r} as {_type_name(hint)}")
    if origin is tuple:
        parts = [p.strip() for p in text.split(",")]
        variadic = len(args) == 2 and args[1] is Ellipsis
        if not variadic and len(parts) != len(args):
            raise ValueError(f"--set {key}: expected {len(args)} comma-separated values, got {text!r}")
        kinds = [args[0]] * len(parts) if variadic else list(args)
        return tuple(parse_value(p, kind, key) for p, kind in zip(parts, kinds, strict=True))
    if hint is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"--set {key}: expected true or false, got {text!r}")
        return text.lower() in ("true", "1")
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError as err:
            raise ValueError(f"--set {key}: cannot read {text!r} as {hint.__name__}") from err
    if hint is str:
        return text
    raise ValueError(f"--set {key}: fields of type {_type_name(hint)} cannot be set from the command line")


def apply_overrides(config: Any, pairs: list[str]) -> Any:
    """Set `KEY=VALUE` pairs (dotted keys reach nested configs) on a config dataclass, in place.

    Each value is read as the type its field declares.

    Raises:
        ValueError: a pair without `=`, an unknown key (the message lists the accepted ones),
            or a value that is not of the field's type.

    Example:
        >>> from xai_gen import recipes
        >>> cfg = apply_overrides(recipes.ConditionalGANConfig(), ["steps=5", "encoder.epochs=2"])
        >>> cfg.steps, cfg.encoder.epochs
        (5, 2)
    """
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        key = key.strip()
        target, path = config, key.split(".")
        for depth, name in enumerate(path):
            hints = typing.get_type_hints(type(target))
            names = sorted(f.name for f in dataclasses.fields(target))
            if name not in names:
                where = ".".join(path[:depth]) or "the config"
                raise ValueError(f"--set {key}: unknown config field {name!r} of {where}; accepted: {names}")
            if depth < len(path) - 1:
                target = getattr(target, name)
                if not dataclasses.is_dataclass(target):
                    raise ValueError(f"--set {key}: {name!r} is a single setting, not a group")
            elif dataclasses.is_dataclass(hints[name]):
                raise ValueError(f"--set {key}: {name!r} is a group of settings; set {key}.FIELD")
            else:
                setattr(target, name, parse_value(text.strip(), hints[name], key))
    return config
