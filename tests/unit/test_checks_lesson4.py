"""tlwidgets.checks.lesson4: learning curves (catch-up size, time to accuracy, gaps in points, the training loop).

Per exercise: correct routes pass, typical wrong answers get their own hint, the lesson's untouched
placeholder gets a hint (never an exception), unreadable answers raise ValueError naming the type.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from _check_helpers import expect_hint, expect_pass, expect_placeholder
from torch import nn

from tlwidgets import checks, data
from tlwidgets.experiments import LearningCurve
from tlwidgets.metrics import Metrics
from tlwidgets.pretrained import CAT_CLASSES
from tlwidgets.runs import Recipe, RunResult
from tlwidgets.training import History

BUNDLED = data.REPO_DATASETS


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (conftest)


# Learning curves, by hand: {strategy: {size: [test_acc of seed 0, seed 1]}}
DIGIT_ACCS = {
    "fine_tune": {2: [0.80, 0.84], 5: [0.86, 0.88], 20: [0.92, 0.94]},
    "scratch": {2: [0.50, 0.60], 5: [0.85, 0.79], 20: [0.91, 0.93]},  # seed 0 alone is close at 5: the mean is not
}
CAT_ACCS = {
    "feature_extraction": {5: [0.50, 0.60], None: [0.80, 0.82]},
    "scratch": {5: [0.20, 0.30], None: [0.35, 0.37]},
}
# per-epoch val_acc at the largest size (seconds per epoch, setup seconds) per (strategy, seed)
CAT_HISTORIES = {
    ("feature_extraction", 0): ([0.40, 0.55, 0.65, 0.70], 0.25, 1.5),
    ("feature_extraction", 1): ([0.62, 0.70], 0.25, 1.0),
    ("scratch", 0): ([0.20, 0.30, 0.35], 0.5, 0.0),
    ("scratch", 1): ([0.25, 0.37], 0.5, 0.0),
}


def make_history(val_accs, seconds):
    h = History()
    for e, acc in enumerate(val_accs):
        h.on_epoch_end({"epoch": e, "loss": 1.0 - acc, "acc": acc, "val_loss": 1.0 - acc, "val_acc": acc,
                        "seconds": seconds})
    h.on_train_end({"stopped": False, "stop_reason": "", "seconds": seconds * len(val_accs)})
    return h


def make_curve(name, accs, sizes, histories=None, num_classes=5):
    records = []
    for strategy, per_size in accs.items():
        for n in sizes:
            for seed, acc in enumerate(per_size[n]):
                val, sec, setup = (histories or {}).get((strategy, seed), ([acc], 0.1, 0.0)) \
                    if n == sizes[-1] else ([acc], 0.1, 0.0)
                test = Metrics(acc, acc, 1 / num_classes, 1 / num_classes, 100, num_classes, num_classes)
                records.append(RunResult(Recipe(strategy, seed=seed), name, n, num_classes * (n or 50),
                                         make_history(val, sec), test=test, seconds=sec * len(val),
                                         setup_seconds=setup))
    return LearningCurve(name, records, sizes, num_classes)


def mean(xs):
    return sum(xs) / len(xs)


def first_catch_up(accs, sizes, strategy, baseline, margin):
    for n in sizes:
        if mean(accs[baseline][n]) >= mean(accs[strategy][n]) - margin:
            return n
    return "never"


@pytest.fixture(scope="module")
def digit_curve():
    return make_curve("digits", DIGIT_ACCS, [2, 5, 20])


@pytest.fixture(scope="module")
def cat_curve():
    return make_curve("cats", CAT_ACCS, [5, None], CAT_HISTORIES, num_classes=12)


# --------------------------------------------------------------------------------- lesson 4 ---
def test_lesson4_exercise1_first_size_where_scratch_catches_up(digit_curve, capsys):
    sizes = [2, 5, 20]
    answer = first_catch_up(DIGIT_ACCS, sizes, "fine_tune", "scratch", 0.02)
    assert answer == 20
    expect_pass(capsys, checks.lesson4.exercise1(answer, digit_curve, margin=0.02),
                "at 20 per class", "+1.0 points behind")
    loose = first_catch_up(DIGIT_ACCS, sizes, "fine_tune", "scratch", 0.07)
    assert loose == 5
    expect_pass(capsys, checks.lesson4.exercise1(loose, digit_curve, margin=0.07))
    expect_hint(capsys, checks.lesson4.exercise1(5, digit_curve, margin=0.02), "more than 2")  # seed 0 alone says 5
    expect_pass(capsys, checks.lesson4.exercise1(np.int64(answer), digit_curve, margin=0.02))     # number types
    expect_pass(capsys, checks.lesson4.exercise1(torch.tensor(answer), digit_curve, margin=0.02))
    expect_pass(capsys, checks.lesson4.exercise1(float(answer), digit_curve, margin=0.02))
    expect_hint(capsys, checks.lesson4.exercise1(20, digit_curve, margin=0.07), "the first size")
    expect_hint(capsys, checks.lesson4.exercise1(50, digit_curve, margin=0.02), "not one of the curve's sizes")
    expect_hint(capsys, checks.lesson4.exercise1("never", digit_curve, margin=0.02), "does come within 2 points")
    expect_hint(capsys, checks.lesson4.exercise1("all", digit_curve, margin=0.02), "not one of the curve's sizes")


def test_lesson4_exercise1_never_and_all(cat_curve, capsys):
    sizes = [5, None]
    assert first_catch_up(CAT_ACCS, sizes, "feature_extraction", "scratch", 0.02) == "never"
    expect_pass(capsys, checks.lesson4.exercise1("never", cat_curve, strategy="feature_extraction"), "never")
    expect_hint(capsys, checks.lesson4.exercise1(5, cat_curve, strategy="feature_extraction"))
    expect_hint(capsys, checks.lesson4.exercise1("all", cat_curve, strategy="feature_extraction"))


def test_lesson4_exercise1_catching_up_only_with_all_labels(capsys):
    """The size None ("all") is answered as "all": None itself is the lesson's placeholder."""
    accs = {"fine_tune": {5: [0.90], None: [0.95]}, "scratch": {5: [0.70], None: [0.94]}}
    curve = make_curve("digits, all sizes", accs, [5, None])
    assert first_catch_up(accs, [5, None], "fine_tune", "scratch", 0.02) is None
    expect_pass(capsys, checks.lesson4.exercise1("all", curve), "at all per class")
    expect_hint(capsys, checks.lesson4.exercise1(None, curve), "'all'")
    expect_hint(capsys, checks.lesson4.exercise1(5, curve), "more than 2")
    expect_hint(capsys, checks.lesson4.exercise1("never", curve), "does come within")


