"""Exercise checks for the lessons: ``from tlwidgets import checks; checks.lesson2.exercise1(answer)``.

A check never raises on a wrong answer: it prints a pass or a hint and
returns a :class:`CheckResult`, which is truthy when the answer is right, so
solution notebooks can ``assert checks.lesson2.exercise1(answer)``.

What a student passes is typed ``Any`` on purpose: a check takes whatever
the notebook holds (the untouched ``...``, a string, a tensor, a function),
validates it itself and answers with a hint, rather than promise a type it
would then have to enforce with a traceback.
"""
from __future__ import annotations

import importlib
from collections.abc import Collection
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

__all__ = ["CheckResult", "passed", "not_yet", "is_integer", "is_placeholder", "as_integer", "as_number",
           "as_count", "need_prediction"]


def is_integer(x: Any) -> bool:
    """A Python or NumPy integer, or a one-element integer tensor; never a bool.

    Students compute answers with whatever is at hand (``np.prod(shape)``,
    ``tensor.sum()``), so a check must not refuse a correct integer for its type.
    """
    if isinstance(x, bool):
        return False
    if isinstance(x, Integral):
        return True
    dtype = getattr(x, "dtype", None)
    return (hasattr(x, "numel") and x.numel() == 1 and getattr(dtype, "is_floating_point", True) is False
            and "bool" not in str(dtype))


def is_placeholder(x: Any) -> bool:
    """True for an answer the student has not touched yet: the lessons' ``...`` (or an older ``None``).

    Every check tests this first and answers with a hint, never an exception
    and never a pass, whatever else the placeholder might happen to satisfy.
    """
    return x is None or x is Ellipsis


def as_integer(answer: Any, name: str, what: str = "an integer") -> int:
    """``answer`` as an int, or a ValueError naming the exercise, what it expects and what it got.

    A wrong *type* is a bug in the student's cell, not a wrong answer: it raises (with the argument named)
    instead of printing a hint, so the traceback points at the line to fix.
    """
    if not is_integer(answer):
        raise ValueError(f"{name} expects {what}, got {type(answer).__name__}")
    return int(answer)


def as_number(answer: Any, name: str, what: str = "a number (a float)") -> float:
    """``answer`` as a float (a one-element tensor's ``.item()`` accepted), or a ValueError as in
    :func:`as_integer`; bools are refused, since ``True`` is an int to Python but never a measured number."""
    if hasattr(answer, "numel") and hasattr(answer, "item") and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, Real):
        raise ValueError(f"{name} expects {what}, got {type(answer).__name__}")
    return float(answer)


def as_count(answer: Any, name: str, what: str = "a count (a whole number)") -> int | float:
    """``answer`` as a count: an int when it is a whole number of any type (Python, NumPy or a one-element
    tensor, ``15372.0`` included), else the float itself, so the check can judge it with a hint.

    Students count with whatever is at hand (``np.sum``, ``tensor.sum()``, a float division); the check
    judges the number, not its type. Only a non-number raises, as in :func:`as_number`.
    """
    if is_integer(answer):
        return int(answer)
    value = as_number(answer, name, what)
    return int(value) if value.is_integer() else value


def need_prediction(prediction: Any, what: str, allowed: Collection | None = None) -> CheckResult | None:
    """Predict, then measure: a hint when the prediction is still the placeholder (or not one of
    ``allowed``), None when the check may go on to the measurement.

    Writing the prediction down before looking is the point of these exercises, so every check asks for it
    first, in the same words.
    """
    if is_placeholder(prediction):
        return not_yet(f"write your prediction first (`prediction = ...`: {what}), before you measure")
    if allowed is not None and prediction not in allowed:
        return not_yet(f"your prediction {prediction!r} is not one of {list(allowed)}")
    return None


@dataclass(frozen=True)
class CheckResult:
    """A check's verdict: truthy when the answer is right, so a solution notebook can ``assert`` it."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{'✅ Correct' if self.passed else '❌ Not yet'}: {self.message}"

    def _ipython_display_(self) -> None:
        """Show nothing: the check already printed its verdict, and a cell ending in a check would repeat it."""


def passed(message: str) -> CheckResult:
    """Print and return a pass; the message says what the right answer shows, not just that it is right."""
    result = CheckResult(True, message)
    print(repr(result))
    return result


def not_yet(hint: str) -> CheckResult:
    """Print and return a hint: what to look at next, never the answer itself."""
    result = CheckResult(False, hint)
    print(repr(result))
    return result


def __getattr__(name: str):
    """Import ``lessonN`` modules on first use, so importing the package stays cheap."""
    if name.startswith("lesson"):
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"no exercise checks named {name!r}") from None
        globals()[name] = module
        return module
    raise AttributeError(name)
