"""checks.lesson5 (which layers transfer): every exercise accepts two correct routes, rejects three typical wrong
answers each with its own hint, and rejects the untouched placeholder. No data: a random source network and
hand-made sweep tables."""
from __future__ import annotations

import copy

import pytest
import torch
from _check_helpers import expect_hint, expect_pass

import tlwidgets as tl
from tlwidgets import checks
from tlwidgets.layer_transfer import SeedResults, transplant
from tlwidgets.metrics import classification_metrics

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (conftest)


# ------------------------------------------------------------------------------------------ exercise 1 ---
def _placeholder(source, n):  # the lesson's stub, untouched
    model = tl.digit_cnn(5)
    ...
    return model


def _by_hand_with_freeze(source, n):
    model = tl.digit_cnn(5)
    for name in model.group_names[:n]:
        model.groups[name].load_state_dict(source.groups[name].state_dict())
    tl.freeze(model, n)
    return model


def _plain_torch(source, n):
    model = tl.digit_cnn(5)
    for name in model.group_names[:n]:
        model.groups[name] = copy.deepcopy(source.groups[name])
        for p in model.groups[name].parameters():
            p.requires_grad_(False)
    model.n_frozen = n          # what GroupedModel.train() reads to keep frozen groups in eval mode
    return model


def _not_frozen(source, n):
    model = tl.digit_cnn(5)
    for name in model.group_names[:n]:
        model.groups[name].load_state_dict(source.groups[name].state_dict())
    return model


def _shared_modules(source, n):
    model = tl.digit_cnn(5)
    for name in model.group_names[:n]:
        model.groups[name] = source.groups[name]
    tl.freeze(model, n)
    return model


def _requires_grad_only(source, n):   # frozen weights, but BatchNorm left to train() -> statistics drift
    model = tl.digit_cnn(5)
    for name in model.group_names[:n]:
        model.groups[name].load_state_dict(source.groups[name].state_dict())
        for p in model.groups[name].parameters():
            p.requires_grad_(False)
    return model


def _copies_everything(source, n):
    model = copy.deepcopy(source)
    tl.freeze(model, n)
    return model


def _frozen_only_no_copy(source, n):
    model = tl.digit_cnn(5)
    tl.freeze(model, n)
    return model


@pytest.mark.parametrize("route", [_by_hand_with_freeze, _plain_torch,
                                   lambda source, n: transplant(source, tl.digit_cnn(5), n)])
def test_exercise1_accepts_every_correct_route(route, capsys):
    expect_pass(capsys, checks.lesson5.exercise1(route), "frozen copies")


@pytest.mark.parametrize("answer, hint", [
    (_placeholder, "does not hold the source's weights"),
    (None, "define `def build_anb"),
    (_not_frozen, "still trains"),
    (_shared_modules, "shares its tensors"),
    (_requires_grad_only, "BatchNorm running statistics"),
    (_copies_everything, "was copied too"),
    (_frozen_only_no_copy, "does not hold the source's weights"),
    (lambda source, n: None, "returned None"),
    (lambda source, n: source, "the source network itself"),
    (lambda source, n: 1 / 0, "ZeroDivisionError"),
])
def test_exercise1_rejects_wrong_answers_with_their_own_hint(answer, hint, capsys):
    expect_hint(capsys, checks.lesson5.exercise1(answer), hint)


def test_exercise1_freezing_too_much_is_named(capsys):
    def too_much(source, n):
        model = _by_hand_with_freeze(source, n)
        tl.freeze(model, n + 1 if n + 1 < model.num_groups else n)
        return model
    expect_hint(capsys, checks.lesson5.exercise1(too_much), "is frozen but must learn")


