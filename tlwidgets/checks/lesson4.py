"""Checks for lesson 4 (when does transfer help?). Each recomputes its answer from the curve passed in."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
import torch

from ..data import size_label
from ..experiments import LearningCurve, time_to_accuracy
from . import CheckResult, is_integer, is_placeholder, need_prediction, not_yet, passed


def _begin(curve, name: str, prediction, what: str) -> CheckResult | None:
    """What every lesson-4 check does first: the curve must be a LearningCurve (else a ValueError naming the
    exercise), and a missing prediction gets its hint before anything is measured."""
    if not isinstance(curve, LearningCurve):
        raise ValueError(f"{name} needs the lesson's LearningCurve as its second argument, got {type(curve).__name__}")
    return None if prediction is _UNSET else need_prediction(prediction, what)


def _size_label(n) -> str:
    return str(size_label(n))


def catch_up_size(curve: LearningCurve, strategy: str = "fine_tune", baseline: str = "scratch",
                  margin: float = 0.02) -> int | None | str:
    """The first size (in the curve's order) where ``baseline`` is within ``margin`` of ``strategy``; or 'never'.

    Args:
        curve: the lesson's LearningCurve.
        strategy: the strategy to catch up with.
        baseline: the strategy that catches up (usually training from scratch).
        margin: how close (in accuracy) counts as caught up.

    Returns:
        A size of the curve (None stands for "all labels"), or ``"never"``.
    """
    for n in curve.sizes:
        if curve.accuracy(baseline, n) >= curve.accuracy(strategy, n) - margin:
            return n
    return "never"


_UNSET = object()


def _compare(prediction, actual) -> str:
    if prediction is _UNSET:
        return ""
    return " — as you predicted" if prediction == actual else f" (you predicted {prediction!r}: why the difference?)"


def exercise1(answer: Any, curve: Any, strategy: str = "fine_tune", baseline: str = "scratch",
              margin: float = 0.02, *, prediction: Any = _UNSET) -> CheckResult:
    """The smallest number of labels per class at which ``baseline`` comes within ``margin`` of ``strategy``.

    Args:
        answer: the student's size (an int, ``"all"``) or ``"never"``.
        curve: the lesson's LearningCurve.
        strategy: the strategy to catch up with.
        baseline: the strategy that catches up.
        margin: how close (in accuracy) counts as caught up.
        prediction: the student's guess, made before measuring.
    """
    if (hint := _begin(curve, "exercise1", prediction, "a size, or 'never'")) is not None:
        return hint
    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with a size from the curve (an int, or 'all' for its size None), "
                       "or the string 'never'; compare curve.accuracy(...) of the two strategies size by size")
    if isinstance(answer, str) and answer in ("all", "never"):
        answer = None if answer == "all" else answer
    elif is_integer(answer):                     # NumPy and torch integers are sizes too
        answer = int(answer)
    elif isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    else:
        raise ValueError(f"exercise1 expects a size (an int from curve.sizes, or 'all') or 'never', got {answer!r}")
    expected = catch_up_size(curve, strategy, baseline, margin)
    if expected == "never" and answer == "never":
        return passed(f"{baseline} never gets within {margin * 100:.0f} points of {strategy} on "
                      f"{curve.task_name} at these sizes: transfer keeps its lead" + _compare(prediction, "never"))
    if answer == expected:
        gap = curve.gap(strategy, baseline, expected)
        return passed(f"at {_size_label(expected)} per class {baseline} is {gap * 100:+.1f} points behind "
                      f"{strategy} — within {margin * 100:.0f}" + _compare(prediction, expected))
    if answer != "never" and answer not in curve.sizes:
        return not_yet(f"{_size_label(answer)} is not one of the curve's sizes {[_size_label(n) for n in curve.sizes]}")
    if answer == "never":
        return not_yet(f"{baseline} does come within {margin * 100:.0f} points of {strategy} at one of the sizes: "
                       "print curve.gap(strategy, baseline, n) for every n in curve.sizes")
    if expected != "never" and curve.sizes.index(answer) > curve.sizes.index(expected):
        return not_yet(f"at {_size_label(answer)} per class {baseline} is within {margin * 100:.0f} points, but is "
                       "it the first size where it is? Look at the smaller sizes too")
    return not_yet(f"at {_size_label(answer)} per class the gap {strategy} - {baseline} is "
                   f"{curve.gap(strategy, baseline, answer) * 100:+.1f} points, more than {margin * 100:.0f}: "
                   "print curve.gap(strategy, baseline, n) for every n in curve.sizes")


def exercise2(answer: Any, curve: Any, target: float, n_per_class: int | None = None,
              strategy: str = "feature_extraction", seed: int = 0, *, prediction: Any = _UNSET) -> CheckResult:
    """Seconds (one-off setup included) until one run first reached ``target`` validation accuracy.

    The placeholder is ``...`` (Ellipsis): None is a real answer (the run never got there).

    Args:
        answer: the student's number of seconds, or None (never reached).
        curve: the lesson's LearningCurve.
        target: the validation accuracy to reach.
        n_per_class: which size of the curve the run is from (None: all labels).
        strategy: which strategy's run.
        seed: which seed's run.
        prediction: the student's guess, made before measuring.
    """
    if (hint := _begin(curve, "exercise2", prediction, "'more' or 'less' than the one-off setup")) is not None:
        return hint
    if answer is Ellipsis:
        return not_yet("replace `answer = ...` with a number of seconds: time_to_accuracy(record.history, target, "
                       "setup_seconds=record.setup_seconds), or None if the run never reached the target")
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
        more = "more" if expected - run.setup_seconds > run.setup_seconds else "less"
        return passed(f"{expected:.2f} s: {run.setup_seconds:.2f} s of setup, then {epochs} epoch(s) — training "
                      f"took {more} than the setup" + _compare(prediction, more))
    if answer is not None and math.isclose(answer, expected - run.setup_seconds, rel_tol=0.01, abs_tol=1e-3):
        return not_yet("close: that is the training time alone; add the run's one-off setup_seconds")
    return not_yet("not quite: find the record with curve.runs(strategy, n)[seed index], then use "
                   "time_to_accuracy(record.history, target, setup_seconds=record.setup_seconds)")


def exercise3(answer: Any, curve: Any, strategy: str = "feature_extraction", baseline: str = "scratch", *,
              prediction: Any = _UNSET, key: str = "test_acc") -> CheckResult:
    """``{size: gap in points}`` of ``strategy`` over ``baseline`` at every size of the curve, in ``key``
    (``"balanced_acc"`` for the cat breeds, the lesson's headline there).

    Points may be rounded to whole points; a gap with the wrong sign gets its own hint, and so does a gap
    in plain accuracy where balanced accuracy was asked for.

    Args:
        answer: the student's ``{size: gap in points}``.
        curve: the lesson's LearningCurve.
        strategy: the strategy whose lead is measured.
        baseline: the strategy it is measured against.
        prediction: the student's guess (does the gap grow or shrink with more labels?).
    """
    if (hint := _begin(curve, "exercise3", prediction, "'grows' or 'shrinks'")) is not None:
        return hint
    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with a dict {n: points}, e.g. {5: 23.1, None: 37.5}; "
                       "curve.gap(strategy, baseline, n) is in accuracy units (0.1 = 10 points)")
    if not isinstance(answer, dict):
        raise ValueError(f"exercise3 expects a dict {{n_per_class: points}}, got {type(answer).__name__}")
    expected = {n: 100 * curve.gap(strategy, baseline, n, key) for n in curve.sizes}
    if set(answer) != set(expected):
        return not_yet(f"use exactly the curve's sizes as keys: {curve.sizes}")
    if key == "balanced_acc":
        plain = {n: 100 * curve.gap(strategy, baseline, n) for n in curve.sizes}
        if any(not math.isclose(plain[n], expected[n], abs_tol=0.51) for n in expected) and all(
                isinstance(answer[n], Real) and math.isclose(answer[n], plain[n], abs_tol=0.51) for n in expected):
            return not_yet("those are gaps in plain accuracy; on the imbalanced breeds use balanced accuracy: "
                           "100 * curve.gap(strategy, baseline, n, 'balanced_acc')")
    for n, pts in expected.items():
        v = answer[n]
        if isinstance(v, bool) or not isinstance(v, Real):
            raise ValueError(f"exercise3 expects numbers of points as values, got {v!r} for {n!r}")
        if math.isclose(v, pts / 100, abs_tol=0.006) and abs(pts) > 1:
            return not_yet("those look like accuracy units; multiply by 100 to get points")
        if abs(pts) > 0.5 and math.isclose(v, -pts, abs_tol=0.51):
            return not_yet(f"at {_size_label(n)} per class you have the sign the wrong way round: "
                           "strategy minus baseline")
        if not math.isclose(v, pts, abs_tol=0.51):   # whole points are fine
            return not_yet(f"at {_size_label(n)} per class the gap is not {v:.1f} points: use "
                           f"100 * curve.gap(strategy, baseline, n, {key!r})")
    trend = "shrinks" if abs(expected[curve.sizes[-1]]) < abs(expected[curve.sizes[0]]) else "grows"
    return passed(f"{strategy} vs {baseline}: " + ", ".join(f"{_size_label(n)}: {p:+.1f}" for n, p in expected.items())
                  + f" points — the gap {trend} as labels grow" + _compare(prediction, trend))


def _recording_adam(params, lr: float):
    """A real Adam that also records, at every ``step()``, whether the gradients it is about to apply are those
    of the last backward pass alone (zeroed in between, by any route) or accumulated over earlier batches."""
    import torch

    params = list(params)
    fresh = [None] * len(params)

    def hook(i):
        def record(grad):
            fresh[i] = grad.detach().clone() if fresh[i] is None else fresh[i] + grad.detach()
        return record
    for i, p in enumerate(params):
        p.register_hook(hook(i))

    class RecordingAdam(torch.optim.Adam):
        steps = 0
        accumulated = 0

        def step(self, closure=None):
            RecordingAdam.steps += 1
            stale = any(p.grad is not None and g is not None and not torch.allclose(p.grad, g, atol=1e-7)
                        for p, g in zip(params, fresh))
            RecordingAdam.accumulated += int(stale)
            for i in range(len(fresh)):
                fresh[i] = None
            return super().step(closure)
    return RecordingAdam(params, lr=lr)


def exercise4(train_epochs: Any) -> CheckResult:
    """Write the training loop: judged by what it changes in a digit model with its first group frozen.

    Also judged by how it uses the optimiser: one step per batch (optimiser steps = batches x epochs) and the
    gradients zeroed before every backward pass (``optimizer.zero_grad()``, ``model.zero_grad()`` or
    ``set_to_none``: any route), since a loop without zeroing still reaches a decent accuracy on digits.
    """
    import torch

    from ..data import mnist_target_task
    from ..infra import seed_everything
    from ..training import evaluate
    from ..transfer import digit_cut_model

    if not callable(train_epochs):
        raise ValueError(f"exercise4 expects your function train_epochs, got {type(train_epochs).__name__}")
    seed_everything(0)
    task = mnist_target_task(20, test_per_class=10, val_per_class=30)
    cut = digit_cut_model(task.num_classes, task.classes)
    # a plain nn.Sequential: model.train() puts every module in train mode, as in any torchvision model
    model = torch.nn.Sequential(cut.groups["conv1"], cut.groups["conv2"], cut.groups["head"])
    model[0].requires_grad_(False)
    frozen = {k: v.clone() for k, v in model[0].state_dict().items()}
    trained_before = [p.detach().clone() for p in model[1].parameters()]
    optimizer = _recording_adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    train_loader, val_loader, _ = task.loaders(16)
    assert val_loader is not None, "mnist_target_task(val_per_class=30) always has a validation split"
    num_epochs = 8
    try:
        train_epochs(model, train_loader, optimizer, num_epochs)
    except Exception as exc:  # noqa: BLE001 - the student's code: report, never crash the lesson
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        return not_yet(f"train_epochs raised {type(exc).__name__}: {first}")
    if all(torch.equal(a, b) for a, b in zip(trained_before, model[1].parameters())):
        return not_yet("the trainable weights did not change: complete the loop — for every batch "
                       "optimizer.zero_grad(), loss = cross_entropy(model(x), y), loss.backward(), optimizer.step()")
    moved = [k for k, v in model[0].state_dict().items() if not torch.equal(v, frozen[k])]
    if moved:
        return not_yet(f"the frozen part changed ({moved[:2]}): requires_grad_(False) stops its weights, not its "
                       "BatchNorm statistics — after model.train(), put it back in eval mode (model[0].eval())")
    expected_steps = len(train_loader) * num_epochs
    steps = type(optimizer).steps
    if steps != expected_steps:
        per = "epoch" if steps == num_epochs else ("run" if steps == 1 else f"{steps / num_epochs:g} batches")
        return not_yet(f"the optimiser stepped {steps} times, once per {per}; one step per batch makes "
                       f"{len(train_loader)} batches x {num_epochs} epochs = {expected_steps} steps — "
                       "optimizer.step() belongs inside the loop over batches")
    if type(optimizer).accumulated:
        return not_yet(f"in {type(optimizer).accumulated} of {steps} steps the gradients still held earlier batches' "
                       "gradients: backward() adds to .grad, so zero them before every backward pass "
                       "(optimizer.zero_grad())")
    acc = evaluate(model, val_loader)["acc"]
    if acc < 0.7:
        return not_yet(f"validation accuracy {acc:.1%} after 8 epochs is below 70 %: is the loss computed on "
                       "the batch's own labels, and does every batch get a step?")
    return passed(f"frozen group untouched (weights and BatchNorm statistics), {steps} optimiser steps "
                  f"({len(train_loader)} batches x {num_epochs} epochs), gradients zeroed every batch: "
                  f"{acc:.1%} validation accuracy after 8 epochs on 20 digits per class")


def _lr_candidates_of(run) -> set[float]:
    """The learning rates a run chose from: its selection's, or its one rate."""
    rates = {round(float(row["lr"]), 12) for row in getattr(run, "selection", []) or [] if "lr" in row}
    return rates or {round(float(run.lr), 12)}


def _steps_of(run) -> int:
    """The optimiser steps a run took, as it recorded them (a fine-tune's head stage included)."""
    return int(run.steps)


def exercise5(answer: Any, transfer_run: Any, scratch_run: Any) -> CheckResult:
    """Repair a comparison: scratch with the transfer arm's optimiser steps and learning-rate candidates;
    ``answer`` is the repaired gap, transfer minus scratch, in points.

    Judged on the two runs passed in (:class:`~tlwidgets.transfer.RunResult`): the same task and training
    images, the same number of optimiser steps (``RunResult.steps``), the same lr candidates (a list given to
    ``run_strategy``, or one rate each), then the gap recomputed from their test accuracies.
    """
    from ..runs import RunResult

    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with the repaired gap in points: "
                       "100 * (transfer_run.test_acc - scratch_run.test_acc)")
    for name, run in (("transfer_run", transfer_run), ("scratch_run", scratch_run)):
        if not isinstance(run, RunResult):
            raise ValueError(f"exercise5 expects {name} to be the RunResult of tl.run_strategy, "
                             f"got {type(run).__name__}")
    if hasattr(answer, "numel") and hasattr(answer, "item") and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, Real):
        raise ValueError(f"exercise5 expects the gap in points (a number), got {type(answer).__name__}")
    if scratch_run.strategy != "scratch":
        return not_yet(f"the second run is {scratch_run.strategy!r}: repair the *scratch* arm "
                       "(tl.run_strategy('scratch', ...))")
    if transfer_run.task_name != scratch_run.task_name or transfer_run.num_train != scratch_run.num_train:
        return not_yet("the two runs did not train on the same task and images: build the task once and give it "
                       "to both")
    a, b = _steps_of(transfer_run), _steps_of(scratch_run)
    if a != b:
        return not_yet(f"the budgets still differ: {a} optimiser steps for transfer, {b} for scratch — give "
                       "scratch the same num_epochs (the same batches, so the same steps)")
    ra, rb = _lr_candidates_of(transfer_run), _lr_candidates_of(scratch_run)
    if ra != rb:
        return not_yet(f"the learning-rate candidates differ ({sorted(ra)} vs {sorted(rb)}): pass the same list as "
                       "lr= to both runs, so that validation chooses for each from the same options")
    gap = 100 * (transfer_run.test_acc - scratch_run.test_acc)
    value = float(answer)
    if abs(gap) > 1 and math.isclose(value, gap / 100, abs_tol=0.006):
        return not_yet("that looks like accuracy units; multiply by 100 to get points")
    if abs(gap) > 0.5 and math.isclose(value, -gap, abs_tol=0.51):
        return not_yet("the sign is the wrong way round: transfer minus scratch")
    if not math.isclose(value, gap, abs_tol=0.51):
        return not_yet(f"{value:.1f} is not the gap of these two runs: 100 * (transfer_run.test_acc - "
                       "scratch_run.test_acc)")
    survives = "survives" if gap > 2 else "does not survive: within a couple of points"
    return passed(f"equal budgets ({a} steps each, lr from {sorted(ra)}): transfer minus scratch = {gap:+.1f} "
                  f"points — the gap {survives}")


