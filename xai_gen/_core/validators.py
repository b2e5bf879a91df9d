"""Checks of scalar settings; errors name the argument."""

from __future__ import annotations

import math


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
    if isinstance(value, bool) or not isinstance(value, int):
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
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    ok = value >= 0 if allow_zero else value > 0
    if not ok or not math.isfinite(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return float(value)


def non_negative_int(value: object, name: str) -> int:
    """`value` if it is an int >= 0.

    Raises:
        TypeError: not an int (a bool is not accepted).
        ValueError: negative.

    Example:
        >>> non_negative_int(0, "expensive_n")
        0
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value
