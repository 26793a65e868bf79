"""scripts/seed_check.py: claims and assertions read from a lesson, min-max over seeds, the report."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("seed_check", REPO / "scripts" / "seed_check.py")
seed_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed_check)


def _notebook(tmp_path, cells) -> Path:
    nb = {"cells": [{"cell_type": kind, "metadata": {}, "source": text} for kind, text in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "09_demo.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_claims_and_assertions_come_from_the_closing_section(tmp_path):
    path = _notebook(tmp_path, [
        ("code", "assert 1 == 1  # a mechanism check before the claims: not a claim"),
        ("markdown", "## Check what this lesson claims\n\nEach claim:\n\n- transfer beats scratch by\n  ≥ 15 "
                     "points [+30…+40];\n- an epoch is faster.\n\nMore prose."),
        ("code", "tl.record('09_demo', gap=gap)\nassert gap >= 0.15, table\nfor s in ss:\n    assert f(s) > 0, s\n"
                 "x = 1"),
    ])
    got = seed_check.lesson_claims(path)
    assert got["has_claims_section"]
    assert got["claims"] == ["transfer beats scratch by ≥ 15 points [+30…+40];", "an epoch is faster."]
    assert got["assertions"] == ["assert gap >= 0.15", "for s in ss:\n    assert f(s) > 0"]   # messages dropped


def test_a_lesson_without_claims_section_reports_its_asserts_and_prose_claims_count(tmp_path):
    path = _notebook(tmp_path, [("code", "assert a == b, 'same'")])
    assert seed_check.lesson_claims(path) == {"claims": [], "assertions": ["assert a == b"],
                                              "has_claims_section": False}
    prose = _notebook(tmp_path, [("markdown", "## Check what this lesson claims\n\nThe model is right."),
                                 ("code", "assert ok")])
    assert seed_check.lesson_claims(prose)["claims"] == ["The model is right."]


def test_summary_gives_pass_counts_and_min_max_of_every_number():
    runs = [{"lesson": "09_demo", "seed": s, "status": st, "seconds": t, "message": msg,
             "results": res, "data": {"MNIST": "repo datasets/"}}
            for s, st, t, msg, res in [
                (101, "passed", 20.0, "", {"acc": 0.8, "k": 7, "cut": "conv2"}),
                (100, "failed", 25.0, "AssertionError: (0.1, 0.3)", {"acc": 0.6, "cut": "conv2"}),
                (102, "passed", 22.0, "", {"acc": 0.9, "k": 8, "cut": "features"})]]
    s = seed_check.summarise("09_demo", runs)
    assert (s["seeds"], s["passed"], s["runs"]) == ([100, 101, 102], 2, 3)
    assert s["failures"] == [{"seed": 100, "message": "AssertionError: (0.1, 0.3)"}]
    assert s["numbers"]["acc"] == {"min": 0.6, "max": 0.9, "n": 3, "missing": 0}
    assert s["numbers"]["k"] == {"min": 7, "max": 8, "n": 2, "missing": 1}
    assert s["numbers"]["cut"] == {"values": ["conv2", "features"]}
    assert s["data"] == ["MNIST: repo datasets/"]
    report = {"when": "now", "machine": "test", "jobs": 2, "lessons": [s],
              "claims": {"09_demo": {"claims": ["c"], "assertions": ["assert x"], "has_claims_section": True}}}
    text = seed_check.render(report)
    assert "| 09_demo | 100, 101, 102 | 2/3 |" in text and "**2 of 3 runs passed.**" in text
    assert "| acc | 0.6 | 0.9 |" in text and "| k (None in 1 runs) | 7 | 8 |" in text and "failed at seed 100" in text and "assert x" in text


def test_checked_range_reads_the_min_max_the_report_writes(tmp_path):
    from tlwidgets import checked_range

    runs = [{"lesson": "09_demo", "seed": s, "status": "passed", "seconds": 1.0, "message": "",
             "results": {"acc": acc, "cut": "conv2"}, "data": {}} for s, acc in [(100, 0.7), (101, 0.65)]]
    path = tmp_path / "seed_check.json"
    path.write_text(json.dumps({"lessons": [seed_check.summarise("09_demo", runs)]}))
    assert checked_range("09_demo", "acc", path) == (0.65, 0.7)
    assert checked_range("09_demo", "cut", path) is None          # not a number
    assert checked_range("09_demo", "missing", path) is None
    assert checked_range("01_other", "acc", path) is None         # lesson not checked
    assert checked_range("09_demo", "acc", tmp_path / "absent.json") is None
    low, high = checked_range("08_transformers", "full_10")       # the shipped report, as lesson 8 reads it
    assert 0 < low <= high < 1
