"""What a training chart shows, and when it should be redrawn: plain state, no matplotlib, no widgets.

The live chart (``tlwidgets.widgets.LiveChart``) is three parts, after
fastprogress and livelossplot: this state (the series, their smoothing, the
throttle with an injected clock), a renderer that turns the state into a PNG,
and a front end (live widget or one static figure) chosen once. Keeping the
state here means what the chart shows is tested with plain dicts and a fake
clock, without drawing anything.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .runlog import BatchValues

__all__ = ["ChartState", "Throttle", "Smoother", "progress_text", "summary_text", "fast_run_note", "FAST_RUN_S",
           "nice_ceiling"]

Clock = Callable[[], float]
FAST_RUN_S = 1.0  # a run shorter than this is over before a person could watch it being drawn


class Smoother:
    """A bias-corrected exponential moving average over ``span`` points (Adam's debiasing: the first
    points are not pulled towards zero)."""

    def __init__(self, span: int) -> None:
        if span < 1:
            raise ValueError(f"span must be at least 1 point, got {span}")
        self.alpha = 2.0 / (span + 1)
        self._ema, self._t = 0.0, 0

    def add(self, value: float) -> float:
        """Take the next point; return the smoothed value at it."""
        self._t += 1
        self._ema = self.alpha * value + (1 - self.alpha) * self._ema
        return self._ema / (1 - (1 - self.alpha) ** self._t)


class Throttle:
    """When the next frame may be drawn: at most every ``min_interval`` seconds, and after a frame whose
    repeated part cost ``t`` seconds not before ``t / max_overhead``, so drawing stays near ``max_overhead``
    of the wall time however slow the machine. The first frame of a run is always due."""

    def __init__(self, min_interval: float = 0.5, max_overhead: float = 0.02, clock: Clock = time.perf_counter):
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0 seconds, got {min_interval}")
        if not 0 < max_overhead <= 1:
            raise ValueError(f"max_overhead must be a fraction in (0, 1], got {max_overhead}")
        self.min_interval, self.max_overhead, self.clock = float(min_interval), float(max_overhead), clock
        self.next_at = 0.0
        self.frames_this_run = 0

    def reset(self) -> None:
        """A new run: its first frame is due at once."""
        self.frames_this_run = 0

    def due(self) -> bool:
        """Whether a frame may be drawn now (always for the first frame of a run)."""
        return self.frames_this_run == 0 or self.clock() >= self.next_at

    def drawn(self, ended_at: float, frame_seconds: float) -> None:
        """Record a frame that ended at ``ended_at`` (this throttle's clock) and whose repeated part took
        ``frame_seconds`` (a full redraw of the axes is not repeated, so it does not count)."""
        self.frames_this_run += 1
        self.next_at = ended_at + max(self.min_interval, frame_seconds / self.max_overhead)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def progress_text(logs: Mapping | None, num_epochs: int | None) -> str:
    """'epoch 2/10 · loss 0.412 · acc 0.871 · val_acc 0.853' for the last epoch log."""
    if not logs:
        return f"epoch 0/{num_epochs}" if num_epochs else "waiting for training to start"
    parts = [f"epoch {logs['epoch'] + 1}/{num_epochs}", f"loss {_fmt(logs.get('loss'))}",
             f"acc {_fmt(logs.get('acc'))}"]
    if logs.get("val_acc") is not None:
        parts += [f"val_loss {_fmt(logs.get('val_loss'))}", f"val_acc {_fmt(logs.get('val_acc'))}"]
    return " · ".join(parts)


def summary_text(records: list[dict], end_logs: Mapping | None) -> str:
    """One line for the end of a run: epochs, final metrics, time, and why it stopped early (if it did)."""
    end = end_logs or {}
    if records:
        last = records[-1]
        parts = [f"{len(records)} epoch{'s' if len(records) != 1 else ''}", f"final loss {_fmt(last.get('loss'))}",
                 f"acc {_fmt(last.get('acc'))}"]
        if last.get("val_acc") is not None:
            parts += [f"val_loss {_fmt(last.get('val_loss'))}", f"val_acc {_fmt(last.get('val_acc'))}"]
    else:
        parts = ["no finished epoch"]
    if end.get("seconds") is not None:
        parts.append(f"{end['seconds']:.1f} s")
    if end.get("stopped"):
        parts.append(f"stopped: {end.get('stop_reason') or 'yes'}")
    return " · ".join(parts)


def fast_run_note(end_logs: Mapping | None) -> str:
    """For a run over in well under a second (cached features: milliseconds an epoch), say that the chart
    shows the finished curve rather than pretend it was watched; "" otherwise."""
    seconds = (end_logs or {}).get("seconds")
    if seconds is None or seconds >= FAST_RUN_S:
        return ""
    return f"finished in {seconds * 1000:.0f} ms, too fast to watch live: this is the finished curve"


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10 x 10^k that is >= ``x`` (axis limits that rarely change)."""
    if not math.isfinite(x) or x <= 0:
        return 1.0
    exp = math.floor(math.log10(x))
    base = 10.0 ** exp
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * base >= x * (1 - 1e-12):
            return m * base
    return 10 * base  # pragma: no cover - the loop always returns


@dataclass
class ChartState:
    """Everything one chart shows, fed by ``fit``'s event dicts.

    Batch points are each batch's own values (``batch_loss``/``batch_acc``,
    recovered from running means for older logs), smoothed over a quarter of
    an epoch so the curve carries across epochs without the running mean's
    saw-tooth. ``loss_top`` only grows, so the axes are redrawn rarely.
    """

    span: int | None = None
    batch_x: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    batch_acc: list[float] = field(default_factory=list)
    epoch_x: list[int] = field(default_factory=list)
    epoch_loss: list[float | None] = field(default_factory=list)
    epoch_acc: list[float | None] = field(default_factory=list)
    val_x: list[int] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    end_logs: dict | None = None
    num_epochs: int | None = None
    num_batches: int = 0
    model_name: str = ""
    loss_top: float | None = None

    def __post_init__(self) -> None:
        self._start_series()

    def _start_series(self) -> None:
        span = self.span if self.span is not None else max(1, max(1, self.num_batches) // 4)
        self._values = BatchValues()
        self._loss_ema, self._acc_ema = Smoother(span), Smoother(span)

    @property
    def batch_count(self) -> int:
        return len(self.batch_x)

    def begin(self, info: Mapping[str, Any]) -> None:
        """A new run: clear every series; the x axis spans ``num_epochs``."""
        for series in (self.batch_x, self.batch_loss, self.batch_acc, self.epoch_x, self.epoch_loss, self.epoch_acc,
                       self.val_x, self.val_loss, self.val_acc, self.records):
            series.clear()
        self.end_logs, self.loss_top = None, None
        self.num_epochs = int(info["num_epochs"])
        self.num_batches = int(info.get("num_batches") or 1)
        self.model_name = str(info.get("model_name") or "")
        self._start_series()

    def add_batch(self, logs: Mapping[str, Any]) -> None:
        loss, acc = self._values.add(logs)
        self.batch_x.append(logs["epoch"] + (logs["batch"] + 1) / max(1, self.num_batches))
        self.batch_loss.append(self._loss_ema.add(loss))
        self.batch_acc.append(self._acc_ema.add(acc))
        self._grow_loss_axis(self.batch_loss[-1])

    def add_epoch(self, logs: Mapping[str, Any]) -> None:
        x = logs["epoch"] + 1
        self.records.append(dict(logs))
        self.epoch_x.append(x)
        self.epoch_loss.append(logs.get("loss"))
        self.epoch_acc.append(logs.get("acc"))
        if logs.get("val_acc") is not None:
            self.val_x.append(x)
            self.val_loss.append(logs.get("val_loss"))
            self.val_acc.append(logs["val_acc"])
        self._grow_loss_axis(logs.get("loss"), logs.get("val_loss"))

    def end(self, logs: Mapping[str, Any]) -> None:
        self.end_logs = dict(logs)

    def _grow_loss_axis(self, *values: float | None) -> None:
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if finite:
            top = nice_ceiling(max(finite) * 1.05)
            if self.loss_top is None or top > self.loss_top:
                self.loss_top = top

    @property
    def summary(self) -> str:
        return summary_text(self.records, self.end_logs)

    def lines(self) -> dict[str, tuple[list, list]]:
        """``name -> (x, y)`` for every line the chart draws."""
        return {"train_loss": (self.batch_x, self.batch_loss), "train_acc": (self.batch_x, self.batch_acc),
                "epoch_loss": (self.epoch_x, self.epoch_loss), "epoch_acc": (self.epoch_x, self.epoch_acc),
                "val_loss": (self.val_x, self.val_loss), "val_acc": (self.val_x, self.val_acc)}
