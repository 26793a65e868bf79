"""Run logs: the versioned JSON format runs are saved in, and replay of a logged run through observers.

A run log is plain JSON, so a run trained at home can be shown on the day
through the same chart, at any speed, without training::

    {"format": "tlwidgets.dashboard-log", "version": 4, "kind": "mnist",
     "runs": [{"row": {...}, "recipe": Recipe.as_dict(), "n_per_class": 20,
               "history": History.to_dict()}, ...]}

Version 4 (current) stores each run's :class:`~tlwidgets.runs.Recipe` (the
whole configuration: one epoch budget for every strategy, a fine-tune's head
stage included) and its rows carry ``steps`` and ``fell_back``. Versions 1-3
stored a ``config`` dict; it is read into a recipe (``upgrade_entry``) --
note that a version-3 fine-tune trained ``num_epochs`` head epochs *plus*
``num_epochs`` unfrozen ones, which its row's ``epochs`` shows. Since
version 3 rows are ``RunResult.row()``, which names the freeze boundary
``n_frozen``; older rows named it ``frozen_groups`` and are renamed on reading. Since version 2 batch records
carry ``batch_loss``/``batch_acc`` (each batch's own values) beside the
running means; version 1 logs get them on reading, recovered from
consecutive running means.

Replay is core, not widget code: :func:`replay` feeds the logged events
through :class:`~tlwidgets.training.Events` to any observers (a chart, a
status line, a test's recorder), paced by an injected ``sleep``.
No ipywidgets, no matplotlib.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .infra import atomic_write
from .runs import Recipe
from .training import Events, History, StopFlag
from .validate import check_float

__all__ = ["FORMAT", "VERSION", "BatchValues", "history_dict", "upgrade_history", "upgrade_row", "upgrade_entry",
           "log_entry", "write_log", "read_log", "replay_events", "replay", "ReplayResult"]

FORMAT = "tlwidgets.dashboard-log"
VERSION = 4
#: the key version 1 and 2 rows used for the freeze boundary, renamed ``n_frozen`` on reading
_OLD_DEPTH_KEY = "frozen_groups"
METRICS = ["loss", "acc", "val_loss", "val_acc"]


# --------------------------------------------------------------------------- the format
class BatchValues:
    """Each batch's own loss and accuracy from a stream of ``on_batch_end`` logs.

    Current logs carry them (``batch_loss``, ``batch_acc``); older ones hold
    only running means over the epoch so far, from which each batch's value is
    recovered: ``(mean_b * seen_b - mean_{b-1} * seen_{b-1}) / size_b``.
    """

    def __init__(self) -> None:
        self._epoch: int | None = None
        self._seen, self._loss_sum, self._correct = 0, 0.0, 0.0

    def add(self, logs: Mapping[str, Any]) -> tuple[float, float]:
        """``(loss, accuracy)`` of the batch ``logs`` describes; logs must come in order, epoch by epoch."""
        size = max(1, int(logs.get("size", 1)))
        if logs["epoch"] != self._epoch or logs["batch"] == 0:
            self._epoch, self._seen, self._loss_sum, self._correct = logs["epoch"], 0, 0.0, 0.0
        seen = self._seen + size
        loss_sum, correct = logs["loss"] * seen, logs["acc"] * seen
        loss = logs.get("batch_loss", (loss_sum - self._loss_sum) / size)
        acc = logs.get("batch_acc", (correct - self._correct) / size)
        self._seen, self._loss_sum, self._correct = seen, loss_sum, correct
        return loss, acc


def upgrade_history(hist: Mapping[str, Any]) -> dict:
    """A copy of ``History.to_dict()`` whose batches all carry ``batch_loss`` and ``batch_acc``
    (version 1 logs did not: see :class:`BatchValues`)."""
    values = BatchValues()
    batches = []
    for i, b in enumerate(hist.get("batches", [])):
        try:
            loss, acc = values.add(b)
        except (KeyError, TypeError, ValueError) as exc:   # a damaged log: say which batch, not KeyError('acc')
            lacks = f"lacks {exc}" if isinstance(exc, KeyError) else f"holds a value that is not a number ({exc})"
            raise ValueError(f"the logged history is damaged: batch entry {i} ({str(b)[:80]}) {lacks}; "
                             "each batch needs epoch, batch, loss and acc numbers") from None
        batches.append({**b, "batch_loss": loss, "batch_acc": acc})
    return {**hist, "epochs": [dict(e) for e in hist.get("epochs", [])], "batches": batches}


def upgrade_row(row: Mapping[str, Any]) -> dict:
    """A copy of a logged results row in the current vocabulary (versions 1-2 said ``frozen_groups``
    where ``RunResult.row()`` now says ``n_frozen``)."""
    if "n_frozen" in row:
        return {k: v for k, v in row.items() if k != _OLD_DEPTH_KEY}
    return {("n_frozen" if k == _OLD_DEPTH_KEY else k): v for k, v in row.items()}   # same place in the row


def upgrade_entry(entry: Mapping[str, Any]) -> dict:
    """A logged run in the current shape ``{"row", "recipe", "n_per_class", "history"}``.

    Versions 1-3 kept a ``config`` dict (strategy, lr, num_epochs, n_frozen, batch_size, seed, n_per_class):
    its recipe fields become the recipe (the strategy from the row when the config lacks it).
    """
    row = upgrade_row(entry["row"])
    if "recipe" in entry:
        recipe, n = dict(entry["recipe"]), entry.get("n_per_class")
    else:
        config = dict(entry.get("config") or {})
        n = config.pop("n_per_class", row.get("n_per_class"))
        fields = set(Recipe.__dataclass_fields__)
        config.setdefault("strategy", row.get("strategy", "feature_extraction"))
        recipe = {k: v for k, v in config.items() if k in fields and v is not None}
    if isinstance(n, str):
        n = None            # a row says "all"
    return {"row": row, "recipe": recipe, "n_per_class": n, "history": upgrade_history(entry["history"])}


def log_entry(result: Any, n_per_class: int | None) -> dict:
    """The log entry of a :class:`~tlwidgets.runs.RunResult`: its row, recipe, data size and history."""
    return {"row": result.row(), "recipe": result.recipe.as_dict(), "n_per_class": n_per_class,
            "history": result.history.to_dict()}


def read_json(path: str | os.PathLike) -> Any:
    """A JSON log file's content; a missing, unreadable or damaged file is reported with its name."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"log file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable JSON log ({exc}); it is damaged or not a log: "
                         "save it again with Dashboard.save_log(path)") from None


