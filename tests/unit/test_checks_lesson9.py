"""Lesson 9 (capstone) checks: each accepts at least two correct routes and rejects typical wrong answers,
each with its own hint; the untouched ``...`` gets a hint, never an error."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms as T
from torchvision.transforms import v2

from tests.unit._check_helpers import expect_hint, expect_pass, expect_placeholder
from tlwidgets import digit_cnn
from tlwidgets.checks import lesson9

SIZE, MEAN, STD = 64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


# ------------------------------------------------------------------ exercise 1: transforms
def _to_input():
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(MEAN), list(STD))]


def test_transforms_placeholder_gets_a_hint(capsys):
    expect_placeholder(lesson9.exercise1(..., ..., SIZE, MEAN, STD), capsys)


@pytest.mark.parametrize("route", ["reference", "v2_resize_randomcrop", "legacy_totensor"])
def test_transforms_accept_correct_routes(capsys, route):
    if route == "reference":
        train_tf, eval_tf = lesson9.reference_transforms(SIZE, MEAN, STD)
    elif route == "v2_resize_randomcrop":
        train_tf = v2.Compose([v2.ToImage(), v2.Resize(SIZE + 8), v2.RandomCrop(SIZE), v2.RandomHorizontalFlip(),
                               *_to_input()])
        eval_tf = v2.Compose([v2.ToImage(), v2.Resize(SIZE), v2.CenterCrop(SIZE), *_to_input()])
    else:
        train_tf = T.Compose([T.RandomResizedCrop(SIZE), T.ToTensor(), T.Normalize(MEAN, STD)])
        eval_tf = T.Compose([T.Resize(SIZE), T.CenterCrop(SIZE), T.ToTensor(), T.Normalize(MEAN, STD)])
    expect_pass(capsys, lesson9.exercise1(train_tf, eval_tf, SIZE, MEAN, STD), "augmented")


def test_transforms_reject_an_augmented_test_set(capsys):
    train_tf, _ = lesson9.reference_transforms(SIZE, MEAN, STD)
    expect_hint(capsys, lesson9.exercise1(train_tf, train_tf, SIZE, MEAN, STD), "augments the validation and test")


def test_transforms_reject_no_augmentation(capsys):
    _, eval_tf = lesson9.reference_transforms(SIZE, MEAN, STD)
    expect_hint(capsys, lesson9.exercise1(eval_tf, eval_tf, SIZE, MEAN, STD), "no augmentation")


def test_transforms_reject_missing_normalisation(capsys):
    train_tf = v2.Compose([v2.ToImage(), v2.RandomResizedCrop(SIZE), v2.ToDtype(torch.float32, scale=True)])
    eval_tf = v2.Compose([v2.ToImage(), v2.Resize(SIZE), v2.CenterCrop(SIZE), v2.ToDtype(torch.float32, scale=True)])
    expect_hint(capsys, lesson9.exercise1(train_tf, eval_tf, SIZE, MEAN, STD), "not normalised")


def test_transforms_reject_uint8_and_wrong_size(capsys):
    train_tf = v2.Compose([v2.ToImage(), v2.RandomResizedCrop(SIZE)])
    eval_tf = v2.Compose([v2.ToImage(), v2.Resize(SIZE), v2.CenterCrop(SIZE)])
    expect_hint(capsys, lesson9.exercise1(train_tf, eval_tf, SIZE, MEAN, STD), "floats")
    eval_no_crop = v2.Compose([v2.ToImage(), v2.Resize(SIZE), *_to_input()])
    train_tf, _ = lesson9.reference_transforms(SIZE, MEAN, STD)
    expect_hint(capsys, lesson9.exercise1(train_tf, eval_no_crop, SIZE, MEAN, STD), "crop a square")


# ------------------------------------------------------------------ exercise 2: lr range test
def _lr_find_scheduler(model, loader, start, end, num_steps):
    """A second correct route: ExponentialLR grows the rate, SGD steps."""
    saved = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=start)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=(end / start) ** (1 / (num_steps - 1)))
    lrs, losses, batches = [], [], iter(loader)
    for _ in range(num_steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        lrs.append(opt.param_groups[0]["lr"])
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.load_state_dict(saved)
    return lrs, losses


def _variant(*, restore=True, exponential=True, set_lr=True, step=True):
    def lr_find(model, loader, start, end, num_steps):
        saved = copy.deepcopy(model.state_dict())
        opt = torch.optim.SGD(model.parameters(), lr=start)
        lrs, losses = [], []
        for i, (x, y) in zip(range(num_steps), iter(loader)):
            lr = start * (end / start) ** (i / (num_steps - 1)) if exponential else \
                start + (end - start) * i / (num_steps - 1)
            if set_lr:
                opt.param_groups[0]["lr"] = lr
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            if step:
                opt.step()
            lrs.append(lr)
            losses.append(loss.item())
        if restore:
            model.load_state_dict(saved)
        return lrs, losses
    return lr_find


def test_lr_find_placeholder_gets_a_hint(capsys):
    expect_placeholder(lesson9.exercise3(...), capsys)


@pytest.mark.parametrize("lr_find", [lesson9.reference_lr_find, _lr_find_scheduler, _variant()],
                         ids=["reference_adamw", "exponential_lr_scheduler", "sgd_param_groups"])
def test_lr_find_accepts_correct_routes(capsys, lr_find):
    expect_pass(capsys, lesson9.exercise3(lr_find), "restored")


@pytest.mark.parametrize("wrong, hint", [
    (_variant(restore=False), "load it back"),
    (_variant(exponential=False), "linear ramp"),
    (_variant(set_lr=False), "set each step's rate"),
    (_variant(step=False), "never moved"),
])
def test_lr_find_rejects_typical_mistakes(capsys, wrong, hint):
    expect_hint(capsys, lesson9.exercise3(wrong), hint)


# ------------------------------------------------------------------ exercise 3: reading the plot
LRS = [1e-5 * 10 ** (i / 4) for i in range(21)]  # 1e-5 .. 1
# a typical curve: flat, then falling fastest near 1e-3, lowest at 1e-2, then blowing up
LOSSES = [0.7] * 8 + [0.69, 0.65, 0.55, 0.40, 0.30, 0.25, 0.22, 0.23, 0.35, 0.8, 2.0, 5.0, 9.0]


def test_lr_pick_placeholder_gets_a_hint(capsys):
    expect_placeholder(lesson9.exercise4(..., LRS, LOSSES), capsys)


def test_lr_pick_accepts_a_tenth_of_the_minimum_and_the_steepest_point_in_any_number_type(capsys):
    pick = lesson9.reference_lr_pick(LRS, LOSSES)
    expect_pass(capsys, lesson9.exercise4(pick, LRS, LOSSES), "one order below")
    smooth = lesson9.smooth_losses(LOSSES)
    slopes = [b - a for a, b in zip(smooth, smooth[1:])]
    steep = LRS[slopes.index(min(slopes))]
    expect_pass(capsys, lesson9.exercise4(torch.tensor(steep), LRS, LOSSES))
    import numpy as np
    expect_pass(capsys, lesson9.exercise4(np.float32(pick), LRS, LOSSES))


@pytest.mark.parametrize("which, hint", [("minimum", "about to blow up"), ("outside", "outside the range"),
                                         ("tiny", "crawl")])
def test_lr_pick_rejects_typical_mistakes(capsys, which, hint):
    smooth = lesson9.smooth_losses(LOSSES)
    lr_min = LRS[smooth.index(min(smooth))]
    lr = {"minimum": lr_min, "outside": 3.0, "tiny": 2e-5}[which]
    expect_hint(capsys, lesson9.exercise4(lr, LRS, LOSSES), hint)


# ------------------------------------------------------------------ exercise 4: head-stage optimiser
def _frozen_digit_model():
    model = digit_cnn(3)
    for p in model[:-1].parameters():
        p.requires_grad_(False)
    return model


def test_head_optimiser_placeholder_gets_a_hint(capsys):
    expect_placeholder(lesson9.exercise6(..., _frozen_digit_model()), capsys)


def test_head_optimiser_accepts_the_head_or_the_trainable_filter(capsys):
    model = _frozen_digit_model()
    expect_pass(capsys, lesson9.exercise6(torch.optim.AdamW(model.groups["head"].parameters()), model), "nothing")
    trainable = [p for p in model.parameters() if p.requires_grad]
    expect_pass(capsys, lesson9.exercise6(torch.optim.SGD(trainable, lr=0.1), model))


def test_head_optimiser_rejects_frozen_params_missing_head_and_unfrozen_body(capsys):
    model = _frozen_digit_model()
    expect_hint(capsys, lesson9.exercise6(torch.optim.AdamW(model.parameters()), model), "frozen tensors")
    expect_hint(capsys, lesson9.exercise6(torch.optim.AdamW(model.groups["conv1"].parameters()), model),
                "does not hold the new head")
    loose = digit_cnn(3)
    expect_hint(capsys, lesson9.exercise6(torch.optim.AdamW(loose.groups["head"].parameters()), loose),
                "freeze it first")


# ------------------------------------------------------------------ exercise 5: discriminative rates
def test_param_groups_placeholder_gets_a_hint(capsys):
    expect_placeholder(lesson9.exercise7(..., digit_cnn(3), 1, 1e-3), capsys)


def test_param_groups_accept_per_group_rates_and_a_two_level_split(capsys):
    model, lr = digit_cnn(3), 1e-3
    per_group = [{"params": model[i].parameters(), "lr": lr * 0.3 ** (3 - i)} for i in range(1, 4)]
    expect_pass(capsys, lesson9.exercise7(per_group, model, 1, lr), "head at lr")
    two_level = [{"params": model[1:3].parameters(), "lr": lr / 10}, {"params": model[3].parameters()}]
    expect_pass(capsys, lesson9.exercise7(two_level, model, 1, lr))


@pytest.mark.parametrize("wrong, hint", [
    ("one_rate", "same rate"),
    ("reversed", "must not shrink"),
    ("frozen_included", "frozen group"),
    ("head_missing", "in no parameter group"),
    ("head_not_at_lr", "expected lr"),
])
def test_param_groups_reject_typical_mistakes(capsys, wrong, hint):
    model, lr = digit_cnn(3), 1e-3
    groups = {
        "one_rate": [{"params": model[1:].parameters(), "lr": lr}],
        "reversed": [{"params": model[i].parameters(), "lr": lr * 3 ** (i - 1) / 9} for i in (1, 2)]
        + [{"params": model[3].parameters(), "lr": lr}][:0]
        + [{"params": model[3].parameters(), "lr": lr}],
        "frozen_included": [{"params": model[i].parameters(), "lr": lr * 0.3 ** (3 - i)} for i in range(0, 4)],
        "head_missing": [{"params": model[i].parameters(), "lr": lr * 0.3 ** (3 - i)} for i in range(1, 3)],
        "head_not_at_lr": [{"params": model[i].parameters(), "lr": lr * 0.3 ** (4 - i)} for i in range(1, 4)],
    }[wrong]
    if wrong == "reversed":
        groups = [{"params": model[1].parameters(), "lr": lr * 3}, {"params": model[2].parameters(), "lr": lr * 2},
                  {"params": model[3].parameters(), "lr": lr}]
    expect_hint(capsys, lesson9.exercise7(groups, model, 1, lr), hint)


# ------------------------------------------------------------------ exercise 6: evaluation
def _evaluate_cat(model, loader):
    """A second correct route: collect every prediction, then compare once, under inference_mode."""
    model.eval()
    with torch.inference_mode():
        preds = torch.cat([model(x).argmax(1) for x, _ in loader])
    labels = torch.cat([y for _, y in loader])
    return (preds == labels).float().mean()


def _evaluate_wrong(kind):
    def evaluate(model, loader):
        if kind != "no_eval":
            model.eval()
        correct = total = 0
        ctx = torch.enable_grad() if kind == "no_grad_off" else torch.no_grad()
        with ctx:
            for x, y in loader:
                correct += int((model(x).argmax(1) == y).sum())
                total += len(y)
                if kind == "first_batch":
                    break
        return correct if kind == "count" else correct / total
    return evaluate


def test_evaluate_placeholder_gets_a_hint(capsys):
    expect_placeholder(lesson9.exercise2(...), capsys)


@pytest.mark.parametrize("evaluate", [lesson9.reference_evaluate, _evaluate_cat], ids=["loop", "cat"])
def test_evaluate_accepts_correct_routes(capsys, evaluate):
    expect_pass(capsys, lesson9.exercise2(evaluate), "eval mode")


@pytest.mark.parametrize("kind, hint", [("no_eval", "model.eval()"), ("no_grad_off", "no_grad"),
                                        ("count", "a count"), ("first_batch", "every batch")])
def test_evaluate_rejects_typical_mistakes(capsys, kind, hint):
    expect_hint(capsys, lesson9.exercise2(_evaluate_wrong(kind)), hint)


def test_reference_lr_find_restores_and_spaces_exponentially():
    model = nn.Linear(2, 2)
    before = copy.deepcopy(model.state_dict())
    x, y = torch.randn(16, 2), torch.arange(16) % 2
    lrs, losses = lesson9.reference_lr_find(model, [(x, y)] * 4, 1e-4, 1.0, 9)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert math.isclose(lrs[1] / lrs[0], 10 ** 0.5, rel_tol=1e-9) and len(losses) == len(lrs)


# ------------------------------------------------------------------ exercise 5: the training function
def _fit_variant(*, keep="best_copy", schedule="onecycle", val_mode="eval"):
    def fit(model, opt, train_loader, val_loader, num_epochs, n_frozen):
        if schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=num_epochs * len(train_loader))
        elif schedule == "cosine_per_epoch":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=num_epochs)
        best, best_state, history = -1.0, None, []
        for _ in range(num_epochs):
            model.train()
            model[:n_frozen].eval()
            for x, y in train_loader:
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if schedule == "onecycle":
                    sched.step()
            if schedule == "cosine_per_epoch":
                sched.step()
            if val_mode == "eval":
                model.eval()
            with torch.no_grad():
                correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in val_loader)
            acc = correct / len(val_loader.dataset)
            history.append(acc)
            if acc > best:
                best = acc
                best_state = copy.deepcopy(model.state_dict()) if keep == "best_copy" else model.state_dict()
        if keep != "last":
            model.load_state_dict(best_state)
        return history
    return fit


def test_fit_placeholder_gets_a_hint(capsys):
    expect_placeholder(lesson9.exercise5(...), capsys)


@pytest.mark.parametrize("fit", [lesson9.reference_fit, _fit_variant(), _fit_variant(schedule="cosine_per_epoch")],
                         ids=["reference", "onecycle", "cosine_per_epoch"])
def test_fit_accepts_correct_routes(capsys, fit):
    expect_pass(capsys, lesson9.exercise5(fit), "best epoch")


@pytest.mark.parametrize("wrong, hint", [
    (_fit_variant(keep="last"), "keep a copy"),
    (_fit_variant(keep="no_copy"), "shares the live tensors"),
    (_fit_variant(schedule=None), "never changed"),
    (_fit_variant(val_mode="train"), "training mode"),
])
def test_fit_rejects_typical_mistakes(capsys, wrong, hint):
    expect_hint(capsys, lesson9.exercise5(wrong), hint)
