"""Checks for lesson 3 (fine-tuning). Each recomputes the right answer from the model passed in."""
from __future__ import annotations

import math
from numbers import Real
from typing import Any

import torch
from torch import nn

from ..freezing import freeze, max_frozen
from ..models import GroupedModel
from . import CheckResult, as_integer, is_integer, is_placeholder, need_prediction, not_yet, passed


def _need_model(model, name: str) -> None:
    if not isinstance(model, GroupedModel):
        raise ValueError(f"{name} needs the lesson's model (a tlwidgets GroupedModel) as its second argument, "
                         f"got {type(model).__name__}")


def smallest_frozen_for(model: GroupedModel, fraction: float) -> int | None:
    """The fewest frozen groups leaving fewer than ``fraction`` of the parameters trainable (model unchanged)."""
    before, bn_mode = model.n_frozen, model.frozen_bn_mode
    try:
        for k in range(max_frozen(model) + 1):
            if freeze(model, k).trainable_fraction < fraction:
                return k
        return None
    finally:
        freeze(model, before, frozen_bn=bn_mode)


_UNSET = object()


def exercise1(answer: Any, model: Any, fraction: float = 0.15, *, prediction: Any = _UNSET) -> CheckResult:
    """The smallest number of frozen groups for which fewer than ``fraction`` of the parameters train.

    ``prediction`` (predict, then measure): the student's guess, written before measuring; it must be
    filled in but may be wrong — the message compares it with the measurement.

    Args:
        answer: the student's number of frozen groups.
        model: the lesson's GroupedModel (its freezing is restored afterwards).
        fraction: the share of parameters that may still train.
        prediction: the student's guess, made before measuring.
    """
    _need_model(model, "exercise1")
    hint = need_prediction(prediction, "an integer: where do most of the parameters sit?")
    if hint is not None:
        return hint
    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with an integer number of frozen groups; move the freeze slider "
                       "(or call tl.freeze(model, k)) and watch the trainable fraction")
    if isinstance(answer, float) and answer.is_integer():    # 8.0 is a whole number of groups too
        answer = int(answer)
    answer = as_integer(answer, "exercise1", "an integer number of frozen groups")
    expected = smallest_frozen_for(model, fraction)
    if answer == expected:
        before, bn_mode = model.n_frozen, model.frozen_bn_mode
        report = freeze(model, answer)
        freeze(model, before, frozen_bn=bn_mode)
        guess = "" if prediction is _UNSET else (
            " — as you predicted" if prediction == answer else
            f" (you predicted {prediction}: the last groups hold far more parameters than the early ones)")
        return passed(f"freezing {answer} groups leaves {report.trainable:,} of {report.total:,} parameters "
                      f"({report.trainable_fraction:.1%}) to train: the groups after '{model.group_names[answer - 1]}'"
                      + guess)
    if expected is not None and expected < answer <= max_frozen(model):
        return not_yet(f"{answer} frozen groups qualifies, but is it the smallest? Try unfreezing one more group")
    return not_yet(f"with {answer} frozen groups {freeze_report_fraction(model, answer)} of the parameters still "
                   f"train; you need fewer than {fraction:.0%}")


def freeze_report_fraction(model: GroupedModel, k: int) -> str:
    if not 0 <= k <= max_frozen(model):
        return f"(out of range: 0..{max_frozen(model)})"
    before, bn_mode = model.n_frozen, model.frozen_bn_mode
    try:
        return f"{freeze(model, k).trainable_fraction:.1%}"
    finally:
        freeze(model, before, frozen_bn=bn_mode)


def _param_groups(answer) -> list[dict]:
    if isinstance(answer, torch.optim.Optimizer):
        return answer.param_groups
    if isinstance(answer, (list, tuple)) and all(isinstance(g, dict) and "params" in g for g in answer):
        return list(answer)
    raise ValueError("exercise2 expects optimiser parameter groups (a list of dicts with 'params' and 'lr', e.g. "
                     f"from layerwise_lr_groups) or a torch optimiser, got {type(answer).__name__}")


