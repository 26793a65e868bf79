"""apps/dogs_to_cats.ipynb (the Voilà app) is exactly what apps/make_app_notebook.py writes, and knows lesson 8."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]


def _builder():
    spec = importlib.util.spec_from_file_location("make_app_notebook", REPO / "apps" / "make_app_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_app_is_the_generated_one():
    built = _builder().build()
    stored = nbformat.read(REPO / "apps" / "dogs_to_cats.ipynb", as_version=4)
    assert [c.source for c in stored.cells] == [c.source for c in built.cells], \
        "apps/dogs_to_cats.ipynb is stale: run .venv/bin/python apps/make_app_notebook.py"


def test_the_app_shows_the_dashboard_the_digit_pad_and_lesson_8s_token_view():
    code = "\n".join(c.source for c in _builder().build().cells if c.cell_type == "code")
    for needed in ("Dashboard(", "DigitPad(", "TokenInfluenceView(", "tr.token_influence(", "tl.fit_linear_head("):
        assert needed in code, needed
    compile(code, "app", "exec")      # the cells are valid Python as Voilà will run them
