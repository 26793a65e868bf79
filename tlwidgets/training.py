"""The training loop and its observers.

``fit`` trains a model and tells its observers what happened through the
four events of :data:`EVENTS`, each carrying a plain dict:

==================  =====================================================================
event               dict keys
==================  =====================================================================
on_train_begin      num_epochs, num_batches (per epoch), start_epoch, metrics, model_name
on_batch_end        epoch, batch, loss, acc (running means over the epoch so far), size,
                    batch_loss, batch_acc (this batch's own values)
on_epoch_end        epoch, loss, acc, val_loss, val_acc (None without a val loader), seconds
on_train_end        epochs_completed, batches_completed, stopped, stop_reason, seconds
==================  =====================================================================

Progress bars, live charts, early stopping and the dashboard are observers;
the loop itself draws nothing. Every observer method is optional; a method
named like an event but misspelt (``on_epoch_ends``) is warned about, because
it would silently never run (fastai's callback lesson). Any observer ends the
run by raising :class:`StopTraining` (or by setting the :class:`StopFlag`
passed to ``fit``); the run stops after the batch or epoch in hand.
"""
from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .infra import atomic_write, select_device, torch_bytes
from .validate import check_float, check_int, check_lr

__all__ = [
    "Observer", "History", "ProgressBar", "EarlyStopping", "StopFlag", "StopTraining", "Events", "check_observer",
    "fit", "evaluate", "predict", "confusion_matrix", "Prediction",
    "layerwise_lr_groups", "EVENTS",
]

EVENTS = ("on_train_begin", "on_batch_end", "on_epoch_end", "on_train_end")
#: What ``predict`` and ``predict_proba`` take: tensors, datasets, loaders, or photos (paths, PIL images, arrays).
Inputs = Any


class Observer:
    """Base class for things that watch training. Override any of the four events."""

    def on_train_begin(self, info: dict) -> None: ...
    def on_batch_end(self, logs: dict) -> None: ...
    def on_epoch_end(self, logs: dict) -> None: ...
    def on_train_end(self, logs: dict) -> None: ...


