"""The repository passes its linters, exactly as ``make lint`` runs them: ruff, then mypy (pyproject.toml).

Why a test file: ``make test`` used to run ``make lint`` first, one process on one core while the second
core waited (mypy from a cold cache: 38 s on a fresh clone of the 2-core CI machine). As tests they run on
an xdist worker beside the lessons, and a failure is reported with the others. ``make lint`` still runs
them alone, and ``make unit`` (tests/unit) leaves them out.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    proc = _run("ruff", "check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_finds_no_type_errors():
    proc = _run("mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