def exercise2(answer: Any, model: Any, ratio: float = 0.01, head_lr: float | None = None) -> CheckResult:
    """Discriminative rates: the head at ``head_lr``, the same factor from each group to the one below, and the
    stem at ``ratio`` times the head's rate.

    A constant factor is the idea (each group one step further from the head learns a fixed fraction as fast):
    a linear ramp, or one rate for the backbone and another for the head, get their own hints even when their
    stem/head ratio is right. ``head_lr`` None: any head rate (the ratio and the shape are still checked).
    """
    _need_model(model, "exercise2")
    if is_placeholder(answer):
        return not_yet("complete discriminative_groups: return one {'params': [...], 'lr': ...} dict per layer "
                       "group (or layerwise_lr_groups(model, lr, decay)); the stem sits num_groups - 1 groups "
                       "below the head, so the decay per group d satisfies d ** (num_groups - 1) = stem_ratio")
    groups = _param_groups(answer)
    owner = {}
    for i, name in enumerate(model.group_names):
        for p in model.groups[name].parameters():
            owner[id(p)] = i
    lr_of_group: dict[int, float] = {}
    seen: set[int] = set()
    for g in groups:
        lr: Any = g.get("lr")
        if isinstance(lr, torch.Tensor) and lr.numel() == 1:   # a tensor scalar is a number too
            lr = lr.item()
        if isinstance(lr, bool) or not isinstance(lr, Real) or not float(lr) > 0:
            return not_yet(f"every parameter group needs a positive 'lr'; one has {lr!r}")
        for p in g["params"]:
            if id(p) not in owner:
                return not_yet("these parameter groups hold tensors that are not in this model: build them from "
                               "the same model you pass to the check")
            if id(p) in seen:
                return not_yet("a parameter appears in two groups: the optimiser would reject that")
            seen.add(id(p))
            i = owner[id(p)]
            if i in lr_of_group and not math.isclose(lr_of_group[i], lr, rel_tol=1e-9):
                return not_yet(f"group '{model.group_names[i]}' got two different learning rates")
            lr_of_group[i] = float(lr)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if trainable - seen:
        return not_yet(f"{len(trainable - seen)} trainable tensors are in no parameter group: they would never "
                       "learn. Unfreeze everything first (tl.freeze(model, 0)) and give every group an lr")
    first, last = 0, model.num_groups - 1
    if first not in lr_of_group or last not in lr_of_group:
        return not_yet("both the stem and the head must be in the optimiser (call tl.freeze(model, 0) first)")
    missing = [model.group_names[i] for i in range(model.num_groups) if i not in lr_of_group
               and any(True for _ in model.groups[model.group_names[i]].parameters())]
    if missing:
        return not_yet(f"groups {missing} have no learning rate: one parameter group per layer group")
    if head_lr is not None and not math.isclose(lr_of_group[last], head_lr, rel_tol=1e-6):
        return not_yet(f"the head learns at {lr_of_group[last]:.3g}; the exercise asks for {head_lr:g} — "
                       "the head (new, random) gets the largest rate, the groups below a fraction of it")
    got = lr_of_group[first] / lr_of_group[last]
    ordered = [lr_of_group[i] for i in sorted(lr_of_group)]
    if any(b < a * (1 - 1e-9) for a, b in zip(ordered, ordered[1:])):
        return not_yet("the learning rates should grow from the stem towards the head, never shrink")
    factors = [b / a for a, b in zip(ordered, ordered[1:])]
    if len(ordered) > 2 and all(math.isclose(x, ordered[0], rel_tol=1e-6) for x in ordered[:-1]):
        return not_yet("every pretrained group has the same rate and only the head differs: that is two rates, "
                       "not discriminative ones — shrink the rate by the same factor at every step down")
    steps = [b - a for a, b in zip(ordered, ordered[1:])]
    if len(steps) > 1 and all(math.isclose(x, steps[0], rel_tol=1e-6) for x in steps):
        return not_yet("the rates rise by the same *step* (a linear ramp); the recipe shrinks them by the same "
                       "*factor* per group: lr_head * d**distance, with d**(num_groups - 1) = stem_ratio")
    if not all(math.isclose(x, factors[0], rel_tol=1e-3) for x in factors):
        return not_yet(f"the factor between neighbouring groups varies ({', '.join(f'{x:.3g}' for x in factors)}); "
                       "use one factor d for every step: lr_head * d**distance")
    if not math.isclose(got, ratio, rel_tol=0.02):
        return not_yet(f"the stem's lr is {got:.4g} x the head's; aim for {ratio:g}. With decay d per group, "
                       f"the stem gets d**{last} of the head's lr")
    return passed(f"stem lr {lr_of_group[first]:.2e}, head lr {lr_of_group[last]:.2e} (ratio {got:.3g}), "
                  f"the same factor {1 / factors[0]:.3g} down through {len(lr_of_group)} groups")