class StopFlag:
    """A thread-safe "please stop" flag that ``fit`` checks after every batch.

    A Stop button, an early-stopping observer or another thread sets it; the
    loop finishes the batch in hand and returns a consistent history.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str = "stop requested") -> None:
        """Ask the run to stop after the batch in hand; ``reason`` ends up in ``History.stop_reason``."""
        self.reason = reason
        self._event.set()

    def clear(self) -> None:
        self.reason = ""
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def __repr__(self) -> str:
        return f"StopFlag({'set: ' + self.reason if self.is_set() else 'clear'})"


@dataclass
class History(Observer):
    """Everything a run produced: one record per finished epoch, one per finished batch.

    ``history["val_acc"]`` is the list of per-epoch values. After a stop the
    records end at the last finished batch/epoch, never half-way through one.
    """

    epochs: list[dict] = field(default_factory=list)
    batches: list[dict] = field(default_factory=list)
    stopped: bool = False
    stop_reason: str = ""
    seconds: float = 0.0

    def on_batch_end(self, logs: dict) -> None:
        self.batches.append(dict(logs))

    def on_epoch_end(self, logs: dict) -> None:
        self.epochs.append(dict(logs))

    def on_train_end(self, logs: dict) -> None:
        self.stopped, self.stop_reason, self.seconds = logs["stopped"], logs["stop_reason"], logs["seconds"]

    def __getitem__(self, key: str) -> list:
        return [e.get(key) for e in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def last(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    def best(self, key: str = "val_acc") -> float | None:
        """The highest ``key`` over the finished epochs (None if no epoch logged it): for accuracies only,
        since for a loss the best is the lowest."""
        values = [v for v in self[key] if v is not None]
        return max(values) if values else None

    def to_dict(self) -> dict:
        """Plain data (for checkpoints, JSON logs and the dashboard's replay mode)."""
        return {"epochs": [dict(e) for e in self.epochs], "batches": [dict(b) for b in self.batches],
                "stopped": self.stopped, "stop_reason": self.stop_reason, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """The inverse of :meth:`to_dict` (checkpoints, run logs); missing keys take their defaults."""
        return cls([dict(e) for e in d.get("epochs", [])], [dict(b) for b in d.get("batches", [])],
                   d.get("stopped", False), d.get("stop_reason", ""), d.get("seconds", 0.0))

    def __repr__(self) -> str:
        if not self.epochs:
            return "History(no finished epoch)"
        e = self.last
        val = f", val_acc={e['val_acc']:.3f}" if e.get("val_acc") is not None else ""
        stop = f", stopped: {self.stop_reason}" if self.stopped else ""
        return (f"History({len(self.epochs)} epochs, {len(self.batches)} batches, loss={e['loss']:.3f}, "
                f"acc={e['acc']:.3f}{val}, {self.seconds:.1f} s{stop})")


class ProgressBar(Observer):
    """A ``tqdm.auto`` bar over all batches of the run (a text bar headless, a widget in Jupyter)."""

    def __init__(self, desc: str = "training", leave: bool = False, **tqdm_kwargs: Any):
        self.desc, self.leave, self.kwargs = desc, leave, tqdm_kwargs
        self.bar: Any = None  # a tqdm bar once training begins

    def on_train_begin(self, info: dict) -> None:
        from tqdm.auto import tqdm

        total = (info["num_epochs"] - info.get("start_epoch", 0)) * info["num_batches"]
        self.bar = tqdm(total=total, desc=self.desc, leave=self.leave, **self.kwargs)

    def on_batch_end(self, logs: dict) -> None:
        self.bar.update(1)
        if logs["batch"] % 10 == 0:
            self.bar.set_postfix(epoch=logs["epoch"] + 1, loss=f"{logs['loss']:.3f}", refresh=False)

    def on_train_end(self, logs: dict) -> None:
        if self.bar is not None:
            self.bar.close()


class EarlyStopping(Observer):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With a ``stop`` flag it sets the flag (a dashboard's Stop button and it share one); without, it raises
    :class:`StopTraining`, which ``fit`` turns into the same clean stop.

    Args:
        stop: the flag to set when patience runs out; None raises :class:`StopTraining` instead.
        monitor: the epoch-log key to watch (``"val_acc"``, ``"val_loss"``, ...); epochs without it are skipped.
        patience: how many epochs without improvement end the run (at least 1).
        min_delta: how much better than the best so far counts as an improvement.
        mode: ``"max"`` when larger is better (accuracy), ``"min"`` when smaller is (loss).
    """

    def __init__(self, stop: StopFlag | None = None, monitor: str = "val_acc", patience: int = 3,
                 min_delta: float = 0.0, mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if patience < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {patience}")
        self.stop, self.monitor, self.patience, self.min_delta, self.mode = stop, monitor, patience, min_delta, mode
        self.best, self.wait = None, 0

    def on_train_begin(self, info: dict) -> None:
        self.best, self.wait = None, 0

    def on_epoch_end(self, logs: dict) -> None:
        value = logs.get(self.monitor)
        if value is None:
            return
        better = self.best is None or (value > self.best + self.min_delta if self.mode == "max"
                                       else value < self.best - self.min_delta)
        if better:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                reason = f"early stopping: {self.monitor} did not improve for {self.patience} epochs"
                if self.stop is None:
                    raise StopTraining(reason)
                self.stop.set(reason)

    def __repr__(self) -> str:
        return f"EarlyStopping({self.monitor}, patience={self.patience}, best={self.best})"


# ---------------------------------------------------------------------------
# optimiser helpers
# ---------------------------------------------------------------------------
def layerwise_lr_groups(model: nn.Module, lr: float, decay: float = 1.0) -> list[dict]:
    """One optimiser param group per trainable layer group, ``lr * decay**k`` for the group ``k`` below the top.

    With ``decay < 1`` the early, general-purpose groups move more slowly than
    the task-specific top: "discriminative learning rates".
    """
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay <= 1:
        raise ValueError(f"lr_decay must be in (0, 1], got {decay}")
    decay = float(decay)
    grouped: Any = model  # a GroupedModel (tlwidgets.models): named layer groups, bottom to top
    names: list[str] = list(grouped.group_names)
    groups = grouped.groups
    out = []
    for i, n in enumerate(names):
        params = [p for p in groups[n].parameters() if p.requires_grad]
        if params:
            out.append({"params": params, "lr": lr * decay ** (len(names) - 1 - i), "name": n})
    return out


def _check_lr(lr) -> float:
    return check_lr(lr)


def _make_optimizer(model, lr, optimizer, lr_decay, weight_decay):
    groups = layerwise_lr_groups(model, lr, lr_decay) if hasattr(model, "group_names") else \
        [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
    if not groups or not any(g["params"] for g in groups):
        raise ValueError("the model has no trainable parameters: unfreeze at least the head (freeze(model, n) "
                         "with n < model.num_groups)")
    if not isinstance(optimizer, str) or optimizer not in ("adam", "sgd"):
        raise ValueError(f"unknown optimizer {optimizer!r}; choose 'adam' or 'sgd'")
    weight_decay = check_float("weight_decay", weight_decay, min=0)
    if optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}; choose 'adam' or 'sgd'")


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------
class StopTraining(Exception):
    """Raise from any observer event to end the run cleanly: ``raise StopTraining("reached 90 %")``.

    ``fit`` finishes delivering the current event to the other observers,
    then stops exactly as a set :class:`StopFlag` would (after the batch or
    epoch in hand, history consistent, ``stop_reason`` = the message).
    """

    def __init__(self, reason: str = "stopped by an observer"):
        super().__init__(reason)
        self.reason = reason


class Events:
    """The one place events are dispatched: every observer, in order, for each name in :data:`EVENTS`.

    Observers are checked once when the run starts: a public ``on_*`` method
    that is not an event (``on_epoch_ends``, ``on_batch_begin``) would never be
    called, so it is reported with a warning naming the closest event.
    """

    def __init__(self, observers: Sequence[object], stop: StopFlag):
        self.observers, self.stop = list(observers), stop
        for obs in self.observers:
            check_observer(obs)

    def emit(self, event: str, payload: dict) -> None:
        """Call ``event(payload)`` on every observer that has it; a :class:`StopTraining` sets the stop flag."""
        if event not in EVENTS:
            raise ValueError(f"unknown training event {event!r}; the events are {EVENTS}")
        for obs in self.observers:
            fn = getattr(obs, event, None)
            if fn is None:
                continue
            try:
                fn(payload)
            except StopTraining as exc:
                if not self.stop.is_set():
                    self.stop.set(exc.reason)

    def __repr__(self) -> str:
        return f"Events({', '.join(type(o).__name__ for o in self.observers)})"


def check_observer(obs: object) -> None:
    """Warn about public ``on_*`` methods that are not training events (they would never be called)."""
    import difflib

    for name in dir(obs):
        if not name.startswith("on_") or name in EVENTS or not callable(getattr(obs, name, None)):
            continue
        close = difflib.get_close_matches(name, EVENTS, n=1, cutoff=0.75)
        if not close and not any(w in name for w in ("batch", "epoch", "train", "fit", "step")):
            continue  # e.g. a widget's on_msg / on_trait_change: not meant for fit
        hint = f"did you mean {close[0]}?" if close else f"the events are {', '.join(EVENTS)}"
        warnings.warn(f"{type(obs).__name__}.{name} is not a training event and will never be called; {hint}",
                      stacklevel=4)


def _first_layer_input(model: nn.Module) -> str:
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return f"{m.in_channels}-channel images"
        if isinstance(m, nn.Linear):
            return f"vectors of {m.in_features} features"
    return "a different input"


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, with a shape mismatch reported as what was given and what the model takes.

    Torch's own message ("expected input[8, 3, 28, 28] to have 1 channels ...")
    names internals; a student needs to hear that the data does not fit the model.
    """
    try:
        return model(x)
    except RuntimeError as exc:
        msg = str(exc)
        if not any(w in msg for w in ("shape", "size", "channels", "dimension", "D tensor")):
            raise
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(f"{name} cannot take a batch of shape {tuple(x.shape)}: its first layer takes "
                         f"{_first_layer_input(model)} ({(msg.splitlines() or [''])[0][:200]}). Does the data "
                         "match the model (digits: 1x28x28, photos: 3 channels)?") from exc


def check_loader(name: str, loader: object, *, where: str = "fit") -> None:
    """Refuse a Dataset (or a tensor) where a DataLoader is expected, saying how to wrap it."""
    if isinstance(loader, DataLoader):
        return
    if isinstance(loader, Dataset):
        raise TypeError(f"{where}(): {name} is a {type(loader).__name__} (a Dataset: one sample at a time), "
                        f"but batches are expected; wrap it: DataLoader(dataset, batch_size=32"
                        f"{', shuffle=True' if name == 'train_loader' else ''}), or use task.loaders()")
    if isinstance(loader, torch.Tensor) or not hasattr(loader, "__iter__"):
        raise TypeError(f"{where}(): {name} must be a DataLoader yielding (inputs, labels) batches, "
                        f"got {type(loader).__name__}")


def _takes_indices(model: nn.Module | None) -> bool:
    """Whether the model starts with an embedding (integer token ids are then the right input)."""
    if model is None:
        return False
    for m in model.modules():
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
            return True
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear, nn.RNNBase)):
            return False
    return False


def check_inputs(x: object, *, where: str, batch: int | None = None, model: nn.Module | None = None) -> torch.Tensor:
    """An input batch as it enters the package: a non-empty float32 tensor of finite values.

    Catches raw uint8 pixels (0..255, not normalised), float64 arrays,
    empty batches and NaN/inf values where they enter, instead of a dtype
    error from inside a convolution or a plausible-looking accuracy.

    Args:
        x: the batch as given (anything: what is not a tensor is refused with a hint).
        where: the call the batch entered through, for the message (``"fit(): epoch 2"``).
        batch: the batch's index in its loader (shown 1-based), or None for a single batch.
        model: the model it is for; integer inputs pass when it starts with an embedding (token ids).
    """
    at = f"{where}: batch {batch + 1}" if batch is not None else where
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{at}: inputs must be a tensor, got {type(x).__name__}"
                        + (" (convert images with tl.image_to_tensor(image, model))" if type(x).__module__.startswith(
                            ("PIL", "numpy")) else ""))
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{at}: the batch is empty (shape {tuple(x.shape)}); there is nothing to run the model on")
    if not x.is_floating_point() and _takes_indices(model):
        return x  # token ids for an embedding
    if x.dtype == torch.uint8:
        raise TypeError(f"{at}: inputs are uint8 (raw pixels 0..255); models take float32 inputs normalised "
                        "like their training data: x.float() / 255 then (x - mean) / std "
                        "(tl.image_to_tensor does all of it)")
    if not x.is_floating_point():
        raise TypeError(f"{at}: inputs are {str(x.dtype).replace('torch.', '')}; models take float32 "
                        "(convert with x.float(), and normalise like the training data)")
    if x.dtype != torch.float32:
        raise TypeError(f"{at}: inputs are {str(x.dtype).replace('torch.', '')}, the model's weights float32: "
                        "convert with x.float() (NumPy arrays are float64 by default: "
                        "torch.as_tensor(a, dtype=torch.float32))")
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"{at}: {bad} of {x.numel()} input values are NaN or infinite; any accuracy or loss on "
                         "them would be meaningless. Find them with torch.isnan(x).nonzero() and fix the data")
    return x


