"""Repo-wide pytest setup: lessons run headless, with a shared feature cache, and skip cleanly without data.

nbval collects the lesson notebooks when ``--nbval-lax`` is given (the README's
test command does). A notebook whose metadata says ``"tllab": {"requires":
["pets"]}`` is skipped, with the data-missing message, when the Oxford-IIIT Pet
data is not on the data-root search path.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tlwidgets.course import missing_data_message, notebook_requirements

REPO = Path(__file__).resolve().parent
os.environ.setdefault("TLLAB_HEADLESS", "1")
os.environ.setdefault("TLLAB_CACHE", str(REPO / "build" / "test-cache"))
os.environ.setdefault("MPLBACKEND", "Agg")
if not os.environ.get("TLLAB_DATA") and (REPO.parent / "shared" / "datasets").is_dir():
    os.environ["TLLAB_DATA"] = str((REPO.parent / "shared" / "datasets").resolve())


def pytest_collection_modifyitems(config, items):
    cache: dict[Path, str | None] = {}
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix != ".ipynb":
            continue
        if path not in cache:
            cache[path] = missing_data_message(notebook_requirements(path))
        if cache[path]:
            item.add_marker(pytest.mark.skip(reason=cache[path].splitlines()[0]))
