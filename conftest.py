"""Repo-wide pytest setup: every lesson and solution is executed once, by nbval, with the lesson parameters injected.

One execution checks both things a lesson promises (issue: "each notebook executed once"):
- nbval (``--nbval-lax``, in the README's test command) runs every cell in a fresh kernel, so a lesson's
  closing assertions (its claims) must hold, and it compares the outputs of the cells marked
  ``# NBVAL_CHECK_OUTPUT`` with the stored ones;
- the cell tagged ``parameters`` gets the values papermill would inject (quick mode, ``$TLLAB_DEVICE``,
  ``$TLLAB_SEED``) appended, exactly as papermill's injected cell would follow it;
- after a lesson's last cell, one more item checks that the lesson recorded its headline results
  (``tl.record``), which the course runner's results table is built from;
- a cell that prints a Python warning to stderr fails: a student's first run must be clean (progress bars
  and other stderr text are fine).

A notebook whose metadata says ``"tllab": {"requires": ["pets"]}`` is skipped, with the data-missing
message, when that data is not on the data-root search path (never the case on a clone: ``datasets/``
ships it; the missing-data path itself is tested in tests/unit/test_course.py on an empty root).
"""
from __future__ import annotations

import atexit
import copy
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tlwidgets.course import inject_parameters, lesson_parameters, missing_data_message, notebook_requirements
from tlwidgets.results import RESULTS_ENV

REPO = Path(__file__).resolve().parent
os.environ.setdefault("TLLAB_HEADLESS", "1")
os.environ.setdefault("TLLAB_CACHE", str(REPO / "build" / "test-cache"))
os.environ.setdefault("MPLBACKEND", "Agg")
if not os.environ.get("TLLAB_DATA") and (REPO.parent / "shared" / "datasets").is_dir():
    os.environ["TLLAB_DATA"] = str((REPO.parent / "shared" / "datasets").resolve())
RESULTS_DIR = REPO / "build" / "test-results"
# the kernels nbval starts inherit this: tl.record writes each lesson's headline numbers there
os.environ[RESULTS_ENV] = str(RESULTS_DIR)


def injected_parameters() -> dict:
    """What papermill would inject in quick mode (the course runner's defaults), from the environment."""
    return lesson_parameters(quick=True, device=os.environ.get("TLLAB_DEVICE", "auto"),
                             seed=int(os.environ.get("TLLAB_SEED", "0")))


class RecordedResults(pytest.Item):
    """Runs after a lesson's last cell: the lesson must have written its headline results."""

    def __init__(self, *, lesson: str, **kw):
        super().__init__(**kw)
        self.lesson = lesson

    def runtest(self):
        path = RESULTS_DIR / f"{self.lesson}.json"
        assert path.exists(), f"{self.lesson} recorded no headline results (tl.record) into {RESULTS_DIR}"
        values = json.loads(path.read_text())
        assert values, f"{self.lesson} recorded an empty set of headline results"

    def reportinfo(self):
        return self.path, None, f"{self.lesson}: recorded headline results"


ZYGOTE_PY = REPO / "tests" / "notebooks" / "zygote.py"
_zygote: dict = {}