def _check_label_dtype(y, *, where: str, batch: int | None = None) -> None:
    at = f"{where}: batch {batch + 1}" if batch is not None else where
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{at}: labels must be a tensor of class indices, got {type(y).__name__}")
    if y.is_floating_point() and y.dim() == 1:
        raise TypeError(f"{at}: labels are {str(y.dtype).replace('torch.', '')} (e.g. {y[:3].tolist()}); class "
                        "labels must be integer indices 0..k-1: y.long() (or torch.tensor(labels, dtype=torch.long))")


def _check_labels(out: torch.Tensor, y: torch.Tensor) -> None:
    """Labels outside the head's outputs: usually a head that was not replaced for the new task."""
    k = out.shape[1]
    if y.is_floating_point() or y.dim() != 1:
        return  # class probabilities, not indices: cross_entropy checks their shape itself
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
        bad = int(y.max()) if int(y.max()) >= k else int(y.min())
        raise ValueError(f"label {bad} does not fit a model with {k} outputs (labels must be 0..{k - 1}); "
                         "give the model a head for this task: replace_head(model, task.num_classes, task.classes)")


_SINGLE_SAMPLE_BN = "more than 1 value per channel"


def _dataset_size(loader) -> str:
    try:
        return str(len(loader.dataset))
    except (AttributeError, TypeError):
        return "?"