#: Exercise 6: the cat breeds that have an ImageNet class of their own (EfficientNet-Lite0's class indices;
#: ImageNet's five domestic-cat classes are 281 tabby, 282 tiger cat, 283 Persian, 284 Siamese, 285 Egyptian cat).
BREED_TO_IMAGENET = {"Persian": 283, "Siamese": 284, "Egyptian Mau": 285}
#: The five domestic-cat rows of ImageNet's classifier (tlwidgets.pretrained.CAT_CLASSES).
_CAT_ROWS = tuple(range(281, 286))


def cat_rows_head(source_head: Any, classes: Sequence[str], matches: Mapping[str, int]) -> tuple[Any, Any]:
    """The reference for :func:`exercise6`: (weight, bias) of a ``len(classes)``-way head built from ``source_head``.

    A class named in ``matches`` takes its ImageNet row (weight row and bias); every other class takes the
    mean of the five domestic-cat rows (281..285), so that it starts as "some cat" rather than at random.
    """
    w, b = source_head.weight.detach(), source_head.bias.detach()
    cat_w, cat_b = w[list(_CAT_ROWS)].mean(0), b[list(_CAT_ROWS)].mean(0)
    weight = torch.stack([w[matches[c]] if c in matches else cat_w for c in classes])
    bias = torch.stack([b[matches[c]] if c in matches else cat_b for c in classes])
    return weight, bias


