"""Type words, see what pretrained word vectors put next to them (lesson 7), and a 2-D map of words.

The logic (reading the query, finding neighbours, writing the table) is in
plain functions over :mod:`tlwidgets.text`, so it is tested without a browser;
:class:`WordNeighbours` only wires a text box and a slider to it. A query is
either words (``terrible delicious``: neighbours of each) or one sum
(``king - man + woman``: neighbours of the resulting vector, the words used
excluded). In a headless run the view's plain-text form shows the same table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ipywidgets as widgets
import torch

from ..table import Column, Table
from ..text import WordVectors, nearest, tokenize
from .text_query import TextQueryView

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["WordNeighbours", "QueryResult", "parse_query", "run_query", "results_html", "results_text",
           "plot_words_2d"]

_SUM = re.compile(r"\s[+-]\s|^\s*-")


@dataclass(frozen=True)
class QueryResult:
    """Neighbours of one word or one vector sum; ``missing`` names words without a vector."""

    query: str
    neighbours: tuple[tuple[str, float], ...]
    missing: tuple[str, ...] = ()


def parse_query(text: str) -> list[tuple[int, str]] | list[str]:
    """``"king - man + woman"`` → ``[(1, 'king'), (-1, 'man'), (1, 'woman')]``; ``"good bad"`` → ``['good', 'bad']``.

    Words are lower-cased and tokenized like GloVe (so ``Don't`` asks for ``do`` and ``n't``).
    """
    if not isinstance(text, str):
        raise TypeError(f"a query is a string, got {type(text).__name__}")
    if _SUM.search(" " + text.strip() + " ") is None:
        return list(dict.fromkeys(t for t in tokenize(text) if re.search(r"\w", t)))
    terms, sign = [], 1
    for part in re.split(r"(\s[+-]\s|^\s*-\s*)", " " + text.strip() + " "):
        stripped = part.strip()
        if stripped in ("+", "-"):
            sign = 1 if stripped == "+" else -1
            continue
        for tok in (t for t in tokenize(part) if re.search(r"\w", t)):
            terms.append((sign, tok))
            sign = 1
    return terms


def run_query(wv: WordVectors, text: str, k: int = 8) -> list[QueryResult]:
    """The neighbours the widget shows for ``text`` (see :func:`parse_query`)."""
    parsed = parse_query(text)
    if not parsed:
        return []
    if isinstance(parsed[0], str):
        return [QueryResult(w, tuple(nearest(wv, w, k)) if w in wv else (), () if w in wv else (w,))
                for w in parsed]
    missing = tuple(w for _, w in parsed if w not in wv)
    label = " ".join(("+ " if s > 0 else "- ") + w for s, w in parsed).removeprefix("+ ")
    if missing:
        return [QueryResult(label, (), missing)]
    vec = torch.stack([s * wv[w] for s, w in parsed]).sum(0)
    return [QueryResult(label, tuple(nearest(wv, vec, k, exclude=[w for _, w in parsed])))]


def results_text(results: list[QueryResult]) -> str:
    """One line per query: ``terrible → horrible 0.94, awful 0.89, ...``."""
    lines = []
    for r in results:
        if r.missing:
            lines.append(f"{r.query} → no vector for {', '.join(r.missing)}")
        else:
            lines.append(f"{r.query} → " + ", ".join(f"{w} {s:.2f}" for w, s in r.neighbours))
    return "\n".join(lines) if lines else "(type a word)"


def results_html(results: list[QueryResult]) -> str:
    """The results as a small HTML table (the project's one :class:`~tlwidgets.table.Table`): the query, then
    its neighbours with their cosine similarity; a query with a word that has no vector in red."""
    rows = [{"query": r.query, "missing": bool(r.missing),
             "nearest": f"no vector for {', '.join(r.missing)}" if r.missing
             else ", ".join(f"{w} {s:.2f}" for w, s in r.neighbours)} for r in results]
    return Table(rows, [Column("query", align="left", style="font-family:monospace;padding-right:10px"),
                        Column("nearest", "nearest words (cosine similarity)", align="left")],
                 empty="type a word, several words, or a sum like king - man + woman",
                 row_attrs=lambda r: {"style": "color:#b00020"} if r["missing"] else {},
                 html_attrs={"class": "tl-neighbours", "style": "font-size:13px"}).to_html()


class WordNeighbours(TextQueryView):
    """``display(WordNeighbours(wv))``: a text box; the nearest words of what you type, updated as you type.

    A widget (an ``ipywidgets.VBox``) whose synced trait ``value`` is the query (set it from Python as the
    browser does); ``results`` holds what is shown; the ``k_slider`` sets how many neighbours.
    """

    def __init__(self, wv: WordVectors, value: str = "terrible delicious", k: int = 8):
        if not isinstance(wv, WordVectors):
            raise TypeError(f"WordNeighbours needs tl.load_word_vectors()'s WordVectors, got {type(wv).__name__}")
        self.wv = wv
        self.k_slider = widgets.IntSlider(value=k, min=1, max=20, description="neighbours",
                                          layout=widgets.Layout(width="300px"))
        self.EMPTY = results_html([])
        super().__init__(value, description="words", css_class="tl-word-query", width="420px",
                         continuous_update=True, placeholder="terrible   or   king - man + woman",
                         controls=(self.k_slider,))
        self.panel.add_class("tl-word-neighbours")
        self.k_slider.observe(lambda change: self.refresh(), names="value")

    @property
    def results(self) -> list[QueryResult]:
        return self.result or []

    def compute(self, text: str) -> list[QueryResult]:
        return run_query(self.wv, text, self.k_slider.value)

    def render(self, result: list[QueryResult]) -> str:
        return results_html(result)

    def __repr__(self) -> str:
        return f"WordNeighbours({self.wv.name}, query {self.value!r}, k={self.k_slider.value})\n" + \
            results_text(self.results)


def plot_words_2d(wv: WordVectors, groups: dict[str, list[str]], title: str | None = None) -> Figure:
    """Words placed by the first two principal components of their vectors, coloured and labelled by group.

    Words without a vector are left out (and listed in the title), never silently replaced.
    """
    import matplotlib.pyplot as plt

    from .gallery import pca_2d

    words: list[str] = []
    labels: list[int] = []      # the group of each word in ``words``
    missing: list[str] = []
    for g, ws in enumerate(groups.values()):
        for w in ws:
            (words if w in wv else missing).append(w)
            if w in wv:
                labels.append(g)
    if len(words) < 2:
        raise ValueError(f"need at least 2 words with vectors to plot, got {words}")
    proj, (v1, v2) = pca_2d(torch.stack([wv[w] for w in words]))
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    cmap = plt.get_cmap("tab10")
    for g, name in enumerate(groups):
        m = torch.tensor(labels) == g
        ax.scatter(proj[m, 0].numpy(), proj[m, 1].numpy(), s=18, color=cmap(g % 10), label=name)
    for (x, y), w, g in zip(proj.tolist(), words, labels):
        ax.annotate(w, (x, y), fontsize=8, color=cmap(g % 10), xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel(f"PC 1 ({v1:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({v2:.0%} of variance)")
    extra = f" (no vector: {', '.join(missing)})" if missing else ""
    ax.set_title((title or "word vectors, first two principal components") + extra, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig
