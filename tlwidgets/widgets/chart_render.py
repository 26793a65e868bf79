"""Draws a :class:`~tlwidgets.chart_state.ChartState` into PNG bytes with matplotlib (no pyplot).

A plain ``Figure`` on an Agg canvas: no global state, safe in the
dashboard's training thread, never auto-shown twice by the inline backend.
The axes are fixed for a run (x: 0..``num_epochs``, accuracy: 0..1), so the
expensive part (axes, ticks, labels, legend) is drawn once and cached; each
frame restores that background and draws only the lines ("blitting"). The
axes are redrawn only when the title or the loss axis changes.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..chart_state import ChartState
from ._util import rgba_to_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ChartRenderer", "Frame", "MIN_TEXT_PX"]


class Frame:
    """One rendered picture: its PNG, what it cost, and what of that was the (rare) full axes redraw."""

    __slots__ = ("png", "started", "seconds", "axes_seconds")

    def __init__(self, png: bytes, started: float, seconds: float, axes_seconds: float) -> None:
        """
        Args:
            png: the picture.
            started: when drawing began (the throttle's clock).
            seconds: what the whole frame cost.
            axes_seconds: the part of it spent redrawing the axes (zero for most frames).
        """
        self.png, self.started, self.seconds, self.axes_seconds = png, started, seconds, axes_seconds

    @property
    def repeated_seconds(self) -> float:
        """The part every frame pays (lines + PNG), which is what the throttle budgets."""
        return self.seconds - self.axes_seconds


# the smallest text the chart draws, in screen pixels: tick labels read from the back of a room on a
# 1280 x 800 projector at 11 px and up (8 pt at 80 dpi is under 9 px)
MIN_TEXT_PX = 11.5


class ChartRenderer:
    """Loss and accuracy side by side, train (smoothed per batch, and per epoch) and validation.

    Text sizes are set in pixels (converted with ``dpi``), so a chart shown at its natural size has tick
    labels of at least :data:`MIN_TEXT_PX` whatever the dpi.
    """

    def __init__(self, figsize: tuple[float, float] = (8.5, 3.2), dpi: int = 80):
        self.figsize, self.dpi = figsize, dpi
        self._fig: Any = None
        self._bg: Any = None
        self._drawn: tuple | None = None  # (loss_top, x_max, title) the cached background shows

    def points(self, pixels: float) -> float:
        """The font size in points that is ``pixels`` tall on screen at this chart's dpi."""
        return pixels * 72 / self.dpi

    @property
    def figure(self) -> Figure:
        if self._fig is None:
            self._build()
        return self._fig

    def _build(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=self.figsize, dpi=self.dpi)
        FigureCanvasAgg(fig)
        ax_loss, ax_acc = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.075, right=0.985, bottom=0.19, top=0.84, wspace=0.22)
        self.lines = {}
        for ax, key, name in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "accuracy")):
            ax.set_title(name, fontsize=self.points(MIN_TEXT_PX + 1.5))
            ax.set_xlabel("epoch", fontsize=self.points(MIN_TEXT_PX + 0.5))
            ax.tick_params(labelsize=self.points(MIN_TEXT_PX))
            ax.grid(True, alpha=0.3)
            self.lines[f"train_{key}"], = ax.plot([], [], color="C0", lw=1.4, label="train", animated=True)
            self.lines[f"epoch_{key}"], = ax.plot([], [], "o", color="C0", ms=4, label="train (epoch)", animated=True)
            self.lines[f"val_{key}"], = ax.plot([], [], "s-", color="C1", ms=4, lw=1.6, label="validation",
                                                animated=True)
        ax_acc.set_ylim(0, 1.01)
        ax_acc.legend(loc="lower right", fontsize=self.points(MIN_TEXT_PX), framealpha=0.8)
        self._fig, self.ax_loss, self.ax_acc = fig, ax_loss, ax_acc

    def _draw_axes(self, key: tuple) -> None:
        loss_top, x_max, title = key
        for ax in (self.ax_loss, self.ax_acc):
            ax.set_xlim(0, x_max)
        self.ax_loss.set_ylim(0, loss_top)
        self.figure.suptitle(title, fontsize=self.points(MIN_TEXT_PX + 1.5))
        canvas: Any = self.figure.canvas  # an Agg canvas (see _build): it can copy and restore regions
        canvas.draw()
        self._bg = canvas.copy_from_bbox(self.figure.bbox)
        self._drawn = key

    def render(self, state: ChartState, title: str, *, full: bool = False) -> Frame:
        """The state as PNG bytes; ``full`` forces the axes to be redrawn."""
        t0 = time.perf_counter()
        fig = self.figure
        key = (state.loss_top or 1.0, state.num_epochs or 1, title)
        axes_seconds = 0.0
        if full or self._bg is None or key != self._drawn:
            self._draw_axes(key)
            axes_seconds = time.perf_counter() - t0
        for name, (x, y) in state.lines().items():
            self.lines[name].set_data(x, y)
        canvas: Any = fig.canvas
        canvas.restore_region(self._bg)
        for line in self.lines.values():
            line.axes.draw_artist(line)
        png = rgba_to_png(canvas.buffer_rgba())
        return Frame(png, t0, time.perf_counter() - t0, axes_seconds)
