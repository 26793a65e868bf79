"""A live loss/accuracy chart that is an observer of ``fit``.

Design, because charts can easily cost more than the training they show:

- the figure is a plain ``matplotlib.figure.Figure`` on an Agg canvas (no
  pyplot: no global state, safe in the dashboard's training thread, never
  auto-shown twice by the inline backend);
- axes are fixed when training begins (x: 0..``num_epochs``, accuracy: 0..1),
  so the expensive part of the picture (axes, ticks, labels, legend) is drawn
  once and cached; each update restores that background and draws only the
  lines ("blitting"), then encodes a PNG into an ``ipywidgets.Image``.
  Swapping the bytes of one <img> does not flicker, unlike clearing and
  re-filling an ``Output`` area;
- updates are throttled by time (``min_interval``, 0.5 s: two frames a second show a falling loss well) *and* by cost: after a
  frame taking *t* seconds (lines + PNG) the next one waits at least
  ``t / max_overhead`` seconds, so drawing stays near ``max_overhead`` of the
  wall time however slow the machine (plus one full redraw of the axes per
  run, and again only if the loss outgrows its axis). Epoch ends obey the same rule (with
  cached features an epoch can take milliseconds, and drawing each one would
  dominate); the first batch of a run and the end of training are always drawn;
- headless (no browser watching: papermill, nbval, scripts) it draws nothing
  during training, keeps the records, and leaves one static PNG and a text
  summary at the end.
"""
from __future__ import annotations

import html
import threading
import time

import ipywidgets as widgets
import numpy as np

from ..training import Observer
from ._util import in_kernel, is_headless, nice_ceiling, rgba_to_png, widget_bundle

__all__ = ["LiveChart", "BatchSmoother", "summary_text", "progress_text"]


