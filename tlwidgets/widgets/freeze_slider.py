"""A slider over a model's layer groups: how many stay frozen, what that leaves to train, and how well it did.

Students see, while they drag, which groups keep their pretrained weights and
how many parameters the optimiser will actually update. Moving the slider
calls :func:`tlwidgets.freezing.freeze` at once, so the model in the notebook
is always in the state the slider shows.

The slider also *follows* the model: a ``tl.freeze(model, n)`` anywhere moves
it at once (through :func:`tlwidgets.freezing.on_freeze`), and freezing by hand
(``p.requires_grad_(False)``) shows up after the cell that did it has run
(an IPython ``post_run_cell`` hook re-reads every live slider) or on
:meth:`FreezeSlider.refresh`. What it shows is always read from the
parameters' ``requires_grad`` flags, never from a remembered number.

Beside it, once runs at several freeze depths have been measured
(:meth:`FreezeSlider.show_results` with ``RunResult`` objects or result-table
rows), the accuracy reached at each depth: an instructor can move the slider
and read off how far unfreezing paid.
"""
from __future__ import annotations

import html
import math
import weakref
from collections.abc import Callable, Iterable

import ipywidgets as widgets
import traitlets

from ..freezing import FreezeReport, freeze, freeze_report, frozen_prefix, group_states, max_frozen, on_freeze
from ..models import GroupedModel
from ..table import Column, Table
from ..validate import check_int
from ._util import ErrorBox, fmt_params, widget_bundle

__all__ = ["FreezeSlider", "count_text", "group_rows", "groups_html", "accuracy_by_depth", "depth_table_html"]

METRICS = ("val_acc", "test_acc", "acc")


# --------------------------------------------------------------------------- logic (plain pytest)
def count_text(report: FreezeReport) -> str:
    """'trainable: 1,234 / 5,678 parameters (21.7%)' for a :class:`FreezeReport`."""
    return (f"trainable: {fmt_params(report.trainable)} / {fmt_params(report.total)} parameters "
            f"({report.trainable_fraction:.1%})")


def group_rows(report: FreezeReport, states: list[str] | None = None) -> list[tuple[str, int, str]]:
    """``(group, parameters, 'frozen' | 'trainable' | 'mixed')`` per group, stem first.

    ``states`` (from :func:`~tlwidgets.freezing.group_states`) can say 'mixed'
    for a group frozen only in part by hand; without it the report's flags are used.
    """
    if states is None:
        states = ["frozen" if frozen else "trainable" for _, _, frozen in report.groups]
    return [(name, params, state) for (name, params, _), state in zip(report.groups, states)]


def groups_html(report: FreezeReport, states: list[str] | None = None) -> str:
    """The group list as a compact HTML table: frozen groups grey and italic, trainable ones green, mixed orange.

    Colour and the state word only (no emoji: a browser without an emoji font shows boxes).
    """
    rows = [{"group": name, "parameters": params, "state": state} for name, params, state in group_rows(report, states)]
    return Table(rows, [Column("group", align="left", style="font-family:monospace"), Column("parameters"),
                        Column("state", align="left")],
                 row_attrs=_group_row_attrs, cell_style="padding:1px 8px",
                 html_attrs={"class": "tl-freeze-groups", "style": "border-collapse:collapse;font-size:12px"}
                 ).to_html()


_GROUP_STYLE = {"frozen": ("#546e7a", "#eceff1", "italic"), "trainable": ("#1b5e20", "#e8f5e9", "normal"),
                "mixed": ("#e65100", "#fff3e0", "normal")}


def _group_row_attrs(row: dict) -> dict[str, str]:
    colour, bg, font = _GROUP_STYLE[row["state"]]
    return {"style": f"background:{bg};color:{colour};font-style:{font}", "data-state": row["state"]}


def _row_dict(row) -> dict:
    if hasattr(row, "row") and callable(row.row):  # a RunResult
        out = dict(row.row())
        for key in ("val_acc", "n_frozen"):
            if hasattr(row, key) and key not in out:
                out[key] = getattr(row, key)
        return out
    if isinstance(row, dict):
        return row
    raise TypeError(f"results must be RunResult objects or dict rows, got {type(row).__name__}")


