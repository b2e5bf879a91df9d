"""Checks of scalar settings; errors name the argument.

`positive_int` and `positive_float` raise a TypeError for a value of the wrong type; the
`check_*` functions, which the explainers' settings use, raise a ValueError for any bad value.
"""

from __future__ import annotations

import math


def is_number(value: object) -> bool:
    """An int or a float, and not a bool (which `isinstance(True, int)` would let through).

    Example:
        >>> is_number(0.5), is_number(2), is_number(True), is_number("1")
        (True, True, False, False)
    """
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: object) -> bool:
    """An int, and not a bool.

    Example:
        >>> is_int(3), is_int(3.0), is_int(False)
        (True, False, False)
    """
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(value: object, name: str, allow_none: bool = False) -> int | None:
    """`value` if it is an int >= 1 (or None when `allow_none`).

    Raises:
        TypeError: not an int (a bool is not accepted).
        ValueError: smaller than 1.

    Example:
        >>> positive_int(3, "n_steps")
        3
        >>> positive_int(0, "n_steps")
        Traceback (most recent call last):
        ...
        ValueError: n_steps must be >= 1, got 0
    """
    if value is None and allow_none:
        return None
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def positive_float(value: object, name: str, allow_zero: bool = False) -> float:
    """`value` as a float if it is a finite number > 0 (>= 0 with `allow_zero`).

    Raises:
        TypeError: not a number (a bool is not accepted).
        ValueError: out of range, NaN or infinite.

    Example:
        >>> positive_float(0, "sigma", allow_zero=True)
        0.0
    """
    if not is_number(value):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    ok = value >= 0 if allow_zero else value > 0
    if not ok or not math.isfinite(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return float(value)


# The checks below are the explainers' settings': any bad value, of the wrong type or out of
# range, is one ValueError naming the setting and the values it accepts, so that a caller
# catches one exception type for a bad setting, whatever was wrong with it.


def check_int(value: object, name: str, low: int, allow_none: bool = False) -> int | None:
    """`value` if it is an int >= `low` (or None when `allow_none`).

    Raises:
        ValueError: not an int (a bool is not accepted), or smaller than `low`.

    Example:
        >>> check_int(0, "max_steps", 0)
        0
        >>> check_int(True, "patience", 1, allow_none=True)
        Traceback (most recent call last):
        ...
        ValueError: patience must be None or an int >= 1, got True
    """
    if value is None and allow_none:
        return None
    if not is_int(value) or value < low:
        either = "None or " if allow_none else ""
        raise ValueError(f"{name} must be {either}an int >= {low}, got {value!r}")
    return value


def check_number(
    value: object,
    name: str,
    low: float | None = None,
    *,
    strict: bool = False,
    finite: bool = False,
    allow_none: bool = False,
) -> float | None:
    """`value` if it is a number `>= low` (`> low` when `strict`), finite when `finite`.

    `value` is returned as given (an int stays an int), so a setting reads back as it was set.
    NaN is never accepted where a bound is given, nor when `finite`.

    Args:
        value: the setting.
        name: its name, for the message.
        low: the lower bound; None: no bound.
        strict: the bound itself is excluded.
        finite: infinities (and NaN) are rejected.
        allow_none: None is accepted (and returned).

    Raises:
        ValueError: not a number (a bool is not accepted), out of range, or not finite.

    Example:
        >>> check_number(0.3, "lr", 0, strict=True)
        0.3
        >>> check_number(float("inf"), "step", 0, strict=True, finite=True)
        Traceback (most recent call last):
        ...
        ValueError: step must be a finite number > 0, got inf
        >>> check_number(None, "floor", finite=True, allow_none=True) is None
        True
    """
    if value is None and allow_none:
        return None
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if strict else value >= low
    if ok and finite:
        ok = math.isfinite(value)
    if not ok:
        kind = "a finite number" if finite else "a number"
        bound = "" if low is None else f" {'>' if strict else '>='} {low}"
        either = " or None" if allow_none else ""
        raise ValueError(f"{name} must be {kind}{bound}{either}, got {value!r}")
    return value


def check_probability(value: object, name: str, context: str = "") -> float:
    """`value` if it is a number in (0, 1]; `context` ends the message's description.

    Raises:
        ValueError: not a number (a bool is not accepted), or outside (0, 1].

    Example:
        >>> check_probability(0.9999, "kappa")
        0.9999
        >>> check_probability(1.5, "cutoff", " for a classifier")
        Traceback (most recent call last):
        ...
        ValueError: cutoff must be a probability in (0, 1] for a classifier, got 1.5
    """
    if not (is_number(value) and 0 < value <= 1):
        raise ValueError(f"{name} must be a probability in (0, 1]{context}, got {value!r}")
    return value


def check_choice(value: object, name: str, choices: tuple[object, ...]) -> object:
    """`value` if it is one of `choices`.

    Raises:
        ValueError: any other value.

    Example:
        >>> check_choice("int", "heat_map", ("int", "max", "mean"))
        'int'
        >>> check_choice("mm", "heat_map", ("int", "max", "mean"))
        Traceback (most recent call last):
        ...
        ValueError: heat_map must be one of ('int', 'max', 'mean'), got 'mm'
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value