# ------------------------------------------------------------------------------------------ exercise 2 ---
def _metrics(acc: float, n: int = 100):
    y = torch.zeros(n, dtype=torch.long)
    y[: n // 2] = 1
    pred = y.clone()
    wrong = round((1 - acc) * n)
    pred[:wrong] = 1 - pred[:wrong]
    return classification_metrics(y, pred, 2)


@pytest.fixture
def sweep():
    res = SeedResults(("variant", "n"))
    table = {("base B", 0): 0.93, ("AnB", 1): 0.95, ("AnB", 2): 0.90, ("AnB", 3): 0.70,
             ("AnB+", 1): 0.90, ("AnB+", 2): 0.94, ("AnB+", 3): 0.95,
             ("BnB", 1): 0.93, ("BnB", 2): 0.92, ("BnB", 3): 0.93}
    for s in (0, 1):
        for (v, n), acc in table.items():
            res.add(_metrics(acc + 0.01 * s), seed=s, val_acc=acc, variant=v, n=n)
    return res


def test_exercise2_accepts_the_measured_depth_whatever_the_prediction(sweep, capsys):
    expect_pass(capsys, checks.lesson5.exercise2(3, 3, sweep), "n=3", "as you predicted")
    expect_pass(capsys, checks.lesson5.exercise2(1, torch.tensor(3), sweep), "you predicted n=1")


def test_exercise2_rejects_placeholder_and_wrong_answers(sweep, capsys):
    expect_hint(capsys, checks.lesson5.exercise2(None, None, sweep), "write your prediction first")
    expect_hint(capsys, checks.lesson5.exercise2(3, None, sweep), "now measure")
    expect_hint(capsys, checks.lesson5.exercise2(7, 3, sweep), "not one of")
    expect_hint(capsys, checks.lesson5.exercise2(3, 1, sweep), "loses least")
    expect_hint(capsys, checks.lesson5.exercise2(3, 5, sweep), "not a depth")
    # AnB+ is worst at n=1 here, AnB least bad at n=1: make a sweep where the AnB+ worst is a distinct n
    res = SeedResults(sweep.keys, [r for r in sweep.rows if not (r["variant"] == "AnB+")])
    for s in (0, 1):
        for n, acc in ((1, 0.95), (2, 0.80), (3, 0.95)):
            res.add(_metrics(acc), seed=s, val_acc=acc, variant="AnB+", n=n)
    expect_hint(capsys, checks.lesson5.exercise2(3, 2, res), "AnB+ (fine-tuned)")
    with pytest.raises(ValueError, match="integer"):
        checks.lesson5.exercise2(3, "3", sweep)
    with pytest.raises(ValueError, match="Yosinski sweep"):
        checks.lesson5.exercise2(3, 3, None)


# ------------------------------------------------------------------------------------------ exercise 3 ---
def _cuts(val: dict, test: dict) -> SeedResults:
    res = SeedResults(("features",))
    for s in (0, 1, 2):
        for c in val:
            res.add(_metrics(test[c]), seed=s, val_acc=val[c], features=c)
    return res


@pytest.fixture
def digit_cuts():
    return _cuts({"block3": 0.93, "block4": 0.91, "block5": 0.90, "block6": 0.88, "features": 0.82},
                 {"block3": 0.92, "block4": 0.94, "block5": 0.90, "block6": 0.88, "features": 0.81})


@pytest.fixture
def cat_cuts():
    return _cuts({"block3": 0.37, "block4": 0.44, "block5": 0.76, "block6": 0.77, "features": 0.66},
                 {"block3": 0.36, "block4": 0.43, "block5": 0.64, "block6": 0.68, "features": 0.70})


def test_exercise3_accepts_the_best_validation_cut_by_name_or_position(digit_cuts, capsys):
    expect_pass(capsys, checks.lesson5.exercise3("block3", "block3", digit_cuts), "'block3'", "as you predicted")
    expect_pass(capsys, checks.lesson5.exercise3("features", 0, digit_cuts), "you predicted 'features'")


def test_exercise3_rejects_placeholder_and_wrong_answers(digit_cuts, cat_cuts, capsys):
    expect_hint(capsys, checks.lesson5.exercise3(None, None, digit_cuts), "write your prediction first")
    expect_hint(capsys, checks.lesson5.exercise3("block3", None, digit_cuts), "now measure")
    expect_hint(capsys, checks.lesson5.exercise3("block3", "block4", digit_cuts), "*test* set")
    expect_hint(capsys, checks.lesson5.exercise3("block3", "block6", digit_cuts, other=cat_cuts), "cat photos")
    expect_hint(capsys, checks.lesson5.exercise3("block3", "features", digit_cuts), "not automatically the best")
    expect_hint(capsys, checks.lesson5.exercise3("block3", "block5", digit_cuts), "another cut does better")
    expect_hint(capsys, checks.lesson5.exercise3("block3", 9, digit_cuts), "not among")
    expect_hint(capsys, checks.lesson5.exercise3("block9", "block3", digit_cuts), "not one of")
    with pytest.raises(ValueError, match="cut name"):
        checks.lesson5.exercise3("block3", 0.5, digit_cuts)
    with pytest.raises(ValueError, match="cut sweep"):
        checks.lesson5.exercise3("block3", "block3", None)
