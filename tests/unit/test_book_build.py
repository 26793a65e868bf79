"""book/build.py's rules for the static site: nothing a page renders may need a CDN, saved controls do not move
(no kernel answers them), and Jupyter Book's Thebe snippets (declared twice, pointing at unpkg.com) are gone."""
from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def _builder():
    spec = importlib.util.spec_from_file_location("tllab_book_build_unit", REPO / "book" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(module: str, name: str, children: list[str] | None = None) -> dict:
    state = {} if children is None else {"children": [f"IPY_MODEL_{c}" for c in children]}
    return {"model_module": module, "model_name": name, "model_module_version": "2.0.0", "state": state}


def _notebook() -> dict:
    state = {"canvas": _model("anywidget", "AnyModel"), "bars": _model("@jupyter-widgets/controls", "HTMLModel"),
             "pad": _model("@jupyter-widgets/controls", "HBoxModel", ["canvas", "bars"]),
             "slider": _model("@jupyter-widgets/controls", "IntSliderModel")}
    view = {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "pad", "version_major": 2,
                                                                 "version_minor": 0}, "text/plain": "pad"}}
    other = {"output_type": "display_data", "metadata": {},
             "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "slider", "version_major": 2,
                                                                  "version_minor": 0}, "text/plain": "slider"}}
    return {"cells": [{"cell_type": "code", "source": "pad", "outputs": [view]},
                      {"cell_type": "code", "source": "slider", "outputs": [other]}],
            "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": state}}}}


def test_widgets_from_unserved_modules_are_left_out_with_a_note():
    build = _builder()
    nb = _notebook()
    assert build.static_widgets(nb) == 1
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert set(state) == {"bars", "pad", "slider"}
    assert state["pad"]["state"]["children"] == ["IPY_MODEL_bars"]  # no dangling reference
    pad_cell, slider_cell = nb["cells"]
    assert len(pad_cell["outputs"]) == 2 and "running Python kernel" in pad_cell["outputs"][1]["data"]["text/html"]
    assert len(slider_cell["outputs"]) == 1  # a served widget is untouched


def test_notebooks_without_such_widgets_are_unchanged():
    build = _builder()
    nb = _notebook()
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    del state["canvas"]
    state["pad"]["state"]["children"] = ["IPY_MODEL_bars"]
    before = repr(nb)
    assert build.static_widgets(nb) == 0 and repr(nb) == before


def test_saved_controls_are_shown_disabled():
    b = _builder()
    nb = _notebook()
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    state["slider"]["state"]["disabled"] = False
    state["bars"]["state"]["disabled"] = True  # already disabled: left alone, not counted
    assert b.static_controls(nb) == 1
    assert state["slider"]["state"]["disabled"] is True and "disabled" not in state["pad"]["state"]
    assert b.static_controls(nb) == 0  # once is enough


def test_thebe_snippets_are_stripped_from_pages_and_nothing_else():
    b = _builder()
    head = ('    <script src="../_static/design-tabs.js"></script>\n'
            '    <script>const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"; const thebe_selector = ".cell"</script>\n'
            '    <script async="async" src="../_static/sphinx-thebe.js?v=c100"></script>\n'
            '    <link rel="stylesheet" type="text/css" href="../_static/sphinx-thebe.css?v=4f" />\n'
            '    <script>var togglebuttonSelector = ".toggle";</script>\n')
    out = b.strip_thebe(head + head.splitlines(keepends=True)[1])  # Jupyter Book writes the snippet twice
    assert "THEBE_JS_URL" not in out and "sphinx-thebe" not in out and "unpkg" not in out
    assert out == ('    <script src="../_static/design-tabs.js"></script>\n'
                   '    <script>var togglebuttonSelector = ".toggle";</script>\n')