def accuracy_by_depth(results: Iterable, metric: str | None = None, *,
                      strategy: str | None = "fine_tune") -> tuple[str, dict[int, list[float]]]:
    """``(metric, {n_frozen: [accuracy of each run]})`` from ``RunResult`` objects or result rows.

    Rows carry their depth as ``n_frozen`` (as ``RunResult.row()`` does). ``metric``
    defaults to ``val_acc`` when the rows have it (depth is a choice, and
    choices are made on validation), else ``test_acc``. Only rows of
    ``strategy`` count (``None``: all); feature extraction is the deepest
    depth and is counted as such when its rows carry a depth.
    """
    rows = [_row_dict(r) for r in results]
    if strategy is not None:
        rows = [r for r in rows if r.get("strategy", strategy) in (strategy, "feature_extraction")]
    if metric is None:
        metric = next((m for m in METRICS if any(isinstance(r.get(m), (int, float)) for r in rows)), "val_acc")
    elif metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    by_depth: dict[int, list[float]] = {}
    for r in rows:
        depth, value = r.get("n_frozen"), r.get(metric)
        if isinstance(depth, bool) or not isinstance(depth, int):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            continue
        by_depth.setdefault(int(depth), []).append(float(value))
    return metric, by_depth


def _summary(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.1%} (1 run)"
    return f"{mean:.1%} ({len(values)} runs, {min(values):.1%}–{max(values):.1%})"


def depth_table_html(metric: str, by_depth: dict[int, list[float]], max_depth: int, current: int) -> str:
    """One column per freeze depth: the mean accuracy measured there, the slider's position outlined, the best bold.

    Args:
        metric: the name of the accuracy shown (the row's label).
        by_depth: accuracies measured at each number of frozen groups.
        max_depth: the deepest position the slider can take (one column per depth up to it).
        current: the slider's position, outlined.
    """
    if not by_depth:
        return ("<div class='tl-freeze-accuracy' data-measured='0' style='font-size:12px;color:#607d8b'>"
                "no runs measured yet: accuracy per freeze depth appears here</div>")
    means = {d: sum(v) / len(v) for d, v in by_depth.items()}
    best = max(means, key=means.__getitem__)
    head, body = [], []
    for d in range(max_depth + 1):
        border = "2px solid #1565c0" if d == current else "1px solid #ddd"
        weight = "bold" if d == best else "normal"
        head.append(f"<th style='padding:1px 6px;border:{border}'>{d}</th>")
        text = f"{means[d]:.1%}" if d in means else "–"
        body.append(f"<td data-depth='{d}' style='padding:1px 6px;text-align:center;border:{border};"
                    f"font-weight:{weight}'>{text}</td>")
    here = (f"at {current} frozen: {metric} {_summary(by_depth[current])}" if current in by_depth
            else f"at {current} frozen: not measured")
    return (f"<div class='tl-freeze-accuracy' data-measured='{len(by_depth)}' style='font-size:12px'>"
            f"<table style='border-collapse:collapse'><tr><th style='text-align:left;padding-right:6px'>"
            f"frozen groups</th>{''.join(head)}</tr><tr><td style='padding-right:6px'>{html.escape(metric)}</td>"
            f"{''.join(body)}</tr></table><span class='tl-freeze-accuracy-here'>{html.escape(here)}</span></div>")


# --------------------------------------------------------------------------- view
_LIVE: weakref.WeakSet[FreezeSlider] = weakref.WeakSet()
_HOOKED = False


def _refresh_live_sliders(*_args) -> None:
    for s in list(_LIVE):
        s.refresh()


def _install_cell_hook() -> None:
    """After every notebook cell, re-read every live slider (catches freezing by hand). Once per kernel."""
    global _HOOKED
    if _HOOKED:
        return
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return
    shell = get_ipython()
    if shell is not None:
        shell.events.register("post_run_cell", _refresh_live_sliders)
        _HOOKED = True


class _GroupCount(traitlets.Int):
    """An ``Int`` trait that takes NumPy integers too and refuses 2.0 or "2", through the one argument check."""

    def validate(self, obj, value):
        return check_int(self.name, value)


