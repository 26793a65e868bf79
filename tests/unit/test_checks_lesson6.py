"""checks.lesson6 additions (the dogs -> cats lesson): exercise 4 (write the dog-outputs function) accepts every
correct route and names each typical wrong answer; exercise 1 asks for the number of classes the exercise names;
exercise 3 refuses the lesson's own dashboard as the "fresh" one. The dashboard-driven parts of exercises 1-3
are tested in test_checks.py."""
from __future__ import annotations

import types

import pytest
import torch
from _check_helpers import expect_hint, expect_pass
from torch import nn

from tlwidgets import checks
from tlwidgets.data import Task


@pytest.fixture(scope="module")
def head_and_features():
    torch.manual_seed(0)
    return nn.Linear(16, 1000), torch.randn(7, 16)


@pytest.mark.parametrize("route", [
    lambda head: (lambda f: head(f)[:, 151:269]),
    lambda head: (lambda f: head(f).softmax(1)[:, 151:269]),
    lambda head: (lambda f: torch.stack([head(f)[:, i] for i in range(151, 269)], dim=1)),
])
def test_exercise4_accepts_logits_or_probabilities_of_the_118_dog_classes(route, head_and_features, capsys):
    head, feats = head_and_features
    expect_pass(capsys, checks.lesson6.exercise4(route(head), head, feats), "118 dog-class outputs")


@pytest.mark.parametrize("wrong, hint", [
    (None, "define `def dog_outputs"),
    (lambda f: ..., "not a tensor"),
    (lambda f: None, "returned None"),
    ("all", "every ImageNet class"),
    ("cats", "domestic-cat classes"),
    ("off_by_one", "151 to 268 inclusive"),
    ("features", "the features themselves"),
    ("renormalised", "only renormalises"),
    ("other_columns", "not the dog-class outputs"),
    (lambda f: 1 / 0, "ZeroDivisionError"),
])
def test_exercise4_rejects_wrong_answers_each_with_its_own_hint(wrong, hint, head_and_features, capsys):
    head, feats = head_and_features
    routes = {"all": lambda f: head(f), "cats": lambda f: head(f)[:, 281:286],
              "off_by_one": lambda f: head(f)[:, 151:268], "features": lambda f: f,
              "renormalised": lambda f: head(f)[:, 151:269].softmax(1),
              "other_columns": lambda f: head(f)[:, 152:270]}
    fn = routes.get(wrong, wrong) if isinstance(wrong, str) else wrong
    if hint == "not a tensor":
        with pytest.raises(ValueError, match="tensor"):
            checks.lesson6.exercise4(fn, head, feats)
        return
    expect_hint(capsys, checks.lesson6.exercise4(fn, head, feats), hint)


def _fake_run(task):
    from tlwidgets.metrics import Metrics
    from tlwidgets.runs import Recipe, RunResult
    from tlwidgets.training import History
    model = types.SimpleNamespace(classes=task.classes)
    test = Metrics(0.9, 0.9, 0.5, 0.5, 10, 2, 2)
    return RunResult(Recipe("feature_extraction"), task.name, None, 10, History(), test=test, seconds=1.0,
                     model=model, used_cache=True)


def test_exercise1_asks_for_the_number_of_classes_the_exercise_names(capsys):
    data = torch.utils.data.TensorDataset(torch.zeros(2, 3, 4, 4), torch.tensor([0, 1]))
    two = Task("Photos in demo", ["Abyssinian", "Bengal"], data, data, None, (3, 4, 4), "fp2")
    three = Task("Photos in demo3", ["Abyssinian", "Bengal", "Sphynx"], data, data, None, (3, 4, 4), "fp3")
    expect_hint(capsys, checks.lesson6.exercise1(two, _fake_run(two), num_classes=3), "asks for 3")
    expect_pass(capsys, checks.lesson6.exercise1(three, _fake_run(three), num_classes=3), "3 classes")
    expect_pass(capsys, checks.lesson6.exercise1(two, _fake_run(two)), "2 classes")   # no number asked for


def test_exercise3_refuses_the_lessons_own_dashboard_as_the_fresh_one(capsys):
    import tlwidgets as tl
    from tlwidgets.data import REPO_DATASETS
    from tlwidgets.widgets import Dashboard

    def digits(n):
        return tl.mnist_target_task(n, root=REPO_DATASETS, test_per_class=20)
    dash = Dashboard(digits, kind="mnist", n_per_class=5, num_epochs=1, headless=True)
    expect_hint(capsys, checks.lesson6.exercise3(None, dash, original=dash), "lesson's own dashboard")
    fresh = Dashboard(digits, kind="mnist", n_per_class=5, num_epochs=1, headless=True)
    expect_hint(capsys, checks.lesson6.exercise3(3, fresh, original=dash), "no runs")
