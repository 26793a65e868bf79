"""Writes apps/dogs_to_cats.ipynb: the instructor's Voilà app (kept as code so a diff shows what changed).

    .venv/bin/python apps/make_app_notebook.py

Voilà shows only outputs (no code cells), so the notebook is markdown for the audience and
code cells that build widgets. The code does nothing a lesson does not already show: it is
Lesson 6's dashboard and Lesson 0's digit pad, with the shipped run log loaded for replay.
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

INTRO = """\
# Dogs → cats: transfer learning, live
An ImageNet model has seen 118 dog breeds but only five kinds of cat: can its features tell **twelve cat
breeds** apart from a few photos each? Press **Train** (from scratch first: watch it struggle, **Stop** it),
then try feature extraction and fine-tuning. **Replay** plays any row of the table (recorded beforehand on
a slow machine) without training."""

SETUP = """\
import os
from pathlib import Path

import torch
from IPython.display import HTML, display
from IPython.utils.capture import capture_output

# Leave one core for the server and the clicks: training runs in a background thread.
torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))

import tlwidgets as tl
from tlwidgets.widgets import Dashboard, DigitPad

LOG = Path("logs/dogs_to_cats.json")   # recorded by apps/record_demo_log.py; the kernel runs in apps/"""

DASHBOARD = """\
try:
    # The one-off photo decoding shows a progress bar that closes when done; in Voilà a closed
    # widget would stay on the page as "Error displaying widget", so its output is kept out.
    with capture_output():
        # the default run trains a small CNN from scratch for real (seconds per epoch, not milliseconds):
        # something to watch and to stop; feature extraction on cached features is over in about a second
        dashboard = Dashboard(kind="pets", strategy="scratch", n_per_class=None, num_epochs=30,
                              title="Dogs → cats: 12 cat breeds")
except tl.DataMissingError as exc:  # no photos on this machine: say how to get them, keep the digit pad
    dashboard = None
    display(HTML("<pre class='tl-app-missing-data'>" + str(exc) + "</pre>"))
else:
    if LOG.exists():
        dashboard.load_log(LOG)
    dashboard.replay_speed.value = 0.25
    display(dashboard)"""

PAD_INTRO = """\
## Draw a digit

The course's source model was trained on digits **0–4** only. Draw a 3, then a 7: it answers
with one of the five digits it knows, confidently — the reason the lessons transfer it to 5–9."""

PAD = """\
DigitPad(tl.load_digit_model())"""


def build() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(INTRO), new_code_cell(SETUP), new_code_cell(DASHBOARD),
                             new_markdown_cell(PAD_INTRO), new_code_cell(PAD)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["tllab"] = {"requires": ["pets"]}
    for i, cell in enumerate(nb.cells):
        cell.id = f"app-{i}"
    return nb


if __name__ == "__main__":
    out = HERE / "dogs_to_cats.ipynb"
    nbformat.write(build(), out)
    print(f"wrote {out}")
