"""Write tests/file_durations.json from a pytest JUnit XML: seconds per test file or notebook, summed.

Why: `make test` runs on 2 cores with pytest-xdist, one file (or notebook) at a time per worker. Started in
collection order, the longest notebook can begin last and leave one worker idle while the other finishes
it. The repo's conftest.py orders the files longest first from this table (the longest-processing-time
rule), and the Makefile passes `--no-loadscope-reorder` so xdist keeps that order. A file missing from the
table runs after the known ones; an old table only costs balance, never a test.

    .venv/bin/python -m pytest ... --junitxml=build/junit.xml
    .venv/bin/python scripts/test_durations.py build/junit.xml
"""
from __future__ import annotations

import argparse
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "file_durations.json"


def file_of(classname: str) -> str:
    """The repo-relative file a JUnit ``classname`` belongs to (``lessons.08_x.ipynb`` -> ``lessons/08_x.ipynb``,
    ``tests.unit.test_runs`` -> ``tests/unit/test_runs.py``)."""
    if ".ipynb" in classname:
        stem = classname[: classname.index(".ipynb")]
        return stem.replace(".", "/") + ".ipynb"
    parts = classname.split(".")
    for i in range(len(parts), 0, -1):        # the longest prefix that is a .py file (a class may follow)
        candidate = "/".join(parts[:i]) + ".py"
        if (REPO / candidate).exists():
            return candidate
    return "/".join(parts) + ".py"


def durations(junit: Path) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit).iter("testcase"):
        total[file_of(case.get("classname", ""))] += float(case.get("time") or 0.0)
    return {k: round(v, 1) for k, v in sorted(total.items(), key=lambda kv: -kv[1])}


def run_summary(log: Path) -> dict:
    """What the run's log says of the whole command: pytest's summary line and, from
    scripts/fresh_clone_test.sh, the split between setup and the test command proper."""
    text = log.read_text(errors="replace")
    out = {}
    if found := re.findall(r"^=+ (\d+ passed.*? in [\d.]+s.*?) =+$", text, flags=re.M):
        out["pytest"] = found[-1]
    if found := re.findall(r"^fresh clone: (.*)$", text, flags=re.M):
        out["fresh clone"] = found[-1]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("junit", type=Path, help="a pytest --junitxml file of a whole `make test` run")
    ap.add_argument("--log", type=Path, help="that run's output (adds its summary lines under \"_run\")")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    table: dict = durations(args.junit)
    if args.log:
        table = {"_run": run_summary(args.log), **table}
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    files = {k: v for k, v in table.items() if not k.startswith("_")}
    print(f"{len(files)} files, {sum(files.values()):.0f} s in all -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
