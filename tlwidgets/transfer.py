"""The three strategies side by side: from scratch, feature extraction, fine-tuning.

``run_strategy("feature_extraction", task)`` builds the right model for the
task (the digits-0-4 CNN cut after ``conv2`` for MNIST tasks, an ImageNet
backbone for photos), freezes it, uses cached activations whenever the frozen
part cannot change, trains, **selects on the validation split** and measures
the test split once. It returns a :class:`RunResult`. Lessons 2-4 and the
dashboard are all built on this one function.

Measurement rules, in one place:

- every choice is made on ``task.val``: the epoch whose weights are kept
  (best validation accuracy), and, when ``n_frozen`` or ``lr`` is a list of
  candidates, which one wins;
- the test split is evaluated once, for the chosen model, and reported with
  its baselines (:class:`tlwidgets.metrics.Metrics`: chance, majority class,
  balanced accuracy, and a flag for a model that predicts one class).

The fine-tuning recipe (``strategy="fine_tune"``): first the new head trains
alone on the frozen backbone (``head_epochs``, on cached features), then the
top groups are unfrozen and train with discriminative learning rates: the head
at ``lr``, each pretrained group ``d`` steps below it at ``lr * lr_decay**d``.
Augmentation stays off by default (``augment=False``): measured on the cat
breeds over five seeds it gained nothing beyond the seed spread on validation
and costs the activation cache (``docs/measurements/augment.json``, lesson 3).
"""
from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Sequence, Sized
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import nn
from torch.utils.data import DataLoader

from .data import Task, size_label
from .features import cached_features, extract_features, propagate
from .freezing import freeze, max_frozen
from .infra import seed_everything, select_device
from .metrics import Metrics, classification_metrics
from .models import GroupedModel, build_backbone, digit_cnn, load_digit_model, replace_head, small_cnn
from .training import History, Observer, StopFlag, evaluate, fit, predict_proba

__all__ = ["STRATEGIES", "RunResult", "run_strategy", "build_model", "default_fine_tune_frozen", "DEFAULT_LR",
           "DEFAULT_LR_DECAY", "DIGIT_FE_CUT", "digit_cut_model", "BestOnValidation", "metrics_on"]

STRATEGIES = ("scratch", "feature_extraction", "fine_tune")
DEFAULT_LR = {"scratch": 1e-3, "feature_extraction": 3e-3, "fine_tune": 1e-3}
#: fine-tuning: each pretrained group one step further from the head learns this much more slowly
DEFAULT_LR_DECAY = {"scratch": 1.0, "feature_extraction": 1.0, "fine_tune": 0.5}
#: Feature extraction on the digit model means: frozen conv1 + conv2, a new linear head on their 1568 numbers.
#: Lesson 2 measures why (the 128-unit ``features`` layer is too specific to digits 0-4).
DIGIT_FE_CUT = "conv2"


@dataclass
class RunResult:
    """One training run: what was trained, how, what validation chose and how it does on the test split.

    The one result type of the course: :func:`run_strategy` returns it, and
    every cell of a learning curve (:func:`tlwidgets.experiments.learning_curve`)
    is one. ``test_acc`` is measured once, on the weights validation chose (the
    best validation epoch); ``test`` holds it with its baselines. ``val_acc`` is
    the validation accuracy that made the choice; ``selection`` lists every
    candidate configuration tried and its validation accuracy.

    ``seconds`` is the run's own wall-clock time; ``setup_seconds`` is its share
    of a one-off cost paid outside it (a learning curve computes the pool's
    activations once for many runs), so ``seconds + setup_seconds`` is what the
    run cost. ``model`` is the trained model, or None where it was not kept (a
    learning curve keeps only the numbers of its many runs). ``num_train`` is
    the number of training images; None when not known (hand-built results).
    """

    strategy: str
    task_name: str
    n_per_class: int | None
    n_frozen: int
    trainable_params: int
    history: History
    test_acc: float
    seconds: float
    used_cache: bool = False
    model: GroupedModel | None = field(default=None, repr=False)
    test: Metrics | None = None
    val_acc: float | None = None
    best_epoch: int | None = None
    lr: float | None = None
    seed: int = 0
    arch: str = ""
    selection: list = field(default_factory=list)
    num_train: int | None = None
    setup_seconds: float = 0.0

    @property
    def single_class(self) -> bool:
        """True when the model answers the same class for every test image (a constant, not a classifier)."""
        return bool(self.test is not None and self.test.single_class)

    def row(self) -> dict:
        """A plain, JSON-friendly summary (one row of the results tables), baselines included."""
        t = self.test
        return {"strategy": self.strategy, "model": self.arch, "task": self.task_name,
                "n_per_class": size_label(self.n_per_class), "seed": self.seed, "num_train": self.num_train,
                "n_frozen": self.n_frozen, "trainable_params": self.trainable_params, "lr": self.lr,
                "epochs": len(self.history), "best_epoch": self.best_epoch,
                "val_acc": None if self.val_acc is None else round(self.val_acc, 4),
                "test_acc": round(self.test_acc, 4),
                "balanced_acc": None if t is None else round(t.balanced_accuracy, 4),
                "chance": None if t is None else round(t.chance, 4),
                "majority": None if t is None else round(t.majority, 4),
                "one_class": self.single_class,
                "seconds": round(self.seconds, 2), "setup_seconds": round(self.setup_seconds, 2),
                "stopped": self.history.stopped}

    def __repr__(self):
        val = "" if self.val_acc is None else f"val_acc={self.val_acc:.3f} (epoch {self.best_epoch}), "
        bal = "" if self.test is None else (f", balanced={self.test.balanced_accuracy:.3f}, chance="
                                            f"{self.test.chance:.3f}, majority={self.test.majority:.3f}")
        flag = ", PREDICTS ONE CLASS" if self.single_class else ""
        return (f"RunResult({self.strategy} on {self.task_name!r}, {size_label(self.n_per_class)}/class: {val}"
                f"test_acc={self.test_acc:.3f}{bal}{flag}, {len(self.history)} epochs, {self.seconds:.1f} s"
                f"{', cached activations' if self.used_cache else ''})")


