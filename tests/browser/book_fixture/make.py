"""Writes the two tiny executed "lessons" the book test builds when `make course` has not run.

    .venv/bin/python tests/browser/book_fixture/make.py

They are shaped like the course's executed lessons (title, "What you will learn", a matplotlib
figure, an HTML results table, a widget with saved state) so the test exercises the whole
pipeline - lesson map, navigation, figures, tables, local widget scripts - in seconds. They say
nothing about the real lessons' content; with build/lessons/ present the test uses those instead.
"""
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

PLOT = """\
import matplotlib
matplotlib.use("module://matplotlib_inline.backend_inline")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 2.5))
ax.plot([1, 2, 5, 10, 20], [{curve}], marker="o")
ax.set_xlabel("labelled images per class"); ax.set_ylabel("test accuracy"); ax.set_title("{title}")
plt.show()"""

TABLE = """\
from IPython.display import HTML
HTML("<table class='tl-results'><tr><th>strategy</th><th>test_acc</th></tr>"
     "<tr><td>{a}</td><td>{x}</td></tr><tr><td>{b}</td><td>{y}</td></tr></table>")"""


def lesson(n: int, title: str, curves: list[str]) -> nbformat.NotebookNode:
    cells = [new_markdown_cell(f"# Lesson {n} — {title}\n\n**What you will learn**\n- how the book shows "
                               f"figure {n}\n- how it shows a results table\n\n**Prerequisites**: none")]
    for i, curve in enumerate(curves):
        cells += [new_markdown_cell(f"## {i + 1}. A figure"), new_code_cell(PLOT.format(curve=curve, title=f"curve {i + 1}"))]
    cells += [new_markdown_cell("## Results"),
              new_code_cell(TABLE.format(a="feature extraction", x=0.8, b="from scratch", y=0.4)),
              new_code_cell("import ipywidgets as w\nw.IntSlider(value=3, max=9, description='frozen')"),
              new_markdown_cell("## Summary\n\nA fixture, not a lesson.")]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


if __name__ == "__main__":
    for n, title, curves in ((0, "fixture with one figure", ["0.2, 0.4, 0.6, 0.7, 0.8"]),
                             (1, "fixture with two figures", ["0.3, 0.5, 0.7, 0.8, 0.9", "0.1, 0.2, 0.4, 0.6, 0.7"])):
        nb = lesson(n, title, curves)
        NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True).execute()
        for i, cell in enumerate(nb.cells):
            cell.id = f"fixture-{n}-{i}"
        nbformat.write(nb, HERE / f"{n:02d}_fixture.ipynb")
    print("wrote", sorted(p.name for p in HERE.glob("*.ipynb")))
