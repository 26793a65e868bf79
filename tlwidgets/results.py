"""Headline results: a lesson records its key numbers; the course runner collects them into a table.

``record("02_feature_extraction", fe_acc=0.93)`` writes JSON into
``$TLLAB_RESULTS_DIR`` when the runner sets it, and is a no-op otherwise,
so lessons run the same in JupyterLab, papermill and nbval.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from .infra import REPO_ROOT, atomic_write

RESULTS_ENV = "TLLAB_RESULTS_DIR"
LESSON_ENV = "TLLAB_LESSON"  # set by the course runner for the lesson it is executing
SEED_CHECK = REPO_ROOT / "docs" / "seed_check.json"  # written by scripts/seed_check.py


def _plain(v):
    if hasattr(v, "item"):
        v = v.item()
    return round(v, 4) if isinstance(v, float) else v


def record(lesson: str, **values: Any) -> dict:
    """Record ``values`` (numbers or short strings) as ``lesson``'s headline results; returns them."""
    if not isinstance(lesson, str) or not re.fullmatch(r"[\w.-]+", lesson) or lesson.startswith("."):
        raise ValueError(f"lesson must be a lesson's file name without folders or suffix (e.g. "
                         f"'02_feature_extraction'), got {lesson!r}")
    values = {k: _plain(v) for k, v in values.items()}
    out = os.environ.get(RESULTS_ENV)
    if out:
        path = Path(out) / f"{lesson}.json"
        merged = _read_existing(path)
        merged.update(values)
        atomic_write(path, json.dumps(merged, indent=1, sort_keys=True))  # old file intact if this fails
    return values


def _read_existing(path: Path) -> dict:
    """The results recorded so far; a damaged file is kept aside (``.corrupt``) with a warning, not fatal."""
    if not path.exists():
        return {}
    try:
        merged = json.loads(path.read_text())
        if isinstance(merged, dict):
            return merged
        reason = f"holds a {type(merged).__name__}, not a JSON object"
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = f"is not valid JSON ({exc})"
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    warnings.warn(f"{path} {reason}; moved it to {aside} and started a new results file", stacklevel=3)
    return {}


def load_all(directory: str | os.PathLike) -> dict[str, dict]:
    """``lesson -> recorded values`` for every results file in ``directory`` (the course runner's table)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(directory).glob("*.json"))}


def note_data_source(dataset: str, description: str) -> None:
    """Remember which data the running lesson loaded (``dataset -> where``), for the runner's results table.

    A no-op unless the course runner set both ``$TLLAB_RESULTS_DIR`` and ``$TLLAB_LESSON``: the data
    module calls it whenever it resolves a data root, so the table reports what was really used.
    """
    out, lesson = os.environ.get(RESULTS_ENV), os.environ.get(LESSON_ENV)
    if not (out and lesson):
        return
    path = Path(out) / "data" / f"{lesson}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(path.read_text()) if path.exists() else {}
    if merged.get(dataset) != description:
        merged[dataset] = description
        atomic_write(path, json.dumps(merged, indent=1, sort_keys=True))


def load_data_sources(directory: str | os.PathLike, lesson: str) -> dict[str, str]:
    """``dataset -> where it was loaded from`` for one lesson (see :func:`note_data_source`); {} if none."""
    path = Path(directory) / "data" / f"{lesson}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def checked_range(lesson: str, key: str, path: str | os.PathLike = SEED_CHECK) -> tuple[float, float] | None:
    """``(min, max)`` of ``lesson``'s recorded number ``key`` over the seed check's runs; None if not checked.

    Why: a sentence about how a number varies from seed to seed must quote what the check on untuned seeds
    measured (``scripts/seed_check.py`` keeps each lesson's min and max in ``docs/seed_check.json``), not a
    claim written once. None when the file is missing (an installed package without the repository's docs),
    the lesson was not checked, or ``key`` is not a number it recorded.
    """
    path = Path(path)
    if not path.exists():
        return None
    summary = next((s for s in json.loads(path.read_text())["lessons"] if s["lesson"] == lesson), None)
    number = None if summary is None else summary["numbers"].get(key, {})
    return None if not number or "min" not in number else (number["min"], number["max"])