def _load_zygote():
    spec = importlib.util.spec_from_file_location("tllab_zygote", ZYGOTE_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def zygote_socket() -> str | None:
    """This process's kernel zygote (tests/notebooks/zygote.py), started on first use; None: standard kernels.

    Why: every notebook's kernel is then a fork of a process that already imported torch, torchvision, timm and
    ipywidgets, instead of a new Python importing them again (about 3 s of a core per notebook).
    ``TLLAB_KERNEL_ZYGOTE=0`` turns it off; a zygote that fails to start (or whose imports warn) leaves the
    standard kernels in place.
    """
    if "path" not in _zygote:
        _zygote["path"] = None
        zygote = _load_zygote()
        if os.environ.get(zygote.ENV, "") != "0" and hasattr(os, "fork"):
            folder = tempfile.mkdtemp(prefix="tllab-zygote-")
            path = os.path.join(folder, "kernels.sock")
            process = zygote.start(path)
            if zygote.ready(process):
                _zygote["path"] = os.environ[zygote.ENV] = path

            def stop():
                process.kill()
                process.wait()
                shutil.rmtree(folder, ignore_errors=True)

            atexit.register(stop)
    return _zygote["path"]


def _kernels_from_the_zygote() -> None:
    """nbval's kernel for ``--nbval-current-env`` (this Python), launched through the zygote's client."""
    from nbval import kernel as nbval_kernel

    original = nbval_kernel.NbvalKernelspecManager.get_kernel_spec

    def get_kernel_spec(self, kernel_name):
        spec = original(self, kernel_name)
        if kernel_name == nbval_kernel.CURRENT_ENV_KERNEL_NAME and zygote_socket():
            spec.argv = [sys.executable, str(ZYGOTE_PY), "client", "-f", "{connection_file}"]
        return spec

    nbval_kernel.NbvalKernelspecManager.get_kernel_spec = get_kernel_spec


_kernels_from_the_zygote()


def pytest_sessionstart(session):
    # under pytest-xdist (make test: -n 2 --dist loadfile, so each notebook runs whole on one worker)
    # only the controller clears the results; the workers start after it
    if hasattr(session.config, "workerinput"):
        return
    if RESULTS_DIR.exists():
        shutil.rmtree(RESULTS_DIR)


def pytest_collection_modifyitems(config, items):
    missing: dict[Path, str | None] = {}
    params = injected_parameters()
    out, last_cell = [], {}
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb":
            if path not in missing:
                missing[path] = missing_data_message(notebook_requirements(path))
            if missing[path]:
                item.add_marker(pytest.mark.skip(reason=missing[path].splitlines()[0]))
            cell = getattr(item, "cell", None)
            if cell is not None and "parameters" in cell.get("metadata", {}).get("tags", []):
                item.cell = copy.deepcopy(cell)
                item.cell.source = inject_parameters(cell.source, params)
            if path.parent.name == "lessons":
                last_cell[path] = item
        out.append(item)
    for path, item in last_cell.items():
        check = RecordedResults.from_parent(item.parent, name="recorded headline results", lesson=path.stem)
        if missing[path]:
            check.add_marker(pytest.mark.skip(reason=missing[path].splitlines()[0]))
        out.insert(out.index(item) + 1, check)
    items[:] = longest_files_first(out)


DURATIONS = REPO / "tests" / "file_durations.json"


def longest_files_first(items: list) -> list:
    """The items grouped by file, the files in order of their measured seconds (tests/file_durations.json,
    written by scripts/test_durations.py), longest first; items keep their order inside a file.

    Why: on 2 workers the whole run lasts at least as long as its longest notebook, and it lasts longer
    when that notebook starts late (one worker idle at the end). Starting the longest first is the
    longest-processing-time rule. Unknown files keep their collection order, after the known ones.
    """
    try:
        seconds = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return items
    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        first_seen.setdefault(item.nodeid.split("::")[0], i)
    seconds = {k: v for k, v in seconds.items() if not k.startswith("_")}     # "_run": what the run said
    return sorted(items, key=lambda it: (-float(seconds.get(it.nodeid.split("::")[0], 0.0)),
                                         first_seen[it.nodeid.split("::")[0]]))


WARNING_LINE = re.compile(r"^.*\b\w*Warning: .*$", re.MULTILINE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Fail a notebook cell that printed a warning (``...Warning: ...`` on stderr), naming the warning."""
    outcome = yield
    report = outcome.get_result()
    outputs = getattr(item, "test_outputs", None)
    if call.when != "call" or not report.passed or not outputs:
        return
    stderr = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream"
                     and o.get("name") == "stderr")
    found = WARNING_LINE.findall(stderr)
    if found:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} printed {len(found)} warning(s) a student would see in red:\n  "
                           + "\n  ".join(found[:5]) + "\nFix the call (defaults must fit the shipped data) "
                           "or, where the warning is the lesson's point, catch and explain it.")