# --------------------------------------------------------------------------- logic (plain pytest)
class BatchSmoother:
    """Per-batch points for the chart from ``fit``'s batch logs.

    ``fit`` reports running means over the epoch so far, which restart every
    epoch (a saw-tooth). This recovers each batch's own loss and accuracy from
    consecutive running means and smooths them with a bias-corrected
    exponential moving average that carries across epochs.
    """

    def __init__(self, num_batches: int, span: int | None = None):
        self.num_batches = max(1, int(num_batches))
        span = max(1, self.num_batches // 4) if span is None else max(1, int(span))
        self.alpha = 2.0 / (span + 1)
        self._epoch = None
        self._seen = 0
        self._loss_sum = 0.0
        self._correct = 0.0
        self._ema_loss = self._ema_acc = 0.0
        self._t = 0

    def add(self, logs: dict) -> tuple[float, float, float]:
        """``(x in fractional epochs, smoothed loss, smoothed acc)`` for one batch log."""
        epoch, batch, size = logs["epoch"], logs["batch"], max(1, int(logs.get("size", 1)))
        if epoch != self._epoch or batch == 0:
            self._epoch, self._seen, self._loss_sum, self._correct = epoch, 0, 0.0, 0.0
        seen = self._seen + size
        loss_sum, correct = logs["loss"] * seen, logs["acc"] * seen
        loss, acc = (loss_sum - self._loss_sum) / size, (correct - self._correct) / size
        self._seen, self._loss_sum, self._correct = seen, loss_sum, correct
        self._t += 1
        a = self.alpha
        self._ema_loss = a * loss + (1 - a) * self._ema_loss
        self._ema_acc = a * acc + (1 - a) * self._ema_acc
        debias = 1 - (1 - a) ** self._t
        return epoch + (batch + 1) / self.num_batches, self._ema_loss / debias, self._ema_acc / debias


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def progress_text(logs: dict | None, num_epochs: int | None) -> str:
    """'epoch 2/10 · loss 0.412 · acc 0.871 · val_acc 0.853' for the last epoch log."""
    if not logs:
        return f"epoch 0/{num_epochs}" if num_epochs else "waiting for training to start"
    parts = [f"epoch {logs['epoch'] + 1}/{num_epochs}", f"loss {_fmt(logs.get('loss'))}", f"acc {_fmt(logs.get('acc'))}"]
    if logs.get("val_acc") is not None:
        parts += [f"val_loss {_fmt(logs.get('val_loss'))}", f"val_acc {_fmt(logs.get('val_acc'))}"]
    return " · ".join(parts)


def summary_text(records: list[dict], end_logs: dict | None) -> str:
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


# --------------------------------------------------------------------------- view
class LiveChart(Observer):
    """Loss and accuracy (train and validation) while ``fit`` runs: ``fit(..., observers=[LiveChart()])``.

    ``headless=None`` asks :func:`~tlwidgets.widgets.is_headless`. With a
    front end the chart shows itself when training begins (unless it was
    displayed already or ``auto_display=False``); headless it records only and
    shows one PNG and a summary line at the end (``display_final=False``
    suppresses that, for owners such as the dashboard that show results
    themselves). ``records`` holds every epoch log it saw; ``draw_count`` and
    ``render_seconds`` say what drawing cost.
    """

    def __init__(self, title: str | None = None, headless: bool | None = None, *, min_interval: float = 0.5,
                 max_overhead: float = 0.02, figsize: tuple[float, float] = (8.5, 3.0), dpi: int = 80,
                 auto_display: bool = True, display_final: bool = True):
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0 seconds, got {min_interval}")
        if not 0 < max_overhead <= 1:
            raise ValueError(f"max_overhead must be a fraction in (0, 1], got {max_overhead}")
        self.title = title
        self.headless = is_headless(headless)
        self.min_interval, self.max_overhead = float(min_interval), float(max_overhead)
        self.figsize, self.dpi = figsize, dpi
        self.auto_display, self.display_final = auto_display, display_final
        self.records: list[dict] = []
        self.end_logs: dict | None = None
        self.num_epochs: int | None = None
        self.num_batches = 0
        self.batch_count = 0
        self.draw_count = 0
        self.render_seconds = 0.0
        self.draw_log: list[tuple[float, float, float]] = []  # (start, seconds, seconds without axes) per render
        self.png: bytes | None = None
        self._lock = threading.RLock()
        self._fig = None
        self._bg = None
        self._loss_top = None
        self._drawn_loss_top = None
        self._displayed = False
        self._auto_title = ""
        self._next_draw = 0.0
        self._run_draws = 0
        self._reset_series()
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{int(figsize[0] * dpi)}px",
                                                                       height=f"{int(figsize[1] * dpi)}px"))
        self.image.add_class("tl-live-chart-image")
        self.status = widgets.HTML("")
        self.status.add_class("tl-live-chart-status")
        self.widget = widgets.VBox([self.image, self.status])
        self.widget.add_class("tl-live-chart")
        if not self.headless:
            self._render(full=True)  # empty axes, so the layout does not jump when training starts

    def _reset_series(self) -> None:
        self._bx, self._bloss, self._bacc = [], [], []        # smoothed batch points
        self._ex, self._eloss, self._eacc = [], [], []        # train epoch means
        self._vx, self._vloss, self._vacc = [], [], []        # validation per epoch
        self._smoother = None

    # -- figure --------------------------------------------------------------------
    def _build_figure(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=self.figsize, dpi=self.dpi)
        FigureCanvasAgg(fig)
        ax_loss, ax_acc = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.07, right=0.985, bottom=0.16, top=0.86, wspace=0.2)
        self._lines = {}
        for ax, key, name in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "accuracy")):
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("epoch", fontsize=9)
            ax.tick_params(labelsize=8)
            ax.grid(True, alpha=0.3)
            self._lines[f"train_{key}"], = ax.plot([], [], color="C0", lw=1.4, label="train", animated=True)
            self._lines[f"epoch_{key}"], = ax.plot([], [], "o", color="C0", ms=4, label="train (epoch)",
                                                   animated=True)
            self._lines[f"val_{key}"], = ax.plot([], [], "s-", color="C1", ms=4, lw=1.6, label="validation",
                                                 animated=True)
        ax_acc.set_ylim(0, 1.01)
        ax_acc.legend(loc="lower right", fontsize=8, framealpha=0.8)
        self._fig, self._ax_loss, self._ax_acc = fig, ax_loss, ax_acc

    def _full_draw(self) -> None:
        """Axes, ticks, labels, legend: drawn only when the limits or title change, then cached."""
        if self._fig is None:
            self._build_figure()
        x_max = self.num_epochs or 1
        for ax in (self._ax_loss, self._ax_acc):
            ax.set_xlim(0, x_max)
        self._ax_loss.set_ylim(0, self._loss_top or 1.0)
        self._fig.suptitle(self._title_text(), fontsize=10)
        canvas = self._fig.canvas
        canvas.draw()
        self._bg = canvas.copy_from_bbox(self._fig.bbox)
        self._drawn_loss_top = self._loss_top

    def _blit_png(self) -> bytes:
        L = self._lines
        L["train_loss"].set_data(self._bx, self._bloss)
        L["train_acc"].set_data(self._bx, self._bacc)
        L["epoch_loss"].set_data(self._ex, self._eloss)
        L["epoch_acc"].set_data(self._ex, self._eacc)
        L["val_loss"].set_data(self._vx, self._vloss)
        L["val_acc"].set_data(self._vx, self._vacc)
        canvas = self._fig.canvas
        canvas.restore_region(self._bg)
        for line in L.values():
            line.axes.draw_artist(line)
        return rgba_to_png(canvas.buffer_rgba())

    def _render(self, full: bool = False) -> None:
        t0 = time.perf_counter()
        axes_cost = 0.0
        with self._lock:
            if full or self._bg is None or self._loss_top != self._drawn_loss_top:
                self._full_draw()
                axes_cost = time.perf_counter() - t0
            png = self._blit_png()
            self.png = png
            self.draw_count += 1
            self._run_draws += 1
            if not self.headless:
                self.image.value = png
        t1 = time.perf_counter()
        cost = t1 - t0
        self.render_seconds += cost
        frame = cost - axes_cost  # the repeated part; a full redraw happens about once per run
        self.draw_log.append((t0, cost, frame))
        self._next_draw = t1 + max(self.min_interval, frame / self.max_overhead)

    def _grow_loss_axis(self, *values) -> None:
        finite = [v for v in values if v is not None and np.isfinite(v)]
        if finite:
            top = nice_ceiling(max(finite) * 1.05)
            if self._loss_top is None or top > self._loss_top:
                self._loss_top = top

    # -- observer events -------------------------------------------------------------
    def on_train_begin(self, info: dict) -> None:
        with self._lock:
            self.records, self.end_logs = [], None
            self.num_epochs = int(info["num_epochs"])
            self.num_batches = int(info.get("num_batches") or 1)
            self.batch_count = 0
            self._reset_series()
            self._smoother = BatchSmoother(self.num_batches)
            self._loss_top = None
            self._run_draws = 0
            if self.title is None and info.get("model_name"):
                self._auto_title = info["model_name"]
        self.status.value = html.escape(progress_text(None, self.num_epochs))
        if self.headless:
            return
        if self.auto_display and not self._displayed and in_kernel() \
                and threading.current_thread() is threading.main_thread():
            from IPython.display import display

            display(self)
        # No drawing yet: the loss axis is sized from the first batch, which draws the new axes.

    def on_batch_end(self, logs: dict) -> None:
        if self._smoother is None:  # events without on_train_begin (e.g. a hand-fed replay)
            self._smoother = BatchSmoother(self.num_batches or 1)
        x, loss, acc = self._smoother.add(logs)
        with self._lock:
            self._bx.append(x)
            self._bloss.append(loss)
            self._bacc.append(acc)
            self.batch_count += 1
            self._grow_loss_axis(loss)
        if not self.headless and (self._run_draws == 0 or time.perf_counter() >= self._next_draw):
            self._render()

    def on_epoch_end(self, logs: dict) -> None:
        x = logs["epoch"] + 1
        with self._lock:
            self.records.append(dict(logs))
            self._ex.append(x)
            self._eloss.append(logs.get("loss"))
            self._eacc.append(logs.get("acc"))
            if logs.get("val_acc") is not None:
                self._vx.append(x)
                self._vloss.append(logs.get("val_loss"))
                self._vacc.append(logs["val_acc"])
            self._grow_loss_axis(logs.get("loss"), logs.get("val_loss"))
        if self.headless:
            return
        self.status.value = html.escape(progress_text(logs, self.num_epochs))
        if self._run_draws == 0 or time.perf_counter() >= self._next_draw:
            self._render()

    def on_train_end(self, logs: dict) -> None:
        self.end_logs = dict(logs)
        summary = summary_text(self.records, self.end_logs)
        self._render()
        self.status.value = html.escape(summary)
        # Only from the main thread: output displayed from another thread can land in whichever cell runs now.
        if self.headless and self.display_final and threading.current_thread() is threading.main_thread():
            from IPython.display import Image, display

            display(Image(data=self.png, format="png"))
            print(f"LiveChart: {summary}")

    # -- conveniences ------------------------------------------------------------------
    def _title_text(self) -> str:
        """The chart title: the one given, else the model's name from ``on_train_begin``."""
        return self.title or self._auto_title

    @property
    def figure(self):
        """The matplotlib Figure (lines are 'animated' artists: use ``.png`` for the picture as shown)."""
        if self._fig is None:
            with self._lock:
                self._build_figure()
        return self._fig

    @property
    def summary(self) -> str:
        return summary_text(self.records, self.end_logs)

    def save_png(self, path) -> None:
        """Write the last rendered chart (rendering it now if it never was)."""
        if self.png is None:
            self._render(full=True)
        from ..infra import atomic_write

        atomic_write(path, self.png)

    def _repr_mimebundle_(self, **kwargs):
        if self.headless:
            bundle = {"text/plain": repr(self)}
            if self.png is not None:
                bundle["image/png"] = self.png
            return bundle
        self._displayed = True
        return widget_bundle(self.widget, repr(self), **kwargs)

    def __repr__(self) -> str:
        mode = "headless" if self.headless else "live"
        return (f"LiveChart({mode}, {len(self.records)} epochs recorded, {self.batch_count} batches, "
                f"{self.draw_count} draws in {self.render_seconds:.2f} s)")