def digit_cut_model(num_classes: int, classes: Sequence[str] | None = None, *, pretrained: bool = True,
                    cut: str = DIGIT_FE_CUT) -> GroupedModel:
    """The digit model up to ``cut`` (pretrained on 0-4, or random) with a new linear head on its output.

    With the default cut ("conv2") this is the course's one definition of the
    digit transfer model: groups ``conv1``, ``conv2``, ``head`` (Flatten +
    Linear(1568, num_classes)). ``cut="features"`` keeps the 128-unit dense
    layer too (the cut lesson 2 rejects), for comparisons that label it.
    """
    source = load_digit_model() if pretrained else digit_cnn(5)
    names = source.group_names
    if cut not in names[:-1]:
        raise ValueError(f"cut must name a group of the digit model before its head {names[:-1]}, got {cut!r}")
    kept = source[:names.index(cut) + 1]
    with torch.no_grad():
        width = kept(torch.zeros(1, 1, 28, 28)).flatten(1).shape[1]
    groups = [*kept.groups.items(), ("head", nn.Sequential(nn.Flatten(), nn.Linear(width, num_classes)))]
    tag = "" if pretrained else ", random init"
    return GroupedModel(groups, name=f"digit_cnn@{cut}{tag}",
                        classes=list(classes) if classes is not None else [str(i) for i in range(num_classes)],
                        mean=source.mean, std=source.std, image_size=28).eval()


