"""Pictures for "which layers transfer": Yosinski's figure redrawn, and accuracy against cut depth.

Views only: the numbers come from :mod:`tlwidgets.layer_transfer` (which stays free of matplotlib).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from ..layer_transfer import SeedResults

__all__ = ["plot_layer_sweep", "plot_cut_sweep"]

_STYLE = {"BnB": ("tab:blue", "o", "-"), "BnB+": ("tab:blue", "s", "--"),
          "AnB": ("tab:red", "o", "-"), "AnB+": ("tab:red", "s", "--")}


def plot_layer_sweep(results: SeedResults, ax: Axes | None = None, *, metric: str = "accuracy",
                     title: str | None = None) -> Figure | SubFigure:
    """Accuracy against the number ``n`` of transferred layer groups, one line per variant (as in
    Yosinski et al. 2014, Fig. 2): the mean over seeds, a bar from the worst to the best seed, and
    base B as a grey band (its min-max over seeds). Returns the Figure.

    Args:
        results: the sweep's rows (variant, ``n``, seed, metrics), from :mod:`tlwidgets.layer_transfer`.
        ax: draw into these axes (default: a new figure).
        metric: which column to plot (``"accuracy"``, ``"balanced_accuracy"``).
        title: the axes' title.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    base = results.spread(metric, variant="base B")
    ax.axhspan(base.min, base.max, color="0.85", label=f"base B (min-max, {base.n} seeds)")
    ax.axhline(base.mean, color="0.4", lw=1)
    variants = [v for v in _STYLE if any(r["variant"] == v for r in results.rows)]
    for i, v in enumerate(variants):
        ns = sorted({r["n"] for r in results.rows if r["variant"] == v})
        spreads = [results.spread(metric, variant=v, n=n) for n in ns]
        color, marker, ls = _STYLE[v]
        xs = [n + (i - 1.5) * 0.06 for n in ns]  # a small offset so the bars do not hide each other
        ax.plot(xs, [s.mean for s in spreads], marker=marker, ls=ls, color=color, label=v)
        ax.vlines(xs, [s.min for s in spreads], [s.max for s in spreads], color=color, alpha=0.6)
    chance = results.rows[0]["chance"]
    ax.axhline(chance, color="k", ls=":", lw=1, label="chance")
    ax.set_xticks(sorted({r["n"] for r in results.rows if r["n"] > 0}))
    ax.set_xlabel("n = layer groups copied from the source network")
    ax.set_ylabel(f"test {metric.replace('_', ' ')} on task B")
    ax.set_title(title or "Which layers transfer (mean; bars: min-max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return ax.figure


def plot_cut_sweep(tables: dict[str, SeedResults], order: Sequence[str], ax: Axes | None = None, *,
                   metric: str = "accuracy", key: str = "features", title: str | None = None) -> Figure | SubFigure:
    """Accuracy of a linear head on the pooled output of each cut, one line per task (``name -> SeedResults``),
    cuts in network order; bars from the worst to the best seed, chance dotted. Returns the Figure.

    Args:
        tables: one table of seeded results per task.
        order: the cuts, in network order (the x axis).
        ax: draw into these axes (default: a new figure).
        metric: which column to plot.
        key: the column of a row that names its cut.
        title: the axes' title.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    xs = list(range(len(order)))
    for name, res in tables.items():
        spreads = [res.spread(metric, **{key: c}) for c in order]
        line, = ax.plot(xs, [s.mean for s in spreads], marker="o", label=name)
        ax.vlines(xs, [s.min for s in spreads], [s.max for s in spreads], color=line.get_color(), alpha=0.6)
        ax.axhline(res.rows[0]["chance"], color=line.get_color(), ls=":", lw=1)
    ax.set_xticks(xs, list(order))
    ax.set_xlabel("cut after group (deeper →)")
    ax.set_ylabel(f"test {metric.replace('_', ' ')}")
    ax.set_title(title or "Feature extraction at each cut (dotted: chance)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax.figure
