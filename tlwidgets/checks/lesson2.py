"""Checks for lesson 2 (feature extraction). Each recomputes the answer from the model or features passed in."""
from __future__ import annotations

from numbers import Real

import torch
from torch import nn

from . import CheckResult, is_integer, not_yet, passed


def _need_features(features, name: str) -> None:
    if not (hasattr(features, "loaders") and hasattr(features, "train")):
        raise ValueError(f"{name} expects the FeatureSet from tl.cached_features(...) as the features, "
                         f"got {type(features).__name__}")


def feature_size(model, upto: int) -> int:
    """How many numbers the first ``upto`` groups of ``model`` output per image (one dummy forward pass)."""
    size = model.image_size or 28
    channels = 1 if model.mean is not None and len(model.mean) == 1 else 3
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, channels, size, size, device=device), 0, upto)
    model.train(was_training)
    return out[0].numel()


def exercise1(answer, model, upto: int, num_classes: int) -> CheckResult:
    """Parameters of a new linear head on the features at group boundary ``upto``."""
    if answer is None:
        return not_yet("replace `answer = None` with an integer: a Linear layer from d features to "
                       "num_classes outputs has d * num_classes weights plus num_classes biases")
    if not is_integer(answer):
        raise ValueError(f"exercise1 expects an integer number of parameters, got {type(answer).__name__}")
    answer = int(answer)
    d = feature_size(model, upto)
    expected = (d + 1) * num_classes
    if answer == expected:
        return passed(f"{d} features x {num_classes} classes + {num_classes} biases = {expected:,} parameters, "
                      f"against {model.parameter_counts()[1]:,} in the whole {model.name}")
    if answer == d * num_classes:
        return not_yet("close: you counted the weights; the biases (one per class) train too")
    return not_yet(f"{answer:,} is not it. How many numbers does model(x, 0, {upto}) give per image? "
                   "(print its shape, then flatten)")


def exercise2(answer, head: nn.Module, features) -> CheckResult:
    """A head trained on 5 labelled images per class: the reported accuracy must be the head's real one."""
    from ..training import evaluate

    if answer is None:
        return not_yet("replace `answer = None` with the test accuracy (a float in [0, 1]) of a head trained "
                       "on tl.cached_features(model, tl.mnist_target_task(5, ...), upto=2)")
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, Real):
        raise ValueError(f"exercise2 expects a float between 0 and 1, got {type(answer).__name__}")
    if not isinstance(head, nn.Module):
        raise ValueError(f"exercise2 expects the trained head (an nn.Module) second, got {type(head).__name__}")
    _need_features(features, "exercise2")
    labels = features.train.tensors[1]
    counts = torch.bincount(labels).tolist()
    if set(counts) != {5}:
        return not_yet(f"the features hold {counts} training images per class; build the task with "
                       "n_per_class=5 and extract its features")
    test_loader = features.loaders(256)[-1]
    try:
        acc = evaluate(head, test_loader)["acc"]
    except (RuntimeError, ValueError) as exc:
        return not_yet(f"the head cannot classify these features ({str(exc).splitlines()[0][:160]}); "
                       "was it trained on the same group boundary?")
    if abs(float(answer) - acc) > 1e-3:
        return not_yet(f"you report {float(answer):.3f} but this head scores {acc:.3f} on the features' test split; "
                       "evaluate the head you pass in")
    chance = 1 / len(counts)
    if acc < chance + 0.3:
        return not_yet(f"{acc:.3f} is barely above chance ({chance:.2f}): train longer or with a larger lr "
                       "(the head has few parameters; 30 epochs at lr=1e-3 is a good start)")
    return passed(f"{acc:.1%} with only 5 labelled images per class (chance: {chance:.0%})")


def exercise3(answer, head: nn.Module, features, classes) -> CheckResult:
    """The (true, predicted) pair of breeds that the head confuses most often on the test split."""
    from ..training import confusion_matrix

    if answer is None:
        return not_yet("replace `answer = None` with a (true breed, predicted breed) pair of names: the largest "
                       "entry off the diagonal of tl.confusion_matrix(head, test_loader)")
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__len__") or len(answer) != 2:
        raise ValueError("exercise3 expects a pair of class names, e.g. ('Bengal', 'Egyptian_Mau')")
    if not isinstance(head, nn.Module):
        raise ValueError(f"exercise3 expects the head (an nn.Module) second, got {type(head).__name__}")
    _need_features(features, "exercise3")
    classes = list(classes)
    test_loader = features.loaders(256)[-1]
    cm = confusion_matrix(head, test_loader, num_classes=len(classes))
    off = cm.clone()
    off.fill_diagonal_(0)
    top = int(off.max())
    if top == 0:
        return passed("this head makes no mistakes on the test split, so there is no confused pair")
    pairs = [(classes[i], classes[j]) for i, j in torch.nonzero(off == top).tolist()]
    given = tuple(str(a) for a in answer)
    if given in pairs:
        return passed(f"{top} test photos of {given[0]} were called {given[1]}" +
                      (f" (tied with {[p for p in pairs if p != given]})" if len(pairs) > 1 else ""))
    if given[::-1] in pairs:
        return not_yet("right pair, wrong order: rows of the confusion matrix are true classes, columns predictions")
    unknown = [g for g in given if g not in classes]
    if unknown:
        return not_yet(f"{unknown} are not class names of this task; use names from task.classes")
    i, j = classes.index(given[0]), classes.index(given[1])
    return not_yet(f"{given[0]} -> {given[1]} happens {int(cm[i, j])} times, but another pair happens {top} times")
