"""Exercise checks for the lessons: ``from tlwidgets import checks; checks.lesson2.exercise1(answer)``.

A check never raises on a wrong answer: it prints a pass or a hint and
returns a :class:`CheckResult`, which is truthy when the answer is right, so
solution notebooks can ``assert checks.lesson2.exercise1(answer)``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from numbers import Integral

__all__ = ["CheckResult", "passed", "not_yet", "is_integer", "is_placeholder"]


def is_integer(x) -> bool:
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


def is_placeholder(x) -> bool:
    """True for an answer the student has not touched yet: the lessons' ``...`` (or an older ``None``).

    Every check tests this first and answers with a hint, never an exception
    and never a pass, whatever else the placeholder might happen to satisfy.
    """
    return x is None or x is Ellipsis


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{'✅ Correct' if self.passed else '❌ Not yet'}: {self.message}"

    def _ipython_display_(self) -> None:
        """Show nothing: the check already printed its verdict, and a cell ending in a check would repeat it."""


def passed(message: str) -> CheckResult:
    result = CheckResult(True, message)
    print(repr(result))
    return result


def not_yet(hint: str) -> CheckResult:
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
