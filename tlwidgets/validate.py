"""Argument checks at the public boundary: one helper per kind of value, one message format.

Every public function and widget setter checks its arguments with these, so a
wrong value is refused where it enters, with a message that names the
argument, what was given and what is allowed::

    n_per_class must be an integer >= 1 (or None for all), got 0 (int)

instead of an error from deep inside torch ("slice indices must be
integers"). NumPy integers and floats (and 0-d arrays and tensors) are
accepted wherever Python ones are (``np.int64(3)`` from ``np.arange`` is an
integer), and every check *returns a plain Python number*: callers keep the
returned value, so a seed or a size given as ``np.int64`` is stored as an
``int`` and never reaches ``json`` (a results row, a run log) as a NumPy
type, far from where it entered. ``bool`` is not a number here (``True`` as a
learning rate is a mistake, not 1.0).
"""
from __future__ import annotations

import difflib
import math
import numbers
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["check_int", "check_float", "check_lr", "check_candidates", "check_choice", "check_path", "check_bool",
           "describe", "ArgumentTypeError"]


class ArgumentTypeError(TypeError, ValueError):
    """A value of the wrong type. Both a TypeError and a ValueError, so either ``except`` catches it."""


def describe(value: Any) -> str:
    """``repr`` of a value with its type, shortened: what the message says was given."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def _range_text(min: float | None, max: float | None, *, min_open: bool = False, max_open: bool = False) -> str:
    if min is not None and max is not None:
        if not min_open and not max_open and isinstance(min, int) and isinstance(max, int):
            return f"in {min}..{max}"
        left, right = ("(" if min_open else "["), (")" if max_open else "]")
        return f"in {left}{min}, {max}{right}"
    if min is not None:
        return f"{'>' if min_open else '>='} {min}"
    if max is not None:
        return f"{'<' if max_open else '<='} {max}"
    return ""


def _scalar(value: Any) -> Any:
    """A 0-d NumPy array or torch tensor as the Python number it holds (``np.array(3)``, ``torch.tensor(0.1)``)."""
    if getattr(value, "ndim", None) == 0 and type(value).__module__.split(".")[0] in ("numpy", "torch") \
            and hasattr(value, "item"):
        return value.item()
    return value


def check_int(name: str, value: Any, *, min: int | None = None, max: int | None = None) -> int:
    """``value`` as a Python ``int`` (Python or NumPy integer, no bool, no float) within ``min..max``.

    Optional arguments check ``None`` themselves first: ``None if n is None else check_int("n", n)``.

    Args:
        name: the argument's name, as the caller wrote it (the message names it).
        value: what was given.
        min: the smallest allowed value (None: no lower bound).
        max: the largest allowed value (None: no upper bound).
    """
    allowed = f"an integer {_range_text(min, max)}".rstrip()
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = ""
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
                and float(value).is_integer():
            hint = f"; write {int(float(value))} without the decimal point"
        raise ArgumentTypeError(f"{name} must be {allowed}, got {describe(value)}{hint}")
    number = int(value)  # type: ignore[call-overload]  # numbers.Integral supports __int__
    if (min is not None and number < min) or (max is not None and number > max):
        raise ValueError(f"{name} must be {allowed}, got {number}")
    return number


def check_float(name: str, value: Any, *, min: float | None = None, max: float | None = None,
                min_open: bool = False, max_open: bool = False) -> float:
    """``value`` as a finite Python ``float`` (int, float or NumPy number; no bool) within the range.

    ``min_open`` / ``max_open`` exclude the end points (a fraction strictly
    between 0 and 1, a learning rate strictly above 0).

    Args:
        name: the argument's name, as the caller wrote it (the message names it).
        value: what was given.
        min: the lower end of the range (None: no lower bound).
        max: the upper end of the range (None: no upper bound).
        min_open: exclude ``min`` itself.
        max_open: exclude ``max`` itself.
    """
    allowed = f"a number {_range_text(min, max, min_open=min_open, max_open=max_open)}".rstrip()
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be {allowed}, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {allowed}, got {value} (not a finite number)")
    too_low = min is not None and (value <= min if min_open else value < min)
    too_high = max is not None and (value >= max if max_open else value > max)
    if too_low or too_high:
        raise ValueError(f"{name} must be {allowed}, got {value:g}")
    return value


def check_lr(value: Any, name: str = "lr") -> float:
    """A learning rate: a finite number > 0, as a Python ``float`` (the message shows a typical value)."""
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number (e.g. 1e-3), got {value!r}")
    return float(value)


def check_candidates(name: str, value: Any, check: Callable[[Any], Any]) -> list[Any]:
    """One value, or a non-empty list/tuple of candidates to choose from on validation; each passed to ``check``.

    Checking every candidate here, before any training, means a bad last entry (``lr=[1e-3, -1]``) is refused
    at once instead of after the first candidates have trained for minutes.

    Args:
        name: the argument's name (the messages name it, and the position of a bad candidate).
        value: one value or a list/tuple of them.
        check: ``value -> checked value`` for one candidate; its error is re-raised with the position.
    """
    many = isinstance(value, (list, tuple))
    values = list(value) if many else [value]
    if many and not values:
        raise ValueError(f"{name} is an empty list: give one value or a list of candidates to choose from")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(check(v))
        except (TypeError, ValueError) as exc:
            if not many:
                raise
            raise type(exc)(f"{name}[{i}]: {exc}") from None
    return out


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (Python or NumPy bool only: ``"False"`` is a truthy string, not a bool)."""
    if type(value).__name__ == "bool_" or isinstance(value, bool):
        return bool(value)
    raise ArgumentTypeError(f"{name} must be True or False, got {describe(value)}")


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``; otherwise an error listing them (and the closest match).

    The message reads "unknown backbone 'resnet5'; choose one of (...); did you mean 'resnet18'?".
    """
    choices = tuple(choices)
    try:
        if value in choices:
            return value
    except TypeError:  # unhashable / incomparable values are simply not a choice
        pass
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [c for c in choices if isinstance(c, str)], n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean {close[0]!r}?"
    given = repr(value) if isinstance(value, str) else describe(value)
    raise ValueError(f"unknown {name} {given}; choose one of {choices}{hint}")


def check_path(name: str, value: Any, *, must_exist: bool = False, kind: str | None = None) -> Path:
    """``value`` (a str or os.PathLike) as an expanded :class:`~pathlib.Path`.

    ``kind="dir"`` / ``"file"`` with ``must_exist=True`` also checks what is there.

    Args:
        name: the argument's name, as the caller wrote it (the message names it).
        value: what was given.
        must_exist: refuse a path where nothing is.
        kind: ``"dir"`` or ``"file"``: what must be there (with ``must_exist``); None accepts either.
    """
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise ArgumentTypeError(f"{name} must be a path (str or pathlib.Path), got {describe(value)}")
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"{name} must be a path, got an empty string")
    path = Path(value).expanduser()
    if must_exist:
        if not path.exists():
            raise FileNotFoundError(f"{name}: {path} does not exist")
        if kind == "dir" and not path.is_dir():
            raise NotADirectoryError(f"{name}: {path} is a file, expected a folder")
        if kind == "file" and not path.is_file():
            raise IsADirectoryError(f"{name}: {path} is a folder, expected a file")
    return path