def frozen_batchnorms_in_eval(model: GroupedModel) -> list[str]:
    """Names of BatchNorm layers of ``model`` that are in eval mode after ``model.train()``."""
    was = model.training
    model.train()
    names = [n for n, m in model.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.training]
    model.train(was)
    return names


def exercise3(answer: Any, model: Any, n_frozen: int | None = 1) -> CheckResult:
    """The BatchNorm layers that stay in eval mode while ``model`` trains (those in frozen groups).

    ``n_frozen``: how many groups the exercise asks to freeze (None: accept any freeze depth). One group of
    the digit model, so that one BatchNorm is frozen and one trains: "every BatchNorm" is then wrong.
    """
    _need_model(model, "exercise3")
    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with a list of module names, e.g. from "
                       "tlwidgets.freezing.batchnorm_modes(model) after model.train()")
    if isinstance(answer, str) or not isinstance(answer, (list, tuple, set)):
        raise ValueError(f"exercise3 expects a list of BatchNorm module names, got {type(answer).__name__}")
    if n_frozen is not None and model.n_frozen != n_frozen:
        return not_yet(f"the model has {model.n_frozen} frozen groups; the exercise freezes the first {n_frozen}: "
                       f"tl.freeze(model, {n_frozen}) first, then model.train() and look at the BatchNorm layers")
    expected = frozen_batchnorms_in_eval(model)
    got = set(answer)
    if got == set(expected):
        if not expected:
            return passed("none: no frozen group of this model has a BatchNorm in eval mode "
                          f"(n_frozen={model.n_frozen}, frozen_bn='{model.frozen_bn_mode}')")
        groups = sorted({n.split(".")[0] for n in expected}, key=model.group_names.index)
        return passed(f"{len(expected)} BatchNorm layers keep their pretrained statistics: those in "
                      f"{', '.join(groups)} (the frozen groups)")
    extra, missing = got - set(expected), set(expected) - got
    all_bn = [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    in_train = set(all_bn) - set(expected)
    if got and not got & set(all_bn):
        return not_yet(f"{sorted(got)[:3]} are not BatchNorm layers of this model; its BatchNorm layers are "
                       f"{all_bn}: which of them are in eval mode after model.train()?")
    if got == set(all_bn) and in_train and model.frozen_bn_mode != "train":
        return not_yet(f"that is every BatchNorm layer; {sorted(in_train)} sit in a group that trains, so they "
                       "train too — only the BatchNorm layers of the frozen groups stay in eval mode")
    if in_train and got == in_train and expected:
        return not_yet("reversed: those are the BatchNorm layers in *train* mode (batchnorm_modes maps each name "
                       "to whether it is training: you want the False ones)")
    if model.frozen_bn_mode == "train" and expected == []:
        hint = "with frozen_bn='train' every BatchNorm trains, frozen or not"
    else:
        hint = "only BatchNorm layers inside the first model.n_frozen groups stay in eval mode"
    return not_yet(f"{len(missing)} missing, {len(extra)} that should not be there; call model.train() first. "
                   + hint)


#: Exercise 4's statements about why validation accuracy sits above test accuracy on the cat breeds.
GAP_STATEMENTS = {
    "A": "the kept configuration (n_frozen, epoch, lr) is the one that scored highest on these validation "
         "photos, so its validation score is the largest of several noisy estimates",
    "B": "the validation split is small (about 50 photos, 1-14 per breed): one photo moves it by 2 points",
    "C": "the model was trained on the validation photos",
    "D": "the test photos are harder because training augmented them",
    "E": "validation and test hold different mixes of breeds, and plain accuracy weighs each breed by its share",
    "F": "the test split is read only once, which lowers its accuracy",
}
_GAP_RIGHT = {"A", "B", "E"}
_GAP_WRONG_HINTS = {
    "C": "C is not it: validation photos are never trained on — they only choose (the epoch, the lr, n_frozen)",
    "D": "D is not it: only the training split is ever augmented, and the lesson's runs do not augment at all",
    "F": "F is not it: reading the test split once keeps it honest, it does not lower it — reading it many times "
         "and keeping the best would raise it",
}


def _letters(answer: Any) -> set[str]:
    if isinstance(answer, str):
        return {c.upper() for c in answer if c.isalpha()}
    if isinstance(answer, (list, tuple, set, frozenset)) and all(isinstance(a, str) for a in answer):
        return {c.upper() for a in answer for c in a if c.isalpha()}
    raise ValueError(f"exercise4 expects letters from {sorted(GAP_STATEMENTS)} (a string such as 'AB' or a list "
                     f"of letters), got {type(answer).__name__}")


def exercise4(answer: Any) -> CheckResult:
    """Why validation accuracy sits above test accuracy on the cat breeds: every true statement, no false one.

    ``answer``: the letters of :data:`GAP_STATEMENTS` that explain the gap, as a string ("A, B") or a list.
    Selection optimism (A) is the idea; a small validation split (B) makes it large; a different class mix (E)
    makes the two plain accuracies measure different things. Each false statement has its own hint.
    """
    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with the letters of every statement that explains the gap, "
                       "e.g. 'AC' (print checks.lesson3.GAP_STATEMENTS to read them)")
    got = _letters(answer)
    unknown = got - set(GAP_STATEMENTS)
    if unknown:
        return not_yet(f"{sorted(unknown)} are not statements; choose from {sorted(GAP_STATEMENTS)}")
    for letter in sorted(got - _GAP_RIGHT):
        return not_yet(_GAP_WRONG_HINTS[letter])
    if "A" not in got:
        return not_yet("one cause is missing, the main one: what did the lesson *do* with the validation "
                       "accuracy before reporting it? (it chose the best of several runs on it)")
    missing = _GAP_RIGHT - got
    if missing:
        return not_yet(f"true so far, but {len(missing)} more statement(s) explain part of the gap: look at the "
                       "validation split's size per breed, and at the breeds' shares in val and in test")
    return passed("selection optimism (the best of several noisy validation scores is biased upwards), made "
                  "large by a small validation split, on a different mix of breeds: the test split, read once, "
                  "is the number to report — and balanced accuracy the one to compare breeds by")