def build_model(strategy: str, task: Task, *, backbone: str = "efficientnet_lite0",
                scratch_arch: str = "small") -> GroupedModel:
    """The model a strategy starts from, with a fresh head sized for ``task``.

    Transfer strategies start from pretrained weights (for digit tasks the
    digits-0-4 CNN cut after ``conv2``, :func:`digit_cut_model`; for photos
    ``backbone``). "scratch" starts from random weights: ``scratch_arch="same"``
    is the transferred model's own architecture, untrained (the fair
    comparison); ``"small"`` is a small CNN (photos: :func:`small_cnn`, which
    trains in seconds on a CPU; digits: the full 4-group digit CNN).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if strategy == "scratch" and scratch_arch not in ("small", "same"):
        raise ValueError(f"scratch_arch must be 'small' or 'same', got {scratch_arch!r}")
    if task.kind == "digits":
        if strategy == "scratch" and scratch_arch == "small":
            return digit_cnn(task.num_classes, task.classes)
        return digit_cut_model(task.num_classes, task.classes, pretrained=strategy != "scratch")
    if strategy == "scratch":
        if scratch_arch == "small":
            return small_cnn(task.num_classes, image_size=task.input_size[-1], classes=task.classes)
        model = build_backbone(backbone, pretrained=False)
    else:
        model = build_backbone(backbone, pretrained=True)
        check_normalization(task, model)
    return replace_head(model, task.num_classes, task.classes)


def check_normalization(task: Task, model: GroupedModel) -> None:
    """Refuse a photo task normalised for another backbone: it trains, silently a few points worse."""
    norm = task.normalization
    if norm is None or model.mean is None or model.std is None:
        return
    want = (tuple(float(m) for m in model.mean), tuple(float(v) for v in model.std))
    if any(abs(a - b) > 1e-6 for got, exp in zip(norm, want) for a, b in zip(got, exp)):
        raise ValueError(f"{task.name!r} is normalised with mean/std {norm[0]}/{norm[1]}, but {model.name} was "
                         f"trained on mean/std {want[0]}/{want[1]}: build the task for it, e.g. "
                         f"pets_task(..., backbone={model.name!r})")


def default_fine_tune_frozen(model: GroupedModel) -> int:
    """Fine-tuning default: keep roughly the first two thirds of the groups frozen."""
    return max(1, (2 * max_frozen(model)) // 3)


class BestOnValidation(Observer):
    """Remembers the weights of the epoch with the best validation accuracy, to restore after training.

    Why: the number of epochs is a choice, so it is made on validation (never
    on test). ``start`` seeds it with an already-trained state (e.g. the head
    trained alone before fine-tuning), so more training is kept only if it
    improves on that.
    """

    def __init__(self, model: nn.Module, monitor: str = "val_acc", start: float | None = None):
        self.model, self.monitor = model, monitor
        self.best = start
        self.best_epoch = 0 if start is not None else None
        self.state = copy.deepcopy(model.state_dict()) if start is not None else None

    def on_epoch_end(self, logs):
        value = logs.get(self.monitor)
        if value is not None and (self.best is None or value > self.best):
            self.best, self.best_epoch = value, logs["epoch"] + 1
            self.state = copy.deepcopy(self.model.state_dict())

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)

    def __repr__(self):
        return f"BestOnValidation({self.monitor}: best {self.best} at epoch {self.best_epoch})"


def metrics_on(model: nn.Module, loader, num_classes: int, *, device=None) -> Metrics:
    """Accuracy with its baselines (chance, majority, balanced accuracy) of ``model`` on a labelled loader."""
    probs, labels = predict_proba(model, loader, device=device)
    if labels is None:
        raise ValueError("metrics_on needs a loader of labelled batches (inputs, labels); got one without labels")
    return classification_metrics(labels, probs.argmax(1), num_classes)


def _loaders(model, task, k, batch_size, augment, cache, dev, progress):
    """(module to train, train_loader, val_loader, test_loader, used_cache) for a freeze boundary ``k``."""
    if cache and k > 0 and not augment:
        feats = cached_features(model, task, k, device=dev, progress=progress)
        return (model[k:], *feats.loaders(batch_size), True)
    return (model, *task.loaders(batch_size, augment=augment), False)


def _head_stage(model, task, k, top, batch_size, cache, dev, progress):
    """(head, train_loader, val_loader) of the features at ``top`` for the head-first stage; test is not touched.

    With a cache, the features at ``top`` are derived from the activations cached at ``k`` (which stage 2
    reuses); without one they are computed from the train and val images only.
    """
    if cache and k > 0:
        feats = cached_features(model, task, k, device=dev, progress=progress)
        train, val = (None if d is None else propagate(model, d, k, top, dev) for d in (feats.train, feats.val))
    else:
        train = extract_features(model, task.train, top, device=dev, progress=progress)
        val = None if task.val is None else extract_features(model, task.val, top, device=dev, progress=progress)
    return (model[top:], DataLoader(train, batch_size=batch_size, shuffle=True),
            None if val is None else DataLoader(val, batch_size=256))



def _candidates(value, name):
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name} is an empty list: give one value or a list of candidates to choose from")
        return list(value)
    return [value]


def run_strategy(strategy: str, task: Task, *, n_frozen: int | Sequence[int] | None = None, num_epochs: int = 10,
                 lr: float | Sequence[float] | None = None, lr_decay: float | None = None,
                 head_epochs: int | None = None, batch_size: int = 32, augment: bool = False,
                 backbone: str = "efficientnet_lite0", scratch_arch: str = "small", cache: bool = True,
                 device="auto", seed: int = 0, observers=(), stop: StopFlag | None = None,
                 progress: bool = True, model: GroupedModel | None = None) -> RunResult:
    """Train ``task`` with one strategy, choose on its validation split, measure its test split once.

    ``n_frozen`` is how many layer groups stay frozen: forced to 0 for
    "scratch" and to all-but-the-head for "feature_extraction"; for
    "fine_tune" it defaults to :func:`default_fine_tune_frozen`. ``n_frozen``
    and ``lr`` may be lists: every combination is trained and the one with the
    best validation accuracy is kept (``RunResult.selection`` lists them all).
    The epoch kept is the best one on validation.

    Fine-tuning trains the head alone first (``head_epochs``, default
    ``num_epochs``, at the feature-extraction rate), then unfreezes down to
    ``n_frozen`` with ``lr`` for the head and ``lr * lr_decay**d`` for the
    group ``d`` steps below it (default decay :data:`DEFAULT_LR_DECAY`).
    When the frozen part's output is fixed (``augment=False``) training runs
    on activations cached at the freeze boundary.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    ks, lrs = _candidates(n_frozen, "n_frozen"), _candidates(lr, "lr")
    if len(ks) * len(lrs) == 1:
        return _run_one(strategy, task, ks[0], lrs[0], num_epochs=num_epochs, lr_decay=lr_decay,
                        head_epochs=head_epochs, batch_size=batch_size, augment=augment, backbone=backbone,
                        scratch_arch=scratch_arch, cache=cache, device=device, seed=seed, observers=observers,
                        stop=stop, progress=progress, model=model)
    if task.val is None:
        raise ValueError(f"choosing among n_frozen={ks} / lr={lrs} needs a validation split, and task "
                         f"{task.name!r} has none (val=None); build it with a task builder, which carves one")
    best: RunResult | None = None
    tried = []
    for k, rate in itertools.product(ks, lrs):
        r = _run_one(strategy, task, k, rate, num_epochs=num_epochs, lr_decay=lr_decay, head_epochs=head_epochs,
                     batch_size=batch_size, augment=augment, backbone=backbone, scratch_arch=scratch_arch,
                     cache=cache, device=device, seed=seed, observers=observers, stop=stop, progress=progress,
                     model=None if model is None else copy.deepcopy(model), measure_test=False)
        val_acc = -1.0 if r.val_acc is None else r.val_acc   # never None here: the task has a validation split
        tried.append({"n_frozen": r.n_frozen, "lr": r.lr, "val_acc": round(val_acc, 4),
                      "best_epoch": r.best_epoch})
        if best is None or val_acc > (best.val_acc or -1.0):
            best = r
    assert best is not None   # ks and lrs are non-empty (_candidates)
    dev = select_device(device)
    _finish_test(best, task, batch_size, dev)
    best.selection = tried
    return best


