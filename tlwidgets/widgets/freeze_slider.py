"""A slider over a model's layer groups: how many stay frozen, and what that leaves to train.

Students see, while they drag, which groups keep their pretrained weights and
how many parameters the optimiser will actually update. Moving the slider
calls :func:`tlwidgets.freezing.freeze` at once, so the model in the notebook
is always in the state the slider shows.
"""
from __future__ import annotations

import html

import ipywidgets as widgets

from ..freezing import FreezeReport, freeze, freeze_report, max_frozen
from ..models import GroupedModel
from ..validate import check_int
from ._util import ErrorBox, fmt_params, widget_bundle

__all__ = ["FreezeSlider", "count_text", "group_rows", "groups_html"]


# --------------------------------------------------------------------------- logic (plain pytest)
def count_text(report: FreezeReport) -> str:
    """'trainable: 1,234 / 5,678 parameters (21.7%)' for a :class:`FreezeReport`."""
    return (f"trainable: {fmt_params(report.trainable)} / {fmt_params(report.total)} parameters "
            f"({report.trainable_fraction:.1%})")


def group_rows(report: FreezeReport) -> list[tuple[str, int, str]]:
    """``(group, parameters, 'frozen' | 'trainable')`` per group, stem first."""
    return [(name, params, "frozen" if frozen else "trainable") for name, params, frozen in report.groups]


def groups_html(report: FreezeReport) -> str:
    """The group list as a compact HTML table: frozen groups grey and italic, trainable ones green.

    Colour and the state word only (no emoji: a browser without an emoji font shows boxes).
    """
    cells = []
    for name, params, state in group_rows(report):
        frozen = state == "frozen"
        colour, bg, font = ("#546e7a", "#eceff1", "italic") if frozen else ("#1b5e20", "#e8f5e9", "normal")
        cells.append(f"<tr style='background:{bg};color:{colour};font-style:{font}' data-state='{state}'>"
                     f"<td style='padding:1px 8px;font-family:monospace'>{html.escape(name)}</td>"
                     f"<td style='padding:1px 8px;text-align:right'>{fmt_params(params)}</td>"
                     f"<td style='padding:1px 8px'>{state}</td></tr>")
    return ("<table class='tl-freeze-groups' style='border-collapse:collapse;font-size:12px'>"
            "<tr><th style='text-align:left'>group</th><th>parameters</th><th>state</th></tr>"
            + "".join(cells) + "</table>")


# --------------------------------------------------------------------------- view
class FreezeSlider:
    """``display(FreezeSlider(model))``: drag to freeze the first *n* layer groups of ``model``.

    0 trains everything (full fine-tuning); the maximum leaves only the head
    trainable (feature extraction). Setting :attr:`value` outside the range
    raises instead of clamping. ``frozen_bn`` is passed to :func:`~tlwidgets.freezing.freeze`.
    Creating the slider does not change the model; it shows the model's
    current state.
    """

    def __init__(self, model: GroupedModel, *, description: str = "frozen groups", frozen_bn: str = "eval"):
        if not isinstance(model, GroupedModel):
            raise TypeError(f"FreezeSlider needs a tlwidgets GroupedModel, got {type(model).__name__}")
        self.model = model
        self.frozen_bn = frozen_bn
        self.errors = ErrorBox()
        self._syncing = False
        report = freeze_report(model)
        self.slider = widgets.IntSlider(value=report.num_frozen, min=0, max=max_frozen(model), step=1,
                                        description=description, continuous_update=True,
                                        style={"description_width": "initial"},
                                        layout=widgets.Layout(width="360px"))
        self.slider.add_class("tl-freeze-slider")
        self.count_label = widgets.HTML(self._count_html(report))
        self.count_label.add_class("tl-freeze-count")
        self.groups_view = widgets.HTML(groups_html(report))
        self.widget = widgets.VBox([widgets.HBox([self.slider, self.count_label]), self.groups_view,
                                    self.errors.widget])
        self.widget.add_class("tl-freeze-slider-box")
        self.slider.observe(self.errors.guard(self._on_value, "freeze"), names="value")

    @staticmethod
    def _count_html(report: FreezeReport) -> str:
        return f"<span class='tl-count'>{html.escape(count_text(report))}</span>"

    def _on_value(self, change) -> None:
        if self._syncing:
            return
        report = freeze(self.model, int(change["new"]), frozen_bn=self.frozen_bn)
        self._show(report)

    def _show(self, report: FreezeReport) -> None:
        self.count_label.value = self._count_html(report)
        self.groups_view.value = groups_html(report)

    # -- Python API ---------------------------------------------------------------
    @property
    def value(self) -> int:
        """Number of frozen groups; setting it moves the slider and freezes the model (out of range: refused)."""
        return self.slider.value

    @value.setter
    def value(self, n: int) -> None:
        n = check_int("value", n)  # NumPy integers too; 2.0 or "2" refused
        if not self.slider.min <= n <= self.slider.max:
            raise ValueError(f"value must be in {self.slider.min}..{self.slider.max} (groups of {self.model.name} "
                             f"that can be frozen; the head always trains), got {n}")
        self.slider.value = n

    @property
    def report(self) -> FreezeReport:
        """The model's current :class:`FreezeReport` (read from the model, not from the slider)."""
        return freeze_report(self.model)

    @property
    def count(self) -> str:
        """The text the count label shows."""
        return count_text(self.report)

    def refresh(self) -> None:
        """Re-read the model (after ``freeze()`` was called elsewhere) without changing it."""
        report = freeze_report(self.model)
        self._syncing = True
        try:
            self.slider.value = report.num_frozen
        finally:
            self._syncing = False
        self._show(report)

    def _repr_mimebundle_(self, **kwargs):
        return widget_bundle(self.widget, repr(self), **kwargs)

    def __repr__(self) -> str:
        r = self.report
        return (f"FreezeSlider({self.model.name}: {r.num_frozen}/{max_frozen(self.model)} groups frozen, "
                f"{count_text(r)})")
