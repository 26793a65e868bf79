"""Run the reliability tests and write the table of fault classes, cases and outcomes into docs/reliability.md.

    .venv/bin/python scripts/reliability_table.py          # runs the tests, rewrites the table
    .venv/bin/python scripts/reliability_table.py --check  # fails if the table's counts are stale

Every test in ``tests/unit/test_fault_classes.py`` (issue 12, classes 1-11) and
``tests/unit/test_reliability_round3.py`` (issue 25, classes 12-25) is named ``test_cNN_...``
after its fault class NN; each collected case (every parametrisation) counts once. The
counts and outcomes in the document come from this run, never typed by hand.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tlwidgets.table import Column, Table

REPO = Path(__file__).resolve().parents[1]
ROUND2 = REPO / "tests" / "unit" / "test_fault_classes.py"
ROUND3 = REPO / "tests" / "unit" / "test_reliability_round3.py"
TESTS = (ROUND2, ROUND3)
ROUND1 = REPO / "tests" / "unit" / "test_fault_catalogue.py"
DOC = REPO / "docs" / "reliability.md"
OUTCOMES = ("passed", "failed", "skipped")
BEGIN, END = "<!-- reliability-table:begin -->", "<!-- reliability-table:end -->"

CLASSES = {
    1: ("bad", "Caches keyed by names, not contents",
        "digest changes with same size+mtime; racy-file rule; edited photo -> new pixels (same kernel) and new "
        "features (same kernel, after a restart); MNIST replaced without SHA256SUMS; pets photo edited; copies "
        "hit the decode cache; key cost measured"),
    2: ("bad", "Photos decoded wrong",
        "16-bit PNG, 32-bit int, float; EXIF orientation (decoder and task tensors); palette with transparency; "
        "RGBA/LA on white; CMYK; L and 1; unreadable/empty/missing files named; bad arrays; one decoder for "
        "tasks, image_to_tensor and predict"),
    3: ("bad", "Folder walking that leaks",
        "symlink loops; links out of the tree (file, folder, class folder); hidden folders and files; duplicate "
        "bytes in one class and across classes; nested folders; the issue's 6-files-plus-loop scenario"),
    4: ("bad", "Sizes accepted when they make no sense",
        "0/negative n_per_class refused by own-photos, MNIST and pets alike; floats/strings/bools refused; NumPy "
        "ints accepted; test_per_class, digits, image sizes, test fractions"),
    5: ("bad", "A file the package writes and then refuses to read",
        "NumPy scalars/arrays, Paths, tuples, sets, nested dicts, tensors in checkpoint metadata; unstorable "
        "objects refused before writing; training checkpoints resume through the safe loader"),
    6: ("bad", "Files written in place",
        "record() on a full disk keeps the old file and works afterwards; damaged results JSON kept aside; full "
        "disk refused before writing; dashboard log and feature cache atomic; no module writes a file except "
        "through atomic_write (source scan)"),
    7: ("bad", "Garbage in, plausible number out",
        "NaN/inf refused by evaluate and predict; digit drawings in 0..255 rescaled with a warning; negative, "
        ">255 and NaN drawings refused; DigitPad.set_image uses the same check"),
    8: ("poor", "Argument types and ranges checked at the public boundary",
        "backbone names (with the closest match), devices, splits, pets kinds, seeds, freeze counts, class "
        "counts, image sizes, boundaries, weight decay, optimiser, k, paths, bools; NumPy numbers accepted; "
        "message format; FreezeSlider and Dashboard setters refuse instead of clamping"),
    9: ("poor", "Common misuse explained",
        "greyscale PIL to an RGB model; 1-channel tensor to an RGB model; uint8/float64/int64 inputs; float "
        "labels; empty batch; Dataset where a DataLoader is expected (train and val); last batch of 1 with "
        "BatchNorm skipped with a warning, single sample refused, frozen BatchNorm fine; confusion matrix with "
        "too few classes; model built for other inputs than the task's; wrong type to predict"),
    10: ("poor", "Storage faults explained",
         "unwritable cache names TLLAB_CACHE and cache=False (and cache=False works); corrupt/missing dashboard "
         "log named; bad image named, the rest loads with a count; unsafe/truncated/empty/text checkpoints never "
         "advise weights_only=False; resume from a damaged checkpoint"),
    11: ("poor", "Command lines",
         "course: --device tpu / cuda:abc / cuda without a GPU, --seed -1, unusable --out refused before any "
         "kernel starts, exit 2, no traceback; data download offline or into an unusable root: a message, exit 1"),
    # round 3 (issue 25)
    12: ("bad", "A class silently disappears",
         "class folder of notes, empty class folder (as torchvision's ImageFolder), class folder of unreadable "
         "images: each refused naming the folder; HEIC phone photos read (pillow-heif), or the package named"),
    13: ("bad", "Numbers that are not numbers",
         "NaN, inf, -inf rows in word vectors refused naming the word and row; loaded from a root: the file named"),
    14: ("bad", "Text that is not text",
         "bytes sentence, bytes token, a whole file as bytes, a number: refused by position in every batch "
         "function (sentence_vectors, encode_ids, coverage, BagOfWords and its encode); strings and token lists "
         "still agree"),
    15: ("bad", "Two vocabularies, one model",
         "bag model trained with word vectors of another vocabulary refused before fit (recording fake); ids "
         "outside the model's table refused by name; the same vocabulary passes (EmbeddingBag twin)"),
    16: ("poor", "NumPy scalars",
         "np.int64/int32/uint8, 0-d arrays and tensors become plain int/float in the one argument check; arrays "
         "and bools still refused; run_strategy row and run log, learning curve rows, probe tables, hand-built "
         "Task sizes, transplant depths: JSON with NumPy seeds and sizes"),
    17: ("poor", "Late argument checks",
         "run_strategy (bad last lr candidate, NaN/str fine-tuning lr, lr_decay, head_epochs, epochs, seed, "
         "n_frozen candidates) and learning_curve (lr per strategy, seeds, epochs): refused before any fit "
         "(recording fake); candidate lists name the position"),
    18: ("poor", "Loader errors that do not name the file",
         "truncated MNIST idx (images, labels, header); GloVe vectors truncated, a pickle, an object array, a "
         "torch.save zip; vocabulary not UTF-8 or truncated; sentences not UTF-8 or other columns: each names the "
         "file, never advises loading unsafely; undamaged files still load"),
    19: ("poor", "Markdown tables render HTML",
         "cells and title escaped with the HTML renderer's entities (round trip through html.unescape); arrows "
         "stay readable"),
    20: ("poor", "Converted tasks lose their validation split", "as_photos and as_digits keep val and its note"),
    21: ("poor", "Replay of a bad log",
         "NaN/inf/negative/text seconds_per_epoch refused before any event; a blocking dashboard replay raises "
         "the error it shows; a damaged batch entry named instead of KeyError"),
    22: ("poor", "Widgets that take a model or a count",
         "digit pad refuses a photo model by name (the digit model still works); show_task refuses 0, "
         "negative, float and text counts before drawing, takes NumPy ones"),
    23: ("poor", "Model slices out of range",
         "model[99:], [:99], [-99:], [5:6] refused naming the groups; in-range and empty slices share weights"),
    24: ("poor", "predict on unlabelled data",
         "TensorDataset(x), its DataLoader and bare tensor batches give predictions without targets (same as "
         "the tensor twin); labels still read; odd batches refused clearly"),
    25: ("poor", "One long sentence pads a batch",
         "encode_ids capped at MAX_TOKENS with a warning that counts the cut sentences (EmbeddingBag mean of "
         "the kept start); max_len=None keeps all; short batches stay narrow; max_len checked"),
}


class _Collector:
    def __init__(self):
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[report.nodeid] = report.outcome
        elif report.when == "teardown" and report.outcome == "failed":
            self.outcomes[report.nodeid] = "failed"


def run(paths: list[Path], collect_only: bool = False, extra: list[str] | None = None) -> dict[str, str]:
    collector = _Collector()
    args = [str(p.relative_to(REPO)) for p in paths] + ["-q", "-p", "no:cacheprovider", *(extra or [])]
    if collect_only:
        class _Items:
            def pytest_collection_modifyitems(self, items):
                for item in items:
                    collector.outcomes[item.nodeid] = "collected"
        pytest.main(args + ["--collect-only"], plugins=[_Items()])
    else:
        pytest.main(args, plugins=[collector])
    return collector.outcomes


def table(outcomes: dict[str, str]) -> str:
    per: dict[int, Counter] = defaultdict(Counter)
    for nodeid, outcome in outcomes.items():
        m = re.search(r"::test_c(\d\d)_", nodeid)
        if m and nodeid.startswith(("tests/unit/test_fault_classes.py", "tests/unit/test_reliability_round3.py")):
            per[int(m.group(1))][outcome] += 1
    rows: list[dict[str, object]] = []
    total: Counter = Counter()
    for n, (grade, title, cover) in CLASSES.items():
        c = per.get(n, Counter())
        total.update(c)
        rows.append({"#": n, "grade": grade, "class": title, "cases": sum(c.values()),
                     **{k: c[k] for k in OUTCOMES}, "cover": cover})
    rows.append({"class": "**all classes**", "cases": f"**{sum(total.values())}**",
                 **{k: f"**{total[k]}**" for k in OUTCOMES}})
    columns = [Column("#"), Column("grade", "grade in the battery", align="left"),
               Column("class", "fault class", align="left"), Column("cases", "cases tested", fmt=str),
               Column("passed", fmt=str), Column("failed", fmt=str), Column("skipped", fmt=str),
               Column("cover", "what the cases cover", align="left")]
    lines = [Table(rows, columns, missing="").to_markdown()]
    round1 = [o for k, o in outcomes.items() if k.startswith("tests/unit/test_fault_catalogue.py")]
    if round1:
        lines.append("")
        lines.append(f"Round 1 (issue 5, `tests/unit/test_fault_catalogue.py`, its fault catalogue; the 3 GB memory "
                     f"run is measured separately): {len(round1)} cases, "
                     f"{round1.count('passed')} passed, {round1.count('failed')} failed, "
                     f"{round1.count('skipped')} skipped.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the case counts against the document")
    args = parser.parse_args(argv)
    os.chdir(REPO)  # node ids relative to the repository, as the table expects
    if args.check:
        outcomes = run(list(TESTS), collect_only=True)
        counts = Counter(int(m.group(1)) for k in outcomes if (m := re.search(r"::test_c(\d\d)_", k)))
        doc = DOC.read_text()
        stale = []
        for n in CLASSES:
            row = re.search(rf"^\| {n} \| \w+ \| [^|]+ \| (\d+) \|", doc, re.M)
            if not row or int(row.group(1)) != counts.get(n, 0):
                stale.append(f"class {n}: document says {row.group(1) if row else '?'}, tests have {counts.get(n, 0)}")
        print("\n".join(stale) or "reliability table is up to date")
        return 1 if stale else 0
    outcomes = run([*TESTS, ROUND1], extra=["--deselect", f"{ROUND1.relative_to(REPO)}::"
                                            "test_quick_feature_extraction_run_stays_under_3_gb"])
    text = table(outcomes)
    doc = DOC.read_text() if DOC.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    start, stop = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + text + "\n" + doc[stop:])
    print(text)
    return 0 if all(o != "failed" for o in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