def gradual_schedule(top: int, num_epochs: int) -> list[int]:
    """Gradual unfreezing as Howard & Ruder (2018, ULMFiT) define it, as ``n_frozen`` per epoch.

    Epoch 0 trains the head alone (``top`` frozen groups, ``top = max_frozen(model)``); every following
    epoch unfreezes one more group, from the top down, until none is frozen, and training goes on
    with everything unfrozen. The check's reference for :func:`exercise5`.
    """
    return [max(top - epoch, 0) for epoch in range(num_epochs)]


#: (top, num_epochs) cases exercise5 runs the student's schedule on: the cat model (9 groups below the head,
#: first: its hints are the clearest), the digit model (2), fewer epochs than groups, a head-only model.
_SCHEDULE_CASES = ((9, 12), (2, 6), (9, 4), (0, 3))


def _schedule_list(value: Any, top: int, num_epochs: int) -> list[int] | CheckResult:
    """The student's schedule as a list of ints, or a hint when it is not one (any iterable of integers is fine)."""
    if value is None or is_placeholder(value):
        return not_yet(f"gradual_unfreezing({top}, {num_epochs}) returned {value!r}: return one n_frozen per "
                       "epoch, e.g. a list")
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    try:
        items = list(value)
    except TypeError:
        return not_yet(f"gradual_unfreezing({top}, {num_epochs}) returned a {type(value).__name__}; return one "
                       "n_frozen per epoch (a list of integers)")
    out = []
    for x in items:
        if isinstance(x, float) and x.is_integer():
            x = int(x)
        if not is_integer(x):
            return not_yet(f"gradual_unfreezing({top}, {num_epochs}) holds {x!r}: every entry is a number of "
                           "frozen groups, an integer")
        out.append(int(x))
    return out


