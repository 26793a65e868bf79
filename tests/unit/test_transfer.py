"""tlwidgets.transfer: the three strategies on a tiny MNIST 5-9 task, and their argument checks."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from tlwidgets import data, models, runs
from tlwidgets.data import ImageTensorDataset, Task, input_normalization
from tlwidgets.training import Observer, StopFlag, evaluate, layerwise_lr_groups
from tlwidgets.transfer import (
    DEFAULT_LR,
    DIGIT_FE_CUT,
    STRATEGIES,
    RunResult,
    build_model,
    default_fine_tune_frozen,
    digit_cut_model,
    metrics_on,
    run_strategy,
)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # published; checked against torchvision


DIGIT_TOTAL = 206_373  # digit_cnn(5): see test_models.test_digit_cnn_parameter_counts_by_hand
CONV1, CONV2, HEAD = 16 * 9 + 16 + 32, 16 * 32 * 9 + 32 + 64, 1568 * 5 + 5   # the conv2-cut digit model's groups


@pytest.fixture(scope="module")
def task():
    return data.mnist_target_task(6, test_per_class=10, val_per_class=8, root=data.REPO_DATASETS)


def _run(strategy, task, **kw):
    kw.setdefault("num_epochs", 2)
    return run_strategy(strategy, task, batch_size=16, device="cpu", progress=False, **kw)


class CountingDataset(torch.utils.data.Dataset):
    """A recording fake: counts how often each sample is read."""

    def __init__(self, base):
        self.base, self.reads = base, 0

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.reads += 1
        return self.base[i]


def _counting(task):
    return dataclasses.replace(task, test=CountingDataset(task.test), fingerprint=task.fingerprint + "-counted")


@pytest.mark.parametrize("strategy, scratch_arch, n_frozen, trainable, used_cache, arch", [
    ("scratch", "small", 0, DIGIT_TOTAL, False, "digit_cnn"),
    ("scratch", "same", 0, CONV1 + CONV2 + HEAD, False, "digit_cnn@conv2, random init"),
    ("feature_extraction", "small", 2, HEAD, True, "digit_cnn@conv2"),
    ("fine_tune", "small", 1, CONV2 + HEAD, True, "digit_cnn@conv2"),
])
def test_each_strategy_selects_on_val_and_tests_once(task, strategy, scratch_arch, n_frozen, trainable, used_cache,
                                                     arch):
    counted = _counting(task)
    result = _run(strategy, counted, scratch_arch=scratch_arch)
    assert counted.test.reads == len(task.test)       # the test split is read once, at the end
    assert isinstance(result, RunResult) and result.arch == arch == result.model.name
    assert (result.strategy, result.task_name, result.n_per_class) == (strategy, "MNIST digits 5-9", 6)
    assert (result.n_frozen, result.trainable_params, result.used_cache) == (n_frozen, trainable, used_cache)
    assert result.model.n_frozen == n_frozen and result.model.classes == ["5", "6", "7", "8", "9"]
    assert len(result.history) == 2 and len(result.history.batches) == 4  # 30 images, batches of 16
    # history["val_acc"] is validation; the kept weights are those of the best validation epoch
    val_loader = task.loaders(16)[1]
    assert result.val_acc == pytest.approx(evaluate(result.model, val_loader)["acc"])
    assert result.val_acc >= max(result.history["val_acc"])
    test = evaluate(result.model, task.loaders(16)[2])
    assert result.test_acc == pytest.approx(test["acc"]) == result.test.accuracy and not result.model.training
    assert (result.test.chance, result.test.majority, result.test.n) == (0.2, 0.2, 50)
    row = result.row()
    assert {k: row[k] for k in ("n_frozen", "trainable_params", "epochs", "test_acc", "chance", "majority",
                                "stopped")} == {"n_frozen": n_frozen, "trainable_params": trainable,
                                                "epochs": 2, "test_acc": round(result.test_acc, 4), "chance": 0.2,
                                                "majority": 0.2, "stopped": False}
    assert row["balanced_acc"] == round(result.test.balanced_accuracy, 4) and row["one_class"] is False
    assert (row["num_train"], row["seed"], row["setup_seconds"]) == (len(task.train), result.seed, 0.0)
    assert repr(result).startswith(f"RunResult({strategy} on 'MNIST digits 5-9', 6/class: val_acc=")


def test_fine_tune_trains_the_head_first_then_unfreezes_with_discriminative_rates(task, monkeypatch):
    calls = []
    real_fit = runs.fit

    def recording_fit(model, train_loader, val_loader=None, **kw):
        calls.append({"groups": [n for n in model.group_names if any(p.requires_grad
                                                                      for p in model.groups[n].parameters())],
                      "lr": kw["lr"], "lr_decay": kw.get("lr_decay", 1.0), "val": val_loader is not None})
        return real_fit(model, train_loader, val_loader, **kw)

    monkeypatch.setattr(runs, "fit", recording_fit)
    result = _run("fine_tune", task, n_frozen=0, lr=1e-3, num_epochs=4, head_epochs=3)
    assert calls == [{"groups": ["head"], "lr": DEFAULT_LR["feature_extraction"], "lr_decay": 1.0, "val": True},
                     {"groups": ["conv1", "conv2", "head"], "lr": 1e-3, "lr_decay": 0.5, "val": True}]
    assert result.n_frozen == 0 and not result.used_cache and result.trainable_params == CONV1 + CONV2 + HEAD
    groups = layerwise_lr_groups(result.model, 1e-3, 0.5)
    assert [(g["name"], g["lr"]) for g in groups] == [("conv1", 2.5e-4), ("conv2", 5e-4), ("head", 1e-3)]


def test_a_grid_of_candidates_is_chosen_on_validation_and_only_the_winner_is_tested(task):
    counted = _counting(task)
    result = _run("fine_tune", counted, n_frozen=[0, 1], lr=[1e-3, 1e-2], cache=False, head_epochs=1)
    assert counted.test.reads == len(task.test)
    assert [(c["n_frozen"], c["lr"]) for c in result.selection] == [(0, 1e-3), (0, 1e-2), (1, 1e-3), (1, 1e-2)]
    best = max(result.selection, key=lambda c: c["val_acc"])
    assert (result.n_frozen, result.lr) == (best["n_frozen"], best["lr"])
    assert result.test is not None and result.test_acc == result.test.accuracy
    no_val = dataclasses.replace(task, val=None)
    with pytest.raises(ValueError, match="needs a validation split, and task 'MNIST digits 5-9' has none"):
        _run("fine_tune", no_val, n_frozen=[0, 1])
    with pytest.raises(ValueError, match="n_frozen is an empty list"):
        _run("fine_tune", task, n_frozen=[])


def test_a_model_that_answers_one_class_is_flagged(task):
    const = models.GroupedModel([("head", torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 5)))])
    with torch.no_grad():
        const.head[1].weight.zero_()
        const.head[1].bias.copy_(torch.tensor([0., 0., 3., 0., 0.]))
    m = metrics_on(const, task.loaders(16)[2], task.num_classes)
    assert m.single_class and m.accuracy == pytest.approx(m.majority) == pytest.approx(0.2)
    assert m.balanced_accuracy == pytest.approx(m.chance) == pytest.approx(0.2)
    result = _run("scratch", task, num_epochs=1)
    flagged = dataclasses.replace(result, test=m)
    assert flagged.single_class and flagged.row()["one_class"] is True and "PREDICTS ONE CLASS" in repr(flagged)


def test_digit_transfer_model_is_cut_after_conv2_by_default():
    assert DIGIT_FE_CUT == "conv2"
    m = digit_cut_model(5)
    assert m.group_names == ["conv1", "conv2", "head"] and m.head[1].in_features == 1568
    src = models.load_digit_model()
    assert torch.equal(m.groups["conv2"][0].weight, src.groups["conv2"][0].weight)
    late = digit_cut_model(5, cut="features")
    assert late.group_names == ["conv1", "conv2", "features", "head"] and late.head[1].in_features == 128
    with pytest.raises(ValueError, match=r"cut must name a group of the digit model before its head .* got 'head'"):
        digit_cut_model(5, cut="head")


def test_fine_tune_default_and_explicit_n_frozen(task):
    assert default_fine_tune_frozen(models.digit_cnn(5)) == 2
    assert default_fine_tune_frozen(digit_cut_model(5)) == 1
    assert default_fine_tune_frozen(models.efficientnet_lite0(pretrained=False)) == 6


def test_fine_tune_with_everything_but_the_head_frozen_is_refused(task):
    with pytest.raises(ValueError, match="fine_tune with n_frozen=2 would train only the head; that is "
                                         "feature_extraction, or choose a smaller n_frozen"):
        _run("fine_tune", task, n_frozen=2)


@pytest.mark.parametrize("n_frozen", [3, -1])
def test_fine_tune_out_of_range_freeze_count_states_the_range(task, n_frozen):
    with pytest.raises(ValueError, match=rf"n_frozen={n_frozen} is out of range: digit_cnn@conv2 has 3 groups, "
                                         r"so 0\.\.2"):
        _run("fine_tune", task, n_frozen=n_frozen)


@pytest.mark.parametrize("strategy", ["finetune", "Scratch", ""])
def test_unknown_strategy_lists_the_choices(task, strategy):
    msg = rf"unknown strategy {strategy!r}; choose one of \('scratch', 'feature_extraction', 'fine_tune', 'choose'\)"
    with pytest.raises(ValueError, match=msg):
        _run(strategy, task)
    with pytest.raises(ValueError, match=msg):
        build_model(strategy, task)
    assert strategy not in STRATEGIES


def _photo_task(size=32, backbone="efficientnet_lite0"):
    images = torch.randint(0, 255, (6, 3, size, size), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    norm = input_normalization(backbone)
    return Task("three colours", ["r", "g", "b"], ImageTensorDataset(images, labels, *norm),
                ImageTensorDataset(images, labels, *norm), 2, (3, size, size), "photo-fingerprint")


def test_a_photo_task_normalised_for_another_backbone_is_refused():
    for_resnet = _photo_task(backbone="resnet18")
    assert for_resnet.train.normalization == (IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(ValueError, match=r"normalised with mean/std \(0.485, 0.456, 0.406\).*"
                                         r"efficientnet_lite0 was trained on mean/std \(0.5, 0.5, 0.5\).*"
                                         r"backbone='efficientnet_lite0'"):
        build_model("feature_extraction", for_resnet)
    assert build_model("scratch", for_resnet).name == "small_cnn"   # a model from scratch has no expectation
    model = build_model("fine_tune", _photo_task())
    assert (model.mean, model.std) == _photo_task().train.normalization


def test_build_model_for_photos_checks_its_arguments():
    photo = _photo_task()
    scratch = build_model("scratch", photo)
    assert scratch.name == "small_cnn" and scratch.classes == ["r", "g", "b"] and scratch.image_size == 32
    with pytest.raises(ValueError, match="scratch_arch must be 'small' or 'same', got 'big'"):
        build_model("scratch", photo, scratch_arch="big")
    with pytest.raises(ValueError, match=r"unknown backbone 'vgg16'; choose one of"):
        build_model("feature_extraction", photo, backbone="vgg16")
    same = build_model("scratch", photo, scratch_arch="same")
    assert same.name == "efficientnet_lite0" and same.head.out_features == 3


def test_feature_extraction_on_photos_uses_the_pretrained_backbone():
    result = _run("feature_extraction", _photo_task(), num_epochs=1)
    assert result.model.name == "efficientnet_lite0" and result.n_frozen == 9 and result.used_cache
    assert result.trainable_params == 1280 * 3 + 3


def test_stop_inside_run_strategy_still_measures_the_model(task):
    stop = StopFlag()

    class StopAfterTwo(Observer):
        def on_batch_end(self, logs):
            if logs["epoch"] == 0 and logs["batch"] == 1:
                stop.set("instructor pressed Stop")

    result = _run("scratch", task, num_epochs=3, stop=stop, observers=[StopAfterTwo()])
    assert result.history.stopped and result.history.stop_reason == "instructor pressed Stop"
    assert len(result.history) == 0 and len(result.history.batches) == 2
    assert 0 <= result.test_acc <= 1 and result.row()["stopped"] is True and result.row()["epochs"] == 0
    assert result.val_acc is None and result.test is not None   # no finished epoch: nothing chosen, still tested


def test_same_seed_same_result(task):
    a = _run("fine_tune", task, seed=11)
    b = _run("fine_tune", task, seed=11)
    assert a.test_acc == b.test_acc and a.history.batches == b.history.batches