def _single_sample_warning(n_samples) -> str:
    return (f"a training batch held 1 sample ({n_samples} samples in all); BatchNorm cannot compute batch "
            "statistics from a single sample, so that batch is skipped (every epoch). Use a batch size that does "
            "not leave 1 over, or DataLoader(..., drop_last=True), to silence this")


def fit(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader | None = None, *,
        num_epochs: int = 5, lr: float = 1e-3, optimizer: str = "adam", lr_decay: float = 1.0,
        weight_decay: float = 0.0, observers: Sequence[Observer] = (), stop: StopFlag | None = None,
        device: str | torch.device = "auto", seed: int | None = 0, progress: bool = True,
        checkpoint_path: str | os.PathLike | None = None, resume: bool = False) -> History:
    """Train ``model`` on ``train_loader`` for ``num_epochs`` and return its :class:`History`.

    Args:
        model: any ``nn.Module``; a GroupedModel's layer groups get their own learning rates (``lr_decay``).
        train_loader: a DataLoader of (inputs, labels) batches.
        val_loader: the validation split's loader (never the test split: choices are made on it), or None.
        num_epochs: how many passes over ``train_loader``.
        lr: the learning rate (of the top group, with ``lr_decay``).
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
        lr_decay: each lower layer group gets ``lr_decay`` times the learning rate of the one above (1: all equal).
        weight_decay: L2 penalty passed to the optimiser.
        observers: objects with any of the four event methods (see the module docstring).
        stop: a :class:`StopFlag` another party may set to end the run after the batch in hand.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` or a ``torch.device``.
        seed: reseeds torch at each epoch start (None: leave the random state alone).
        progress: show a ``tqdm`` bar over all batches.
        checkpoint_path: save weights, optimiser and history here after every epoch (atomically).
        resume: continue from ``checkpoint_path`` if it exists.

    - ``observers`` get the four events (see the module docstring).
    - ``stop`` (a :class:`StopFlag`) is checked after every batch; Ctrl-C
      (KeyboardInterrupt) is treated the same way. Either way the history
      ends at the last finished batch and the model is left in eval mode.
    - ``lr_decay < 1`` gives earlier layer groups smaller learning rates.
    - ``seed`` reseeds torch at every epoch start (``seed + epoch``), so data
      order and dropout depend only on the epoch: a run resumed from
      ``checkpoint_path`` continues exactly as the uninterrupted run would.
    - ``checkpoint_path`` saves weights, optimiser and history after each epoch
      (atomically); ``resume=True`` continues from it.
    """
    import numbers

    if isinstance(num_epochs, bool) or not isinstance(num_epochs, numbers.Integral) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    num_epochs = int(num_epochs)
    lr = _check_lr(lr)
    if not isinstance(model, nn.Module):
        raise TypeError(f"fit(): model must be a torch nn.Module, got {type(model).__name__}")
    check_loader("train_loader", train_loader)
    if val_loader is not None:
        check_loader("val_loader", val_loader)
    if seed is not None:
        seed = check_int("seed", seed, min=0)
    if len(train_loader) == 0:
        raise ValueError("train_loader yields no batches: the training set is empty")
    device = select_device(device)
    model.to(device)
    opt = _make_optimizer(model, lr, optimizer, lr_decay, weight_decay)
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if resume and ckpt is None:
        raise ValueError("resume=True needs checkpoint_path")
    history, start_epoch = _resume(ckpt, model, opt, device) if resume and ckpt else (History(), 0)
    stop = stop if stop is not None else StopFlag()
    events = Events([history, *([ProgressBar()] if progress else []), *observers], stop)
    run = _Run(model, opt, nn.CrossEntropyLoss(), device, lr, events, stop, history, ckpt, seed,
               dataset_size=_dataset_size(train_loader))
    events.emit("on_train_begin", {
        "num_epochs": num_epochs, "num_batches": len(train_loader), "start_epoch": start_epoch,
        "metrics": ["loss", "acc", "val_loss", "val_acc"], "model_name": getattr(model, "name", type(model).__name__)})
    stop_reason = ""
    try:
        for epoch in range(start_epoch, num_epochs):
            stop_reason = run.epoch(epoch, train_loader, val_loader)
            if stop_reason:
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted (KeyboardInterrupt)"
        warnings.warn("training interrupted: the model keeps the weights of the last finished batch", stacklevel=2)
    except BaseException as exc:
        run.end(f"error: {type(exc).__name__}: {exc}")
        raise
    run.end(stop_reason)
    return history