def _finish_test(result: RunResult, task: Task, batch_size: int, dev) -> None:
    """Measure the chosen model on the test split: once."""
    assert result.model is not None   # _run_one keeps the model it trained
    test_loader = task.loaders(batch_size)[2]
    result.test = metrics_on(result.model, test_loader, task.num_classes, device=dev)
    result.test_acc = result.test.accuracy
    result.model.eval()


def _run_one(strategy, task, n_frozen, lr, *, num_epochs, lr_decay, head_epochs, batch_size, augment, backbone,
             scratch_arch, cache, device, seed, observers, stop, progress, model, measure_test=True) -> RunResult:
    seed_everything(seed)
    dev = select_device(device)
    model = model if model is not None else build_model(strategy, task, backbone=backbone, scratch_arch=scratch_arch)
    top = max_frozen(model)
    if strategy == "scratch":
        k = 0
    elif strategy == "feature_extraction":
        k = top
    else:
        k = default_fine_tune_frozen(model) if n_frozen is None else n_frozen
        if k == top:
            raise ValueError(f"fine_tune with n_frozen={k} would train only the head; "
                             "that is feature_extraction, or choose a smaller n_frozen")
    lr = DEFAULT_LR[strategy] if lr is None else lr
    decay = DEFAULT_LR_DECAY[strategy] if lr_decay is None else lr_decay
    t0 = time.perf_counter()
    start_val = None
    if strategy == "fine_tune":
        freeze(model, k)       # checks k's range before any training
        h_epochs = num_epochs if head_epochs is None else head_epochs
        if h_epochs > 0:       # stage 1: the new head learns alone on the frozen backbone
            freeze(model, top)
            head, tr, va = _head_stage(model, task, k, top, batch_size, cache and not augment, dev, progress)
            head_keep = BestOnValidation(head)
            fit(head, tr, va, num_epochs=h_epochs, lr=DEFAULT_LR["feature_extraction"], device=dev, seed=seed,
                progress=progress, observers=[head_keep], stop=stop)
            head_keep.restore()
            if va is not None:
                start_val = evaluate(head, va, device=dev)["acc"]
    report = freeze(model, k)
    trained, train_loader, val_loader, test_loader, use_cache = _loaders(model, task, k, batch_size, augment, cache,
                                                                          dev, progress)
    keep = BestOnValidation(trained, start=start_val) if val_loader is not None else None
    history = fit(trained, train_loader, val_loader, num_epochs=num_epochs, lr=lr, lr_decay=decay,
                  observers=[*([keep] if keep else []), *observers], stop=stop, device=dev, seed=seed,
                  progress=progress)
    if keep is not None:
        keep.restore()
    val_acc = None if keep is None else keep.best
    best_epoch = len(history) if keep is None else keep.best_epoch
    seconds = time.perf_counter() - t0
    model.eval()
    result = RunResult(strategy, task.name, task.n_per_class, k, report.trainable, history, float("nan"), seconds,
                       use_cache, model, val_acc=val_acc, best_epoch=best_epoch, lr=lr, seed=seed, arch=model.name,
                       num_train=len(cast(Sized, task.train)))
    if measure_test:
        test = metrics_on(trained, test_loader, task.num_classes, device=dev)
        result.test, result.test_acc = test, test.accuracy
    return result