class FreezeSlider(widgets.VBox):
    """``display(FreezeSlider(model))``: drag to freeze the first *n* layer groups of ``model``.

    A widget in its own right (an ``ipywidgets.VBox``) whose synced traits
    ``value`` (groups frozen), ``min``, ``max`` and ``disabled`` are what other
    code observes or links (``slider.observe(fn, names="value")``,
    ``traitlets.link((slider, "value"), ...)``): nothing needs to reach into the
    ``IntSlider`` inside it.

    0 trains everything (full fine-tuning); the maximum leaves only the head
    trainable (feature extraction). Setting :attr:`value` outside ``min..max``
    raises instead of clamping, and so does a ``max`` below the current value
    or above what the model allows. ``frozen_bn`` is passed to
    :func:`~tlwidgets.freezing.freeze`. Creating the slider does not change
    the model; it shows the model's current state, and keeps following it
    (see the module docstring).

    Args:
        model: the GroupedModel the slider freezes (a weightless one built on the
            ``meta`` device is enough when only its groups are to be shown).
        description: the slider's label.
        frozen_bn: what frozen BatchNorm layers do (passed to :func:`~tlwidgets.freezing.freeze`).
        results: optional ``RunResult`` objects or rows, to show the accuracy measured at each depth.
        metric: which accuracy of the results to show (default: validation accuracy).
    """

    value = _GroupCount(0, help="layer groups frozen, from the stem on").tag(sync=True)
    min = traitlets.Int(0, read_only=True, help="the fewest groups that can be frozen (0: train all)").tag(sync=True)
    max = _GroupCount(0, help="the most groups that may be frozen now").tag(sync=True)
    disabled = traitlets.Bool(False, help="whether dragging is allowed").tag(sync=True)

    def __init__(self, model: GroupedModel, *, description: str = "frozen groups", frozen_bn: str = "eval",
                 results: Iterable | None = None, metric: str | None = None):
        if not isinstance(model, GroupedModel):
            raise TypeError(f"FreezeSlider needs a tlwidgets GroupedModel, got {type(model).__name__}")
        self.model = model
        self.frozen_bn = frozen_bn
        self._links: list[traitlets.link] = []
        self._unhook: Callable[[], None] = lambda: None  # close() may run from __del__ before __init__ ends
        self.errors = ErrorBox()
        self._syncing = False
        self._metric = "val_acc"
        self._by_depth: dict[int, list[float]] = {}
        report = freeze_report(model)
        start = frozen_prefix(model)
        self._slider = widgets.IntSlider(value=start, min=0, max=max_frozen(model), step=1,
                                         description=description, continuous_update=True,
                                         style={"description_width": "initial"},
                                         layout=widgets.Layout(width="360px"))
        self._slider.add_class("tl-freeze-slider")
        self.count_label = widgets.HTML()
        self.count_label.add_class("tl-freeze-count")
        self.groups_view = widgets.HTML()
        self.accuracy_view = widgets.HTML(layout=widgets.Layout(margin="0 0 0 16px", display="none"))
        self.accuracy_view.add_class("tl-freeze-accuracy-box")
        super().__init__([widgets.HBox([self._slider, self.count_label]),
                          widgets.HBox([self.groups_view, self.accuracy_view]), self.errors.widget])
        self.add_class("tl-freeze-slider-box")
        with self.hold_trait_notifications():
            self.max = max_frozen(model)
            self.value = start
        # the inner IntSlider is a view of these traits: dragging sets value, setting value moves it
        self._links = [traitlets.link((self, name), (self._slider, name)) for name in ("max", "value", "disabled")]
        self._show(report)
        self.observe(self.errors.guard(self._on_value, "freeze"), names="value")
        self.observe(lambda _change: self._show(freeze_report(self.model)), names="max")
        self_ref = weakref.ref(self)

        def refresh_if_alive(_report: FreezeReport) -> None:  # a weak reference: the hook keeps no slider alive
            slider = self_ref()
            if slider is not None:
                slider.refresh()

        self._unhook = on_freeze(model, refresh_if_alive)
        _LIVE.add(self)
        _install_cell_hook()
        if results is not None:
            self.show_results(results, metric)

    @traitlets.validate("value")
    def _check_value(self, proposal) -> int:
        n = proposal["value"]
        if not self.min <= n <= self.max:
            raise ValueError(f"value must be in {self.min}..{self.max} (groups of {self.model.name} "
                             f"that can be frozen; the head always trains), got {n}")
        return n

    @traitlets.validate("max")
    def _check_max(self, proposal) -> int:
        n, top = proposal["value"], max_frozen(self.model)
        if not self.value <= n <= top:
            raise ValueError(f"max must be in {self.value}..{top} (at least the current value, at most every group "
                             f"of {self.model.name} but the head), got {n}: set value first")
        return n

    @staticmethod
    def _count_html(report: FreezeReport, states: list[str]) -> str:
        text = html.escape(count_text(report))
        prefix = next((i for i, s in enumerate(states) if s != "frozen"), len(states))
        plain = prefix < len(states) and all(s == "trainable" for s in states[prefix:])
        if not plain:
            text += (" <b style='color:#e65100'>— not a plain 'first n groups' freeze: the slider shows the "
                     "frozen groups from the stem on</b>")
        return f"<span class='tl-count'>{text}</span>"

    def _on_value(self, change) -> None:
        if self._syncing:
            return
        freeze(self.model, int(change["new"]), frozen_bn=self.frozen_bn)  # on_freeze refreshes the view

    def _show(self, report: FreezeReport) -> None:
        states = group_states(self.model)
        self.count_label.value = self._count_html(report, states)
        self.groups_view.value = groups_html(report, states)
        self.accuracy_view.value = depth_table_html(self._metric, self._by_depth, self.max, self.value)
        self.accuracy_view.layout.display = None if self._by_depth else "none"  # nothing measured: no box

    # -- Python API ---------------------------------------------------------------
    @property
    def report(self) -> FreezeReport:
        """The model's current :class:`FreezeReport` (read from the model, not from the slider)."""
        return freeze_report(self.model)

    @property
    def count(self) -> str:
        """The text the count label shows."""
        return count_text(self.report)

    def refresh(self) -> None:
        """Re-read the model (after ``freeze()`` or ``requires_grad_`` elsewhere) without changing it."""
        report = freeze_report(self.model)
        self._syncing = True
        try:
            self.value = min(frozen_prefix(self.model), self.max)
        finally:
            self._syncing = False
        self._show(report)

    def show_results(self, results: Iterable, metric: str | None = None, *,
                     strategy: str | None = "fine_tune") -> dict[int, list[float]]:
        """Show the accuracy measured at each freeze depth (``RunResult`` objects or result rows); returns it."""
        self._metric, self._by_depth = accuracy_by_depth(results, metric, strategy=strategy)
        self._show(freeze_report(self.model))
        return self._by_depth

    def accuracy_at(self, n_frozen: int | None = None) -> float | None:
        """Mean measured accuracy at ``n_frozen`` (default: the slider's position), ``None`` if not measured."""
        values = self._by_depth.get(self.value if n_frozen is None else int(n_frozen))
        return sum(values) / len(values) if values else None

    def close(self) -> None:
        """Stop following the model and close the widgets."""
        self._unhook()
        _LIVE.discard(self)
        links, self._links = self._links, []  # close() runs again from Widget.__del__: unlink once
        for link in links:
            link.unlink()
        for child in self._slider, self.count_label, self.groups_view, self.accuracy_view, self.errors.widget:
            child.close()
        super().close()

    @property
    def widget(self) -> FreezeSlider:
        """The slider itself (it is a widget); kept so code that embeds ``.widget`` in a layout still works."""
        return self

    def _repr_mimebundle_(self, **kwargs):
        return widget_bundle(super(), repr(self), **kwargs)

    def __repr__(self) -> str:
        r = self.report
        acc = self.accuracy_at()
        measured = f", {self._metric} {acc:.1%} measured here" if acc is not None else ""
        return (f"FreezeSlider({self.model.name}: {self.value}/{max_frozen(self.model)} groups frozen, "
                f"{count_text(r)}{measured})")
