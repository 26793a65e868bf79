"""Checks for lesson 0 (setup and tour). Each recomputes the right answer from the course's own objects."""
from __future__ import annotations

import os
from pathlib import Path

from . import CheckResult, is_integer, not_yet, passed


def exercise1(answer) -> CheckResult:
    """How many parameters train when every group of the digit model but the head is frozen?"""
    from ..freezing import freeze
    from ..models import load_digit_model

    if answer is None:
        return not_yet("replace `answer = None` with an integer: freeze all groups but the head "
                       "(tl.freeze(model, model.num_groups - 1)) and read model.parameter_counts()[0]")
    if not is_integer(answer):
        raise ValueError(f"exercise1 expects an integer number of parameters, got {type(answer).__name__}")
    model = load_digit_model()
    report = freeze(model, model.num_groups - 1)
    answer = int(answer)
    if answer == report.trainable:
        return passed(f"{answer:,} of {report.total:,} parameters train: the head's weights "
                      f"({model.head.in_features} x {model.head.out_features}) and biases. "
                      "Feature extraction trains very few parameters.")
    if answer == report.total:
        return not_yet("that is every parameter of the model; count only the trainable ones "
                       "(requires_grad=True) after freezing")
    if answer == model.head.in_features * model.head.out_features:
        return not_yet("close: that is the head's weight matrix; the biases train too")
    return not_yet(f"{answer:,} is not it. Freeze model.num_groups - 1 groups, then "
                   "model.parameter_counts() returns (trainable, total)")


def exercise2(answer, data_root=None) -> CheckResult:
    """Which data root holds the MNIST files the course reads?"""
    from ..data import SPECS, DataMissingError, candidate_roots, find_dataset

    if answer is None:
        return not_yet("replace `answer = None` with a path: the first folder of tl.candidate_roots(data_root) "
                       "that holds MNIST (or tl.data.find_dataset(tl.data.SPECS['mnist'], data_root))")
    if not isinstance(answer, (str, os.PathLike)):
        raise ValueError(f"exercise2 expects a path (str or pathlib.Path), got {type(answer).__name__}")
    try:
        expected = find_dataset(SPECS["mnist"], data_root)
    except DataMissingError as exc:
        return not_yet(f"no MNIST anywhere on the search path, so there is no right answer yet:\n{exc}")
    given = Path(answer).expanduser()
    if given.resolve() == expected.resolve():
        return passed(f"MNIST is read from {expected}")
    if given.resolve() == (expected / "MNIST").resolve() or expected.resolve() in given.resolve().parents:
        return not_yet("give the data root itself (the folder that contains MNIST/), not a folder inside it")
    roots = [r.resolve() for r in candidate_roots(data_root)]
    if given.resolve() in roots and SPECS["mnist"].present_in(given):
        return not_yet("that folder holds MNIST, but an earlier folder on the search path holds it too, "
                       "and the first one wins")
    return not_yet("that folder is not where MNIST is read from; print tl.candidate_roots(data_root) and "
                   "check each with SPECS['mnist'].present_in(root)")


def exercise3(model) -> CheckResult:
    """Exactly the first two groups frozen, everything after them trainable."""
    from ..models import GroupedModel

    if not isinstance(model, GroupedModel):
        raise ValueError(f"exercise3 expects the digit model (a GroupedModel), got {type(model).__name__}")
    states = []
    for name in model.group_names:
        flags = {p.requires_grad for p in model.groups[name].parameters()}
        states.append("mixed" if len(flags) > 1 else ("trainable" if flags == {True} else "frozen"))
    want = ["frozen", "frozen"] + ["trainable"] * (model.num_groups - 2)
    if states == want and model.num_frozen == 2:
        return passed(f"{', '.join(model.group_names[:2])} frozen; "
                      f"{model.parameter_counts()[0]:,} parameters left to train")
    now = ", ".join(f"{n}: {s}" for n, s in zip(model.group_names, states))
    return not_yet(f"the model has {model.num_frozen} frozen groups ({now}); "
                   "set slider.value = 2 or call tl.freeze(model, 2)")