def exercise5(schedule: Any) -> CheckResult:
    """Gradual unfreezing: ``schedule(top, num_epochs)`` gives ``n_frozen`` for each epoch, one more group per epoch.

    Judged by behaviour on several models and budgets (:data:`_SCHEDULE_CASES`) against
    :func:`gradual_schedule`; any route that returns those numbers passes (a list, a tuple, a generator,
    NumPy or torch integers). The typical wrong schedules get their own hint: freezing more over time,
    the two-stage recipe (head, then everything at once), skipping the head-only epoch, going below 0,
    unfreezing more slowly than one group per epoch, a list of the wrong length.
    """
    if is_placeholder(schedule):
        return not_yet("complete gradual_unfreezing(top, num_epochs): return the number of frozen groups for "
                       "each epoch — the head alone first, then one group fewer frozen per epoch")
    if not callable(schedule):
        raise ValueError(f"exercise5 expects the function gradual_unfreezing(top, num_epochs), got "
                         f"{type(schedule).__name__}")
    for top, num_epochs in _SCHEDULE_CASES:
        got = _schedule_list(schedule(top, num_epochs), top, num_epochs)
        if isinstance(got, CheckResult):
            return got
        want = gradual_schedule(top, num_epochs)
        if got == want:
            continue
        where = f"gradual_unfreezing({top}, {num_epochs}) gave {got}"
        if len(got) != num_epochs:
            return not_yet(f"{where}: {len(got)} entries for {num_epochs} epochs — one n_frozen per epoch")
        if any(k < 0 for k in got):
            return not_yet(f"{where}: n_frozen cannot go below 0 — once every group is unfrozen, stay at 0")
        if any(k > top for k in got):
            return not_yet(f"{where}: n_frozen cannot exceed {top} (the head always trains)")
        if any(b > a for a, b in zip(got, got[1:])):
            return not_yet(f"{where}: the number of frozen groups grows — gradual unfreezing starts from the "
                           "head alone and *unfreezes*, from the top down")
        if got[0] != top:
            return not_yet(f"{where}: the first epoch must train the head alone (n_frozen = {top}): a random "
                           "head's large gradients should not reach the pretrained groups")
        if top > 1 and len(got) > 1 and got[1] == 0:
            return not_yet(f"{where}: that is the two-stage recipe (head first, then everything at once); "
                           "gradual unfreezing adds ONE group per epoch")
        if top > 0 and all(k == top for k in got):
            return not_yet(f"{where}: nothing ever unfreezes — that is feature extraction; from the second "
                           "epoch on, unfreeze one more group per epoch")
        if any(a - b > 1 for a, b in zip(got, got[1:])):
            return not_yet(f"{where}: some epoch unfreezes more than one group; one more group per epoch")
        return not_yet(f"{where}: one group too slowly — unfreeze one more group every epoch (expected {want})")
    return passed("the head alone first, then one more group per epoch until all train: "
                  f"e.g. {gradual_schedule(2, 6)} for the digit model, {gradual_schedule(9, 12)} for the cat model")
