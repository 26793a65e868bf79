"""Observers of a training run: the four events, the stop flag, the history, progress bars, early stopping.

``fit`` (:mod:`tlwidgets.training`) tells its observers what happened through
the four events of :data:`EVENTS`, each carrying a plain dict (the table is in
:mod:`tlwidgets.training`'s docstring). Every observer method is optional; a
method named like an event but misspelt (``on_epoch_ends``) is warned about,
because it would silently never run (fastai's callback lesson). Any observer
ends the run by raising :class:`StopTraining` (or by setting the
:class:`StopFlag` passed to ``fit``). The keep-best observer is
:class:`tlwidgets.runs.KeepBest` (the measurement protocol's home).
"""
from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVENTS", "Observer", "StopFlag", "History", "ProgressBar", "EarlyStopping", "StopTraining", "Events",
           "check_observer"]

EVENTS = ("on_train_begin", "on_batch_end", "on_epoch_end", "on_train_end")
#: What ``predict`` and ``predict_proba`` take: tensors, datasets, loaders, or photos (paths, PIL images, arrays).


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


