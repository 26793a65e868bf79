"""tlwidgets.checks: the check machinery and the exercise checks of lessons 0, 1 and 5 (2-4: test_checks_lesson2-4.py).

For each exercise: the lesson's placeholder gets a "❌ Not yet" hint (never an exception); an
answer computed here, independently of the check module, passes; plausible wrong answers get a
hint; an answer of the wrong type raises ValueError naming the expected type (the documented
behaviour: a check never raises on a *wrong* answer, only on one it cannot read).

No external data: digits come from the bundled MNIST subset, "photos" from generated PNGs or
hand-made tensors, learning curves are built from hand-written RunRecords.
"""
from __future__ import annotations

import dataclasses
import re
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import tlwidgets as tl
from tlwidgets import checks, data
from tlwidgets.checks import CheckResult
from tlwidgets.experiments import LearningCurve, RunRecord
from tlwidgets.features import FeatureSet
from tlwidgets.training import History
from tlwidgets.widgets import Dashboard

REPO = Path(__file__).resolve().parents[2]
BUNDLED = data.REPO_DATASETS  # the bundled MNIST subset: no shared data needed
DOMESTIC_CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models only: one thread is faster and steadier on a busy 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------------- helpers ---
def expect_pass(capsys, result, *needles) -> str:
    """``result`` passed, printed exactly its own verdict, and its message mentions ``needles``."""
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and result and result.passed is True, result
    assert out == repr(result) + "\n" and out.startswith("✅ Correct: ")
    for needle in needles:
        assert needle in result.message, (needle, result.message)
    return result.message


def expect_hint(capsys, result, *needles) -> str:
    """``result`` is a falsy 'not yet' that printed one verdict, with a hint mentioning ``needles``."""
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result and result.passed is False, result
    assert out == repr(result) + "\n" and out.startswith("❌ Not yet: ")
    assert result.message.strip()
    for needle in needles:
        assert needle in result.message, (needle, result.message)
    return result.message


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def group_sizes(model) -> list[int]:
    return [sum(p.numel() for p in model.groups[n].parameters()) for n in model.group_names]


def frozen_bn_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) and not m.training]


def digits_task(n):
    return tl.mnist_target_task(n, test_per_class=10, root=BUNDLED)


# -------------------------------------------------------------------------------- fixtures ---
@pytest.fixture(scope="module")
def digits_source():
    """Digits 0-4 (what the digit model knows): 5 train + 20 test per class."""
    return tl.mnist_source_task(5, test_per_class=20, root=BUNDLED)


@pytest.fixture(scope="module")
def digits5():
    """Digits 5-9 with 5 labels per class and 20 test digits per class."""
    return tl.mnist_target_task(5, test_per_class=20, root=BUNDLED)



