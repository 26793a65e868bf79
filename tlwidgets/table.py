"""One results table for the whole project: rows of dicts, shown as text, Markdown or HTML.

The course shows results in many places: small tables in the lessons, the
dashboard's run list, the course runner's ``results.md`` (the README's table
is pasted from it), the benchmark and reliability documents. They used to be
five hand-written renderers that each escaped (or forgot to escape) and
formatted numbers their own way. :class:`Table` is the one home: it holds
the data (columns + rows) and the per-column formatting, and renders the same
content three ways:

* ``repr(table)`` / ``print(table)``: aligned plain text (terminal, logs,
  ``# NBVAL_CHECK_OUTPUT`` cells, whose stored output must stay stable);
* :meth:`Table.to_markdown`: a GitHub table for documents;
* :meth:`Table.to_html`: an escaped HTML table for notebooks and widgets
  (``_repr_html_`` / ``_repr_markdown_`` let Jupyter pick).

It is pure core (no ipywidgets, no matplotlib) and needs no pandas, which the
course does not depend on.
"""
from __future__ import annotations

import html
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Column", "Table", "format_value"]

ALIGNS = ("left", "right", "auto")


def format_value(value: Any, digits: int = 3, missing: str = "-") -> str:
    """The default cell text: ``missing`` for None, floats with ``digits`` decimals, integers with thousands
    separators, everything else ``str``.

    One rule for every table, so 0.51234 reads as 0.512 and 12345 as 12,345 wherever it is shown.
    """
    if value is None:
        return missing
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return f"{float(value):.{digits}f}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Column:
    """How one column is shown.

    Args:
        key: the row dicts' key for this column.
        label: the header (default: ``key``).
        fmt: a format spec for the value (``".1f"``, ``","``, ``".1%"``) or a function value -> text;
            default :func:`format_value`. None values show the table's ``missing`` text either way.
        align: ``"right"`` (the default: result tables are mostly numbers), ``"left"``, or ``"auto"``
            (right when every value present is a number).
        emphasis: value -> bool; True makes the cell bold in HTML and Markdown (e.g. the best run).
        style: extra CSS for this column's HTML cells (e.g. ``"font-family:monospace"``).
    """

    key: str
    label: str | None = None
    fmt: str | Callable[[Any], str] | None = None
    align: str = "right"
    emphasis: Callable[[Any], bool] | None = None
    style: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.key, str):
            raise TypeError(f"Column key must be a string, got {type(self.key).__name__} ({self.key!r})")
        if self.align not in ALIGNS:
            raise ValueError(f"Column {self.key!r}: align must be one of {ALIGNS}, got {self.align!r}")

    @property
    def header(self) -> str:
        return self.key if self.label is None else self.label