def history_dict(source: object) -> tuple[dict, dict]:
    """``(History.to_dict(), recipe dict)`` from a History, its dict, a RunResult (anything with a ``history``
    History), a log entry, or the path of a log / History JSON file; batches upgraded to the current version."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        data = read_json(path)
        if isinstance(data, dict) and data.get("format") == FORMAT:
            runs = _check_log(data, path)["runs"]
            if not runs:
                raise ValueError(f"{path}: the log holds no runs")
            return history_dict(runs[-1])
        return history_dict(data)
    if isinstance(source, History):
        return upgrade_history(source.to_dict()), {}
    if isinstance(getattr(source, "history", None), History):
        recipe = getattr(source, "recipe", None)
        return (upgrade_history(source.history.to_dict()),  # type: ignore[attr-defined]
                recipe.as_dict() if recipe is not None else {"num_epochs": None})
    if isinstance(source, dict) and "history" in source and "row" in source:
        entry = upgrade_entry(source)
        return entry["history"], entry["recipe"]
    if isinstance(source, dict) and "history" in source:
        return upgrade_history(source["history"]), dict(source.get("recipe") or source.get("config") or {})
    if isinstance(source, dict) and "epochs" in source:
        return upgrade_history(source), {}
    raise TypeError(f"cannot replay {type(source).__name__}: give a History, History.to_dict(), a RunResult, "
                    "a dashboard log entry, or the path of a JSON log")


def _check_log(data: object, path: Path) -> dict:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a dashboard log (no format={FORMAT!r}); "
                         "a single History JSON can be passed to replay() directly")
    version = data.get("version", 1)
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise ValueError(f"{path} is a run log of version {version!r}; this tlwidgets reads versions 1 to {VERSION} "
                         "(upgrade tlwidgets to read it)")
    runs = data.get("runs", [])
    for r in runs:
        if not isinstance(r, dict) or not {"row", "history"} <= set(r):
            raise ValueError(f"{path}: a run entry lacks 'row' or 'history'")
    return data


def read_log(path: str | os.PathLike) -> dict:
    """A run log, checked and upgraded to the current version: ``{"format", "version", "kind", "runs"}``."""
    path = Path(path)
    data = _check_log(read_json(path), path)
    runs = [upgrade_entry(r) for r in data.get("runs", [])]
    return {"format": FORMAT, "version": VERSION, "kind": data.get("kind"), "runs": runs}


def write_log(path: str | os.PathLike, runs: Sequence[Mapping], *, kind: str | None = None) -> Path:
    """Write ``runs`` (:func:`log_entry` each) as a current-version log, atomically."""
    path = Path(path)
    data = {"format": FORMAT, "version": VERSION, "kind": kind, "runs": [dict(r) for r in runs]}
    atomic_write(path, json.dumps(data, indent=1))
    return path


# --------------------------------------------------------------------------- replay
def replay_events(hist: Mapping, recipe: Mapping | None = None) -> Iterator[tuple[str, dict]]:
    """The events ``fit`` emitted for a logged run, in order, ending with ``on_train_begin``'s
    counterpart ``on_train_end`` (which says the logged run's stop, if any)."""
    recipe = recipe or {}
    epochs, batches = list(hist.get("epochs", [])), list(hist.get("batches", []))
    by_epoch: dict[int, list[dict]] = {}
    for b in batches:
        by_epoch.setdefault(b["epoch"], []).append(b)
    logged = sorted(set(by_epoch) | {e["epoch"] for e in epochs})
    num_epochs = max(recipe.get("num_epochs") or 0, len(epochs), (logged[-1] + 1) if logged else 1)
    ends = {e["epoch"]: e for e in epochs}
    yield "on_train_begin", {"num_epochs": num_epochs, "num_batches": max((b["batch"] + 1 for b in batches), default=1),
                             "start_epoch": 0, "metrics": list(METRICS), "model_name": "replay"}
    for ep in logged:
        for b in by_epoch.get(ep, []):
            yield "on_batch_end", dict(b)
        if ep in ends:
            yield "on_epoch_end", dict(ends[ep])
    yield "on_train_end", {"epochs_completed": len(epochs), "batches_completed": len(batches),
                           "stopped": bool(hist.get("stopped")), "stop_reason": hist.get("stop_reason", ""),
                           "seconds": hist.get("seconds", 0.0)}


@dataclass
class ReplayResult:
    """What a replay showed: the ``on_train_end`` payload, whether it was cut short, how many epochs were logged."""

    end: dict
    interrupted: bool
    logged_epochs: int


def replay(source: object, observers: Sequence[object], *, seconds_per_epoch: float = 0.0,
           stop: StopFlag | None = None, sleep: Callable[[float], None] = time.sleep) -> ReplayResult:
    """Feed a logged run's events to ``observers`` as ``fit`` would have, paced at ``seconds_per_epoch``.

    Args:
        source: anything :func:`history_dict` accepts (a History, a log entry, a JSON path, ...).
        observers: objects with any of the :data:`~tlwidgets.training.EVENTS` methods.
        seconds_per_epoch: replay speed; 0 plays as fast as the observers allow.
        stop: checked before every batch (a Stop button); a stopped replay still ends with ``on_train_end``.
        sleep: how to wait between batches (injected: tests pass a recorder, the dashboard a stoppable wait).
    """
    seconds_per_epoch = check_float("seconds_per_epoch", seconds_per_epoch, min=0)   # NaN/inf/text refused here
    hist, recipe = history_dict(source)
    if not hist.get("epochs") and not hist.get("batches"):
        raise ValueError("the logged run has no finished batch or epoch to replay")
    stop = stop if stop is not None else StopFlag()
    events = Events(observers, stop)
    per_epoch = {e: sum(1 for b in hist["batches"] if b["epoch"] == e) for e in {b["epoch"] for b in hist["batches"]}}
    epochs_done = batches_done = 0
    interrupted = False
    for event, payload in replay_events(hist, recipe):
        if event == "on_batch_end":
            sleep(seconds_per_epoch / per_epoch[payload["epoch"]])
            if stop.is_set():
                interrupted = True
                break
            batches_done += 1
        elif event == "on_epoch_end":
            if not per_epoch.get(payload["epoch"]):
                sleep(seconds_per_epoch)
            epochs_done += 1
        elif event == "on_train_end":
            end = {**payload, "epochs_completed": epochs_done, "batches_completed": batches_done}
            events.emit(event, end)
            return ReplayResult(end, False, len(hist["epochs"]))
        events.emit(event, payload)
    end = {"epochs_completed": epochs_done, "batches_completed": batches_done, "stopped": True,
           "stop_reason": stop.reason or "stop requested", "seconds": hist.get("seconds", 0.0)}
    events.emit("on_train_end", end)
    return ReplayResult(end, interrupted, len(hist["epochs"]))