@pytest.mark.parametrize("bad", [20.5, "20", True, [20]])
def test_lesson4_exercise1_needs_a_size(bad, digit_curve):
    with pytest.raises(ValueError, match="expects a size"):
        checks.lesson4.exercise1(bad, digit_curve)


def test_lesson4_checks_need_the_curve(digit_curve):
    for exercise, args in ((checks.lesson4.exercise1, ()), (checks.lesson4.exercise2, (0.6,)),
                           (checks.lesson4.exercise3, ())):
        with pytest.raises(ValueError, match="LearningCurve"):
            exercise(None, digit_curve.records, *args)


def test_lesson4_exercise2_seconds_to_target_with_setup(cat_curve, capsys):
    val, per_epoch, setup = CAT_HISTORIES[("feature_extraction", 0)]
    epochs = next(i + 1 for i, a in enumerate(val) if a >= 0.6)
    answer = setup + epochs * per_epoch
    assert answer == pytest.approx(2.25)
    kw = dict(target=0.6, n_per_class=None, strategy="feature_extraction", seed=0)
    expect_pass(capsys, checks.lesson4.exercise2(answer, cat_curve, **kw), "2.25 s", "3 epoch(s)")
    expect_pass(capsys, checks.lesson4.exercise2(2.251, cat_curve, **kw))
    expect_hint(capsys, checks.lesson4.exercise2(answer - setup, cat_curve, **kw), "setup_seconds")
    other_seed = CAT_HISTORIES[("feature_extraction", 1)]
    expect_hint(capsys, checks.lesson4.exercise2(other_seed[2] + other_seed[1], cat_curve, **kw), "not quite")
    expect_hint(capsys, checks.lesson4.exercise2("never", cat_curve, **kw), "not quite")
    expect_pass(capsys, checks.lesson4.exercise2(1.25, cat_curve, **{**kw, "seed": 1}))
    expect_hint(capsys, checks.lesson4.exercise2(answer, cat_curve, **{**kw, "seed": 7}), "no feature_extraction run")