def _as_tensor_pair(answer: Any):
    """The student's (weight, bias) as float tensors, or a hint string saying what is wrong with its form."""
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return f"return a pair (weight, bias), got {type(answer).__name__}"
    out = []
    for name, x in zip(("weight", "bias"), answer):
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor):
            return f"the {name} should be a tensor (or a NumPy array), got {type(x).__name__}"
        out.append(x.detach().float().cpu())
    return tuple(out)


def exercise6(cat_head_init: Any, source_head: Any, classes: Sequence[str],
              matches: Mapping[str, int] | None = None) -> CheckResult:
    """Initialise the cat-breed head from ImageNet's own cat rows; judged by behaviour.

    ``cat_head_init(source_head, classes, matches)`` must return (weight, bias) as :func:`cat_rows_head` does.
    It is called on the lesson's class list and on the same list reversed, with other matches, so an answer
    written for one order of breeds does not pass. Every route that returns those numbers passes (indexing,
    a loop with ``torch.stack``, NumPy arrays). The typical wrong answers get their own hint: weight and bias
    swapped or transposed, rows 281..285 taken in the breeds' order instead of by name, the rows one off,
    the bias left out, the mean over all 1000 ImageNet classes, zeros (or a copy of one row) for the breeds
    without an ImageNet class.
    """
    if is_placeholder(cat_head_init):
        return not_yet("complete cat_head_init(source_head, classes, matches)")
    if not callable(cat_head_init):
        raise ValueError(f"exercise6 expects the function cat_head_init(source_head, classes, matches), got "
                         f"{type(cat_head_init).__name__}")
    if not isinstance(getattr(source_head, "weight", None), torch.Tensor) or source_head.weight.shape[0] < 286:
        raise ValueError("exercise6 needs ImageNet's classifier (an nn.Linear with 1000 outputs) as source_head, "
                         f"got {type(source_head).__name__}")
    matches = dict(BREED_TO_IMAGENET if matches is None else matches)
    w = source_head.weight.detach().float().cpu()
    cases = [(list(classes), matches), (list(classes)[::-1], matches),
             (list(classes), {c: 281 + i for i, c in enumerate(list(matches)[:2])})]
    for cls, m in cases:
        with torch.no_grad():
            got = cat_head_init(source_head, cls, m)
        if is_placeholder(got):
            return not_yet("cat_head_init returned nothing yet: return (weight, bias), one row per breed")
        pair = _as_tensor_pair(got)
        if isinstance(pair, str):
            return not_yet(pair)
        weight, bias = pair
        want_w, want_b = (x.float().cpu() for x in cat_rows_head(source_head, cls, m))
        if weight.shape == want_b.shape and bias.shape == want_w.shape:
            return not_yet("weight and bias are swapped: return (weight, bias)")
        if weight.shape == want_w.T.shape and weight.shape != want_w.shape:
            return not_yet(f"the weight is {tuple(weight.shape)}: transposed — nn.Linear's weight is "
                           f"(out_features, in_features) = {tuple(want_w.shape)}, one row per breed")
        if weight.shape != want_w.shape or bias.shape != want_b.shape:
            return not_yet(f"weight {tuple(weight.shape)} and bias {tuple(bias.shape)}: the head needs "
                           f"{tuple(want_w.shape)} and {tuple(want_b.shape)}, one row per class in `classes`")
        if torch.allclose(weight, want_w, atol=1e-6) and torch.allclose(bias, want_b, atol=1e-6):
            continue
        in_order = torch.stack([w[281 + i] for i in range(min(5, len(cls)))])
        if torch.allclose(weight[:len(in_order)], in_order, atol=1e-6):
            return not_yet("rows 281..285 were given to the first five breeds in order; match by *name*: a breed "
                           "in `matches` takes the row matches[breed]")
        matched = [i for i, c in enumerate(cls) if c in m]
        if matched and all(torch.allclose(weight[i], w[m[cls[i]] - 1], atol=1e-6) or
                           torch.allclose(weight[i], w[m[cls[i]] + 1], atol=1e-6) for i in matched):
            return not_yet("the matched rows are one off: matches already holds the ImageNet class index itself")
        if torch.allclose(weight, want_w, atol=1e-6):
            if torch.allclose(bias, torch.zeros_like(bias)) or not torch.allclose(bias, want_b, atol=1e-6):
                return not_yet("the weights are right; the bias is not — copy ImageNet's bias entries too (the "
                               "matched class's, and the mean of the five cat entries for the rest)")
        unmatched = [i for i, c in enumerate(cls) if c not in m]
        if unmatched:
            u = weight[unmatched[0]]
            if torch.allclose(u, w.mean(0), atol=1e-6):
                return not_yet("the unmatched breeds got the mean of all 1000 ImageNet rows; use the mean of the "
                               "five domestic-cat rows (281..285): they start as 'some cat', not 'some object'")
            if torch.allclose(u, torch.zeros_like(u)):
                return not_yet("the unmatched breeds got zero rows; give them the mean of the five cat rows "
                               "(281..285), so they start as 'some cat'")
            if any(torch.allclose(u, w[r], atol=1e-6) for r in _CAT_ROWS):
                return not_yet("the unmatched breeds got one cat row; give them the mean of all five (281..285)")
        return not_yet("some rows differ from ImageNet's: a matched breed takes row matches[breed] (weight and "
                       "bias), every other breed the mean of rows 281..285")
    return passed(f"{len(matches)} breeds start from their own ImageNet class "
                  f"({', '.join(f'{c} <- {i}' for c, i in matches.items())}), the other {len(classes) - len(matches)} "
                  "from the mean of the five domestic-cat rows")
