"""Checks for lesson 2 (feature extraction). Each recomputes the answer from the model or features passed in."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from . import CheckResult, as_number, is_integer, is_placeholder, need_prediction, not_yet, passed


def _need_features(features, name: str) -> None:
    if not (hasattr(features, "loaders") and hasattr(features, "train")):
        raise ValueError(f"{name} expects the FeatureSet from tl.cached_features(...) as the features, "
                         f"got {type(features).__name__}")


def feature_shape(model, n_frozen: int, input_size=None) -> tuple[int, ...]:
    """The shape of ``model[:n_frozen]``'s output for one image (one dummy forward pass, model mode restored).

    ``input_size`` is the task's ``(channels, height, width)``; by default the model's own image size.
    Measured at the task's size because a convolutional output grows with the photo.
    """
    if input_size is None:
        size = model.image_size or 28
        channels = 1 if model.mean is not None and len(model.mean) == 1 else 3
        input_size = (channels, size, size)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model[:n_frozen](torch.zeros(1, *input_size, device=device))
    model.train(was_training)
    return tuple(out.shape[1:])


def feature_size(model, n_frozen: int, input_size=None) -> int:
    """How many numbers ``model[:n_frozen]`` outputs per image (flattened)."""
    return math.prod(feature_shape(model, n_frozen, input_size))


_UNSET = object()


def _count(answer, name: str, what: str) -> int | None:
    """A count given as any number type (int, NumPy, a one-element tensor, a whole float): the int, or None
    for a number that is not whole (the caller hints); a ValueError for what is no number at all."""
    if is_integer(answer):
        return int(answer)
    value = as_number(answer, name, what)
    return int(value) if value.is_integer() else None


def exercise1(answer, model, n_frozen: int, num_classes: int, *, input_size=None,
              prediction: Any = _UNSET) -> CheckResult:
    """Parameters of a new linear head on the (flattened) features at group boundary ``n_frozen``.

    Predict, then measure: ``prediction`` (when the lesson passes it) must be filled in first and is echoed
    beside the measurement — a wrong prediction still passes, the comparison is the lesson.
    ``input_size``: the task's (channels, height, width), since a feature *map* grows with the photo.
    """
    if prediction is not _UNSET:
        hint = need_prediction(prediction, "a number of parameters, from what you know of the cut")
        if hint is not None:
            return hint
        if _count(prediction, "exercise1", "a number of parameters as your prediction") is None:
            return not_yet(f"your prediction {prediction!r} is not a whole number: a parameter count is")
    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with an integer: a Linear layer from d features to "
                       "num_classes outputs has d * num_classes weights plus num_classes biases")
    given = _count(answer, "exercise1", "an integer number of parameters")
    if given is None:
        return not_yet(f"{answer} is not a whole number: count the parameters (weights + biases), do not average")
    shape = feature_shape(model, n_frozen, input_size)
    d = math.prod(shape)
    expected = (d + 1) * num_classes
    echo = "" if prediction is _UNSET else (
        " — as you predicted" if int(prediction) == expected else
        f" (you predicted {int(prediction):,}: {'more' if expected > int(prediction) else 'fewer'} than you thought "
        "— what did the prediction leave out?)")
    if given == expected:
        where = (f"a {' x '.join(map(str, shape))} map, flattened: {d:,} features" if len(shape) > 1
                 else f"{d} features")
        return passed(f"{where} x {num_classes} classes + {num_classes} biases = {expected:,} parameters, "
                      f"against {model.parameter_counts()[1]:,} in the whole {model.name}" + echo)
    if given == d * num_classes:
        return not_yet("close: you counted the weights; the biases (one per class) train too")
    if n_frozen + 1 < model.num_groups and given == (feature_size(model, n_frozen + 1, input_size) + 1) * num_classes:
        return not_yet(f"that is the head on the next group's output (n_frozen={n_frozen + 1}); "
                       f"this head sits on the output of model[:{n_frozen}]")
    if len(shape) == 3 and given in ((shape[0] + 1) * num_classes, shape[0] * num_classes):
        return not_yet(f"you counted {shape[0]} channels, but this cut outputs a {' x '.join(map(str, shape))} map "
                       "(nothing pools it before the head): flattened, every position of every channel is a feature")
    return not_yet(f"{given:,} is not it. How many numbers does model[:{n_frozen}](x) give per image? "
                   "(print its shape for one input of the task's size, then flatten)")


def _split_tensors(features):
    """(train_x, train_y, test_x, test_y) from a FeatureSet or from a 4-tuple of plain tensors (the by-hand route)."""
    if hasattr(features, "loaders") and hasattr(features, "train"):
        return (*features.train.tensors, *features.test.tensors)
    if isinstance(features, (tuple, list)) and len(features) == 4 and all(isinstance(t, torch.Tensor)
                                                                           for t in features):
        return tuple(features)
    raise ValueError("exercise2 expects the features third: the FeatureSet from tl.cached_features(...), or the "
                     f"by-hand tensors as a tuple (f_train, y_train, f_test, y_test); got {type(features).__name__}")


@torch.no_grad()
def _head_accuracy(head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``head`` on features ``x``; a head without a Flatten gets the features flattened."""
    was_training = head.training
    head.eval()
    try:
        try:
            out = head(x)
        except RuntimeError:
            out = head(x.flatten(1))
        if out.dim() != 2 or out.shape[0] != len(y):
            out = head(x.flatten(1))
    finally:
        head.train(was_training)
    return (out.argmax(1) == y).float().mean().item()