def test_lesson4_exercise2_a_run_that_never_gets_there(cat_curve, capsys):
    kw = dict(target=0.6, n_per_class=None, strategy="scratch", seed=0)
    assert max(CAT_HISTORIES[("scratch", 0)][0]) < 0.6
    expect_pass(capsys, checks.lesson4.exercise2(None, cat_curve, **kw), "never reached 60%")  # the documented answer
    expect_pass(capsys, checks.lesson4.exercise2("never", cat_curve, **kw))
    expect_hint(capsys, checks.lesson4.exercise2(1.5, cat_curve, **kw), "ever reach 60%")


@pytest.mark.parametrize("bad", ["2.25", True, [2.25]])
def test_lesson4_exercise2_needs_seconds(bad, cat_curve):
    with pytest.raises(ValueError, match="number of seconds or None"):
        checks.lesson4.exercise2(bad, cat_curve, target=0.6, strategy="feature_extraction")


def test_lesson4_exercise3_gap_in_points(cat_curve, capsys):
    answer = {n: 100 * (mean(CAT_ACCS["feature_extraction"][n]) - mean(CAT_ACCS["scratch"][n])) for n in (5, None)}
    assert answer == pytest.approx({5: 30.0, None: 45.0})
    kw = dict(strategy="feature_extraction", baseline="scratch")
    expect_pass(capsys, checks.lesson4.exercise3(answer, cat_curve, **kw), "5: +30.0", "all: +45.0", "grows")
    expect_pass(capsys, checks.lesson4.exercise3({5: 30, None: 45.04}, cat_curve, **kw))
    expect_hint(capsys, checks.lesson4.exercise3({n: v / 100 for n, v in answer.items()}, cat_curve, **kw),
                "accuracy units")
    expect_hint(capsys, checks.lesson4.exercise3({n: -v for n, v in answer.items()}, cat_curve, **kw),
                "sign the wrong way round")
    expect_hint(capsys, checks.lesson4.exercise3({5: 30.0, None: 40.0}, cat_curve, **kw), "at all per class")
    expect_hint(capsys, checks.lesson4.exercise3({5: 30.0, "all": 45.0}, cat_curve, **kw), "curve's sizes")
    expect_hint(capsys, checks.lesson4.exercise3({5: 30.0}, cat_curve, **kw), "curve's sizes")


def test_lesson4_exercise3_bad_input(cat_curve):
    with pytest.raises(ValueError, match="expects a dict"):
        checks.lesson4.exercise3([30.0, 45.0], cat_curve, strategy="feature_extraction")
    with pytest.raises(ValueError, match="numbers of points"):
        checks.lesson4.exercise3({5: "30", None: 45.0}, cat_curve, strategy="feature_extraction")




# ---------------------------------------------------------------- placeholders and the new rules ---
def test_lesson4_placeholders_get_a_hint_without_raising(digit_curve, cat_curve, capsys):
    expect_placeholder(checks.lesson4.exercise1(None, digit_curve, prediction=None), capsys)
    expect_placeholder(checks.lesson4.exercise1(None, digit_curve, prediction=5), capsys)
    expect_placeholder(checks.lesson4.exercise2(..., cat_curve, target=0.6, prediction="less"), capsys)
    expect_placeholder(checks.lesson4.exercise2(None, cat_curve, target=0.6), capsys)   # None is wrong when it got there
    expect_placeholder(checks.lesson4.exercise3(None, cat_curve, prediction="grows"), capsys)

    def train_epochs(model, train_loader, optimizer, num_epochs):
        for epoch in range(num_epochs):
            ...  # the lesson's stub
    expect_placeholder(checks.lesson4.exercise4(train_epochs), capsys)


def test_lesson4_exercise2_never_reaching_the_target_is_the_answer_none(cat_curve, capsys):
    expect_pass(capsys, checks.lesson4.exercise2(None, cat_curve, target=0.99, prediction="more"), "never reached")


def test_lesson4_exercise3_whole_points_pass_and_each_mistake_has_its_own_hint(cat_curve, capsys):
    exact = {n: 100 * (mean(CAT_ACCS["feature_extraction"][n]) - mean(CAT_ACCS["scratch"][n])) for n in (5, None)}
    expect_pass(capsys, checks.lesson4.exercise3({n: round(v) for n, v in exact.items()}, cat_curve,
                                                 prediction="grows"), "points")
    expect_pass(capsys, checks.lesson4.exercise3(exact, cat_curve, prediction="shrinks"), "you predicted 'shrinks'")
    expect_hint(capsys, checks.lesson4.exercise3({n: -v for n, v in exact.items()}, cat_curve), "sign")
    expect_hint(capsys, checks.lesson4.exercise3({n: v / 100 for n, v in exact.items()}, cat_curve),
                "accuracy units")
    expect_hint(capsys, checks.lesson4.exercise3({5: exact[5] + 3, None: exact[None]}, cat_curve), "100 * curve.gap")


