"""Checks for lesson 0 (setup and tour). Each recomputes the right answer from the course's own objects."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import CheckResult, as_count, as_number, is_placeholder, not_yet, passed


def exercise1(prediction: Any, measured: Any, model: Any) -> CheckResult:
    """Predict, then measure: parameters that train in feature extraction for 12 cat breeds on the photo model.

    ``model`` is the student's feature-extraction model (backbone frozen by
    hand, head swapped for a 12-class one); ``measured`` what they counted on
    it. Judged by behaviour: the head has 12 outputs, only the head trains,
    and the count is the count of that model.
    """
    from torch import nn

    from ..models import GroupedModel

    if is_placeholder(prediction):
        return not_yet("first write your prediction (a number) in `prediction`, before measuring: the head maps "
                       "1280 features to 12 classes - how many weights and biases is that?")
    if is_placeholder(model) or is_placeholder(measured):
        return not_yet("now measure: copy the photo model, freeze every parameter with requires_grad_(False), "
                       "swap its head for nn.Linear(1280, 12), and count the parameters with requires_grad=True")
    prediction = as_number(prediction, "exercise1 (prediction)", "a number")   # any type: 15372, 1.5e4, np.int64
    if not isinstance(model, GroupedModel):
        raise ValueError(f"exercise1 expects the photo model (a GroupedModel) as model, got {type(model).__name__}")
    measured = as_count(measured, "exercise1 (measured)")
    if isinstance(measured, float):
        return not_yet(f"{measured:,} is not a whole number: a parameter count adds up p.numel() of each "
                       "trainable tensor, so it is an integer")
    linears = [m for m in model[-1].modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1].out_features != 12:
        outs = linears[-1].out_features if linears else "no Linear layer"
        return not_yet(f"the head still has {outs} outputs: swap it for a new nn.Linear(1280, 12) "
                       "(one output per cat breed)")
    head = linears[-1]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head_names = {n for n, p in model.named_parameters() if any(p is q for q in head.parameters())}
    trainable_count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if not trainable:
        return not_yet("nothing trains: the new head must stay trainable - create it *after* freezing the "
                       "backbone (a new layer's parameters have requires_grad=True)")
    if trainable - head_names:
        return not_yet(f"{len(trainable - head_names)} backbone tensors still train (e.g. "
                       f"{sorted(trainable - head_names)[0]}): freeze every parameter before swapping the head")
    if measured == trainable_count:
        off = float(prediction) - measured
        verdict = "exactly right" if off == 0 else f"off by {off:+,.0f} ({abs(off) / measured:.0%})"
        return passed(f"{measured:,} parameters train ({head.in_features} x {head.out_features} weights + "
                      f"{head.out_features} biases) of {sum(p.numel() for p in model.parameters()):,}; "
                      f"your prediction {float(prediction):,.0f} was {verdict}. Now write your explanation.")
    if measured == head.in_features * head.out_features:
        return not_yet("close: that is the weight matrix only; the biases train too")
    if measured == sum(p.numel() for p in model.parameters()):
        return not_yet("that is every parameter of the model; count only those with requires_grad=True")
    if measured == 1280 * 1000 + 1000:
        return not_yet("that is the old 1000-class ImageNet head; count the model with the new 12-class head")
    return not_yet(f"{measured:,} is not what your model trains: "
                   "sum(p.numel() for p in model.parameters() if p.requires_grad)")


def exercise2(answer: Any, data_root: str | os.PathLike[str] | None = None) -> CheckResult:
    """Which data root holds the MNIST files the course reads?"""
    from ..data import SPECS, DataMissingError, candidate_roots, find_dataset

    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with a path: the first folder of tl.candidate_roots(data_root) "
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


def exercise3(freeze_first: Any) -> CheckResult:
    """Write ``freeze_first(model, n)`` in plain PyTorch: the first ``n`` groups frozen, every later one trainable.

    Judged by behaviour on fresh digit models, for every ``n``, starting both
    from a trainable and from a fully frozen model, against the parameter
    flags ``tl.freeze`` sets. Any route that sets the right flags passes.
    """
    from torch import nn

    from ..freezing import freeze, group_states
    from ..models import load_digit_model

    if not callable(freeze_first) or isinstance(freeze_first, nn.Module):
        raise ValueError(f"exercise3 expects your function freeze_first, got {type(freeze_first).__name__}")
    import copy

    base = load_digit_model()
    names = base.group_names
    wrong = []
    for start_frozen in (False, True):
        for n in range(base.num_groups):
            model = copy.deepcopy(base)
            if start_frozen:
                model.requires_grad_(False)
            try:
                freeze_first(model, n)
            except Exception as exc:  # noqa: BLE001 - a student's bug is a hint, not a crash
                return not_yet(f"freeze_first(model, {n}) raised {type(exc).__name__}: {exc}")
            got = group_states(model)
            reference = copy.deepcopy(base)
            freeze(reference, n)
            want = group_states(reference)
            if got != want:
                wrong.append((start_frozen, n, got, want))
    if not wrong:
        return passed("the first n groups frozen and the rest trainable, for every n, from any starting state: "
                      "tl.freeze(model, n) sets exactly these flags")
    fresh = [w for w in wrong if not w[0]]
    if len(fresh) == base.num_groups - 1 and all(g == ["trainable"] * len(names) for _, _, g, _ in fresh):
        return not_yet("freeze_first changed nothing: fill in its body - for the first n names in "
                       "model.group_names, call requires_grad_(False) on that group's parameters")
    start_frozen, n, got, want = (fresh or wrong)[0]
    k = sum(s == "frozen" for s in got)
    if not fresh:
        return not_yet(f"on a model whose parameters were all frozen, freeze_first(model, {n}) left {got}: the "
                       "groups after the first n must be made trainable again (requires_grad_(True))")
    if got == list(reversed(want)) or (got[-1] == "frozen" and want[-1] != "frozen"):
        return not_yet(f"freeze_first(model, {n}) froze from the head's end ({got}); group 0 is the stem: "
                       "freeze model.group_names[:n]")
    if "mixed" in got:
        return not_yet(f"freeze_first(model, {n}) froze only part of a group ({got}): freeze every parameter of "
                       "each group (model.groups[name].parameters())")
    if k == n + 1:
        return not_yet(f"freeze_first(model, {n}) freezes one group too many ({k}): the first n groups are "
                       "model.group_names[:n]")
    if k == n - 1:
        return not_yet(f"freeze_first(model, {n}) freezes one group too few ({k}): the first n groups are "
                       "model.group_names[:n]")
    return not_yet(f"freeze_first(model, {n}) left the groups {got}; expected {want}")
