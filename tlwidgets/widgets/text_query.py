"""The one text-box view: type something, see what a pure function makes of it (lessons 7 and 8).

:class:`TextQueryView` is an ``ipywidgets.VBox`` with a synced ``value`` trait (the text), linked both ways
to its ``Text`` box, an HTML panel and an :class:`~._util.ErrorBox`; a subclass says only what to compute
(``compute``) and how to show it (``render``). Word neighbours, nearest sentences and token influence are
three such views: one home for the wiring, each view a few lines over its core function.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from ._util import ErrorBox, widget_bundle

__all__ = ["TextQueryView"]


class TextQueryView(widgets.VBox):
    """A text box over a computation. ``value`` (synced) is the text; ``result`` is the last computation.

    Subclasses implement ``compute(text) -> result`` and ``render(result) -> html`` (and may add controls
    before the panel through ``controls``); an exception is shown in red under the box, never lost.
    """

    value = traitlets.Unicode("", help="the text in the box").tag(sync=True)
    #: the panel's text while the box is empty
    EMPTY = "<i>type something</i>"

    def __init__(self, value: str, *, description: str, css_class: str, width: str = "520px",
                 continuous_update: bool = False, placeholder: str = "", controls: tuple = ()):
        self.result: Any = None
        self.errors = ErrorBox()
        self.text = widgets.Text(value=value, description=description, continuous_update=continuous_update,
                                 placeholder=placeholder, layout=widgets.Layout(width=width))
        self.text.add_class(css_class)
        self.panel = widgets.HTML()
        super().__init__([widgets.HBox([self.text, *controls]) if controls else self.text, self.panel,
                          self.errors.widget])
        self._link = traitlets.link((self.text, "value"), (self, "value"))
        self.refresh = self.errors.guard(self._refresh, type(self).__name__)
        self.observe(lambda change: self.refresh(), names="value")
        self.refresh()

    def _refresh(self) -> None:
        text = self.value.strip()
        self.result = self.compute(text) if text else None
        self.panel.value = self.render(self.result) if text else self.EMPTY

    def compute(self, text: str) -> Any:          # pragma: no cover - every view overrides it
        raise NotImplementedError

    def render(self, result: Any) -> str:         # pragma: no cover - every view overrides it
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        return widget_bundle(super(), repr(self), **kwargs)
