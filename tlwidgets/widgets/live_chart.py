"""A live loss/accuracy chart that is an observer of ``fit``: state + renderer + a front end chosen once.

Charts can easily cost more than the training they show, so the parts are split
(after fastprogress and livelossplot):

- :class:`~tlwidgets.chart_state.ChartState` (core) holds the series, smooths
  the per-batch points and grows the loss axis; :class:`~tlwidgets.chart_state.Throttle`
  decides when a frame is due: at most every ``min_interval`` (0.5 s: two frames
  a second show a falling loss well) and, after a frame costing *t*, not before
  *t* / ``max_overhead``, so drawing stays near ``max_overhead`` of the wall time
  however slow the machine. The first batch of a run and its end are always drawn;
- :class:`~tlwidgets.widgets.chart_render.ChartRenderer` draws the state into PNG
  bytes (cached axes, blitted lines), shown by swapping the bytes of one
  ``ipywidgets.Image`` (no flicker, unlike clearing an ``Output`` area);
- the front end is chosen once, when the chart is made: **live** (a browser is
  watching: draws while training) or **static** (papermill, nbval, scripts: draws
  nothing during training, then one PNG and a summary line at the end).

A run over in well under a second (cached features) cannot be watched live;
the chart then says it shows the finished curve.
"""
from __future__ import annotations

import html
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets
import traitlets

from ..chart_state import ChartState, Throttle, fast_run_note, progress_text, summary_text
from ..training import Observer
from ._util import in_kernel, is_headless, widget_bundle
from .chart_render import ChartRenderer

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LiveChart", "summary_text", "progress_text"]


class _LiveFront:
    """A browser is watching: draw while training (throttled) and keep the status line current."""

    def __init__(self, chart: LiveChart):
        self.chart = chart

    def opened(self) -> None:
        self.chart.draw(full=True)  # empty axes, so the layout does not jump when training starts

    def begin(self) -> None:
        c = self.chart
        # Only from the main thread: output displayed from another thread can land in whichever cell runs now.
        main = threading.current_thread() is threading.main_thread()
        if c.auto_display and not c._shown and in_kernel() and main:
            from IPython.display import display

            display(c)

    def batch(self) -> None:
        if self.chart.throttle.due():
            self.chart.draw()

    def epoch(self, logs: dict) -> None:
        self.chart.status.value = html.escape(progress_text(logs, self.chart.num_epochs))
        if self.chart.throttle.due():
            self.chart.draw()

    def show(self, png: bytes) -> None:
        self.chart.image.value = png

    def end(self, summary: str) -> None:
        pass


class _StaticFront:
    """Nobody is watching: keep the records, draw once at the end, show that PNG and a summary line."""

    def __init__(self, chart: LiveChart):
        self.chart = chart

    def opened(self) -> None:
        pass

    def begin(self) -> None:
        pass

    def batch(self) -> None:
        pass

    def epoch(self, logs: dict) -> None:
        pass

    def show(self, png: bytes) -> None:
        pass

    def end(self, summary: str) -> None:
        if self.chart.display_final and threading.current_thread() is threading.main_thread():
            from IPython.display import Image, display

            display(Image(data=self.chart.png, format="png"))
            print(f"LiveChart: {summary}")


