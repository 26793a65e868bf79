"""tlwidgets.transfer: the three strategies on a tiny MNIST 5-9 task, and their argument checks."""
from __future__ import annotations

import pytest
import torch

from tlwidgets import data, models
from tlwidgets.data import IMAGENET_MEAN, IMAGENET_STD, ImageTensorDataset, Task, input_normalization
from tlwidgets.training import Observer, StopFlag, evaluate
from tlwidgets.transfer import STRATEGIES, RunResult, build_model, default_fine_tune_frozen, run_strategy

DIGIT_TOTAL = 206_373  # digit_cnn(5): see test_models.test_digit_cnn_parameter_counts_by_hand


@pytest.fixture(scope="module")
def task():
    return data.mnist_target_task(6, test_per_class=10, root=data.REPO_DATASETS)


def _run(strategy, task, **kw):
    kw.setdefault("num_epochs", 2)
    return run_strategy(strategy, task, batch_size=16, device="cpu", progress=False, **kw)


@pytest.mark.parametrize("strategy, n_frozen, trainable, used_cache", [
    ("scratch", 0, DIGIT_TOTAL, False),
    ("feature_extraction", 3, 645, True),
    ("fine_tune", 2, 200_832 + 645, True),
])
def test_each_strategy_returns_a_sensible_result(task, strategy, n_frozen, trainable, used_cache):
    result = _run(strategy, task)
    assert isinstance(result, RunResult)
    assert (result.strategy, result.task_name, result.n_per_class) == (strategy, "MNIST digits 5-9", 6)
    assert (result.n_frozen, result.trainable_params, result.used_cache) == (n_frozen, trainable, used_cache)
    assert result.model.num_frozen == n_frozen and result.model.classes == ["5", "6", "7", "8", "9"]
    assert len(result.history) == 2 and len(result.history.batches) == 4  # 30 images, batches of 16
    assert 0 <= result.test_acc <= 1 and result.seconds > 0
    assert result.test_acc == result.history.last["val_acc"]
    # the returned full model scores the same on the raw test images (it shares the trained weights)
    full = evaluate(result.model, task.loaders(16)[1])
    assert abs(full["acc"] - result.test_acc) <= 1 / full["n"] and not result.model.training
    row = result.row()
    assert row == {"strategy": strategy, "task": "MNIST digits 5-9", "n_per_class": 6, "frozen_groups": n_frozen,
                   "trainable_params": trainable, "epochs": 2, "test_acc": round(result.test_acc, 4),
                   "seconds": round(result.seconds, 2), "stopped": False}
    assert repr(result).startswith(f"RunResult({strategy} on 'MNIST digits 5-9', 6/class: test_acc=")


def test_fine_tune_default_and_explicit_frozen_groups(task):
    assert default_fine_tune_frozen(models.digit_cnn(5)) == 2
    assert default_fine_tune_frozen(models.efficientnet_lite0(pretrained=False)) == 6
    result = _run("fine_tune", task, n_frozen=0, num_epochs=1)
    assert result.n_frozen == 0 and not result.used_cache and result.trainable_params == DIGIT_TOTAL


def test_fine_tune_with_everything_but_the_head_frozen_is_refused(task):
    with pytest.raises(ValueError, match="fine_tune with n_frozen=3 would train only the head; that is "
                                         "feature_extraction, or choose a smaller n_frozen"):
        _run("fine_tune", task, n_frozen=3)


@pytest.mark.parametrize("n_frozen", [4, -1])
def test_fine_tune_out_of_range_freeze_count_states_the_range(task, n_frozen):
    with pytest.raises(ValueError, match=rf"n_groups={n_frozen} is out of range: digit_cnn has 4 groups, so 0\.\.3"):
        _run("fine_tune", task, n_frozen=n_frozen)


@pytest.mark.parametrize("strategy", ["finetune", "Scratch", ""])
def test_unknown_strategy_lists_the_choices(task, strategy):
    msg = rf"unknown strategy {strategy!r}; choose one of \('scratch', 'feature_extraction', 'fine_tune'\)"
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


def test_same_seed_same_result(task):
    a = _run("fine_tune", task, seed=11)
    b = _run("fine_tune", task, seed=11)
    assert a.test_acc == b.test_acc and a.history.batches == b.history.batches