def _loop(model, train_loader, optimizer, num_epochs, *, keep_eval=True, labels=lambda y: y):
    for _ in range(num_epochs):
        model.train()
        if keep_eval:
            model[0].eval()
        for x, y in train_loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), labels(y)).backward()
            optimizer.step()


def test_lesson4_exercise4_the_training_loop_judged_by_behaviour(capsys):
    expect_pass(capsys, checks.lesson4.exercise4(_loop), "frozen group untouched")

    def with_set_to_none(model, train_loader, optimizer, num_epochs):   # a second correct route
        model.train()
        for module in model[:1]:
            module.eval()
        for _ in range(num_epochs):
            for x, y in train_loader:
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    expect_pass(capsys, checks.lesson4.exercise4(with_set_to_none))
    expect_hint(capsys, checks.lesson4.exercise4(lambda m, l, o, n: _loop(m, l, o, n, keep_eval=False)),
                "model[0].eval()")
    expect_hint(capsys, checks.lesson4.exercise4(lambda m, l, o, n: _loop(m, l, o, n, labels=lambda y: (y + 1) % 5)),
                "below 70 %")
    expect_hint(capsys, checks.lesson4.exercise4(lambda m, l, o, n: None), "complete the loop")


def test_lesson4_exercise4_steps_per_batch_and_zeroed_gradients(capsys):
    """Loops that still reach a decent accuracy on digits, yet are not the loop: each gets its own hint."""
    def model_zero_grad(model, train_loader, optimizer, num_epochs):    # a third correct route
        for _ in range(num_epochs):
            model.train()
            model[0].eval()
            for x, y in train_loader:
                model.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
    expect_pass(capsys, checks.lesson4.exercise4(model_zero_grad), "gradients zeroed every batch")

    def step_per_epoch(model, train_loader, optimizer, num_epochs):
        for _ in range(num_epochs):
            model.train()
            model[0].eval()
            optimizer.zero_grad()
            for x, y in train_loader:
                nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    expect_hint(capsys, checks.lesson4.exercise4(step_per_epoch), "once per epoch", "batches x 8 epochs")

    def no_zero_grad(model, train_loader, optimizer, num_epochs):
        for _ in range(num_epochs):
            model.train()
            model[0].eval()
            for x, y in train_loader:
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
    expect_hint(capsys, checks.lesson4.exercise4(no_zero_grad), "zero them before every backward pass")

    def zero_once(model, train_loader, optimizer, num_epochs):
        optimizer.zero_grad()
        no_zero_grad(model, train_loader, optimizer, num_epochs)
    expect_hint(capsys, checks.lesson4.exercise4(zero_once), "earlier batches")