class LiveChart(widgets.VBox, Observer):
    """Loss and accuracy (train and validation) while ``fit`` runs: ``fit(..., observers=[LiveChart()])``.

    A widget in its own right (an ``ipywidgets.VBox``: the chart image and a status line) with synced traits
    other code can ``observe`` or ``link``: ``num_epochs`` (the run's planned epochs, None before a run),
    ``epochs_recorded`` (finished epochs seen) and ``finished`` (the run has ended).

    Args:
        title: shown above the chart; default: the model's name from ``on_train_begin``.
        headless: None asks :func:`~tlwidgets.widgets.is_headless`; it picks the front end once.
        min_interval: seconds between frames at least.
        max_overhead: the share of wall time drawing may take (0.02 = 2 %).
        figsize, dpi: the picture's size.
        auto_display: with a front end, show the chart when training begins (unless shown already).
        display_final: headless, show the PNG and summary at the end (the dashboard shows results itself).
        clock: the throttle's clock (tests pass a fake one).

    ``records`` holds every epoch log it saw; ``draw_count``, ``render_seconds``
    and ``draw_log`` (start, seconds, repeated seconds per frame) say what drawing cost.
    """

    num_epochs = traitlets.Int(None, allow_none=True, help="epochs the run plans (None: no run yet)").tag(sync=True)
    epochs_recorded = traitlets.Int(0, help="finished epochs the chart has seen").tag(sync=True)
    finished = traitlets.Bool(False, help="whether the run shown has ended").tag(sync=True)

    def __init__(self, title: str | None = None, headless: bool | None = None, *, min_interval: float = 0.5,
                 max_overhead: float = 0.02, figsize: tuple[float, float] = (8.5, 3.2), dpi: int = 80,
                 auto_display: bool = True, display_final: bool = True,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.throttle = Throttle(min_interval, max_overhead, clock)
        self.title = title
        self.headless = is_headless(headless)
        self.auto_display, self.display_final = auto_display, display_final
        self.state = ChartState()
        self.renderer = ChartRenderer(figsize, dpi)
        self.draw_count = 0
        self.render_seconds = 0.0
        self.draw_log: list[tuple[float, float, float]] = []
        self.png: bytes | None = None
        self._draw_lock = threading.RLock()
        self._shown = False
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{int(figsize[0] * dpi)}px",
                                                                       height=f"{int(figsize[1] * dpi)}px"))
        self.image.add_class("tl-live-chart-image")
        self.status = widgets.HTML("")
        self.status.add_class("tl-live-chart-status")
        super().__init__([self.image, self.status])
        self.add_class("tl-live-chart")
        self.front = _StaticFront(self) if self.headless else _LiveFront(self)
        self.front.opened()

    # -- what it shows --------------------------------------------------------------------
    @property
    def records(self) -> list[dict]:
        return self.state.records

    @property
    def end_logs(self) -> dict | None:
        return self.state.end_logs

    @property
    def batch_count(self) -> int:
        return self.state.batch_count

    @property
    def widget(self) -> LiveChart:
        """The chart itself (it is a widget); kept so code that embeds ``.widget`` in a layout still works."""
        return self

    @property
    def summary(self) -> str:
        return self.state.summary

    @property
    def figure(self) -> Figure:
        """The matplotlib Figure (lines are 'animated' artists: use ``.png`` for the picture as shown)."""
        with self._draw_lock:
            return self.renderer.figure

    def _title_text(self) -> str:
        return self.title or self.state.model_name

    def draw(self, full: bool = False) -> None:
        """Render the state now (the front end decides when; this is also what ``save_png`` uses)."""
        with self._draw_lock:
            frame = self.renderer.render(self.state, self._title_text(), full=full)
            self.png = frame.png
            self.draw_count += 1
            self.render_seconds += frame.seconds
            self.draw_log.append((frame.started, frame.seconds, frame.repeated_seconds))
            self.throttle.drawn(self.throttle.clock(), frame.repeated_seconds)
            self.front.show(frame.png)

    # -- observer events --------------------------------------------------------------------
    def on_train_begin(self, info: dict) -> None:
        with self._draw_lock:
            self.state.begin(info)
            self.throttle.reset()
        self.num_epochs, self.epochs_recorded, self.finished = self.state.num_epochs, 0, False
        self.status.value = html.escape(progress_text(None, self.num_epochs))
        self.front.begin()  # no drawing yet: the loss axis is sized from the first batch

    def on_batch_end(self, logs: dict) -> None:
        with self._draw_lock:
            self.state.add_batch(logs)
        self.front.batch()

    def on_epoch_end(self, logs: dict) -> None:
        with self._draw_lock:
            self.state.add_epoch(logs)
        self.epochs_recorded = len(self.state.records)
        self.front.epoch(logs)

    def on_train_end(self, logs: dict) -> None:
        with self._draw_lock:
            self.state.end(logs)
        self.draw()
        self.finished = True
        note = fast_run_note(self.end_logs)
        summary = self.summary + (f" · {note}" if note else "")
        self.status.value = html.escape(summary)
        self.front.end(summary)

    # -- conveniences -------------------------------------------------------------------------
    def save_png(self, path: str | os.PathLike[str]) -> None:
        """Write the last rendered chart (rendering it now if it never was)."""
        if self.png is None:
            self.draw(full=True)
        from ..infra import atomic_write

        atomic_write(path, self.png or b"")

    def _repr_mimebundle_(self, **kwargs):
        if self.headless:
            bundle = {"text/plain": repr(self)}
            if self.png is not None:
                bundle["image/png"] = self.png
            return bundle
        self._shown = True
        return widget_bundle(super(), repr(self), **kwargs)

    def __repr__(self) -> str:
        mode = "headless" if self.headless else "live"
        return (f"LiveChart({mode}, {len(self.records)} epochs recorded, {self.batch_count} batches, "
                f"{self.draw_count} draws in {self.render_seconds:.2f} s)")
