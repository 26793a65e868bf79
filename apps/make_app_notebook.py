"""Writes apps/dogs_to_cats.ipynb: the instructor's Voilà app (kept as code so a diff shows what changed).

    .venv/bin/python apps/make_app_notebook.py

Voilà shows only outputs (no code cells), so the notebook is markdown for the audience and
code cells that build widgets. The code does nothing a lesson does not already show: it is
Lesson 6's dashboard, Lesson 0's digit pad (with the shipped run log loaded for replay) and Lesson 8's
"which words decide a review" view (a probe on the frozen transformer, loaded on a click).
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


SENTENCES_INTRO = """\
## Which words decide a review?

A pretrained transformer (all-MiniLM-L6-v2, Lesson 8) learned from about a billion sentence pairs — Reddit
comments, Amazon product questions and answers, and more — but never saw a sentiment label. A linear head on
its frozen sentence vectors, trained on 100 labelled review sentences per class, calls a review positive or
negative. Type one: every token is coloured by how much the answer falls when that token is left out."""

SENTENCES = """\
import ipywidgets as widgets

load_button = widgets.Button(description="Load the sentence model", button_style="primary",
                             layout=widgets.Layout(width="260px"))
load_button.add_class("tl-load-sentences")
sentences = widgets.VBox([load_button])


def load_sentence_model(_):
    \"\"\"The frozen encoder, a probe on 100 labelled sentences per class (Lesson 8), the token-influence view.\"\"\"
    load_button.disabled, load_button.description = True, "loading (about 10 s) ..."
    try:
        from tlwidgets import transformer as tr
        from tlwidgets.widgets import TokenInfluenceView

        encoder, tokenizer = tr.load_encoder(), tr.load_tokenizer()
        task = tl.text_task(100, seed=0)

        def vectors(split):
            return tr.sentence_embeddings(split.texts, encoder=encoder, tokenizer=tokenizer)

        probe = tl.fit_linear_head(vectors(task.train), task.train.labels, vectors(task.val), task.val.labels)
        model = tr.transformer_classifier(encoder, task.num_classes, classes=task.classes)
        model.groups["head"].load_state_dict(probe.model.state_dict())
        view = TokenInfluenceView(lambda s: tr.token_influence(model.eval(), tokenizer, s),
                                  value="The plot was not bad, but the ending was awful.")
        note = widgets.HTML(f"<small>probe: {len(task.train.labels)} labelled sentences, validation accuracy "
                            f"{probe.val_acc:.0%} on {len(task.val.labels)}</small>")
        sentences.children = [view, note]
    except Exception as exc:  # the transformer packages missing: say so on the page, keep the rest of the app
        sentences.children = [widgets.HTML(f"<pre class='tl-app-missing-data'>{type(exc).__name__}: {exc}</pre>")]


load_button.on_click(load_sentence_model)
display(sentences)"""


def build() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(INTRO), new_code_cell(SETUP), new_code_cell(DASHBOARD),
                             new_markdown_cell(PAD_INTRO), new_code_cell(PAD),
                             new_markdown_cell(SENTENCES_INTRO), new_code_cell(SENTENCES)])
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
