"""The three strategies side by side: from scratch, feature extraction, fine-tuning.

``run_strategy("feature_extraction", task)`` builds the right model for the
task (the digits-0-4 CNN for MNIST tasks, an ImageNet backbone for photos),
freezes it, uses cached activations whenever the frozen part cannot change,
trains, and returns a :class:`RunResult`. Lessons 4 and 5 and the dashboard
are all built on this one function.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field


from .data import Task
from .features import cached_features
from .freezing import freeze, max_frozen
from .models import GroupedModel, build_backbone, digit_cnn, load_digit_model, replace_head, small_cnn
from .training import History, StopFlag, evaluate, fit, seed_everything, select_device

__all__ = ["STRATEGIES", "RunResult", "run_strategy", "build_model", "default_fine_tune_frozen", "DEFAULT_LR"]

STRATEGIES = ("scratch", "feature_extraction", "fine_tune")
DEFAULT_LR = {"scratch": 1e-3, "feature_extraction": 3e-3, "fine_tune": 1e-3}


@dataclass
class RunResult:
    """One training run: what was trained, how, and how well it does on the task's test set."""

    strategy: str
    task_name: str
    n_per_class: int | None
    n_frozen: int
    trainable_params: int
    history: History
    test_acc: float
    seconds: float
    used_cache: bool
    model: GroupedModel = field(repr=False)

    def row(self) -> dict:
        """A plain, JSON-friendly summary (one row of the results tables)."""
        return {"strategy": self.strategy, "task": self.task_name,
                "n_per_class": "all" if self.n_per_class is None else self.n_per_class,
                "frozen_groups": self.n_frozen, "trainable_params": self.trainable_params,
                "epochs": len(self.history), "test_acc": round(self.test_acc, 4),
                "seconds": round(self.seconds, 2), "stopped": self.history.stopped}

    def __repr__(self):
        per = "all" if self.n_per_class is None else self.n_per_class
        return (f"RunResult({self.strategy} on {self.task_name!r}, {per}/class: test_acc={self.test_acc:.3f}, "
                f"{len(self.history)} epochs, {self.seconds:.1f} s{', cached activations' if self.used_cache else ''})")


def _is_digit_task(task: Task) -> bool:
    return tuple(task.input_size) == (1, 28, 28)


def build_model(strategy: str, task: Task, *, backbone: str = "efficientnet_lite0",
                scratch_arch: str = "small") -> GroupedModel:
    """The model a strategy starts from, with a fresh head sized for ``task``.

    Transfer strategies start from pretrained weights (the digits-0-4 CNN for
    digit tasks, ``backbone`` for photos). "scratch" starts from random weights:
    the same digit CNN for digits; for photos ``scratch_arch="small"`` (a small
    CNN that trains in seconds on a CPU) or ``"same"`` (the backbone's
    architecture, untrained).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if _is_digit_task(task):
        model = digit_cnn(task.num_classes, task.classes) if strategy == "scratch" else load_digit_model()
    elif strategy == "scratch":
        if scratch_arch == "small":
            return small_cnn(task.num_classes, image_size=task.input_size[-1], classes=task.classes)
        if scratch_arch != "same":
            raise ValueError(f"scratch_arch must be 'small' or 'same', got {scratch_arch!r}")
        model = build_backbone(backbone, pretrained=False)
    else:
        model = build_backbone(backbone, pretrained=True)
        check_normalization(task, model)
    return replace_head(model, task.num_classes, task.classes)


def check_normalization(task: Task, model: GroupedModel) -> None:
    """Refuse a photo task normalised for another backbone: it trains, silently a few points worse."""
    norm = getattr(task.train, "normalization", None)
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


def run_strategy(strategy: str, task: Task, *, n_frozen: int | None = None, num_epochs: int = 10,
                 lr: float | None = None, lr_decay: float = 1.0, batch_size: int = 32, augment: bool = False,
                 backbone: str = "efficientnet_lite0", scratch_arch: str = "small", cache: bool = True,
                 device="auto", seed: int = 0, observers=(), stop: StopFlag | None = None,
                 progress: bool = True, model: GroupedModel | None = None) -> RunResult:
    """Train ``task`` with one strategy and measure it on the task's test set.

    ``n_frozen`` is how many layer groups stay frozen: forced to 0 for
    "scratch" and to all-but-the-head for "feature_extraction"; for
    "fine_tune" it defaults to :func:`default_fine_tune_frozen`. When the
    frozen part's output is fixed (``augment=False``) training runs on
    activations cached at the freeze boundary.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    seed_everything(seed)
    dev = select_device(device)
    model = model if model is not None else build_model(strategy, task, backbone=backbone, scratch_arch=scratch_arch)
    if strategy == "scratch":
        k = 0
    elif strategy == "feature_extraction":
        k = max_frozen(model)
    else:
        k = default_fine_tune_frozen(model) if n_frozen is None else n_frozen
        if k == max_frozen(model):
            raise ValueError(f"fine_tune with n_frozen={k} would train only the head; "
                             "that is feature_extraction, or choose a smaller n_frozen")
    report = freeze(model, k)
    lr = DEFAULT_LR[strategy] if lr is None else lr
    t0 = time.perf_counter()
    use_cache = cache and k > 0 and not augment
    if use_cache:
        feats = cached_features(model, task, k, device=dev, progress=progress)
        train_loader, test_loader = feats.loaders(batch_size)
        trained = model.tail(k)
    else:
        train_loader, test_loader = task.loaders(batch_size, augment=augment)
        trained = model
    history = fit(trained, train_loader, test_loader, num_epochs=num_epochs, lr=lr, lr_decay=lr_decay,
                  observers=observers, stop=stop, device=dev, seed=seed, progress=progress)
    test_acc = evaluate(trained, test_loader, device=dev)["acc"]
    seconds = time.perf_counter() - t0
    model.eval()
    return RunResult(strategy, task.name, task.n_per_class, k, report.trainable, history, test_acc, seconds,
                     use_cache, model)
