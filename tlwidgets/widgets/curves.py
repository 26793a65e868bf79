"""The learning curve as a picture: accuracy against labelled images per class, one line per strategy."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from ..experiments import LearningCurve

__all__ = ["plot_learning_curve"]


def plot_learning_curve(curve: LearningCurve, ax: Axes | None = None, *,
                        title: str | None = None) -> Figure | SubFigure:
    """Plot a :class:`tlwidgets.experiments.LearningCurve` (log x; one line per strategy, the spread over
    seeds as a vertical bar at each size); returns the Figure.

    Lives with the views so that ``experiments`` (which runs the grid) stays free of matplotlib.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    xs = [curve.num_train(n) / curve.num_classes for n in curve.sizes]
    for s in curve.strategies:
        means = [curve.accuracy(s, n) for n in curve.sizes]
        ax.plot(xs, means, marker="o", label=s.replace("_", " "))
        for x, n in zip(xs, curve.sizes):
            accs = [r.test_acc for r in curve.runs(s, n)]
            if len(accs) > 1:
                ax.vlines(x, min(accs), max(accs), alpha=0.4, color=ax.lines[-1].get_color())
    ax.set_xscale("log")
    ax.set_xticks(xs, [("all\n(" + f"{x:.0f})") if n is None else str(n) for x, n in zip(xs, curve.sizes)])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images per class")
    ax.set_ylabel("test accuracy")
    ax.set_title(title or curve.task_name)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax.figure
