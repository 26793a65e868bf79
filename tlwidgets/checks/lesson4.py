"""Checks for lesson 4 (when does transfer help?). Each recomputes its answer from the curve passed in."""
from __future__ import annotations

import math
from numbers import Real

from . import CheckResult, not_yet, passed
from ..experiments import LearningCurve, time_to_accuracy


def _need_curve(curve, name: str) -> None:
    if not isinstance(curve, LearningCurve):
        raise ValueError(f"{name} needs the lesson's LearningCurve as its second argument, got {type(curve).__name__}")


def _size_label(n) -> str:
    return "all" if n is None else str(n)


def catch_up_size(curve: LearningCurve, strategy: str = "fine_tune", baseline: str = "scratch",
                  margin: float = 0.02):
    """The first size (in the curve's order) where ``baseline`` is within ``margin`` of ``strategy``; or 'never'."""
    for n in curve.sizes:
        if curve.accuracy(baseline, n) >= curve.accuracy(strategy, n) - margin:
            return n
    return "never"


def exercise1(answer, curve, strategy: str = "fine_tune", baseline: str = "scratch",
              margin: float = 0.02) -> CheckResult:
    """The smallest number of labels per class at which ``baseline`` comes within ``margin`` of ``strategy``."""
    _need_curve(curve, "exercise1")
    if answer is None:
        return not_yet("replace `answer = None` with a size from the curve (an int, or 'all' for its size None), "
                       "or the string 'never'; compare curve.accuracy(...) of the two strategies size by size")
    if isinstance(answer, str) and answer in ("all", "never"):
        answer = None if answer == "all" else answer
    elif isinstance(answer, bool) or not isinstance(answer, int):
        raise ValueError(f"exercise1 expects a size (an int from curve.sizes, or 'all') or 'never', got {answer!r}")
    expected = catch_up_size(curve, strategy, baseline, margin)
    if expected == "never" and answer == "never":
        return passed(f"{baseline} never gets within {margin * 100:.0f} points of {strategy} on "
                      f"{curve.task_name} at these sizes: transfer keeps its lead")
    if answer == expected:
        gap = curve.gap(strategy, baseline, expected)
        return passed(f"at {_size_label(expected)} per class {baseline} is {gap * 100:+.1f} points behind "
                      f"{strategy} — within {margin * 100:.0f}")
    if answer != "never" and answer not in curve.sizes:
        return not_yet(f"{_size_label(answer)} is not one of the curve's sizes {[_size_label(n) for n in curve.sizes]}")
    return not_yet(f"look again: at {_size_label(answer) if answer != 'never' else 'no size'} the gap "
                   f"{strategy} - {baseline} is not the first one ≤ {margin * 100:.0f} points; "
                   "print curve.gap(strategy, baseline, n) for every n in curve.sizes")


def exercise2(answer, curve, target: float, n_per_class=None, strategy: str = "feature_extraction",
              seed: int = 0) -> CheckResult:
    """Seconds (one-off setup included) until one run first reached ``target`` test accuracy."""
    _need_curve(curve, "exercise2")
    runs = [r for r in curve.runs(strategy, n_per_class) if r.seed == seed]
    if not runs:
        return not_yet(f"the curve has no {strategy} run at {_size_label(n_per_class)} per class with seed {seed}")
    run = runs[0]
    expected = time_to_accuracy(run.history, target, setup_seconds=run.setup_seconds)
    if answer is None and expected is not None:  # the placeholder (None is right only for a run that never got there)
        return not_yet("replace `answer = None` with a number of seconds: time_to_accuracy(record.history, target, "
                       "setup_seconds=record.setup_seconds); None is right only if the run never reached the target")
    if answer == "never":
        answer = None
    if answer is not None and (isinstance(answer, bool) or not isinstance(answer, Real)):
        raise ValueError(f"exercise2 expects a number of seconds or None, got {type(answer).__name__}")
    if expected is None:
        if answer is None:
            return passed(f"that run never reached {target:.0%} (best: {max(run.history['val_acc']):.1%})")
        return not_yet(f"did that run ever reach {target:.0%}? Look at record.history['val_acc']")
    if answer is not None and math.isclose(answer, expected, rel_tol=0.01, abs_tol=1e-3):
        epochs = next(i + 1 for i, a in enumerate(run.history["val_acc"]) if a is not None and a >= target)
        return passed(f"{expected:.2f} s: {run.setup_seconds:.2f} s of setup, then {epochs} epoch(s)")
    if answer is not None and math.isclose(answer, expected - run.setup_seconds, rel_tol=0.01, abs_tol=1e-3):
        return not_yet("close: that is the training time alone; add the run's one-off setup_seconds")
    return not_yet("not quite: find the record with curve.runs(strategy, n)[seed index], then use "
                   "time_to_accuracy(record.history, target, setup_seconds=record.setup_seconds)")


def exercise3(answer, curve, strategy: str = "feature_extraction", baseline: str = "scratch") -> CheckResult:
    """``{size: gap in points}`` of ``strategy`` over ``baseline`` at every size of the curve."""
    _need_curve(curve, "exercise3")
    if answer is None:
        return not_yet("replace `answer = None` with a dict {n: points}, e.g. {5: 23.1, None: 37.5}; "
                       "curve.gap(strategy, baseline, n) is in accuracy units (0.1 = 10 points)")
    if not isinstance(answer, dict):
        raise ValueError(f"exercise3 expects a dict {{n_per_class: points}}, got {type(answer).__name__}")
    expected = {n: 100 * curve.gap(strategy, baseline, n) for n in curve.sizes}
    if set(answer) != set(expected):
        return not_yet(f"use exactly the curve's sizes as keys: {curve.sizes}")
    for n, pts in expected.items():
        v = answer[n]
        if isinstance(v, bool) or not isinstance(v, Real):
            raise ValueError(f"exercise3 expects numbers of points as values, got {v!r} for {n!r}")
        if math.isclose(v, pts / 100, abs_tol=0.0006) and abs(pts) > 0.1:
            return not_yet("those look like accuracy units; multiply by 100 to get points")
        if not math.isclose(v, pts, abs_tol=0.06):
            return not_yet(f"at {_size_label(n)} per class the gap is not {v:.1f} points; "
                           "check the sign: strategy minus baseline")
    trend = "shrinks" if abs(expected[curve.sizes[-1]]) < abs(expected[curve.sizes[0]]) else "does not shrink"
    return passed(f"{strategy} vs {baseline}: " + ", ".join(f"{_size_label(n)}: {p:+.1f}" for n, p in expected.items())
                  + f" points — the gap {trend} as labels grow")
