"""Checks for lesson 5 (which layers transfer). Each judges behaviour or a measured number, never strings of code."""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..layer_transfer import SeedResults
from ..models import GroupedModel, digit_cnn
from . import CheckResult, as_integer, is_integer, need_prediction, not_yet, passed


def _bn_buffers(module: nn.Module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k or "num_batches" in k}


def exercise1(build_anb: Any, n_values: Sequence[int] = (1, 2, 3), *, seed: int = 0) -> CheckResult:
    """``build_anb(source, n)`` returns a fresh digit CNN whose first ``n`` groups are frozen copies of ``source``'s.

    Judged by behaviour on a random source network: the copied groups hold the source's weights (as copies,
    not shared tensors), the other groups do not, and one training step changes neither the copied groups'
    weights nor their BatchNorm statistics while the upper groups learn.
    """
    if build_anb is None or build_anb is ... or not callable(build_anb):
        return not_yet("define `def build_anb(source, n): ...` returning a new network (tl.digit_cnn(5)) whose first "
                       "n groups are frozen copies of source's")
    torch.manual_seed(seed)
    source = digit_cnn(5)
    with torch.no_grad():  # a source whose BatchNorm statistics are not the defaults, so copying them shows
        for m in source.modules():
            if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None and m.running_var is not None:
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    before = copy.deepcopy(source.state_dict())
    x, y = torch.randn(16, 1, 28, 28), torch.arange(16) % 5
    for n in n_values:
        try:
            model = build_anb(source, n)
        except Exception as exc:  # the student's code failed: say so as a hint, with the error
            return not_yet(f"build_anb(source, {n}) raised {type(exc).__name__}: {exc}")
        if model is None:
            return not_yet(f"build_anb(source, {n}) returned None: end the function with `return model`")
        if not isinstance(model, GroupedModel) or model.group_names != source.group_names:
            return not_yet(f"build_anb must return a digit CNN (tl.digit_cnn(5)) with groups {source.group_names}, "
                           f"got {type(model).__name__}")
        if model is source:
            return not_yet("build_anb returned the source network itself: make a new tl.digit_cnn(5) and copy "
                           "only the first n groups into it")
        names = model.group_names
        for name in names[:n]:
            for (k, a), b in zip(source.groups[name].state_dict().items(), model.groups[name].state_dict().values()):
                if not torch.equal(a, b):
                    return not_yet(f"n={n}: group {name!r} ({k}) does not hold the source's weights: copy each of "
                                   f"the first n groups, e.g. model.groups[name].load_state_dict("
                                   f"source.groups[name].state_dict())")
            if any(p.data_ptr() == q.data_ptr() for p, q in zip(model.groups[name].parameters(),
                                                                source.groups[name].parameters())):
                return not_yet(f"n={n}: group {name!r} shares its tensors with the source, so training the new "
                               "network would change the source too: copy the weights (load_state_dict or "
                               "copy.deepcopy), do not assign the source's modules")
        for name in names[n:-1]:
            same = all(torch.equal(a, b) for a, b in zip(source.groups[name].state_dict().values(),
                                                        model.groups[name].state_dict().values()))
            if same:
                return not_yet(f"n={n}: group {name!r} was copied too; only the first n groups come from the source, "
                               "the rest start from random weights")
        for i, name in enumerate(names):
            grads = {p.requires_grad for p in model.groups[name].parameters()}
            if i < n and True in grads:
                return not_yet(f"n={n}: group {name!r} still trains: freeze the copied groups "
                               "(p.requires_grad_(False) for their parameters, or tl.freeze(model, n))")
            if i >= n and False in grads:
                return not_yet(f"n={n}: group {name!r} is frozen but must learn task B: freeze only the first "
                               f"{n} groups")
        # one training step, the way tl.fit does it: model.train(), then an optimiser on the trainable parameters
        frozen_bn = {name: _bn_buffers(model.groups[name]) for name in names[:n]}
        upper = {k: v.clone() for k, v in model.groups[names[-1]].state_dict().items()}
        model.train()
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        model.eval()
        for name in names[:n]:
            after = _bn_buffers(model.groups[name])
            if any(not torch.equal(after[k], v) for k, v in frozen_bn[name].items()):
                return not_yet(f"n={n}: the weights of {name!r} stayed put, but its BatchNorm running statistics "
                               "changed during training: a frozen group must stay in eval mode. tl.freeze(model, n) "
                               "does that (GroupedModel.train keeps the first model.n_frozen groups in eval)")
        if all(torch.equal(upper[k], v) for k, v in model.groups[names[-1]].state_dict().items()):
            return not_yet(f"n={n}: one training step did not change the head: is anything trainable?")
    if any(not torch.equal(v, source.state_dict()[k]) for k, v in before.items()):
        return not_yet("build_anb changed the source network: copy from it, never train or modify it")
    return passed(f"for n = {', '.join(map(str, n_values))}: the first n groups are frozen copies of the source "
                  "(BatchNorm statistics included), the rest is fresh and learns")


