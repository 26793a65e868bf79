"""tlwidgets.table: the one results table (text, Markdown, HTML) that lessons, dashboard, course and docs use."""
import html.parser

import numpy as np
import pytest

import tlwidgets as tl
from tlwidgets.experiments import Table as LessonTable
from tlwidgets.table import Column, Table, format_value

ROWS = [{"strategy": "scratch", "acc": 0.51234, "params": 12345, "stopped": None},
        {"strategy": "<fine>", "acc": 0.9}]


class _Cells(html.parser.HTMLParser):
    """The text of every th/td, in order: what a browser would show."""

    def __init__(self):
        super().__init__()
        self.cells, self._open = [], False

    def handle_starttag(self, tag, attrs):
        if tag in ("th", "td"):
            self.cells.append("")
            self._open = True

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self._open = False

    def handle_data(self, data):
        if self._open:
            self.cells[-1] += data


def _cells(markup: str) -> list[str]:
    p = _Cells()
    p.feed(markup)
    return p.cells


def test_one_type_everywhere():
    assert LessonTable is Table and tl.Table is Table


@pytest.mark.parametrize("value, text", [(None, "-"), (True, "True"), (12345, "12,345"), (np.int64(7), "7"),
                                         (0.51234, "0.512"), (np.float32(0.25), "0.250"), (float("nan"), "nan"),
                                         ("all", "all")])
def test_number_formatting(value, text):
    assert format_value(value) == text


def test_markdown_output_and_escaping():
    md = Table(ROWS + [{"strategy": "a|b\nc", "acc": 1}], title="runs").to_markdown().splitlines()
    assert md[:2] == ["**runs**", ""]
    assert md[2] == "| strategy | acc | params | stopped |"
    assert md[3] == "|---:|---:|---:|---:|"
    assert md[4] == "| scratch | 0.512 | 12,345 | - |"
    assert md[5] == "| &lt;fine> | 0.900 | - | - |"       # missing column: the missing mark; markup escaped
    assert md[6] == "| a\\|b c | 1 | - | - |"                # a pipe cannot end a cell, a newline not the row


def test_html_output_escapes_every_text():
    t = Table(ROWS, [Column("strategy", label="<b>name</b>", align="left"), "acc"], title="x < y",
              row_attrs=lambda r: {"data-name": r["strategy"] + "' onclick='bad"},
              html_attrs={"class": "tl-results"})
    out = t.to_html()
    assert _cells(out) == ["<b>name</b>", "acc", "scratch", "0.512", "<fine>", "0.900"]
    assert "<fine>" not in out and "&lt;fine&gt;" in out and "<b>name</b>" not in out
    assert "x &lt; y" in out and "onclick='bad" not in out and "&#x27; onclick=&#x27;bad" in out
    assert out.startswith("<table class='tl-results'>") and out.count("<tr data-name=") == 2
    assert "text-align:left'>scratch" in out and "text-align:right'>0.512" in out
    assert t._repr_html_() == out and t._repr_markdown_() == t.to_markdown()


def test_text_repr_aligns_columns():
    text = repr(Table(ROWS, title="runs")).splitlines()
    assert text[0] == "runs"
    assert text[1].split() == ["strategy", "acc", "params", "stopped"]
    assert text[2].split() == ["scratch", "0.512", "12,345", "-"]
    assert len({len(line) for line in text[1:]}) == 1


def test_per_column_format_alignment_and_emphasis():
    t = Table([{"n": 3, "acc": 0.5, "s": 12.345}, {"n": 4, "acc": 0.75, "s": None}],
              [Column("n", fmt=str, align="left"), Column("acc", fmt=".1%", emphasis=lambda v: v == 0.75),
               Column("s", "seconds", fmt=lambda v: f"{v:.1f} s", align="auto")], missing="n/a")
    md = t.to_markdown().splitlines()
    assert md[0] == "| n | acc | seconds |" and md[1] == "|---|---:|---:|"
    assert md[2:] == ["| 3 | 50.0% | 12.3 s |", "| 4 | **75.0%** | n/a |"]
    assert "<b>75.0%</b>" in t.to_html() and "<b>50.0%</b>" not in t.to_html()
    assert Table([{"x": "a"}, {"x": 1}], [Column("x", align="auto")]).to_markdown().splitlines()[1] == "|---|"


def test_empty_table():
    t = Table([], ["a", "b"], empty="no runs yet")
    assert len(t) == 0 and t.column("a") == []
    assert t.to_markdown().splitlines() == ["| a | b |", "|---:|---:|", "", "*no runs yet*"]
    assert _cells(t.to_html()) == ["a", "b", "no runs yet"] and "colspan='2'" in t.to_html()
    assert repr(t).splitlines() == ["a  b", "no runs yet"]
    assert Table([]).to_markdown() == "" and _cells(Table([]).to_html()) == [] and repr(Table([])) == ""


def test_columns_default_to_every_key_in_first_seen_order():
    t = Table({"b": i} if i == 1 else {"a": 2, "b": 3} for i in (1, 2))   # a generator: read once
    assert t.columns == ["b", "a"] and t.column("a") == [None, 2] and len(t) == 2


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="align must be one of .*got 'centre'"):
        Column("x", align="centre")
    with pytest.raises(TypeError, match="rows must be a sequence of dicts.*wrap it in a list"):
        Table({"a": 1})
    with pytest.raises(TypeError, match=r"rows must be dicts \(one per row\), got a tuple"):
        Table([("a", 1)])
    with pytest.raises(TypeError, match="Column key must be a string"):
        Column(3)
