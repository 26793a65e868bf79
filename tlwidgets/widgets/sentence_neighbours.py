"""Type a sentence, see which review sentences a pretrained transformer puts next to it (lesson 8).

The search is :func:`tlwidgets.transformer.nearest_sentences` (core, tested without a browser); this view only
wires a text box to it. ``embed`` turns a list of sentences into vectors (the lesson passes the frozen
encoder's :func:`~tlwidgets.transformer.sentence_embeddings`), so the view needs no model of its own.
Headless, its plain-text form shows the same list.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..table import Column, Table
from ..transformer import nearest_sentences
from .text_query import TextQueryView

__all__ = ["SentenceNeighbours"]


class SentenceNeighbours(TextQueryView):
    """``display(SentenceNeighbours(embed, texts, embeddings))``: the ``k`` sentences nearest to what you type.

    A widget (an ``ipywidgets.VBox``) whose synced trait ``value`` is the query; ``results`` is the list of
    ``(sentence, cosine)`` shown.

    Args:
        embed: sentences → ``(n, d)`` vectors (the same encoder that made ``embeddings``).
        texts: the sentences to search.
        embeddings: their vectors, one row per text.
        value: the first query.
        k: how many neighbours.
        labels: optional label name per text, shown beside it.
    """

    EMPTY = Table([], [Column("text", "nearest sentences", align="left")], empty="type a sentence").to_html()

    def __init__(self, embed: Callable[[list[str]], torch.Tensor], texts: Sequence[str], embeddings: torch.Tensor,
                 value: str = "The battery died after a week.", k: int = 5, labels: Sequence[str] | None = None):
        if not callable(embed):
            raise TypeError(f"embed must be a function from sentences to vectors, got {type(embed).__name__}")
        if len(texts) != len(embeddings) or (labels is not None and len(labels) != len(texts)):
            raise ValueError(f"texts ({len(texts)}), embeddings ({len(embeddings)}) and labels "
                             f"({'-' if labels is None else len(labels)}) must have one entry per sentence")
        self.embed, self.texts, self.embeddings = embed, list(texts), embeddings
        self.labels = dict(zip(self.texts, labels)) if labels is not None else {}
        self.k = k
        super().__init__(value, description="sentence", css_class="tl-sentence-query")

    @property
    def results(self) -> list[tuple[str, float]]:
        return self.result or []

    def compute(self, text: str) -> list[tuple[str, float]]:
        return nearest_sentences(self.embed([text])[0], self.embeddings, self.texts, self.k, exclude=text)

    def render(self, result: list[tuple[str, float]]) -> str:
        rows = [{"sim": f"{s:.2f}", "label": self.labels.get(t, ""), "text": t} for t, s in result]
        cols = [Column("sim", "cosine"), Column("text", "nearest sentences", align="left")]
        if self.labels:
            cols.insert(1, Column("label", "label", align="left"))
        return Table(rows, cols, empty="type a sentence").to_html()

    def __repr__(self) -> str:
        lines = [f"nearest to {self.value!r}:"]
        lines += [f"  {s:.2f}  {('[' + self.labels[t] + '] ') if t in self.labels else ''}{t}"
                  for t, s in self.results]
        return "\n".join(lines)