def exercise2(answer, head: nn.Module, features) -> CheckResult:
    """A head on the conv2 features, trained on 5 labelled images per class: its real test accuracy.

    Both routes count: the FeatureSet of ``tl.cached_features`` (its activations keep their 32x7x7 shape)
    or the by-hand tensors ``(f_train, y_train, f_test, y_test)`` (already flattened), with a head that
    flattens or not.
    """
    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with the test accuracy (a float in [0, 1]) of a head trained "
                       "on the conv2 features of tl.mnist_target_task(5, ...)")
    answer = as_number(answer, "exercise2", "a float between 0 and 1")
    if not isinstance(head, nn.Module):
        raise ValueError(f"exercise2 expects the trained head (an nn.Module) second, got {type(head).__name__}")
    x_train, y_train, x_test, y_test = _split_tensors(features)
    width = x_train[0].numel()
    if width != 32 * 7 * 7:
        return not_yet(f"these features have {width} numbers per digit; the lesson's feature extraction cuts after "
                       "conv2 (32 x 7 x 7 = 1568 numbers): use n_frozen=2, not the layer before the old head")
    counts = torch.bincount(y_train).tolist()
    if set(counts) != {5}:
        return not_yet(f"the features hold {counts} training images per class; build the task with "
                       "n_per_class=5 and extract its features")
    try:
        acc = _head_accuracy(head, x_test, y_test)
    except (RuntimeError, ValueError) as exc:
        return not_yet(f"the head cannot classify these features ({str(exc).splitlines()[0][:160]}); "
                       "was it trained on the same group boundary?")
    if abs(float(answer) - acc) > 1e-3:
        return not_yet(f"you report {float(answer):.3f} but this head scores {acc:.3f} on the features' test split; "
                       "evaluate the head you pass in (on the test features, once)")
    chance = 1 / len(counts)
    if acc < chance + 0.3:
        return not_yet(f"{acc:.3f} is barely above chance ({chance:.2f}): train longer or with a larger lr "
                       "(the head has few parameters; 30 epochs at lr=1e-3 is a good start)")
    return passed(f"{acc:.1%} with only 5 labelled images per class (chance: {chance:.0%})")


def exercise4(freeze_and_swap) -> CheckResult:
    """Write ``freeze_and_swap(source, num_classes)``: source's conv1 + conv2 frozen, a new trainable head.

    Judged by behaviour on a fresh digit model: the output has ``num_classes`` scores, a training step
    changes the new head and nothing of the source (weights and BatchNorm statistics), and the source's
    ``features`` layer and old head are not used.
    """
    from ..models import load_digit_model

    if not callable(freeze_and_swap):
        raise ValueError(f"exercise4 expects your function freeze_and_swap, got {type(freeze_and_swap).__name__}")
    source = load_digit_model()
    before = {k: v.clone() for k, v in source.state_dict().items()}
    try:
        model = freeze_and_swap(source, 3)
    except Exception as exc:  # noqa: BLE001 - the student's code: report, never crash the lesson
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        return not_yet(f"freeze_and_swap raised {type(exc).__name__}: {first}")
    if model is None or model is Ellipsis:
        return not_yet("complete the function: replace the `...` lines and `return` the new model")
    if not isinstance(model, nn.Module):
        return not_yet(f"freeze_and_swap must return an nn.Module, it returned {type(model).__name__}")
    params = {id(p) for p in model.parameters()}
    for name in ("features", "head"):
        if any(id(p) in params for p in source.groups[name].parameters()):
            return not_yet(f"your model still uses the source's `{name}` group: cut after conv2 — keep only "
                           "conv1 and conv2 and put a new nn.Linear(32 * 7 * 7, num_classes) on their output")
    x = torch.randn(6, 1, 28, 28)
    model.train()
    try:
        out = model(x)
    except RuntimeError as exc:
        return not_yet(f"the model cannot take a batch of digits ({str(exc).splitlines()[0][:140]}); "
                       "conv2 outputs 32 x 7 x 7: flatten before the Linear layer")
    if out.shape != (6, 3):
        return not_yet(f"the output has shape {tuple(out.shape)}, expected (6, 3): one score per class of the new "
                       "task (num_classes), from a new head")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        return not_yet("nothing in your model can train: the new head must keep requires_grad=True "
                       "(freeze the source first, then add the head)")
    conv_ids = {id(p) for n in ("conv1", "conv2") for p in source.groups[n].parameters()}
    if any(id(p) in conv_ids for p in trainable):
        return not_yet("conv1/conv2 weights still have requires_grad=True: freeze them with "
                       "p.requires_grad_(False) for every parameter of the source")
    opt = torch.optim.SGD(trainable, lr=0.1)
    head_before = [p.detach().clone() for p in trainable]
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    opt.step()
    model.train()
    with torch.no_grad():
        model(x)  # a second forward pass in train mode: BatchNorm in train mode would move its statistics
    changed = [n for n, v in source.state_dict().items() if not torch.equal(v, before[n])
               and not n.startswith(("features", "head"))]
    if changed:
        return not_yet(f"training changed the frozen part ({changed[:2]}): requires_grad_(False) stops gradients "
                       "but not BatchNorm's running statistics — keep the frozen convolutions in eval mode "
                       "(e.g. override train() or call .eval() on them after model.train())")
    if all(torch.equal(a, b) for a, b in zip(head_before, trainable)):
        return not_yet("a training step did not change the new head: is it connected to the output?")
    # frozen means the frozen part's *output* is fixed while the model trains, not only its buffers: in train
    # mode one digit's scores must not depend on which other digits share its batch (they do when BatchNorm
    # normalises by the batch's own statistics, e.g. track_running_stats=False)
    others = torch.randn(5, 1, 28, 28) * 3 + 1
    model.train()
    with torch.no_grad():
        alone, mixed = model(x)[0], model(torch.cat([x[:1], others]))[0]
    if not torch.allclose(alone, mixed, atol=1e-5):
        return not_yet("in train mode a digit's scores change with the other digits of its batch: the frozen "
                       "BatchNorm layers normalise by batch statistics (train mode, or track_running_stats=False), "
                       "so the frozen part's output is not frozen — keep it in eval mode, with its stored statistics")
    return passed(f"conv1 + conv2 frozen (weights and BatchNorm statistics unchanged by a training step), "
                  f"a new head with {sum(p.numel() for p in trainable):,} trainable parameters")


def exercise3(answer, head: nn.Module, features, classes) -> CheckResult:
    """The (true, predicted) pair of breeds that the head confuses most often on the test split."""
    from ..training import confusion_matrix

    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with a (true breed, predicted breed) pair of names: the largest "
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
