"""Settings shared by every test folder (unit, notebooks, browser).

- torch runs on 2 threads (``TLLAB_TEST_THREADS`` overrides), like the 2-core machines the
  course targets, so timings and memory in tests mean the same as in a classroom.
- ``isolated_cache``: a private ``TLLAB_CACHE`` per test, so no test reads features another
  test (or a student) cached, and none writes into ``~/.cache``.
- ``env``: set or unset environment variables for one test (undone afterwards), and
  ``env.empty_data_search_path()`` to empty the whole data-root search path, as on a fresh
  machine with no data and no network.

The repo-level ``conftest.py`` (beside ``pyproject.toml``) sets ``TLLAB_DATA`` to
``../shared/datasets`` when that folder exists and ``TLLAB_DATA`` is unset.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_THREADS = int(os.environ.get("TLLAB_TEST_THREADS", "2"))


def pytest_configure(config):
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(TEST_THREADS)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty ``TLLAB_CACHE`` folder for this test."""
    path = tmp_path / "tllab-cache"
    monkeypatch.setenv("TLLAB_CACHE", str(path))
    return path


class Env:
    """Environment changes for one test; ``monkeypatch`` undoes them all at teardown."""

    def __init__(self, monkeypatch, tmp_path: Path):
        self._mp, self._tmp = monkeypatch, tmp_path

    def set(self, name: str, value: str | os.PathLike | None) -> None:
        """Set ``name`` (``None`` removes it)."""
        if value is None:
            self._mp.delenv(name, raising=False)
        else:
            self._mp.setenv(name, str(value))

    def empty_data_search_path(self) -> list[Path]:
        """Make every data root on the search path an empty folder; return them in search order.

        ``$TLLAB_DATA`` is removed, the user cache moves to an empty ``XDG_CACHE_HOME`` and the
        repo's ``datasets/`` is replaced (for this test only) by an empty folder.
        """
        from tlwidgets import data

        empty_repo = self._tmp / "empty-repo-datasets"
        xdg = self._tmp / "empty-xdg-cache"
        empty_repo.mkdir(exist_ok=True)
        xdg.mkdir(exist_ok=True)
        self.set(data.DATA_ENV, None)
        self.set("XDG_CACHE_HOME", xdg)
        self._mp.setattr(data.roots, "REPO_DATASETS", empty_repo)  # where the data-root rule reads it
        return data.candidate_roots()


@pytest.fixture
def env(monkeypatch, tmp_path) -> Env:
    return Env(monkeypatch, tmp_path)
