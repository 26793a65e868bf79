"""The lessons as a product: numbered, each with solutions, stored without outputs, with the lesson skeleton.

Executing them is nbval's job, once per notebook (README's test command; see the repo's conftest.py):
parameters injected as papermill would, closing assertions, kept outputs compared, headline results
recorded. Here only what can be checked without a kernel.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

from tlwidgets import course

REPO = Path(__file__).resolve().parents[2]
# the same function `make strip` and the pre-commit hook use (scripts/ is not a package)
_spec = importlib.util.spec_from_file_location("strip_notebooks", REPO / "scripts" / "strip_notebooks.py")
strip_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(strip_notebooks)
LESSONS = course.find_lessons()
SOLUTIONS = course.find_lessons(solutions=True)
ALL = LESSONS + SOLUTIONS
REQUIRED_HEADINGS = ("What you will learn", "Prerequisites", "Summary", "Exercises")


def _cells(path):
    return json.loads(Path(path).read_text())["cells"]


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_lessons_are_numbered_in_sequence_each_with_solutions():
    numbers = [p.name[:2] for p in LESSONS]
    assert numbers and numbers == [f"{i:02d}" for i in range(len(numbers))], numbers
    assert {p.name.replace("_solutions", "") for p in SOLUTIONS} == {p.name for p in LESSONS}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    """Only cells marked keep_output (nbstripout's convention) may carry outputs; nothing else, no counts."""
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code":
            continue
        keep = cell.get("metadata", {}).get("keep_output", False)
        if not keep:
            assert not cell.get("outputs"), f"{path.name} cell {i} carries outputs: run `make strip`"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"
            assert "NBVAL_CHECK_OUTPUT" not in _src(cell), \
                f"{path.name} cell {i} asks nbval to check its output but keeps none: add keep_output metadata " \
                "and store it (python scripts/strip_notebooks.py --refresh FILE)"
        else:
            assert _src(cell).startswith("# NBVAL_CHECK_OUTPUT"), \
                f"{path.name} cell {i} keeps its output, so nbval must check it (# NBVAL_CHECK_OUTPUT)"
            assert cell.get("outputs"), f"{path.name} cell {i} is marked keep_output but has no stored output"
            # nbval skips (and in lax mode errors on) a reference cell without a count
            assert cell.get("execution_count") is not None, \
                f"{path.name} cell {i}: kept output without an execution count: run `make strip`"
    # the whole file is exactly what the strip script would store (metadata, counts, kept outputs)
    nb = nbformat.read(path, as_version=4)
    assert strip_notebooks.stripped(nb) == nb, f"{path.name} is not stripped: run `make strip`"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_notebook_has_a_papermill_parameters_cell_first(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    params = code[0]
    assert "parameters" in params.get("metadata", {}).get("tags", []), f"{path.name}: first code cell not tagged"
    src = _src(params)
    for name in ("quick", "device", "seed"):
        assert f"{name} =" in src, f"{path.name}: parameter {name!r} missing"
    assert "seed_everything(seed)" in _src(code[1]), f"{path.name}: seeds must be set in the first code cell"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_follows_the_skeleton(path):
    cells = _cells(path)
    text = "\n".join(_src(c) for c in cells if c["cell_type"] == "markdown")
    for heading in REQUIRED_HEADINGS:
        assert heading in text, f"{path.name}: no '{heading}' section"
    code = "\n".join(_src(c) for c in cells if c["cell_type"] == "code")
    assert "tl.record(" in code and "assert " in code, f"{path.name}: must end by asserting and recording its claims"
    assert "checks.lesson" in code, f"{path.name}: exercises must have checks"
