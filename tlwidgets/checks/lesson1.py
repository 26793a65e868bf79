"""Checks for lesson 1 (prediction with a pretrained model). Answers are recomputed, never looked up."""
from __future__ import annotations

from numbers import Real

import torch

from . import CheckResult, not_yet, passed


def _as_fraction(answer, exercise: str) -> float:
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, Real):
        raise ValueError(f"{exercise} expects a number between 0 and 1 (e.g. 0.93), got {type(answer).__name__}")
    return float(answer)


def exercise1(answer, model, task) -> CheckResult:
    """Top-1 accuracy of ``model`` on ``task.test``, recomputed here."""
    from torch.utils.data import DataLoader

    from ..training import evaluate

    if answer is None:
        return not_yet("replace `answer = None` with the accuracy, a float in [0, 1]: the share of test digits "
                       "whose most probable class (argmax) equals the label")
    value = _as_fraction(answer, "exercise1")
    acc = evaluate(model, DataLoader(task.test, batch_size=512))["acc"]
    if abs(value - acc) <= 5e-4:
        return passed(f"accuracy {acc:.4f} on {len(task.test):,} test digits")
    if abs(value / 100 - acc) <= 5e-4:
        return not_yet(f"that looks like a percentage; give a fraction in [0, 1] ({value / 100:.4f})")
    if abs((1 - value) - acc) <= 5e-4:
        return not_yet("that is the error rate (share of mistakes); accuracy is the share of correct answers")
    return not_yet(f"{value:.4f} is not the accuracy on task.test; compare probs.argmax(1) with the labels "
                   "over the whole test split")


def exercise2(answer) -> CheckResult:
    """The ImageNet-1k indices of the domestic cat classes, checked against the class names."""
    from ..lesson_utils import CAT_CLASSES, DOMESTIC_CAT_NAMES
    from ..models import imagenet_classes

    if answer is None:
        return not_yet("replace `answer = None` with a list of integers: the indices i where names[i] is a "
                       "domestic cat (look around the foxes, e.g. print(list(enumerate(names))[270:295]))")
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__iter__"):
        raise ValueError(f"exercise2 expects a list of integers, got {type(answer).__name__}")
    try:
        given = sorted({int(i) for i in answer})
    except (TypeError, ValueError):
        raise ValueError("exercise2 expects a list of integers (class indices), e.g. [1, 2, 3]") from None
    names = imagenet_classes()
    expected = [i for i, n in enumerate(names) if n in DOMESTIC_CAT_NAMES]
    if expected != list(CAT_CLASSES):  # the ranges in lesson_utils must be the names' positions
        raise RuntimeError(f"ImageNet class list out of the expected order: cats at {expected}")
    if given == expected:
        return passed(", ".join(f"{i} {names[i]}" for i in expected))
    bad = [i for i in given if not 0 <= i < len(names)]
    if bad:
        return not_yet(f"{bad} are not ImageNet-1k indices (0..999)")
    wild = [names[i] for i in given if i not in expected]
    missing = [names[i] for i in expected if i not in given]
    hint = []
    if wild:
        hint.append(f"not domestic cats: {wild}")
    if missing:
        hint.append(f"{len(missing)} domestic cat class(es) missing")
    return not_yet("; ".join(hint))


def exercise3(answer, probs, truth) -> CheckResult:
    """Species accuracy when the species is decided by summed dog vs cat probability."""
    from ..lesson_utils import species_predictions

    if answer is None:
        return not_yet("replace `answer = None` with a float: sum probs over the dog classes (151..268) and over "
                       "the cat classes (281..285) for each photo, call it a dog when the dog sum is larger, "
                       "and compare with truth")
    value = _as_fraction(answer, "exercise3")
    truth = list(truth)
    if len(truth) != len(probs):
        raise ValueError(f"probs has {len(probs)} rows but truth has {len(truth)} labels")
    mass = species_predictions(probs, "mass")
    acc = sum(s == t for s, t in zip(mass, truth)) / len(truth)
    top1 = sum(s == t for s, t in zip(species_predictions(probs, "top1"), truth)) / len(truth)
    if abs(value - acc) <= 1e-3:
        return passed(f"{acc:.1%} by probability mass vs {top1:.1%} by the top-1 label: summing over all breeds "
                      "uses what the model knows even when no single breed wins")
    if abs(value - top1) <= 1e-3:
        return not_yet("that is the top-1 rule's accuracy; add up the probabilities over each species' classes")
    return not_yet(f"{value:.3f} is not it; check the ranges (dogs 151..268 inclusive, cats 281..285) and that "
                   "you compare 'dog'/'cat' strings with truth")