def _resume(ckpt: Path, model: nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> tuple[History, int]:
    """Weights, optimiser and history from ``ckpt``; ``(History(), 0)`` when there is no checkpoint yet."""
    if not ckpt.exists():
        return History(), 0
    from .models import load_checkpoint  # the safe loader: refuses pickles, names the file

    state = load_checkpoint(ckpt)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    history = History.from_dict(state["history"])
    history.stopped, history.stop_reason = False, ""
    return history, state["epoch"] + 1


@dataclass
class _Run:
    """The state of one ``fit`` call, and its steps: an epoch, a batch, the epoch's end, the run's end."""

    model: nn.Module
    opt: torch.optim.Optimizer
    loss_fn: nn.Module
    device: torch.device
    lr: float
    events: Events
    stop: StopFlag
    history: History
    ckpt: Path | None
    seed: int | None
    dataset_size: str = ""  # for the warning when a batch of 1 sample has to be dropped
    warned_single: bool = False
    batches_done: int = 0
    t0: float = field(default_factory=time.perf_counter)

    def stop_reason(self) -> str:
        return (self.stop.reason or "stop requested") if self.stop.is_set() else ""

    def epoch(self, epoch: int, train_loader: DataLoader, val_loader: DataLoader | None) -> str:
        """Train one epoch, then validate and checkpoint it; returns why the run stopped ("" to go on)."""
        if self.seed is not None:
            torch.manual_seed(self.seed * 1000 + epoch)
        te = time.perf_counter()
        self.model.train()
        totals = {"loss_sum": 0.0, "correct": 0, "seen": 0}
        for b, (x, y) in enumerate(train_loader):
            check_inputs(x, where=f"fit(): epoch {epoch + 1}", batch=b, model=self.model)
            _check_label_dtype(y, where=f"fit(): epoch {epoch + 1}", batch=b)
            self.batch(epoch, b, x, y, totals)
            if self.stop_reason():
                return self.stop_reason()
        if totals["seen"] == 0:
            raise ValueError("every training batch held 1 sample: BatchNorm layers cannot compute batch "
                             "statistics from one sample; use batch_size >= 2 (and at least 2 samples)")
        logs = {"epoch": epoch, "loss": totals["loss_sum"] / totals["seen"], "acc": totals["correct"] / totals["seen"],
                "val_loss": None, "val_acc": None}
        if val_loader is not None:
            val = evaluate(self.model, val_loader, device=self.device)
            logs.update(val_loss=val["loss"], val_acc=val["acc"])
        logs["seconds"] = time.perf_counter() - te
        self.events.emit("on_epoch_end", logs)
        if self.ckpt is not None:
            atomic_write(self.ckpt, torch_bytes({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                                                 "history": self.history.to_dict(), "epoch": epoch}))
        return self.stop_reason()

    def batch(self, epoch: int, b: int, x: torch.Tensor, y: torch.Tensor, totals: dict) -> None:
        """One optimiser step; emits this batch's own loss/acc beside the epoch's running means."""
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        self.opt.zero_grad(set_to_none=True)
        try:
            out = _forward(self.model, x)
        except ValueError as exc:  # a last batch of 1 reaching a training BatchNorm: drop it, say so
            if x.shape[0] != 1 or _SINGLE_SAMPLE_BN not in str(exc):
                raise
            if not self.warned_single:
                warnings.warn(_single_sample_warning(self.dataset_size), stacklevel=4)
                self.warned_single = True
            return
        _check_labels(out, y)
        loss = self.loss_fn(out, y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, batch {b + 1}: "
                                     f"the learning rate ({self.lr}) is probably too high")
        loss.backward()
        self.opt.step()
        n = y.shape[0]
        batch_loss, batch_correct = loss.item(), (out.argmax(1) == y).sum().item()
        totals["loss_sum"] += batch_loss * n
        totals["correct"] += batch_correct
        totals["seen"] += n
        self.batches_done += 1
        self.events.emit("on_batch_end", {"epoch": epoch, "batch": b, "loss": totals["loss_sum"] / totals["seen"],
                                          "acc": totals["correct"] / totals["seen"], "size": n,
                                          "batch_loss": batch_loss, "batch_acc": batch_correct / n})

    def end(self, stop_reason: str) -> None:
        self.model.eval()
        self.events.emit("on_train_end", {"epochs_completed": len(self.history.epochs),
                                          "batches_completed": self.batches_done, "stopped": bool(stop_reason),
                                          "stop_reason": stop_reason, "seconds": time.perf_counter() - self.t0})


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------
def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@torch.inference_mode()
def evaluate(model: nn.Module, loader: DataLoader, *, device: str | torch.device | None = None) -> dict:
    """Mean cross-entropy and accuracy over ``loader`` (model in eval mode; restores the previous mode)."""
    check_loader("loader", loader, where="evaluate")
    device = select_device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for b, (x, y) in enumerate(loader):
        check_inputs(x, where="evaluate()", batch=b, model=model)
        _check_label_dtype(y, where="evaluate()", batch=b)
        x, y = x.to(device), y.to(device)
        out = _forward(model, x)
        _check_labels(out, y)
        loss_sum += nn.functional.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        seen += y.shape[0]
    model.train(was_training)
    if seen == 0:
        raise ValueError("evaluate() got an empty loader")
    return {"loss": loss_sum / seen, "acc": correct / seen, "n": seen}


@dataclass
class Prediction:
    """Top-k classes and probabilities for one input."""

    top: list[tuple[str, float]]
    target: str | None = None

    @property
    def label(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][1]

    @property
    def correct(self) -> bool | None:
        return None if self.target is None else self.label == self.target

    def __repr__(self):
        tops = ", ".join(f"{c} {p:.1%}" for c, p in self.top)
        tgt = "" if self.target is None else f" (true: {self.target})"
        return f"Prediction({tops}){tgt}"


def _as_batch(model: nn.Module, inputs) -> torch.Tensor | None:
    """Photos given as paths, PIL images or NumPy arrays, decoded and preprocessed for ``model``; else None."""
    import numpy as np

    single = isinstance(inputs, (str, os.PathLike, np.ndarray)) or type(inputs).__module__.startswith("PIL")
    many = isinstance(inputs, (list, tuple)) and inputs and all(
        isinstance(i, (str, os.PathLike, np.ndarray)) or type(i).__module__.startswith("PIL") for i in inputs)
    if not (single or many):
        return None
    from .images import preprocess
    from .models import input_channels

    size, mean, std = getattr(model, "image_size", None), getattr(model, "mean", None), getattr(model, "std", None)
    if size is None or mean is None or std is None:
        raise ValueError(f"{getattr(model, 'name', type(model).__name__)} records no image_size/mean/std, so "
                         "photos cannot be prepared for it; pass a normalised tensor batch instead")
    channels = input_channels(model) or len(mean)
    items = [inputs] if single else list(inputs)
    return torch.stack([preprocess(i, size, mean, std, channels=channels) for i in items])


@torch.inference_mode()
def predict_proba(model: nn.Module, inputs: Inputs, *, device: str | torch.device | None = None,
                  batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Softmax probabilities for a tensor batch, a Dataset, a DataLoader, or photos (paths, PIL images, arrays).

    Photos go through the package's one decoder (:mod:`tlwidgets.images`),
    converted to the channels the model takes (a greyscale photo for an RGB
    model is repeated to RGB) and normalised with the model's mean/std.

    Args:
        model: the classifier; photos need its ``image_size``, ``mean`` and ``std``.
        inputs: a tensor batch (or one CxHxW image), a Dataset, a DataLoader, or one or more photos.
        device: where to run (default: where the model's parameters are).
        batch_size: how many inputs per forward pass for tensors and Datasets.

    Returns:
        ``(probabilities N x classes, labels or None)``: labels come from a Dataset or DataLoader.
    """
    batch_size = check_int("batch_size", batch_size, min=1)
    device = select_device(device) if device is not None else _model_device(model)
    model.eval()
    photos = _as_batch(model, inputs)
    if photos is not None:
        inputs = photos
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() == 3:
            inputs = inputs.unsqueeze(0)
        check_inputs(inputs, where="predict()", model=model)
        return torch.cat([_forward(model, inputs[i:i + batch_size].to(device)).softmax(1).cpu()
                          for i in range(0, len(inputs), batch_size)]), None
    if not isinstance(inputs, (Dataset, DataLoader)):
        raise TypeError(f"predict(): expected a tensor batch, a Dataset, a DataLoader or photos (paths, PIL images, "
                        f"NumPy arrays), got {type(inputs).__name__}")
    loader = inputs if isinstance(inputs, DataLoader) else DataLoader(inputs, batch_size=batch_size)
    probs, labels = [], []
    for b, batch in enumerate(loader):
        x, y = _inputs_and_labels(batch, b)
        check_inputs(x, where="predict()", batch=b, model=model)
        probs.append(_forward(model, x.to(device)).softmax(1).cpu())
        labels.append(y)
    if not probs:
        raise ValueError("predict(): the data is empty; there is nothing to predict")
    known = [y for y in labels if y is not None]
    return torch.cat(probs), (torch.cat(known) if len(known) == len(labels) else None)


def _inputs_and_labels(batch: Any, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A batch as ``(inputs, labels or None)``: labelled ``(x, y)``, unlabelled ``(x,)`` or a bare tensor."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (list, tuple)) and len(batch) in (1, 2) and isinstance(batch[0], torch.Tensor):
        return batch[0], (batch[1] if len(batch) == 2 else None)
    got = (f"a {type(batch).__name__} of {len(batch)} items" if isinstance(batch, (list, tuple))
           else type(batch).__name__)
    raise ValueError(f"predict(): batch {b} is {got}; expected inputs, (inputs,) or (inputs, labels)")


def predict(model: nn.Module, inputs: Inputs, *, k: int = 5,
            classes: Sequence[str] | None = None, device: str | torch.device | None = None) -> list[Prediction]:
    """Top-``k`` predictions with class names, so a lesson shows what a model "thinks", not a row of numbers.

    Args:
        model: the classifier.
        inputs: a tensor batch, a Dataset, a DataLoader, or photos (see :func:`predict_proba`).
        k: how many classes to list per input (at most the model's number of outputs).
        classes: class names (default: the model's ``classes``, else "0", "1", ...).
        device: where to run (default: where the model's parameters are).
    """
    k = check_int("k", k, min=1)
    classes = list(classes) if classes is not None else getattr(model, "classes", None)
    probs, labels = predict_proba(model, inputs, device=device)
    if classes is None:
        classes = [str(i) for i in range(probs.shape[1])]
    if len(classes) != probs.shape[1]:
        raise ValueError(f"{len(classes)} class names for a model with {probs.shape[1]} outputs")
    k = max(1, min(k, probs.shape[1]))
    values, idx = probs.topk(k, dim=1)
    out = []
    for i in range(len(probs)):
        target = classes[labels[i]] if labels is not None else None
        out.append(Prediction([(classes[j], float(v)) for v, j in zip(values[i].tolist(), idx[i].tolist())], target))
    return out


def confusion_matrix(model: nn.Module, loader: Dataset | DataLoader, *, num_classes: int | None = None,
                     device: str | torch.device | None = None) -> torch.Tensor:
    """``cm[true, predicted]`` counts over a labelled Dataset or DataLoader (the dashboard's heat map).

    Args:
        model: the classifier.
        loader: labelled data: a Dataset or DataLoader of (inputs, labels).
        num_classes: rows and columns of the matrix (default: the model's outputs); classes that never occur
            get a row of zeros, so matrices of different runs line up.
        device: where to run (default: where the model's parameters are).
    """
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, min=2)
    probs, labels = predict_proba(model, loader, device=device)
    if labels is None:
        raise ValueError("confusion_matrix needs labelled data")
    labels = labels.long()
    k = num_classes or probs.shape[1]
    need = max(int(labels.max()), int(probs.argmax(1).max())) + 1
    if k < need:
        raise ValueError(f"num_classes={k} is too few: the labels and predictions use classes 0..{need - 1}, so the "
                         f"matrix needs at least {need} rows and columns (the model has {probs.shape[1]} outputs)")
    cm = torch.zeros(k, k, dtype=torch.long)
    cm.index_put_((labels, probs.argmax(1)), torch.ones_like(labels), accumulate=True)
    return cm