def _photo_folder(root: Path, classes: dict[str, tuple[int, int, int]], per_class: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, color in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(color) + rng.integers(-30, 30, size=(40, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}_{i}.png")
    return root


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory):
    """A folder of generated red/green 'photos', its task, and a from-scratch run that separates them."""
    root = _photo_folder(tmp_path_factory.mktemp("lesson5") / "my_photos",
                         {"green": (30, 220, 30), "red": (220, 30, 30)}, 8)
    task = tl.folder_task(root, image_size=32)
    result = tl.run_strategy("scratch", task, num_epochs=3, lr=1e-2, device="cpu", progress=False)
    return task, result


@pytest.fixture(scope="module")
def dashboard():
    """A headless digits dashboard with two runs: fine-tune (2 epochs), then feature extraction (3)."""
    dash = Dashboard(digits_task, kind="mnist", n_per_class=5, num_epochs=1, headless=True)
    dash.run_sync(strategy="fine_tune", n_per_class=5, n_frozen=1, num_epochs=2)
    dash.run_sync(strategy="feature_extraction", n_per_class=5, num_epochs=3)
    return dash



# ------------------------------------------------------------------------------ CheckResult ---
def test_check_result_truthiness_repr_and_immutability():
    ok, no = CheckResult(True, "well done"), CheckResult(False, "try again")
    assert bool(ok) is True and bool(no) is False
    assert repr(ok) == "✅ Correct: well done" and repr(no) == "❌ Not yet: try again"
    assert repr(ok).startswith("✅ Correct") and repr(no).startswith("❌ Not yet")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ok.passed = False


def test_check_result_ipython_display_shows_nothing(capsys):
    for r in (CheckResult(True, "x"), CheckResult(False, "y")):
        assert callable(getattr(r, "_ipython_display_", None))
        assert r._ipython_display_() is None
    assert capsys.readouterr() == ("", "")


def test_passed_and_not_yet_print_exactly_one_line(capsys):
    r = checks.passed("all good")
    out = capsys.readouterr().out
    assert out.splitlines() == ["✅ Correct: all good"] and out.endswith("\n") and r and r.message == "all good"
    r = checks.not_yet("look at the head")
    out = capsys.readouterr().out
    assert out.splitlines() == ["❌ Not yet: look at the head"] and not r and r.message == "look at the head"


def test_lesson_modules_load_on_first_use():
    assert checks.lesson3.exercise2 is checks.lesson3.exercise2
    with pytest.raises(AttributeError, match="no exercise checks named 'lesson9'"):
        checks.lesson9
    with pytest.raises(AttributeError):
        checks.nothing_here


def test_every_check_a_lesson_calls_exists():
    """The lessons call checks.lessonN.exerciseK (K = 1..3 at least), and each check module has exactly those."""
    called = set()
    for path in sorted((REPO / "lessons").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"])
            called |= {(int(path.name[:2]), int(k)) for k in
                       re.findall(r"checks\.lesson%d\.exercise(\d)" % int(path.name[:2]), src)}
    assert {(n, k) for n in range(6) for k in (1, 2, 3)} <= called
    for n in range(6):
        module = getattr(checks, f"lesson{n}")
        assert sorted(name for name in vars(module) if name.startswith("exercise")) == [
            f"exercise{k}" for m, k in sorted(called) if m == n]


# ------------------------------------------------- the lessons' placeholders get a hint, never raise ---
def _placeholders():
    """(id, fixtures it needs, call) for the answer each lesson cell starts with."""
    return [
        ("lesson0.exercise1", [], lambda: checks.lesson0.exercise1(None)),
        ("lesson0.exercise2", [], lambda: checks.lesson0.exercise2(None, None)),
        ("lesson0.exercise3", [], lambda: checks.lesson0.exercise3(tl.load_digit_model())),  # '# your code here'
        ("lesson1.exercise1", ["digits_source"], lambda task: checks.lesson1.exercise1(None, tl.load_digit_model(),
                                                                                      task)),
        ("lesson1.exercise2", [], lambda: checks.lesson1.exercise2(None)),
        ("lesson1.exercise3", [], lambda: checks.lesson1.exercise3(None, *species_probs())),
        ("lesson5.exercise1", [], lambda: checks.lesson5.exercise1(None, None)),
        ("lesson5.exercise2", ["dashboard"], lambda dash: checks.lesson5.exercise2(
            None, dash, strategy="fine_tune", n_per_class=5, n_frozen=1)),
        # the lesson starts with `fresh = dashboard` (the one that trained in exercise 2) and `answer = None`
        ("lesson5.exercise3", ["dashboard"], lambda dash: checks.lesson5.exercise3(None, dash)),
    ]


@pytest.mark.parametrize("fixtures, call", [(f, c) for _, f, c in _placeholders()],
                         ids=[i for i, _, _ in _placeholders()])
def test_placeholder_answer_gets_a_hint_without_raising(fixtures, call, request, capsys):
    args = [request.getfixturevalue(name) for name in fixtures]
    capsys.readouterr()  # what building the fixtures printed
    result = call(*args)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert out == repr(result) + "\n" and out.startswith("❌ Not yet: ") and "✅" not in out
    assert len(result.message) > 20  # a real hint, not just a verdict


# --------------------------------------------------------------------------------- lesson 0 ---
def test_lesson0_exercise1_counts_the_head_parameters(capsys):
    model = tl.load_digit_model()
    tl.freeze(model, model.num_groups - 1)
    answer = trainable_params(model)
    assert answer == 128 * 5 + 5  # the digit model's head: Linear(128, 5)
    expect_pass(capsys, checks.lesson0.exercise1(answer), "645")
    for same in (np.int64(answer), torch.tensor(answer)):
        expect_pass(capsys, checks.lesson0.exercise1(same))


def test_lesson0_exercise1_wrong_answers_get_hints(capsys):
    model = tl.load_digit_model()
    total = sum(p.numel() for p in model.parameters())
    expect_hint(capsys, checks.lesson0.exercise1(total), "every parameter")
    expect_hint(capsys, checks.lesson0.exercise1(128 * 5), "biases")
    expect_hint(capsys, checks.lesson0.exercise1(4 * 128), "is not it")


@pytest.mark.parametrize("bad", [645.0, "645", True, torch.tensor(645.0), [645]])
def test_lesson0_exercise1_needs_an_integer(bad):
    with pytest.raises(ValueError, match="expects an integer"):
        checks.lesson0.exercise1(bad)


def test_lesson0_exercise2_finds_the_first_root_holding_mnist(mnist_copy, tmp_path, capsys):
    expect_pass(capsys, checks.lesson0.exercise2(mnist_copy, mnist_copy), str(mnist_copy))
    expect_pass(capsys, checks.lesson0.exercise2(str(mnist_copy), str(mnist_copy)))
    expect_hint(capsys, checks.lesson0.exercise2(mnist_copy / "MNIST", mnist_copy), "data root itself")
    expect_hint(capsys, checks.lesson0.exercise2(mnist_copy / "MNIST" / "raw", mnist_copy), "data root itself")
    # the bundled subset holds MNIST too, but the root= argument comes first on the search path
    expect_hint(capsys, checks.lesson0.exercise2(BUNDLED, mnist_copy), "first one wins")
    expect_hint(capsys, checks.lesson0.exercise2(tmp_path / "elsewhere", mnist_copy), "candidate_roots")


def test_lesson0_exercise2_without_a_root_argument(capsys):
    files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    first = next(r for r in tl.candidate_roots() if all((r / "MNIST" / "raw" / f).exists() for f in files))
    expect_pass(capsys, checks.lesson0.exercise2(first))


def test_lesson0_exercise2_with_no_mnist_anywhere(env, tmp_path, capsys):
    env.empty_data_search_path()
    expect_hint(capsys, checks.lesson0.exercise2(tmp_path, None), "no MNIST anywhere")


@pytest.mark.parametrize("bad", [42, 3.5, ["datasets"]])
def test_lesson0_exercise2_needs_a_path(bad, mnist_copy):
    with pytest.raises(ValueError, match="expects a path"):
        checks.lesson0.exercise2(bad, mnist_copy)


def test_lesson0_exercise3_first_two_groups_frozen(capsys):
    model = tl.load_digit_model()
    tl.freeze(model, 2)
    assert [all(not p.requires_grad for p in model.groups[n].parameters()) for n in model.group_names] == [
        True, True, False, False]
    expect_pass(capsys, checks.lesson0.exercise3(model), "conv1, conv2 frozen")


def test_lesson0_exercise3_wrong_models_get_hints(capsys):
    for k in (0, 1, 3):
        model = tl.load_digit_model()
        tl.freeze(model, k)
        expect_hint(capsys, checks.lesson0.exercise3(model), f"{k} frozen groups")
    by_hand = tl.load_digit_model()  # requires_grad set by hand: freeze() never ran, so BatchNorm still trains
    for name in by_hand.group_names[:2]:
        by_hand.groups[name].requires_grad_(False)
    expect_hint(capsys, checks.lesson0.exercise3(by_hand), "tl.freeze(model, 2)")
    mixed = tl.load_digit_model()
    tl.freeze(mixed, 2)
    mixed.head.weight.requires_grad_(False)
    expect_hint(capsys, checks.lesson0.exercise3(mixed), "head: mixed")


@pytest.mark.parametrize("bad", [None, nn.Linear(2, 2), "model"])
def test_lesson0_exercise3_needs_a_grouped_model(bad):
    with pytest.raises(ValueError, match="GroupedModel"):
        checks.lesson0.exercise3(bad)


# --------------------------------------------------------------------------------- lesson 1 ---
def test_lesson1_exercise1_accuracy_recomputed(digits_source, capsys):
    model = tl.load_digit_model()
    x, y = digits_source.test.tensors
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert 0.5 < acc < 1.0  # not trivially perfect, so the wrong answers below are distinct
    expect_pass(capsys, checks.lesson1.exercise1(acc, model, digits_source), "100 test digits")
    expect_pass(capsys, checks.lesson1.exercise1(torch.tensor(acc), model, digits_source))
    expect_hint(capsys, checks.lesson1.exercise1(100 * acc, model, digits_source), "percentage")
    expect_hint(capsys, checks.lesson1.exercise1(1 - acc, model, digits_source), "error rate")
    expect_hint(capsys, checks.lesson1.exercise1(acc - 0.1, model, digits_source), "is not the accuracy")


@pytest.mark.parametrize("bad", ["0.9", True, [0.9], torch.tensor([0.9, 0.1])])
def test_lesson1_exercise1_needs_a_number(bad, digits_source):
    with pytest.raises(ValueError, match="a number between 0 and 1"):
        checks.lesson1.exercise1(bad, tl.load_digit_model(), digits_source)


def test_lesson1_exercise2_domestic_cat_indices(capsys):
    names = tl.imagenet_classes()
    cats = [i for i, n in enumerate(names) if n in DOMESTIC_CATS]
    assert cats == [281, 282, 283, 284, 285]
    expect_pass(capsys, checks.lesson1.exercise2(cats), "281 tabby")
    for same in (tuple(reversed(cats)), range(281, 286), torch.tensor(cats), np.array(cats), cats + [281]):
        expect_pass(capsys, checks.lesson1.exercise2(same))
    expect_hint(capsys, checks.lesson1.exercise2(cats + [286]), "not domestic cats", names[286])
    expect_hint(capsys, checks.lesson1.exercise2(cats[:-1]), "1 domestic cat class(es) missing")
    expect_hint(capsys, checks.lesson1.exercise2([277, 278] + cats[:3]), "not domestic cats", "2 domestic cat")
    expect_hint(capsys, checks.lesson1.exercise2(cats + [1000]), "0..999")
    expect_hint(capsys, checks.lesson1.exercise2([]), "5 domestic cat class(es) missing")


@pytest.mark.parametrize("bad", [281, "281", ["tabby", "Persian cat"], [None]])
def test_lesson1_exercise2_needs_a_list_of_integers(bad):
    with pytest.raises(ValueError, match="list of integers"):
        checks.lesson1.exercise2(bad)


def species_probs():
    """Six fake ImageNet predictions, where the top-1 and the summed-mass species rules disagree."""
    probs = torch.zeros(6, 1000)
    probs[0, 151] = 0.9                                  # clear dog
    probs[1, 281] = 0.9                                  # clear cat
    probs[2, 160:170] = 0.06; probs[2, 282] = 0.3        # dog split over 10 breeds, top-1 'tiger cat'
    probs[3, 281:286] = 0.15; probs[3, 287] = 0.2        # cat split over 5 classes, top-1 'lynx' (other)
    probs[4, 283] = 0.6; probs[4, 200] = 0.3             # a dog both rules call a cat
    probs[5, 287] = 0.5; probs[5, 284] = 0.1; probs[5, 152] = 0.3  # a cat: top-1 lynx, more dog mass
    probs[:, 999] = 1 - probs.sum(1)                     # the rest on 'toilet tissue'
    truth = ["dog", "cat", "dog", "cat", "dog", "cat"]
    return probs, truth


def test_lesson1_exercise3_species_by_probability_mass(capsys):
    probs, truth = species_probs()
    dog, cat = probs[:, 151:269].sum(1), probs[:, 281:286].sum(1)
    mass = sum(("dog" if d > c else "cat") == t for d, c, t in zip(dog, cat, truth)) / len(truth)

    def top1_species(i):
        return "dog" if 151 <= i <= 268 else "cat" if 281 <= i <= 285 else "other"

    top1 = sum(top1_species(int(p.argmax())) == t for p, t in zip(probs, truth)) / len(truth)
    assert (mass, top1) == (4 / 6, 2 / 6)
    expect_pass(capsys, checks.lesson1.exercise3(mass, probs, truth), "66.7%", "33.3%")
    expect_pass(capsys, checks.lesson1.exercise3(round(mass, 3), probs, tuple(truth)))
    expect_hint(capsys, checks.lesson1.exercise3(top1, probs, truth), "top-1 rule")
    expect_hint(capsys, checks.lesson1.exercise3(0.5, probs, truth), "check the ranges")


def test_lesson1_exercise3_bad_input():
    probs, truth = species_probs()
    with pytest.raises(ValueError, match="a number between 0 and 1"):
        checks.lesson1.exercise3("0.67", probs, truth)
    with pytest.raises(ValueError, match="6 rows but truth has 5"):
        checks.lesson1.exercise3(0.6, probs, truth[:5])


# --------------------------------------------------------------------------------- lesson 5 ---
def test_lesson5_exercise1_photo_folder_task_and_run(photo_run, capsys):
    task, result = photo_run
    model = result.model.eval()
    x, y = task.test[:][0], task.test.labels
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.5 and result.test_acc == pytest.approx(acc)
    expect_pass(capsys, checks.lesson5.exercise1(task, result), "2 classes (green, red)", "chance 50%")


def test_lesson5_exercise1_wrong_pairs(photo_run, digits5, capsys):
    task, result = photo_run
    expect_hint(capsys, checks.lesson5.exercise1(task, None), "tl.folder_task")
    expect_hint(capsys, checks.lesson5.exercise1(None, result), "tl.folder_task")
    expect_hint(capsys, checks.lesson5.exercise1(digits5, result), "not a photo-folder task")
    expect_hint(capsys, checks.lesson5.exercise1(task, dataclasses.replace(result, task_name="Photos in other")),
                "another task")
    renamed = dataclasses.replace(result, model=tl.small_cnn(2, image_size=32, classes=["cat", "dog"]))
    expect_hint(capsys, checks.lesson5.exercise1(task, renamed), "another task")
    expect_hint(capsys, checks.lesson5.exercise1(task, dataclasses.replace(result, test_acc=0.5)),
                "not better than chance")


def test_lesson5_exercise1_bad_types(photo_run):
    task, result = photo_run
    with pytest.raises(ValueError, match="expects a tlwidgets Task"):
        checks.lesson5.exercise1("my_photos", result)
    with pytest.raises(ValueError, match="expects a RunResult"):
        checks.lesson5.exercise1(task, 0.9)
    with pytest.raises(ValueError, match="expects a RunResult"):
        checks.lesson5.exercise1(task, result.row())


def test_lesson5_exercise2_the_row_of_the_requested_run(dashboard, capsys):
    rows = dashboard.results
    answer = next(r for r in rows if r["strategy"] == "fine_tune" and r["frozen_groups"] == 1)
    kw = dict(strategy="fine_tune", n_per_class=5, n_frozen=1)
    expect_pass(capsys, checks.lesson5.exercise2(answer, dashboard, **kw), "run 1", "in 2 epochs")
    expect_hint(capsys, checks.lesson5.exercise2(rows[-1], dashboard, **kw), "the run used", "feature_extraction")
    expect_hint(capsys, checks.lesson5.exercise2(answer, dashboard, **{**kw, "n_frozen": 2}), "'frozen_groups': 1")
    expect_hint(capsys, checks.lesson5.exercise2(answer, dashboard, **{**kw, "n_per_class": None}),
                "'n_per_class': 5")
    forged = {**answer, "test_acc": 1.0}
    expect_hint(capsys, checks.lesson5.exercise2(forged, dashboard, **kw), "not in this dashboard's results")


def test_lesson5_exercise2_bad_types(dashboard):
    with pytest.raises(ValueError, match="a results row"):
        checks.lesson5.exercise2(dashboard.run_results[0], dashboard)  # the RunResult, not its row
    with pytest.raises(ValueError, match="a results row"):
        checks.lesson5.exercise2(dashboard.results, dashboard)
    with pytest.raises(ValueError, match="needs the dashboard"):
        checks.lesson5.exercise2(dashboard.results[0], None)


def test_lesson5_exercise3_epochs_of_a_replay(dashboard, tmp_path, capsys):
    log = dashboard.save_log(tmp_path / "log.json")
    logged = json.loads(log.read_text())["runs"]
    answer = len(logged[-1]["history"]["epochs"])  # replay() shows the last run of the log
    assert answer == 3

    fresh = Dashboard(digits_task, kind="mnist", n_per_class=5, headless=True)
    expect_hint(capsys, checks.lesson5.exercise3(answer, fresh), "no runs")
    assert fresh.load_log(log) == 2
    expect_hint(capsys, checks.lesson5.exercise3(answer, fresh), "nothing was replayed")
    fresh.replay(seconds_per_epoch=0)
    expect_pass(capsys, checks.lesson5.exercise3(answer, fresh), "3 epochs")
    expect_hint(capsys, checks.lesson5.exercise3(answer - 1, fresh), "different number of epochs")
    expect_hint(capsys, checks.lesson5.exercise3(len(logged), fresh), "different number of epochs")
    with pytest.raises(ValueError, match="integer number of epochs"):
        checks.lesson5.exercise3(3.0, fresh)
    with pytest.raises(ValueError, match="integer number of epochs"):
        checks.lesson5.exercise3(True, fresh)
    with pytest.raises(ValueError, match="needs the dashboard"):
        checks.lesson5.exercise3(answer, str(log))


def test_lesson5_exercise3_a_dashboard_that_only_trained(dashboard, capsys):
    """The lesson's `fresh = dashboard` placeholder: its chart shows the last training, not a replay."""
    shown = len(dashboard.chart.records)
    assert shown == 3 and dashboard.chart.end_logs is not None
    expect_hint(capsys, checks.lesson5.exercise3(shown, dashboard), "nothing was replayed")