def _run(strategy, acc, *, epochs, lrs, num_train=25, task="digits 5-9"):
    """A recorded RunResult (no training): what exercise 5 reads from the two runs."""
    selection = [{"lr": lr, "val_acc": 0.5} for lr in lrs] if len(lrs) > 1 else []
    test = Metrics(acc, acc, 0.2, 0.2, 100, 5, 5)
    return RunResult(Recipe(strategy, lr=lrs[0], num_epochs=epochs), task, 5, num_train,
                     make_history([0.5] * epochs, 0.1), test=test, steps=epochs * -(-num_train // 32),
                     selection=selection)


def test_lesson4_exercise5_repairing_a_comparison(capsys):
    fe = _run("feature_extraction", 0.80, epochs=30, lrs=[1e-3, 3e-3])
    fair = _run("scratch", 0.75, epochs=30, lrs=[3e-3, 1e-3])
    expect_pass(capsys, checks.lesson4.exercise5(5.0, fe, fair), "+5.0 points", "survives")
    expect_pass(capsys, checks.lesson4.exercise5(np.float32(5), fe, fair))            # any number type
    expect_pass(capsys, checks.lesson4.exercise5(torch.tensor(5.2), fe, fair))
    one = _run("feature_extraction", 0.80, epochs=30, lrs=[1e-3])                  # one shared rate: a route too
    expect_pass(capsys, checks.lesson4.exercise5(1, one, _run("scratch", 0.79, epochs=30, lrs=[1e-3])),
                "does not survive")
    # the typical unrepaired or half-repaired comparisons, each with its own hint
    expect_hint(capsys, checks.lesson4.exercise5(5.0, fe, _run("scratch", 0.75, epochs=3, lrs=[1e-3, 3e-3])),
                "budgets still differ")
    expect_hint(capsys, checks.lesson4.exercise5(5.0, fe, _run("scratch", 0.75, epochs=30, lrs=[1e-3])),
                "candidates differ")
    expect_hint(capsys, checks.lesson4.exercise5(0.05, fe, fair), "accuracy units")
    expect_hint(capsys, checks.lesson4.exercise5(-5.0, fe, fair), "sign")
    expect_hint(capsys, checks.lesson4.exercise5(9.0, fe, fair), "not the gap")
    expect_hint(capsys, checks.lesson4.exercise5(5.0, fe, _run("fine_tune", 0.75, epochs=30, lrs=[1e-3, 3e-3])),
                "repair the *scratch* arm")
    expect_hint(capsys, checks.lesson4.exercise5(5.0, fe, _run("scratch", 0.75, epochs=30, lrs=[1e-3, 3e-3],
                                                               num_train=50)), "same task and images")
    expect_placeholder(checks.lesson4.exercise5(..., fe, fair), capsys)
    with pytest.raises(ValueError, match="RunResult"):
        checks.lesson4.exercise5(5.0, fe, None)
    with pytest.raises(ValueError, match="gap in points"):
        checks.lesson4.exercise5("5", fe, fair)


# ------------------------------------------------------ exercise 6: the cat head from ImageNet's cat rows ---
BREEDS = ["Abyssinian", "Bengal", "Birman", "Bombay", "British Shorthair", "Egyptian Mau", "Maine Coon", "Persian",
          "Ragdoll", "Russian Blue", "Siamese", "Sphynx"]
CAT_ROWS = list(CAT_CLASSES)


@pytest.fixture
def imagenet_head():
    torch.manual_seed(0)
    return nn.Linear(8, 1000)     # ImageNet's classifier, small: 8 features instead of 1280


def head_by_indexing(source, classes, matches):
    w, b = source.weight.detach(), source.bias.detach()
    rows = [matches.get(c) for c in classes]
    mean_w, mean_b = w[CAT_ROWS].mean(0), b[CAT_ROWS].mean()
    return (torch.stack([w[r] if r is not None else mean_w for r in rows]),
            torch.stack([b[r] if r is not None else mean_b for r in rows]))


def head_by_loop_in_numpy(source, classes, matches):
    w, b = source.weight.detach().numpy(), source.bias.detach().numpy()
    weight, bias = np.zeros((len(classes), w.shape[1]), dtype=np.float32), np.zeros(len(classes), dtype=np.float32)
    for i, c in enumerate(classes):
        if c in matches:
            weight[i], bias[i] = w[matches[c]], b[matches[c]]
        else:
            weight[i], bias[i] = w[281:286].sum(0) / 5, b[281:286].sum() / 5
    return weight, bias


def test_lesson4_cat_rows_head_matches_by_name_and_means_the_five_cat_rows(imagenet_head):
    weight, bias = checks.lesson4.cat_rows_head(imagenet_head, BREEDS, checks.lesson4.BREED_TO_IMAGENET)
    w, b = imagenet_head.weight.detach(), imagenet_head.bias.detach()
    assert weight.shape == (12, 8) and bias.shape == (12,)
    assert torch.equal(weight[BREEDS.index("Persian")], w[283]) and bias[BREEDS.index("Siamese")] == b[284]
    assert torch.allclose(weight[0], w[281:286].mean(0)) and torch.allclose(bias[0], b[281:286].mean())


@pytest.mark.parametrize("route", [head_by_indexing, head_by_loop_in_numpy])
def test_lesson4_exercise6_accepts_every_correct_route(route, imagenet_head, capsys):
    expect_pass(capsys, checks.lesson4.exercise6(route, imagenet_head, BREEDS), "Persian <- 283")


def rows_in_breed_order(source, classes, matches):
    w, b = head_by_indexing(source, classes, matches)
    w, b = w.clone(), b.clone()
    w[:5], b[:5] = source.weight.detach()[281:286], source.bias.detach()[281:286]
    return w, b


def rows_one_off(source, classes, matches):
    return head_by_indexing(source, classes, {c: r - 1 for c, r in matches.items()})


def bias_left_out(source, classes, matches):
    return head_by_indexing(source, classes, matches)[0], torch.zeros(len(classes))


def mean_of_all_rows(source, classes, matches):
    w, b = source.weight.detach(), source.bias.detach()
    return (torch.stack([w[matches[c]] if c in matches else w.mean(0) for c in classes]),
            torch.stack([b[matches[c]] if c in matches else b.mean() for c in classes]))


def zeros_for_unmatched(source, classes, matches):
    w, b = head_by_indexing(source, classes, matches)
    unmatched = [i for i, c in enumerate(classes) if c not in matches]
    w[unmatched], b[unmatched] = 0.0, 0.0
    return w, b


def one_cat_row_for_unmatched(source, classes, matches):
    w, b = source.weight.detach(), source.bias.detach()
    return (torch.stack([w[matches.get(c, 281)] for c in classes]), torch.stack([b[matches.get(c, 281)]
                                                                                 for c in classes]))


def transposed(source, classes, matches):
    w, b = head_by_indexing(source, classes, matches)
    return w.T, b


def swapped(source, classes, matches):
    w, b = head_by_indexing(source, classes, matches)
    return b, w


def hard_coded_for_the_lesson_order(source, classes, matches):
    return head_by_indexing(source, BREEDS, checks.lesson4.BREED_TO_IMAGENET)


@pytest.mark.parametrize(("wrong", "needle"), [
    (rows_in_breed_order, "match by *name*"), (rows_one_off, "one off"), (bias_left_out, "the bias is not"),
    (mean_of_all_rows, "all 1000"), (zeros_for_unmatched, "zero rows"), (one_cat_row_for_unmatched, "one cat row"),
    (transposed, "transposed"), (swapped, "swapped"), (hard_coded_for_the_lesson_order, "some rows differ"),
])
def test_lesson4_exercise6_rejects_typical_wrong_answers_with_their_own_hint(wrong, needle, imagenet_head, capsys):
    expect_hint(capsys, checks.lesson4.exercise6(wrong, imagenet_head, BREEDS), needle)


def test_lesson4_exercise6_placeholder_and_unreadable_answers(imagenet_head, capsys):
    def untouched(source, classes, matches):
        ...

    expect_placeholder(checks.lesson4.exercise6(untouched, imagenet_head, BREEDS), capsys)
    expect_placeholder(checks.lesson4.exercise6(..., imagenet_head, BREEDS), capsys)
    expect_hint(capsys, checks.lesson4.exercise6(lambda s, c, m: [1, 2], imagenet_head, BREEDS), "tensor")
    with pytest.raises(ValueError, match="cat_head_init"):
        checks.lesson4.exercise6(torch.zeros(12, 8), imagenet_head, BREEDS)
    with pytest.raises(ValueError, match="source_head"):
        checks.lesson4.exercise6(head_by_indexing, nn.Linear(8, 10), BREEDS)


def test_lesson4_exercise3_in_balanced_accuracy_names_the_plain_accuracy_answer(capsys):
    """On the imbalanced breeds the gap is read in balanced accuracy; the plain-accuracy gap gets its own hint."""
    records = []
    for strategy, acc, bal in (("feature_extraction", 0.80, 0.70), ("scratch", 0.40, 0.15)):
        for seed in (0, 1):
            test = Metrics(acc, bal, 1 / 12, 0.3, 100, 12, 12)
            records.append(RunResult(Recipe(strategy, seed=seed), "cats", 5, 60, make_history([0.5], 1.0), test=test))
    curve = LearningCurve("cats", records, [5], 12)
    assert curve.gap("feature_extraction", "scratch", 5, "balanced_acc") == pytest.approx(0.55)
    assert curve.gap("feature_extraction", "scratch", 5) == pytest.approx(0.40)
    kw = dict(strategy="feature_extraction", baseline="scratch", key="balanced_acc")
    expect_pass(capsys, checks.lesson4.exercise3({5: 55}, curve, **kw), "5: +55.0")
    expect_pass(capsys, checks.lesson4.exercise3({5: np.float32(55.0)}, curve, **kw))
    expect_hint(capsys, checks.lesson4.exercise3({5: 40.0}, curve, **kw), "plain accuracy", "balanced_acc")
    expect_hint(capsys, checks.lesson4.exercise3({5: 50.0}, curve, **kw), "'balanced_acc'")
    with pytest.raises(ValueError, match="key must be"):
        curve.gap("feature_extraction", "scratch", 5, "val_acc")
