"""Headline results: a lesson records its key numbers; the course runner collects them into a table.

``record("02_feature_extraction", fe_acc=0.93)`` writes JSON into
``$TLLAB_RESULTS_DIR`` when the runner sets it, and is a no-op otherwise,
so lessons run the same in JupyterLab, papermill and nbval.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

RESULTS_ENV = "TLLAB_RESULTS_DIR"


def _plain(v):
    if hasattr(v, "item"):
        v = v.item()
    return round(v, 4) if isinstance(v, float) else v


def record(lesson: str, **values) -> dict:
    """Record ``values`` (numbers or short strings) as ``lesson``'s headline results; returns them."""
    values = {k: _plain(v) for k, v in values.items()}
    out = os.environ.get(RESULTS_ENV)
    if out:
        path = Path(out) / f"{lesson}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = json.loads(path.read_text()) if path.exists() else {}
        merged.update(values)
        path.write_text(json.dumps(merged, indent=1, sort_keys=True))
    return values


def load_all(directory: str | os.PathLike) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(directory).glob("*.json"))}
