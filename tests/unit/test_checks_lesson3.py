"""tlwidgets.checks.lesson3: fine-tuning (freeze depth, discriminative learning rates, frozen BatchNorm).

Per exercise: correct routes pass, typical wrong answers get their own hint, the lesson's untouched
placeholder gets a hint (never an exception), unreadable answers raise ValueError naming the type.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from _check_helpers import expect_hint, expect_pass, expect_placeholder, frozen_bn_names, group_sizes
from torch import nn

import tlwidgets as tl
from tlwidgets import checks, data
from tlwidgets.training import layerwise_lr_groups

BUNDLED = data.REPO_DATASETS


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (conftest)


# --------------------------------------------------------------------------------- lesson 3 ---
def smallest_k_by_hand(model, fraction):
    sizes = group_sizes(model)
    total = sum(sizes)
    return next((k for k in range(model.num_groups) if sum(sizes[k:]) / total < fraction), None)


def test_lesson3_exercise1_fewest_frozen(capsys):
    model = tl.load_digit_model()
    assert smallest_k_by_hand(model, 0.15) == 3 and smallest_k_by_hand(model, 0.98) == 2
    expect_pass(capsys, checks.lesson3.exercise1(3, model, fraction=0.15), "after 'features'")
    expect_pass(capsys, checks.lesson3.exercise1(2, model, fraction=0.98), "97.6%")
    expect_pass(capsys, checks.lesson3.exercise1(np.int64(2), model, fraction=0.98))
    expect_hint(capsys, checks.lesson3.exercise1(3, model, fraction=0.98), "is it the smallest")
    expect_hint(capsys, checks.lesson3.exercise1(1, model, fraction=0.98), "99.9%", "fewer than 98%")
    expect_hint(capsys, checks.lesson3.exercise1(9, model, fraction=0.98), "out of range")
    expect_hint(capsys, checks.lesson3.exercise1(-1, model, fraction=0.98), "out of range")
    assert smallest_k_by_hand(model, 1e-4) is None  # even the head alone is more than that
    expect_hint(capsys, checks.lesson3.exercise1(3, model, fraction=1e-4), "0.3%")


def test_lesson3_exercise1_on_a_tiny_model_leaves_it_as_it_was(tiny_model, capsys):
    model = tiny_model()
    tl.freeze(model, 1, frozen_bn="train")
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    k = smallest_k_by_hand(model, 0.7)
    assert k == 2  # groups of 48 / 312 / 528 / 51 parameters: 579 of 939 train with 2 frozen
    expect_pass(capsys, checks.lesson3.exercise1(k, model, fraction=0.7), "61.7%")
    expect_hint(capsys, checks.lesson3.exercise1(1, model, fraction=0.7), "94.9%")
    expect_hint(capsys, checks.lesson3.exercise1(3, model, fraction=0.7), "is it the smallest")
    assert [p.requires_grad for p in model.parameters()] == flags
    assert (model.n_frozen, model.frozen_bn_mode, model.training) == (1, "train", True)


@pytest.mark.parametrize("bad", [2.5, "2", True, [2]])
def test_lesson3_exercise1_needs_an_integer(bad):
    with pytest.raises(ValueError, match="integer number of frozen groups"):
        checks.lesson3.exercise1(bad, tl.load_digit_model())


def test_lesson3_checks_need_the_model():
    for exercise in (checks.lesson3.exercise1, checks.lesson3.exercise2, checks.lesson3.exercise3):
        with pytest.raises(ValueError, match="GroupedModel"):
            exercise(None, nn.Linear(2, 2))


def lr_groups_by_hand(model, lr, decay, names=None):
    last = model.num_groups - 1
    return [{"params": list(model.groups[n].parameters()), "lr": lr * decay ** (last - i)}
            for i, n in enumerate(model.group_names) if names is None or n in names]


def test_lesson3_exercise2_layerwise_learning_rates(capsys):
    model = tl.load_digit_model()
    tl.freeze(model, 0)
    decay = 0.01 ** (1 / (model.num_groups - 1))
    groups = lr_groups_by_hand(model, 1e-3, decay)
    assert groups[0]["lr"] == pytest.approx(1e-5) and groups[-1]["lr"] == pytest.approx(1e-3)
    expect_pass(capsys, checks.lesson3.exercise2(groups, model, ratio=0.01), "ratio 0.01", "4 groups")
    expect_pass(capsys, checks.lesson3.exercise2(torch.optim.Adam(groups), model, ratio=0.01))
    expect_pass(capsys, checks.lesson3.exercise2(lr_groups_by_hand(model, 1e-2, 0.5), model, ratio=0.125))
    # the lesson's call names the head's rate: by hand, with layerwise_lr_groups, as an optimiser, NumPy rates
    expect_pass(capsys, checks.lesson3.exercise2(groups, model, ratio=0.01, head_lr=1e-3), "the same factor")
    expect_pass(capsys, checks.lesson3.exercise2(layerwise_lr_groups(model, lr=1e-3, decay=decay), model,
                                                 ratio=0.01, head_lr=1e-3))
    numpy_rates = [{**g, "lr": np.float64(g["lr"])} for g in groups]
    expect_pass(capsys, checks.lesson3.exercise2(numpy_rates, model, ratio=0.01, head_lr=1e-3))
    tensor_rates = [{**g, "lr": torch.tensor(g["lr"])} for g in groups]
    expect_pass(capsys, checks.lesson3.exercise2(tensor_rates, model, ratio=0.01, head_lr=1e-3))


def test_lesson3_exercise2_the_idea_not_only_the_end_ratio(capsys):
    """Answers whose stem/head ratio is right but whose shape is not the recipe: each has its own hint."""
    model = tl.load_digit_model()
    tl.freeze(model, 0)
    decay = 0.01 ** (1 / (model.num_groups - 1))

    def with_rates(rates):
        return [{"params": list(model.groups[n].parameters()), "lr": r} for n, r in zip(model.group_names, rates)]
    ramp = [1e-5 + i * (1e-3 - 1e-5) / 3 for i in range(4)]
    expect_hint(capsys, checks.lesson3.exercise2(with_rates(ramp), model, ratio=0.01, head_lr=1e-3), "linear ramp")
    expect_hint(capsys, checks.lesson3.exercise2(with_rates([1e-5, 1e-5, 1e-5, 1e-3]), model, ratio=0.01,
                                                 head_lr=1e-3), "two rates")
    expect_hint(capsys, checks.lesson3.exercise2(lr_groups_by_hand(model, 0.5, decay), model, ratio=0.01,
                                                 head_lr=1e-3), "the exercise asks for 0.001")
    expect_hint(capsys, checks.lesson3.exercise2(with_rates([1e-5, 1e-4, 2e-4, 1e-3]), model, ratio=0.01,
                                                 head_lr=1e-3), "varies")


def test_lesson3_exercise2_wrong_groups_get_hints(capsys):
    model = tl.load_digit_model()
    tl.freeze(model, 0)
    decay = 0.01 ** (1 / (model.num_groups - 1))
    hint = expect_hint(capsys, checks.lesson3.exercise2(lr_groups_by_hand(model, 1e-3, 0.5), model), "aim for 0.01")
    assert "d**3" in hint
    expect_hint(capsys, checks.lesson3.exercise2(lr_groups_by_hand(model, 1e-3, 0.01 ** (1 / 4)), model),
                "aim for 0.01")
    backwards = lr_groups_by_hand(model, 1e-3, decay)
    for g, lr in zip(backwards, reversed([g["lr"] for g in backwards])):
        g["lr"] = lr
    expect_hint(capsys, checks.lesson3.exercise2(backwards, model), "grow from the stem")
    left_out = len(list(model.groups["conv2"].parameters())) + len(list(model.groups["features"].parameters()))
    expect_hint(capsys, checks.lesson3.exercise2(lr_groups_by_hand(model, 1e-3, decay, ["conv1", "head"]), model),
                f"{left_out} trainable tensors are in no parameter group")
    other = tl.load_digit_model()
    expect_hint(capsys, checks.lesson3.exercise2(lr_groups_by_hand(other, 1e-3, decay), model), "not in this model")
    twice = lr_groups_by_hand(model, 1e-3, decay)
    twice[1]["params"] = twice[1]["params"] + twice[0]["params"][:1]
    expect_hint(capsys, checks.lesson3.exercise2(twice, model), "two groups")
    split = lr_groups_by_hand(model, 1e-3, decay)
    conv2 = split.pop(1)
    split[1:1] = [{"params": conv2["params"][:1], "lr": conv2["lr"]}, {"params": conv2["params"][1:], "lr": 1.0}]
    expect_hint(capsys, checks.lesson3.exercise2(split, model), "'conv2' got two different learning rates")
    zero = lr_groups_by_hand(model, 1e-3, decay)
    zero[0]["lr"] = 0
    expect_hint(capsys, checks.lesson3.exercise2(zero, model), "positive 'lr'")


def test_lesson3_exercise2_stem_frozen(capsys):
    model = tl.load_digit_model()
    tl.freeze(model, 2)  # forgot tl.freeze(model, 0): only features and head are trainable
    trainable = [n for n in model.group_names if all(p.requires_grad for p in model.groups[n].parameters())]
    groups = lr_groups_by_hand(model, 1e-3, 0.1, trainable)
    expect_hint(capsys, checks.lesson3.exercise2(groups, model), "both the stem and the head")


@pytest.mark.parametrize("bad", [0.01, [torch.zeros(2)], "layerwise_lr_groups", [{"lr": 1e-3}]])
def test_lesson3_exercise2_needs_parameter_groups(bad):
    with pytest.raises(ValueError, match="optimiser parameter groups"):
        checks.lesson3.exercise2(bad, tl.load_digit_model())


def test_lesson3_exercise3_batchnorms_of_the_frozen_part(capsys):
    model = tl.load_digit_model()
    tl.freeze(model, 2)
    model.train()
    answer = frozen_bn_names(model)
    assert answer == ["conv1.1", "conv2.1"]
    model.eval()  # the check puts the model in training mode itself, then back
    expect_pass(capsys, checks.lesson3.exercise3(answer, model, n_frozen=2), "2 BatchNorm layers", "conv1, conv2")
    expect_pass(capsys, checks.lesson3.exercise3(tuple(reversed(answer)), model, n_frozen=2))
    expect_pass(capsys, checks.lesson3.exercise3(set(answer), model, n_frozen=2))
    assert not model.training
    expect_hint(capsys, checks.lesson3.exercise3(answer[:1], model, n_frozen=2), "1 missing, 0 that should not be")
    expect_hint(capsys, checks.lesson3.exercise3([], model, n_frozen=2), "2 missing")

    tl.freeze(model, 1)
    model.train()
    assert frozen_bn_names(model) == ["conv1.1"]
    # n_frozen=None: the check accepts any freeze depth (the lesson asks for 2, checked below)
    expect_pass(capsys, checks.lesson3.exercise3(["conv1.1"], model, n_frozen=None), "conv1 (the frozen groups)")
    expect_hint(capsys, checks.lesson3.exercise3(answer, model, n_frozen=None), "every BatchNorm layer")

    tl.freeze(model, 2, frozen_bn="train")
    model.train()
    assert frozen_bn_names(model) == []
    expect_pass(capsys, checks.lesson3.exercise3([], model, n_frozen=2), "none")
    expect_hint(capsys, checks.lesson3.exercise3(answer, model, n_frozen=2), "frozen_bn='train'")
    assert model.training


def test_lesson3_exercise3_one_frozen_group_tells_the_batchnorms_apart(capsys):
    """The lesson freezes ONE group: conv1's BatchNorm is frozen, conv2's trains, so 'every BatchNorm' is wrong."""
    model = tl.load_digit_model()
    tl.freeze(model, 1)
    right = frozen_bn_names(model.train())
    assert right == ["conv1.1"]
    expect_pass(capsys, checks.lesson3.exercise3(right, model), "conv1 (the frozen groups)")
    expect_pass(capsys, checks.lesson3.exercise3(("conv1.1",), model))
    expect_hint(capsys, checks.lesson3.exercise3(["conv1.1", "conv2.1"], model), "every BatchNorm layer")
    expect_hint(capsys, checks.lesson3.exercise3(["conv2.1"], model), "reversed")
    expect_hint(capsys, checks.lesson3.exercise3(["conv1.0", "conv1"], model), "not BatchNorm layers")
    expect_hint(capsys, checks.lesson3.exercise3([], model), "1 missing")


@pytest.mark.parametrize("bad", ["conv1.1", 2, {"conv1.1": False}])
def test_lesson3_exercise3_needs_a_list_of_names(bad):
    with pytest.raises(ValueError, match="list of BatchNorm module names"):
        checks.lesson3.exercise3(bad, tl.load_digit_model())




# ---------------------------------------------------------------- placeholders and the new rules ---
def test_lesson3_placeholders_get_a_hint_without_raising(capsys):
    model = tl.load_digit_model()
    expect_placeholder(checks.lesson3.exercise1(None, model, fraction=0.15, prediction=None), capsys)
    expect_placeholder(checks.lesson3.exercise1(None, model, fraction=0.15, prediction=2), capsys)

    def discriminative_groups(model, head_lr, stem_ratio):
        ...  # the lesson's stub
    expect_placeholder(checks.lesson3.exercise2(discriminative_groups(model, 1e-3, 0.01), model, ratio=0.01), capsys)
    expect_placeholder(checks.lesson3.exercise3(None, model), capsys)
    expect_placeholder(checks.lesson3.exercise3(..., model), capsys)
    expect_placeholder(checks.lesson3.exercise1(..., model, fraction=0.15, prediction=2), capsys)


def test_lesson3_exercise1_a_wrong_prediction_still_passes_and_is_compared(capsys):
    model = tl.load_digit_model()
    k = smallest_k_by_hand(model, 0.15)
    expect_pass(capsys, checks.lesson3.exercise1(k, model, fraction=0.15, prediction=k), "as you predicted")
    expect_pass(capsys, checks.lesson3.exercise1(k, model, fraction=0.15, prediction=k + 1), f"you predicted {k + 1}")
    expect_pass(capsys, checks.lesson3.exercise1(float(k), model, fraction=0.15, prediction=k))   # number types
    expect_pass(capsys, checks.lesson3.exercise1(np.int64(k), model, fraction=0.15, prediction=k))


def test_lesson3_exercise3_an_unfrozen_model_with_an_empty_list_is_not_the_exercise(capsys):
    model = tl.load_digit_model()                 # nothing frozen: [] is "true" but not what was asked
    model.train()
    expect_hint(capsys, checks.lesson3.exercise3([], model), "tl.freeze(model, 1)")
    tl.freeze(model, 2)
    expect_hint(capsys, checks.lesson3.exercise3(frozen_bn_names(model.train()), model), "tl.freeze(model, 1)")
    tl.freeze(model, 1)
    expect_pass(capsys, checks.lesson3.exercise3(frozen_bn_names(model.train()), model))


def test_lesson3_exercise4_explains_the_validation_test_gap(capsys):
    """Every route of writing the three true statements passes; each false statement gets its own hint."""
    for route in ("ABE", "a, b, e", ["A", "B", "E"], {"e", "a", "b"}, ("AB", "E")):
        expect_pass(capsys, checks.lesson3.exercise4(route), "selection optimism")
    expect_hint(capsys, checks.lesson3.exercise4("ABC"), "never trained on")
    expect_hint(capsys, checks.lesson3.exercise4("ABDE"), "augmented")
    expect_hint(capsys, checks.lesson3.exercise4("ABEF"), "does not lower it")
    expect_hint(capsys, checks.lesson3.exercise4("BE"), "the main one")
    expect_hint(capsys, checks.lesson3.exercise4("A"), "2 more statement(s)")
    expect_hint(capsys, checks.lesson3.exercise4("AZ"), "not statements")
    expect_placeholder(checks.lesson3.exercise4(...), capsys)
    with pytest.raises(ValueError, match="expects letters"):
        checks.lesson3.exercise4(3)
    assert set(checks.lesson3.GAP_STATEMENTS) == set("ABCDEF")


# ---------------------------------------------------------------- exercise 5: gradual unfreezing ---
def test_lesson3_gradual_schedule_is_howard_and_ruders():
    # ULMFiT: the last layer first, then one more (lower) group per epoch, then everything trains
    assert checks.lesson3.gradual_schedule(2, 6) == [2, 1, 0, 0, 0, 0]
    assert checks.lesson3.gradual_schedule(9, 4) == [9, 8, 7, 6]
    assert checks.lesson3.gradual_schedule(0, 2) == [0, 0]


def gradual_by_comprehension(top, num_epochs):
    return [max(top - e, 0) for e in range(num_epochs)]


def gradual_by_loop(top, num_epochs):
    k = top
    for _ in range(num_epochs):
        yield k
        if k > 0:
            k -= 1


def gradual_with_numpy(top, num_epochs):
    return np.clip(top - np.arange(num_epochs), 0, None)


def gradual_with_torch(top, num_epochs):
    return (top - torch.arange(num_epochs)).clamp(min=0)


@pytest.mark.parametrize("route", [gradual_by_comprehension, gradual_by_loop, gradual_with_numpy,
                                   gradual_with_torch])
def test_lesson3_exercise5_accepts_every_correct_route(route, capsys):
    expect_pass(capsys, checks.lesson3.exercise5(route), "one more group per epoch")


@pytest.mark.parametrize(("wrong", "needle"), [
    (lambda top, n: [min(e, top) for e in range(n)], "grows"),                          # freezes more over time
    (lambda top, n: [top] + [0] * (n - 1), "two-stage recipe"),                        # head, then all at once
    (lambda top, n: [max(top - 1 - e, 0) for e in range(n)], "head alone"),            # no head-only epoch
    (lambda top, n: [top - e for e in range(n)], "below 0"),                           # never clamped
    (lambda top, n: [max(top - e // 2, 0) for e in range(n)], "too slowly"),           # one group per 2 epochs
    (lambda top, n: [top] * n, "feature extraction"),                                  # never unfreezes
    (lambda top, n: [max(top - e, 0) for e in range(n + 1)], "one n_frozen per epoch"),  # wrong length
    (lambda top, n: [max(top - 2 * e, 0) for e in range(n)], "more than one group"),   # two groups per epoch
])
def test_lesson3_exercise5_rejects_typical_wrong_schedules_with_their_own_hint(wrong, needle, capsys):
    expect_hint(capsys, checks.lesson3.exercise5(wrong), needle)


def test_lesson3_exercise5_placeholder_and_unreadable_answers(capsys):
    def untouched(top, num_epochs):
        ...

    expect_placeholder(checks.lesson3.exercise5(untouched), capsys)
    expect_placeholder(checks.lesson3.exercise5(...), capsys)
    expect_hint(capsys, checks.lesson3.exercise5(lambda top, n: 3), "int")
    expect_hint(capsys, checks.lesson3.exercise5(lambda top, n: [0.5] * n), "integer")
    with pytest.raises(ValueError, match="gradual_unfreezing"):
        checks.lesson3.exercise5([2, 1, 0])
