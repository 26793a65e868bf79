"""Type a sentence, see which of its tokens moved a classifier's answer, and which way (lesson 8).

The measurement is :func:`tlwidgets.transformer.token_influence` (core, tested without a browser: leave
each token out, re-read the class probability); this view is a text box over it that colours every token
by how far it pushed the answer — green towards the shown class, red away. ``explain`` turns a sentence
into a :class:`~tlwidgets.transformer.TokenInfluence` (the lesson binds the model and tokenizer), so the
view holds no model. Headless, its plain-text form lists the tokens that moved the answer most.
"""
from __future__ import annotations

import html
from collections.abc import Callable

from ..transformer import TokenInfluence
from .text_query import TextQueryView

__all__ = ["TokenInfluenceView", "influence_html"]


def influence_html(result: TokenInfluence) -> str:
    """The sentence as coloured token chips: green pushed towards ``result.target``, red away, the stronger the
    colour the larger the change (scaled to the largest in the sentence); the number is the change in points."""
    largest = max((abs(v) for v in result.influence), default=0.0) or 1.0
    chips = []
    for token, value in zip(result.tokens, result.influence):
        alpha = min(1.0, abs(value) / largest)
        rgb = "46,125,50" if value >= 0 else "198,40,40"
        chips.append(f"<span class='tl-token' data-influence='{value:.4f}' title='{100 * value:+.1f} points' "
                     f"style='background:rgba({rgb},{0.1 + 0.6 * alpha:.2f});padding:1px 4px;margin:1px;"
                     f"border-radius:3px;font-family:monospace'>{html.escape(token)}</span>")
    target = html.escape(result.target)
    head = (f"<div class='tl-token-answer'>answer: <b>{html.escape(result.predicted)}</b>; "
            f"p({target}) = {result.probability:.2f}. Each token coloured by how much p({target}) falls when it "
            f"is left out (green: it pushed towards {target}, red: away).</div>")
    return head + "<div style='line-height:2'>" + "".join(chips) + "</div>"


class TokenInfluenceView(TextQueryView):
    """``display(TokenInfluenceView(explain))``: which tokens of the typed sentence moved the answer.

    A widget (an ``ipywidgets.VBox``) whose synced trait ``value`` is the sentence: set it, observe it or link
    it like any widget's. ``result`` is the last :class:`~tlwidgets.transformer.TokenInfluence`.

    Args:
        explain: a sentence → :class:`~tlwidgets.transformer.TokenInfluence` (e.g. ``lambda s:
            tr.token_influence(model, tokenizer, s)``).
        value: the first sentence.
    """

    EMPTY = "<i>type a sentence</i>"

    def __init__(self, explain: Callable[[str], TokenInfluence], value: str = "Not bad at all, I loved it."):
        if not callable(explain):
            raise TypeError(f"explain must be a function from a sentence to a TokenInfluence, got "
                            f"{type(explain).__name__}")
        self.explain = explain
        super().__init__(value, description="sentence", css_class="tl-influence-query")
        self.panel.add_class("tl-influence")

    def compute(self, text: str) -> TokenInfluence:
        return self.explain(text)

    def render(self, result: TokenInfluence) -> str:
        return influence_html(result)

    def __repr__(self) -> str:
        if self.result is None:
            return "TokenInfluenceView(no sentence)"
        moved = ", ".join(f"{t} {100 * v:+.1f}" for t, v in self.result.top(5))
        return (f"{self.result.text!r}: answer {self.result.predicted} (p({self.result.target}) = "
                f"{self.result.probability:.2f}); tokens that moved it most (points): {moved}")