class Table:
    """Rows of dicts with per-column formatting; ``print`` shows aligned text, a notebook shows HTML.

    Args:
        rows: one mapping per row; a key a row lacks shows as ``missing``.
        columns: column keys or :class:`Column` objects, in order (default: every key, in first-seen order).
        title: a caption above the table.
        digits: decimals of floats in columns without their own ``fmt``.
        missing: the text of a missing or None value.
        empty: a message shown in place of the rows when there are none (e.g. "no runs yet").
        row_attrs: row -> HTML attributes of its ``<tr>`` (class, data-*, style), for views that style
            or find rows (the dashboard marks stopped runs).
        html_attrs: HTML attributes of the ``<table>`` element.
        cell_style: CSS added to every HTML header and data cell (e.g. padding).
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]], columns: Sequence[str | Column] | None = None, *,
                 title: str | None = None, digits: int = 3, missing: str = "-", empty: str | None = None,
                 row_attrs: Callable[[dict[str, Any]], Mapping[str, str]] | None = None,
                 html_attrs: Mapping[str, str] | None = None, cell_style: str = ""):
        if isinstance(rows, Mapping):
            raise TypeError("rows must be a sequence of dicts (one per row), got one dict: wrap it in a list")
        self.rows: list[dict[str, Any]] = []
        for r in rows:   # any iterable, a generator included, is read once, here
            if not isinstance(r, Mapping):
                raise TypeError(f"rows must be dicts (one per row), got a {type(r).__name__}: {r!r}")
            self.rows.append(dict(r))
        if columns is None:
            columns = list(dict.fromkeys(k for r in self.rows for k in r))
        self.specs: list[Column] = [c if isinstance(c, Column) else Column(c) for c in columns]
        self.title, self.digits, self.missing, self.empty = title, digits, missing, empty
        self.row_attrs, self.html_attrs, self.cell_style = row_attrs, dict(html_attrs or {}), cell_style

    # ------------------------------------------------------------------ data
    @property
    def columns(self) -> list[str]:
        """The column keys, in order."""
        return [c.key for c in self.specs]

    def column(self, name: str) -> list[Any]:
        """The raw values of one column (None where a row lacks it)."""
        return [r.get(name) for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    # ------------------------------------------------------------------ cells
    def cell(self, row: Mapping[str, Any], col: Column) -> str:
        """The text of one cell, before any escaping."""
        value = row.get(col.key)
        if value is None:
            return self.missing
        if callable(col.fmt):
            return col.fmt(value)
        if isinstance(col.fmt, str):
            return format(value, col.fmt)
        return format_value(value, self.digits, self.missing)

    def _align(self, col: Column) -> str:
        if col.align != "auto":
            return col.align
        present = [v for v in self.column(col.key) if v is not None]
        return "right" if present and all(_is_number(v) for v in present) else "left"

    def _emphasised(self, row: Mapping[str, Any], col: Column) -> bool:
        value = row.get(col.key)
        return col.emphasis is not None and value is not None and bool(col.emphasis(value))

    # ------------------------------------------------------------------ renderers
    def __repr__(self) -> str:
        """Aligned plain text: the title, the header, one line per row."""
        cells = [[self.cell(r, c) for c in self.specs] for r in self.rows]
        widths = [max([len(c.header)] + [len(row[i]) for row in cells]) for i, c in enumerate(self.specs)]
        aligns = [self._align(c) for c in self.specs]

        def line(texts: Sequence[str]) -> str:
            return "  ".join(t.ljust(w) if a == "left" else t.rjust(w)
                             for t, w, a in zip(texts, widths, aligns)).rstrip() if texts else ""

        lines = [self.title] if self.title else []
        lines.append(line([c.header for c in self.specs]))
        lines += [line(row) for row in cells]
        if not cells and self.empty:
            lines.append(self.empty)
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A GitHub Markdown table; the title as a bold line above.

        Cells are escaped as :meth:`to_html` escapes them: Markdown renders raw HTML, so a class or file name
        such as ``<img src=x onerror=...>`` would otherwise become markup. ``&`` and ``<`` become entities
        (``>`` alone cannot open a tag, so ``->`` stays readable), ``|`` is escaped and line breaks folded.
        """
        def esc(text: str) -> str:
            text = text.replace("&", "&amp;").replace("<", "&lt;")
            return text.replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")

        parts = [f"**{esc(self.title)}**", ""] if self.title else []
        if not self.specs:
            return "\n".join(parts + ([self.empty] if self.empty else [])).strip()
        parts.append("| " + " | ".join(esc(c.header) for c in self.specs) + " |")
        parts.append("|" + "|".join("---:" if self._align(c) == "right" else "---" for c in self.specs) + "|")
        for r in self.rows:
            texts = [esc(self.cell(r, c)) for c in self.specs]
            texts = [f"**{t}**" if self._emphasised(r, c) and t else t for t, c in zip(texts, self.specs)]
            parts.append("| " + " | ".join(texts) + " |")
        if not self.rows and self.empty:
            parts += ["", f"*{esc(self.empty)}*"]
        return "\n".join(parts)

    def to_html(self) -> str:
        """An HTML table; every header, cell, title and attribute value is escaped."""
        pad = self.cell_style.rstrip(";")

        def style(*parts: str) -> str:
            css = ";".join(p.rstrip(";") for p in parts if p)
            return f" style='{html.escape(css, quote=True)}'" if css else ""

        cap = (f"<caption style='text-align:left'><b>{html.escape(self.title)}</b></caption>"
               if self.title else "")
        head = "".join(f"<th{style(pad)}>{html.escape(c.header)}</th>" for c in self.specs)
        body = []
        for r in self.rows:
            cells = []
            for c in self.specs:
                text = html.escape(self.cell(r, c))
                if self._emphasised(r, c):
                    text = f"<b>{text}</b>"
                cells.append(f"<td{style(pad, f'text-align:{self._align(c)}', c.style)}>{text}</td>")
            attrs = _attributes(self.row_attrs(r)) if self.row_attrs else ""
            body.append(f"<tr{attrs}>" + "".join(cells) + "</tr>")
        if not self.rows and self.empty:
            body.append(f"<tr class='tl-table-empty'><td colspan='{max(1, len(self.specs))}'"
                        f"{style(pad, 'color:#666')}>{html.escape(self.empty)}</td></tr>")
        return (f"<table{_attributes(self.html_attrs)}>{cap}<thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _attributes(attrs: Mapping[str, str]) -> str:
    """`` name='value'`` pairs, values escaped (quotes included) so no value can break out of its attribute."""
    return "".join(f" {name}='{html.escape(str(value), quote=True)}'" for name, value in attrs.items())