def exercise2(prediction: Any, answer: Any, sweep: SeedResults) -> CheckResult:
    """Predict, then measure: the depth ``n`` at which frozen A-layers (AnB) lose most against base B."""
    if not isinstance(sweep, SeedResults) or "variant" not in sweep.keys:
        raise ValueError(f"exercise2 needs the lesson's Yosinski sweep (SeedResults) third, got {type(sweep).__name__}")
    depths = sorted({r["n"] for r in sweep.rows if r["variant"] == "AnB"})
    hint = need_prediction(prediction, "an n from " + ", ".join(map(str, depths)), depths)
    if hint is not None:
        return hint
    if answer is None or answer is ...:
        return not_yet("now measure: compute base B's mean minus AnB's mean at each n from `sweep` and answer with the "
                       "n where the loss is largest")
    answer = as_integer(answer, "exercise2", "the depth n as an integer")
    base = sweep.mean(variant="base B")
    loss = {n: base - sweep.mean(variant="AnB", n=n) for n in depths}
    worst = max(loss, key=loss.__getitem__)
    plus = {n: base - sweep.mean(variant="AnB+", n=n) for n in depths if ("AnB+", n) in sweep.settings()}
    if answer not in depths:
        return not_yet(f"{answer} is not a depth of this sweep ({depths})")
    if answer == min(loss, key=loss.__getitem__):
        return not_yet("that is where AnB loses least (or gains): the question asks where the loss is largest")
    if plus and answer == max(plus, key=plus.__getitem__) and answer != worst:
        return not_yet("that is the worst n for AnB+ (fine-tuned); the question is about frozen AnB")
    if answer != worst:
        return not_yet(f"at n={answer} AnB loses {loss[answer]:+.3f}; compare every n (mean over seeds)")
    verdict = "as you predicted" if prediction == worst else f"you predicted n={prediction}"
    return passed(f"AnB loses most at n={worst} ({loss[worst]:.3f} below base B), {verdict}: the deepest copied "
                  "layers are the most specific to digits 0-4")


def exercise3(prediction: Any, answer: Any, cuts: SeedResults, *, other: SeedResults | None = None) -> CheckResult:
    """Predict, then measure: the cut whose pooled features give the best *validation* accuracy (digits as photos).

    Accepts the group name (``"block4"``) or its position among the cuts (``0`` = first cut). ``other`` is the
    cat-breed sweep, so answering with the cats' best cut gets its own hint.

    Args:
        prediction: the student's guess, made before measuring.
        answer: the student's best cut (a group name or a position).
        cuts: the digits' cut sweep (validation accuracy per cut and seed).
        other: the cat-breed sweep, to recognise its best cut as a typical wrong answer.
    """
    if not isinstance(cuts, SeedResults) or cuts.keys != ("features",):
        raise ValueError(f"exercise3 needs the digits' cut sweep (SeedResults keyed by 'features') third, "
                         f"got {type(cuts).__name__}")
    order = [s[0] for s in cuts.settings()]
    hint = need_prediction(prediction, "a cut name such as " + repr(order[0]), order + list(range(len(order))))
    if hint is not None:
        return hint
    if answer is None or answer is ...:
        return not_yet("now measure: for each cut take the mean 'val_acc' over seeds (cuts.values('val_acc', "
                       "features=name)) and answer with the best one")
    if isinstance(answer, bool) or not (isinstance(answer, str) or is_integer(answer)):
        raise ValueError(f"exercise3 expects a cut name (str) or its position (int), got {type(answer).__name__}")
    if not isinstance(answer, str):
        if not 0 <= int(answer) < len(order):
            return not_yet(f"position {int(answer)} is not among the {len(order)} cuts (0..{len(order) - 1})")
        answer = order[int(answer)]
    if answer not in order:
        return not_yet(f"{answer!r} is not one of the cuts {order}")
    val = {c: cuts.mean("val_acc", features=c) for c in order}
    test = {c: cuts.mean("accuracy", features=c) for c in order}
    best = max(val, key=val.__getitem__)
    if answer == best:
        verdict = "as you predicted" if prediction in (best, order.index(best)) else f"you predicted {prediction!r}"
        return passed(f"on validation the best cut for digits is {best!r} ({val[best]:.3f}; its test accuracy, "
                      f"looked at once: {test[best]:.3f}), {verdict}")
    if answer == max(test, key=test.__getitem__):
        return not_yet("that cut is best on the *test* set; choose on validation (val_acc), never on test")
    if other is not None and answer == max({c: other.mean("val_acc", features=c) for c in order}, key=lambda c:
                                           other.mean("val_acc", features=c)):
        return not_yet("that is the best cut for the cat photos; the question is about the digits")
    if answer == order[-1]:
        return not_yet("the last cut (just before ImageNet's head) is not automatically the best: compare val_acc")
    return not_yet(f"{answer!r} reaches {val[answer]:.3f} on validation; another cut does better")
