"""The measurement protocol, in one place: train, keep the best validation epoch, choose on validation, test once.

Every run in the course (``run_strategy``, learning curves, Yosinski's sweep,
probes, the text models, the dashboard) goes through this module, so a change
to the rule is made here and nowhere else:

- :class:`Recipe` is the whole configuration of a run (strategy, freeze
  boundary, learning-rate candidates, epoch budget, batch size, ``min_steps``,
  seed). Its optimiser-step budget, :meth:`Recipe.steps`, is a function of the
  recipe and the number of training images only, and it is **the same for
  every strategy**: a fine-tune's head stage is paid out of ``num_epochs``, not
  added to it. That is what makes comparisons fair by construction.
- :class:`KeepBest` is the one keep-best observer. Epoch convention: epochs are
  counted **from 1 over the whole run** (a fine-tune's head epochs first, then
  its unfrozen epochs); ``best_epoch`` is how many epochs of training the kept
  weights saw. A tie keeps the earlier epoch (fewer epochs, the simpler model).
- :func:`choose` is the one choice among candidates: the highest validation
  accuracy; a tie goes to the candidate listed first.
- :func:`test_once` reads the test split once, for the chosen model.
- :class:`RunResult` is the one result type; it carries its :class:`Recipe`,
  the optimiser steps it took, its wall-clock, its best epoch and, for
  fine-tuning, its best *unfrozen* epoch and whether it ``fell_back`` to the
  head-only model.

Strategies. "scratch" trains everything from random weights; "feature_extraction"
trains a new head on a frozen backbone; "fine_tune" trains the head alone first
(``head_epochs`` of the budget, at :data:`HEAD_LR`), then unfreezes down to
``n_frozen`` with discriminative rates, and keeps its best *unfrozen* epoch: a
fine-tune row is always a fine-tuned model. "choose" trains exactly as
"fine_tune" but keeps the head-only model when it was better on validation
(``fell_back=True``): the choice between feature extraction and fine-tuning,
made on validation, named as what it is.

Core module: no ipywidgets, no matplotlib.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from torch import nn
from torch.utils.data import DataLoader

from .data import size_label
from .freezing import freeze, max_frozen
from .infra import derive_seed
from .metrics import Metrics, classification_metrics
from .training import History, Observer, Optimiser, StopFlag, evaluate, fit, predict_proba
from .validate import ArgumentTypeError, check_bool, check_candidates, check_float, check_int, check_lr, describe

__all__ = ["STRATEGIES", "DEFAULT_LR", "DEFAULT_LR_DECAY", "HEAD_LR", "Recipe", "check_recipe_fields", "RunResult",
           "KeepBest", "Stage", "Kept", "fit_and_keep", "choose", "kept_val_loss", "test_once", "metrics_on",
           "freeze_boundary", "default_fine_tune_frozen", "check_equal_budgets", "epochs_for", "derive_seed",
           "train_datasets"]

STRATEGIES = ("scratch", "feature_extraction", "fine_tune", "choose")
DEFAULT_LR = {"scratch": 1e-3, "feature_extraction": 3e-3, "fine_tune": 1e-3, "choose": 1e-3}
#: fine-tuning: each pretrained group one step further from the head learns this much more slowly
DEFAULT_LR_DECAY = {"scratch": 1.0, "feature_extraction": 1.0, "fine_tune": 0.5, "choose": 0.5}
#: the rate of a fine-tune's head stage (the new head alone on the frozen backbone): feature extraction's
HEAD_LR = DEFAULT_LR["feature_extraction"]
_TWO_STAGE = ("fine_tune", "choose")


def epochs_for(num_train: int, batch_size: int, num_epochs: int, min_steps: int = 0) -> int:
    """``num_epochs``, raised so that training takes at least ``min_steps`` optimiser steps.

    With 5 images per class an epoch is a single batch: a fixed epoch count
    would give small training sets far fewer updates than large ones and make
    them look worse than they are. A floor on the number of steps is fairer.
    """
    batches = max(1, math.ceil(num_train / batch_size))
    return max(int(num_epochs), math.ceil(min_steps / batches))


def check_recipe_fields(fields: Mapping[str, Any], *, label: str = "") -> dict:
    """The given recipe fields checked and converted to plain Python values: the one argument check of every run.

    Why here: every run (``run_strategy``, ``learning_curve``, the sweeps, the
    dashboard) builds a :class:`Recipe`, and :meth:`Recipe.__post_init__` calls
    this, so a bad value (a NaN rate, a bad *last* candidate, a negative seed) is
    refused before any training instead of after the first candidates or a
    head stage have run, and NumPy numbers (``np.int64`` seeds, ``np.float32``
    rates) are stored as ``int`` / ``float``, so rows and logs stay JSON.
    ``lr`` and ``n_frozen`` come back as tuples of candidates (``n_frozen``
    None stays None; each candidate must be an integer here, and its range,
    negative values included, is checked against the model by
    :func:`freeze_boundary`, whose message states the model's range).
    ``label`` is added to every name the messages use (``" for 'scratch'"``:
    a per-strategy value of a comparison).
    Fields not given are not checked; unknown ones are refused by name.
    """
    unknown = sorted(set(fields) - set(_CHECKS))
    if unknown:
        raise ValueError(f"unknown recipe field(s) {unknown}; allowed: {list(_CHECKS)}")
    return {name: _CHECKS[name](f"{name}{label}", value) for name, value in fields.items()}


def _lr(name: str, value: Any) -> tuple[float, ...] | None:
    return None if value is None else tuple(check_candidates(name, value, lambda r: check_lr(r, name)))


def _n_frozen(name: str, value: Any) -> tuple[int, ...] | None:
    return None if value is None else tuple(check_candidates(name, value, lambda k: check_int(name, k)))


def _strategy(name: str, value: Any) -> str:
    if not isinstance(value, str) or value not in STRATEGIES:
        raise ValueError(f"unknown strategy {value!r}; choose one of {STRATEGIES}")
    return value


def _scratch_arch(name: str, value: Any) -> str:
    if value not in ("small", "same"):
        raise ValueError(f"Recipe: {name} must be 'small' or 'same', got {value!r}")
    return value


def _backbone(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a backbone name (str), got {describe(value)}")
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "strategy": _strategy,
    "n_frozen": _n_frozen,
    "lr": _lr,
    "lr_decay": lambda n, v: None if v is None else check_float(n, v, min=0, max=1, min_open=True),
    "head_epochs": lambda n, v: None if v is None else check_int(n, v, min=0),
    "num_epochs": lambda n, v: check_int(n, v, min=1),
    "batch_size": lambda n, v: check_int(n, v, min=1),
    "min_steps": lambda n, v: check_int(n, v, min=0),
    "seed": lambda n, v: check_int(n, v, min=0, max=2**63 - 1),
    "augment": check_bool,
    "backbone": _backbone,
    "scratch_arch": _scratch_arch,
}


@dataclass(frozen=True)
class Recipe:
    """How one run trains: everything but the data. Frozen: a run's recipe cannot drift after it ran.

    ``lr`` and ``n_frozen`` may hold several candidates (chosen on validation,
    see :meth:`candidates`); ``lr=None`` means the strategy's
    :data:`DEFAULT_LR`, ``n_frozen=None`` the strategy's rule
    (:func:`freeze_boundary`). ``num_epochs`` is the epoch budget of **every**
    strategy; a fine-tune spends ``head_epochs`` of it (None: half) on the head
    alone. ``min_steps`` raises the epochs of small training sets
    (:func:`epochs_for`). The :class:`RunResult` of a run carries the
    *resolved* recipe: one ``n_frozen``, one ``lr``.
    """

    strategy: str = "feature_extraction"
    n_frozen: int | tuple[int, ...] | None = None
    lr: float | tuple[float, ...] | None = None
    lr_decay: float | None = None
    head_epochs: int | None = None
    num_epochs: int = 10
    batch_size: int = 32
    min_steps: int = 0
    seed: int = 0
    augment: bool = False
    backbone: str = "efficientnet_lite0"
    scratch_arch: str = "small"

    def __post_init__(self):
        # every field checked and stored as plain Python values, before any run can start (one home: see
        # check_recipe_fields); a frozen dataclass is filled in with object.__setattr__
        for name, value in check_recipe_fields({k: getattr(self, k) for k in self.__dataclass_fields__}).items():
            object.__setattr__(self, name, value)
        if self.lr is None:
            object.__setattr__(self, "lr", (DEFAULT_LR[self.strategy],))
        ks = cast("tuple[int, ...] | None", self.n_frozen)
        object.__setattr__(self, "n_frozen", None if ks is None else ks[0] if len(ks) == 1 else ks)
        if self.head_epochs is not None and not 0 <= self.head_epochs < self.num_epochs:
            raise ValueError(f"Recipe: head_epochs must be in 0..num_epochs-1 = 0..{self.num_epochs - 1} (the head "
                             f"stage is paid out of the num_epochs budget), got {self.head_epochs!r}")
        if self.strategy in _TWO_STAGE and self.num_epochs < 2 and self.head_epochs is None:
            object.__setattr__(self, "head_epochs", 0)

    @property
    def lrs(self) -> tuple[float, ...]:
        """The learning-rate candidates, always a tuple (``lr`` after ``__post_init__``)."""
        return cast(tuple, self.lr)

    @property
    def decay(self) -> float:
        """The discriminative learning-rate decay this recipe trains with (the strategy's default when None)."""
        return DEFAULT_LR_DECAY[self.strategy] if self.lr_decay is None else float(self.lr_decay)

    def candidates(self) -> list[Recipe]:
        """One recipe per (n_frozen, lr) combination, n_frozen-major, in the order given (ties: first wins)."""
        lrs = self.lr if isinstance(self.lr, tuple) else (self.lr,)
        ks = self.n_frozen if isinstance(self.n_frozen, tuple) else (self.n_frozen,)
        return [replace(self, n_frozen=k, lr=r) for k in ks for r in lrs]

    def epochs(self, num_train: int) -> int:
        """Total epochs of a run on ``num_train`` images (``num_epochs`` raised to reach ``min_steps``)."""
        return epochs_for(num_train, self.batch_size, self.num_epochs, self.min_steps)

    def stages(self, num_train: int) -> tuple[int, int]:
        """(head epochs, main epochs): how the epoch budget splits; (0, total) for one-stage strategies.

        When ``min_steps`` raises the total, the head's share grows in proportion.
        """
        total = self.epochs(num_train)
        if self.strategy not in _TWO_STAGE:
            return 0, total
        base = self.num_epochs // 2 if self.head_epochs is None else self.head_epochs
        head = min(total - 1, round(base * total / self.num_epochs))
        return head, total - head

    def steps(self, num_train: int) -> int:
        """The optimiser-step budget on ``num_train`` training images (head stage included)."""
        return self.epochs(num_train) * max(1, math.ceil(num_train / self.batch_size))

    def as_dict(self) -> dict:
        """Plain, JSON-friendly data (the run log stores this); :meth:`from_dict` reads it back."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        """The inverse of :meth:`as_dict`; unknown keys are refused by name."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"Recipe.from_dict: unknown keys {unknown}; allowed: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)


def default_fine_tune_frozen(model) -> int:
    """Fine-tuning default: keep roughly the first two thirds of the groups frozen."""
    return max(1, (2 * max_frozen(model)) // 3)


def freeze_boundary(strategy: str, model, n_frozen: int | tuple[int, ...] | None = None) -> int:
    """The strategy -> freeze boundary rule (the one home): how many layer groups stay frozen.

    "scratch": 0; "feature_extraction": all but the head; "fine_tune" / "choose":
    ``n_frozen`` (default :func:`default_fine_tune_frozen`), which must leave
    more than the head to train.
    """
    top = max_frozen(model)
    if strategy == "scratch":
        return 0
    if strategy == "feature_extraction":
        return top
    if strategy not in _TWO_STAGE:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if isinstance(n_frozen, tuple):
        raise ValueError(f"freeze_boundary needs one n_frozen, got the candidates {n_frozen}: "
                         "use Recipe.candidates() to try each")
    k = default_fine_tune_frozen(model) if n_frozen is None else int(n_frozen)
    if k == top:
        raise ValueError(f"{strategy} with n_frozen={k} would train only the head; that is feature_extraction, "
                         f"or choose a smaller n_frozen (0..{top - 1})")
    if not 0 <= k < top:
        freeze(model, k)    # out of range: freeze() names the model's groups and the allowed range
    return k


class KeepBest(Observer):
    """Remembers the weights of the best validation epoch, to restore after training: the one keep-best rule.

    Why: the number of epochs is a choice, so it is made on validation, never on
    test. Epochs are counted from 1 over the whole run: ``offset`` is the number
    of epochs trained before this stage (a fine-tune's head epochs). ``start``
    (value, epoch) seeds it with the state the model holds now, so later epochs
    replace it only by doing strictly better (a tie keeps the earlier, simpler
    state). ``own_best`` / ``own_epoch`` / ``own_state`` are the best of this stage alone,
    whatever ``start`` was: a fine-tune's best *unfrozen* epoch, so one "choose" run also
    yields what the fine-tune rule would have kept (without ``start`` they are the best).
    """

    def __init__(self, model: nn.Module, *, offset: int = 0, start: tuple[float, int] | None = None,
                 monitor: str = "val_acc"):
        self.model, self.offset, self.monitor = model, int(offset), monitor
        self.best: float | None = None if start is None else start[0]
        self.best_epoch: int | None = None if start is None else start[1]
        self.state = copy.deepcopy(model.state_dict()) if start is not None else None
        self.own_best: float | None = None
        self.own_epoch: int | None = None
        self.own_state: dict | None = None

    def on_epoch_end(self, logs):
        value = logs.get(self.monitor)
        if value is None:
            return
        epoch = self.offset + logs["epoch"] + 1
        own = self.own_best is None or value > self.own_best
        if own:
            self.own_best, self.own_epoch = value, epoch
        if self.best is None or value > self.best:
            self.best, self.best_epoch = value, epoch
            self.state = copy.deepcopy(self.model.state_dict())
        if own:
            self.own_state = self.state if self.best_epoch == epoch else copy.deepcopy(self.model.state_dict())

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)

    def __repr__(self):
        return f"KeepBest({self.monitor}: best {self.best} at epoch {self.best_epoch})"


@dataclass
class Stage:
    """One stage of a run: which module trains, on which loaders, at which rate, for how many epochs."""

    module: nn.Module
    train: DataLoader
    val: DataLoader | None
    epochs: int
    lr: float
    lr_decay: float = 1.0
    weight_decay: float = 0.0


@dataclass
class Kept:
    """What :func:`fit_and_keep` kept: the run's history (stages concatenated) and the chosen epoch.

    With ``fall_back``, also the best *unfrozen* epoch's validation accuracy and weights
    (``unfrozen_val_acc``, ``unfrozen_state``): what the fine-tune rule keeps from the same training.
    """

    history: History
    val_acc: float | None
    best_epoch: int
    best_unfrozen_epoch: int | None
    fell_back: bool
    steps: int
    seconds: float
    unfrozen_val_acc: float | None = None
    unfrozen_state: dict | None = field(default=None, repr=False)


def _join(head: History | None, main: History) -> History:
    """One history for the whole run: epochs renumbered from 0 across stages, each tagged with its stage."""
    if head is None:
        return main
    epochs = [{**e, "stage": "head"} for e in head.epochs]
    epochs += [{**e, "epoch": e["epoch"] + len(head), "stage": "unfrozen"} for e in main.epochs]
    batches = list(head.batches) + [{**b, "epoch": b["epoch"] + len(head)} for b in main.batches]
    return History(epochs, batches, head.stopped or main.stopped, head.stop_reason or main.stop_reason,
                   head.seconds + main.seconds)


def fit_and_keep(main: Stage, *, head: Stage | None = None, fall_back: bool = False, track: bool = True,
                 seed: int = 0, device="cpu", observers: Sequence = (), stop: StopFlag | None = None,
                 progress: bool = False) -> Kept:
    """Train (the head stage first, when given), keep the best validation epoch; the test split is not touched.

    ``fall_back``: the head-only model may win (the "choose" strategy); without
    it the main stage's best epoch is kept. ``track=False`` skips per-epoch
    validation: the last epoch is kept and validation is read once at the end.
    ``stop`` ends either stage (a stop in the head stage skips the main stage);
    ``observers`` watch the main stage only (a chart of the unfrozen epochs);
    the head stage's epochs are in the returned history.
    """
    if fall_back and not track:
        raise ValueError("fit_and_keep: fall_back=True needs track=True (the head-only state must be kept to "
                         "restore it); got track=False")
    t0 = time.perf_counter()
    stop = stop if stop is not None else StopFlag()
    head_hist, offset = None, 0
    start: tuple[float, int] | None = None
    if head is not None and head.epochs > 0:
        keep_h = KeepBest(head.module) if track and head.val is not None else None
        head_hist = fit(head.module, head.train, head.val if keep_h else None, num_epochs=head.epochs, lr=head.lr,
                        lr_decay=head.lr_decay, optimizer=Optimiser("adam", head.weight_decay), device=device,
                        seed=derive_seed(seed, "order", "head"), progress=progress,
                        observers=[*([keep_h] if keep_h else []), stop])
        offset = len(head_hist)
        if keep_h is not None and keep_h.best is not None:
            keep_h.restore()
            start = (keep_h.best, keep_h.best_epoch or offset)
        elif head.val is not None:
            start = (evaluate(head.module, head.val, device=device)["acc"], offset)
    if stop.is_set():
        hist = head_hist if head_hist is not None else History()
        return Kept(hist, None if start is None else start[0], offset, None, True,
                    len(hist.batches), time.perf_counter() - t0)
    keep = KeepBest(main.module, offset=offset, start=start if fall_back else None) \
        if track and main.val is not None else None
    main_hist = fit(main.module, main.train, main.val if keep else None, num_epochs=main.epochs, lr=main.lr,
                    lr_decay=main.lr_decay, optimizer=Optimiser("adam", main.weight_decay), device=device,
                    seed=derive_seed(seed, "order", "main"), progress=progress,
                    observers=[*([keep] if keep else []), *observers, stop])
    history = _join(head_hist, main_hist)
    if keep is not None:
        keep.restore()
        val_acc, best_epoch, own = keep.best, keep.best_epoch, keep.own_epoch
    else:
        last = evaluate(main.module, main.val, device=device)["acc"] if main.val is not None else None
        val_acc, best_epoch, own = last, len(history), len(history)
    fell_back = head_hist is not None and best_epoch is not None and best_epoch <= offset
    kept = Kept(history, val_acc, best_epoch if best_epoch is not None else len(history),
                own if head_hist is not None else None, fell_back, len(history.batches), time.perf_counter() - t0)
    if fall_back and keep is not None and keep.own_state is not None:
        kept.unfrozen_val_acc, kept.unfrozen_state = keep.own_best, keep.own_state
    return kept


@dataclass
class RunResult:
    """One training run: its recipe, what validation chose, how it does on the test split, and what it cost.

    The one result type of the course (image strategies, learning curves, the
    layer sweeps, the text models). ``recipe`` is the resolved recipe of the kept
    run; ``name`` is what tables call it (default: the strategy). ``test`` is
    measured once (:func:`test_once`) on the weights validation chose;
    ``best_epoch`` follows :class:`KeepBest`'s convention (from 1, over the whole
    run). ``steps`` is the optimiser steps the kept run took. For "fine_tune" /
    "choose", ``best_unfrozen_epoch`` is the best epoch after unfreezing and
    ``fell_back`` is True when the head-only model was kept. ``selection`` lists
    every candidate tried with its validation accuracy. ``seconds`` is the run's
    wall-clock; ``setup_seconds`` its share of a one-off cost paid outside it
    (cached activations). ``model`` is None where only numbers are kept.
    A "choose" run also carries ``fine_tuned``: the same training kept by the fine-tune rule (its best
    unfrozen epoch, learning rate chosen by that rule, tested once) — the fine_tune row of the same
    recipe without training it twice; None for every other strategy.
    """

    recipe: Recipe
    task_name: str
    n_per_class: int | None
    num_train: int | None
    history: History
    test: Metrics | None = None
    val_acc: float | None = None
    best_epoch: int | None = None
    steps: int = 0
    seconds: float = 0.0
    model: Any = field(default=None, repr=False)
    name: str = ""
    trainable_params: int = 0
    arch: str = ""
    used_cache: bool = False
    selection: list = field(default_factory=list)
    setup_seconds: float = 0.0
    best_unfrozen_epoch: int | None = None
    fell_back: bool = False
    fine_tuned: RunResult | None = field(default=None, repr=False)

    def __post_init__(self):
        self.name = self.name or self.recipe.strategy

    @property
    def strategy(self) -> str:
        return self.recipe.strategy

    @property
    def n_frozen(self) -> int:
        return int(self.recipe.n_frozen or 0) if not isinstance(self.recipe.n_frozen, tuple) else -1

    @property
    def lr(self) -> float:
        lrs = self.recipe.lr
        return float(lrs[0]) if isinstance(lrs, tuple) else float(lrs or 0.0)

    @property
    def seed(self) -> int:
        return self.recipe.seed

    @property
    def test_acc(self) -> float:
        return float("nan") if self.test is None else self.test.accuracy

    @property
    def single_class(self) -> bool:
        """True when the model answers the same class for every test image (a constant, not a classifier)."""
        return bool(self.test is not None and self.test.single_class)

    def row(self) -> dict:
        """A plain, JSON-friendly summary (one row of the results tables): baselines, steps and fall-back included."""
        t = self.test
        return {"strategy": self.name, "model": self.arch, "task": self.task_name,
                "n_per_class": size_label(self.n_per_class), "seed": self.seed, "num_train": self.num_train,
                "n_frozen": self.n_frozen, "trainable_params": self.trainable_params, "lr": self.lr,
                "epochs": len(self.history), "steps": self.steps, "best_epoch": self.best_epoch,
                "best_unfrozen_epoch": self.best_unfrozen_epoch, "fell_back": self.fell_back,
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
        back = ", FELL BACK to the head-only model" if self.fell_back else ""
        return (f"RunResult({self.name} on {self.task_name!r}, {size_label(self.n_per_class)}/class: {val}"
                f"test_acc={self.test_acc:.3f}{bal}{flag}{back}, {len(self.history)} epochs, {self.steps} steps, "
                f"{self.seconds:.1f} s{', cached activations' if self.used_cache else ''})")


def kept_val_loss(result: RunResult) -> float:
    """The validation loss of the epoch a run kept (``inf`` when it was not logged: an untracked run)."""
    epochs = result.history.epochs
    e = epochs[result.best_epoch - 1] if result.best_epoch and result.best_epoch <= len(epochs) else {}
    loss = e.get("val_loss")
    return math.inf if loss is None else float(loss)


def choose(results: Sequence[RunResult]) -> RunResult:
    """The candidate with the best validation accuracy: the one choice rule of the package.

    Tie rule: equal validation accuracies (frequent on small validation sets) go
    to the lower validation loss of the kept epoch (:func:`kept_val_loss`), then
    to the candidate listed first. (Measured on the text task: a tie between
    weight decays broken the other way cost 6 test points.) The winner's
    ``selection`` lists every candidate. Choosing among several needs
    validation accuracies.
    """
    if not results:
        raise ValueError("choose() got no candidates: give at least one RunResult")
    if len(results) > 1 and any(r.val_acc is None for r in results):
        raise ValueError("choose() needs every candidate's val_acc (a validation split); some have val_acc=None")
    best = results[0]
    for r in results[1:]:
        if (r.val_acc, -kept_val_loss(r)) > (best.val_acc, -kept_val_loss(best)):  # strictly better: ties keep first
            best = r
    if len(results) > 1:
        best.selection = [{"strategy": r.name, "n_frozen": r.n_frozen, "lr": r.lr,
                           "val_acc": round(r.val_acc, 4),  # type: ignore[arg-type]
                           "best_epoch": r.best_epoch, "steps": r.steps, "fell_back": r.fell_back}
                          for r in results]
    return best


def metrics_on(model: nn.Module, loader, num_classes: int, *, device=None) -> Metrics:
    """Accuracy with its baselines (chance, majority, balanced accuracy) of ``model`` on a labelled loader."""
    probs, labels = predict_proba(model, loader, device=device)
    if labels is None:
        raise ValueError("metrics_on needs a loader of labelled batches (inputs, labels); got one without labels")
    return classification_metrics(labels, probs.argmax(1), num_classes)


def test_once(result: RunResult, model: nn.Module, loader, num_classes: int, *, device=None) -> RunResult:
    """Measure ``model`` (the chosen run's) on the test split, once: a second reading is refused."""
    if result.test is not None:
        raise ValueError(f"test_once: {result.name!r} was already tested; the test split is read once, for the "
                         "model validation chose")
    result.test = metrics_on(model, loader, num_classes, device=device)
    return result


test_once.__test__ = False  # type: ignore[attr-defined]  # a protocol step, not a pytest test


def check_equal_budgets(results: Sequence[RunResult], *, where: str) -> None:
    """Refuse a comparison whose arms took different optimiser steps on the same number of training images.

    Runs stopped early (the Stop button) are exempt: they record ``stopped``.
    """
    by_size: dict = {}
    for r in results:
        if not r.history.stopped:
            by_size.setdefault((r.num_train, r.seed), set()).add((r.name, r.steps))
    for (n, seed), arms in by_size.items():
        if len({steps for _, steps in arms}) > 1:
            raise ValueError(f"{where}: unequal budgets at {n} training images, seed {seed}: "
                             f"{sorted(arms)} (every arm must take the same optimiser steps)")


def train_datasets(model: nn.Module, splits: tuple, num_classes: int, recipe: Recipe, *, name: str = "",
                   task_name: str = "", weight_decay: float = 0.0, device="cpu") -> RunResult:
    """Train ``model`` on ``splits = (train, val, test)`` datasets with ``recipe``, keep the best validation epoch,
    test once: the protocol for a hand-built model (Yosinski's networks, probes, a specialised top).

    The recipe's strategy only labels the run here: ``model`` is trained as given (freeze it first).
    """
    train, val, test = splits
    num_train = len(train)
    t0 = time.perf_counter()
    kept = fit_and_keep(Stage(model, DataLoader(train, batch_size=recipe.batch_size, shuffle=True),
                              DataLoader(val, batch_size=512), recipe.epochs(num_train),
                              cast(tuple, recipe.lr)[0], recipe.decay, weight_decay),
                        seed=recipe.seed, device=device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    result = RunResult(replace(recipe, lr=cast(tuple, recipe.lr)[0]), task_name, None, num_train, kept.history,
                       val_acc=kept.val_acc, best_epoch=kept.best_epoch, steps=kept.steps,
                       seconds=time.perf_counter() - t0, model=model, name=name, trainable_params=trainable,
                       arch=getattr(model, "name", type(model).__name__))
    test_once(result, model, DataLoader(test, batch_size=512), num_classes, device=device)
    model.eval()
    return result
