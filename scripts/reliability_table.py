"""Run the reliability tests and write the table of fault classes, cases and outcomes into docs/reliability.md.

    .venv/bin/python scripts/reliability_table.py          # runs the tests, rewrites the table
    .venv/bin/python scripts/reliability_table.py --check  # fails if the table's counts are stale

Every test in ``tests/unit/test_fault_classes.py`` is named ``test_cNN_...`` after the
fault class NN of issue 12; each collected case (every parametrisation) counts once. The
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
TESTS = REPO / "tests" / "unit" / "test_fault_classes.py"
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
        if m and nodeid.startswith("tests/unit/test_fault_classes.py"):
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
        outcomes = run([TESTS], collect_only=True)
        counts = Counter(int(m.group(1)) for k in outcomes if (m := re.search(r"::test_c(\d\d)_", k)))
        doc = DOC.read_text()
        stale = []
        for n in CLASSES:
            row = re.search(rf"^\| {n} \| \w+ \| [^|]+ \| (\d+) \|", doc, re.M)
            if not row or int(row.group(1)) != counts.get(n, 0):
                stale.append(f"class {n}: document says {row.group(1) if row else '?'}, tests have {counts.get(n, 0)}")
        print("\n".join(stale) or "reliability table is up to date")
        return 1 if stale else 0
    outcomes = run([TESTS, ROUND1], extra=["--deselect", f"{ROUND1.relative_to(REPO)}::"
                                            "test_quick_feature_extraction_run_stays_under_3_gb"])
    text = table(outcomes)
    doc = DOC.read_text() if DOC.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    start, stop = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + text + "\n" + doc[stop:])
    print(text)
    return 0 if all(o != "failed" for o in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
