"""The course runner behind the README's main command: passed / skipped (data missing) / failed, never confused.

Three tiny notebooks run through the same papermill path as the lessons; the
table, the JSON and the exit status must tell them apart.
"""
from __future__ import annotations

import json
import os

import nbformat
import numpy as np
import pytest

from tlwidgets import course


def _notebook(path, body: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("quick = True\ndevice = 'auto'\nseed = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    src, out = tmp_path_factory.mktemp("lessons"), tmp_path_factory.mktemp("build")
    books = {
        "passed": _notebook(src / "90_ok.ipynb", "import os, tlwidgets as tl\n"
                            "os.write(2, b'kernel noise\\n')   # the kernel process's own stderr, not a cell output\n"
                            "tl.record('90_ok', acc=0.5, quick=quick)\n"
                            "tl.data.find_dataset(tl.data.MNIST_SPEC)   # the table says which data it ran on"),
        "skipped": _notebook(src / "91_no_data.ipynb", "import tlwidgets as tl\n"
                             "raise tl.DataMissingError('no pet photos: run python -m tlwidgets.data download pets')"),
        "failed": _notebook(src / "92_bug.ipynb", "assert 1 + 1 == 3, 'the lesson claim does not hold'"),
    }
    return {k: course.run_lesson(p, out, {"quick": True, "device": "cpu", "seed": 0}, html=False, timeout=120)
            for k, p in books.items()}, out


def test_each_outcome_is_classified(runs):
    by_kind, _ = runs
    assert {k: r.status for k, r in by_kind.items()} == {"passed": "passed", "skipped": "skipped",
                                                          "failed": "failed"}
    assert by_kind["passed"].results == {"acc": 0.5, "quick": True}   # headline numbers from tl.record
    assert "python -m tlwidgets.data download pets" in by_kind["skipped"].message
    assert by_kind["failed"].message.startswith("AssertionError") and "claim does not hold" in by_kind["failed"].message


def test_table_never_counts_a_skipped_lesson_as_passed(runs):
    by_kind, _ = runs
    table = course.format_table(list(by_kind.values()))
    assert "1 passed, 1 failed, 1 skipped" in table
    assert "| 91_no_data | skipped |" in table and "download pets" in table
    assert "acc=0.5" in table
    assert by_kind["passed"].data["MNIST"].endswith(")") and "test (" in by_kind["passed"].data["MNIST"]
    assert f"MNIST: {by_kind['passed'].data['MNIST']}" in table


def test_kernel_stderr_goes_to_a_log_not_the_table(runs):
    by_kind, out = runs
    log = out / "logs" / "90_ok.stderr.txt"
    assert "kernel noise" in log.read_text()
    assert by_kind["passed"].output.exists()


def test_main_exit_status_and_results_json(tmp_path, monkeypatch):
    src = tmp_path / "lessons"
    src.mkdir()
    # the runner classifies by the exception's name; the real tl.DataMissingError in a kernel is the `runs`
    # fixture's case, so here the kernel need not import torch (twice, about 2.5 s of CPU each)
    _notebook(src / "91_no_data.ipynb", "class DataMissingError(FileNotFoundError):\n    pass\n\n\n"
                                        "raise DataMissingError('missing')")
    monkeypatch.setattr(course, "LESSONS_DIR", src)
    assert course.main(["--out", str(tmp_path / "build"), "--no-html"]) == 0   # skipped is not a failure
    rows = json.loads((tmp_path / "build" / "lessons" / "results.json").read_text())
    assert [(r["lesson"], r["status"]) for r in rows] == [("91_no_data", "skipped")]
    _notebook(src / "92_bug.ipynb", "raise ValueError('bug')")
    assert course.main(["--out", str(tmp_path / "build"), "--no-html"]) == 1


def test_injected_parameters_override_the_defaults_as_papermill_would():
    params = course.lesson_parameters(quick=True, device="cpu", seed=np.int64(3))
    assert params == {"quick": True, "device": "cpu", "seed": 3}
    src = course.inject_parameters('quick = False\ndevice = "auto"\nseed = 0\n', params)
    ns: dict = {}
    exec(src, ns)
    assert (ns["quick"], ns["device"], ns["seed"]) == (True, "cpu", 3)


def test_a_cell_timeout_fails_that_lesson_and_the_course_goes_on(tmp_path):
    slow = _notebook(tmp_path / "93_slow.ipynb", "import time\ntime.sleep(30)")
    run = course.run_lesson(slow, tmp_path / "out", course.lesson_parameters(device="cpu"), html=False, timeout=2)
    assert run.status == "failed" and "Timeout" in run.message, run


def test_running_a_lesson_leaves_the_callers_environment_as_it_was(runs):
    """The runner's results folder must not leak into later kernels (nbval's, in the same pytest process)."""
    assert os.environ.get("TLLAB_LESSON") is None
    assert os.environ.get("TLLAB_RESULTS_DIR") != str(runs[1] / "results")
