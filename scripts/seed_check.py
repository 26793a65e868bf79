"""Run every lesson on seeds nobody tuned on, on the shipped data; write docs/seed_check.md (+ .json).

    .venv/bin/python scripts/seed_check.py                          # lessons 00-07, seeds 100-104, 2 at a time
    .venv/bin/python scripts/seed_check.py --lessons 02 03 --merge  # re-run two lessons; other runs kept

Why: a lesson's closing assertions were written while looking at some seeds; a claim only stands if it
holds on seeds chosen afterwards (the course's rule: at least five untuned seeds, min-max reported).

Each (lesson, seed) is one ``python -m tlwidgets.course --lessons NN --seed S --device cpu`` in its own
process, so it runs exactly as ``make course`` does (papermill, the ``parameters`` cell given quick, device
and seed), with

- ``TLLAB_DATA`` emptied: the data-root rule then finds this checkout's ``datasets/`` (what a fresh clone
  ships) before any user cache; the runner's "data it ran on" column is kept in the JSON to prove it;
- ``PYTHONPATH`` set to this checkout, so the kernel imports this checkout's ``tlwidgets``;
- ``OMP_NUM_THREADS=1`` and ``nice``: at most ``--jobs`` lessons at a time on a shared machine.

The runner's results (``tl.record`` via ``$TLLAB_RESULTS_DIR``) give each lesson's headline numbers; this
script reports pass/fail per seed (a failed closing assertion fails the lesson) and the min-max of every
recorded number over the seeds. Each lesson's claims (the bullets of its "Check what this lesson claims"
section) and the assertions that check them (read from the code cells after that section) are copied
into the report from the notebook itself, so the report cannot drift from what the lesson asserts.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LESSONS = REPO / "lessons"
DOC = REPO / "docs" / "seed_check.md"
CLAIMS_HEADING = "Check what this lesson claims"


# --------------------------------------------------------------------------------- reading a lesson ---
def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def lesson_claims(path: Path) -> dict:
    """The claim bullets and the assertions (messages dropped) of a lesson's closing section.

    A lesson without a claims section reports every ``assert`` it makes (its mechanism checks).
    """
    cells = _cells(path)
    start = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and CLAIMS_HEADING in _source(c)),
                 None)
    claims: list[str] = []
    if start is not None:
        text = _source(cells[start])
        bullet = None
        for line in text.splitlines():
            if line.startswith("- "):
                if bullet:
                    claims.append(bullet)
                bullet = line[2:].strip()
            elif bullet is not None and line.startswith("  "):
                bullet += " " + line.strip()
            elif bullet is not None:
                claims.append(bullet)
                bullet = None
        if bullet:
            claims.append(bullet)
        if not claims:  # claims written as one paragraph
            prose = " ".join(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
            claims = [prose] if prose else []
    code = [c for c in (cells[start + 1:] if start is not None else cells) if c["cell_type"] == "code"]
    asserts: list[str] = []
    for cell in code:
        src = "\n".join(line for line in _source(cell).splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for stmt in tree.body:
            found = [n for n in ast.walk(stmt) if isinstance(n, ast.Assert)]
            if not found:
                continue
            for n in found:
                n.msg = None  # the message only helps when it fails
            asserts.append(ast.unparse(stmt))
    return {"claims": claims, "assertions": asserts, "has_claims_section": start is not None}


# --------------------------------------------------------------------------------- running a lesson ---
def run_one(lesson: Path, seed: int, work: Path, timeout: int) -> dict:
    """One lesson at one seed, in its own process, exactly as the course runner runs it."""
    out = work / f"{lesson.stem}-seed{seed}"
    env = {**os.environ, "TLLAB_DATA": "", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""),
           "TLLAB_HEADLESS": "1"}
    env.pop("TLLAB_RESULTS_DIR", None)
    env.pop("TLLAB_LESSON", None)
    cmd = ["nice", "-n", "10", sys.executable, "-m", "tlwidgets.course", "--lessons", lesson.name[:2],
           "--seed", str(seed), "--device", "cpu", "--out", str(out), "--no-html"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        tail = (proc.stdout + proc.stderr)[-2000:]
    except subprocess.TimeoutExpired:
        return {"lesson": lesson.stem, "seed": seed, "status": "failed", "seconds": round(time.perf_counter() - t0),
                "message": f"timed out after {timeout} s", "results": {}, "data": {}}
    table = out / "lessons" / "results.json"
    if not table.exists():
        return {"lesson": lesson.stem, "seed": seed, "status": "failed", "seconds": round(time.perf_counter() - t0),
                "message": f"the runner wrote no results (exit {proc.returncode}): {tail}", "results": {}, "data": {}}
    row = json.loads(table.read_text())[0]
    return {"lesson": lesson.stem, "seed": seed, "status": row["status"], "seconds": row["seconds"],
            "message": row["message"], "results": row["results"], "data": row["data"]}


# --------------------------------------------------------------------------------------- reporting ---
def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def summarise(lesson: str, runs: list[dict]) -> dict:
    """Pass count and, for every recorded headline number, its min and max over the seeds."""
    runs = sorted(runs, key=lambda r: r["seed"])
    keys = sorted({k for r in runs for k in r["results"]})
    numbers = {}
    for k in keys:
        vals = [r["results"].get(k) for r in runs]
        present = [v for v in vals if v is not None]
        if present and all(_is_number(v) for v in present):
            numbers[k] = {"min": min(present), "max": max(present), "n": len(present),
                          "missing": len(vals) - len(present)}
        else:
            numbers[k] = {"values": sorted({str(v) for v in vals})}
    data = sorted({f"{name}: {where}" for r in runs for name, where in r["data"].items()})
    return {"lesson": lesson, "seeds": [r["seed"] for r in runs],
            "passed": sum(r["status"] == "passed" for r in runs), "runs": len(runs),
            "failures": [{"seed": r["seed"], "message": r["message"]} for r in runs if r["status"] != "passed"],
            "seconds": {"min": min(r["seconds"] for r in runs), "max": max(r["seconds"] for r in runs)},
            "numbers": numbers, "data": data}


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render(report: dict) -> str:
    lines = ["# Seed check: every lesson on seeds nobody tuned on, on the shipped data", "",
             f"Written by `scripts/seed_check.py` ({report['when']}; {report['machine']}); do not edit by hand. "
             "Each lesson ran in quick mode on the CPU (`python -m tlwidgets.course --lessons NN --seed S "
             "--device cpu`, `TLLAB_DATA` empty so the data-root rule finds the repository's `datasets/`, "
             f"`OMP_NUM_THREADS=1`, {report['jobs']} lessons at a time on a machine shared with other work). "
             "A lesson passes when every cell ran, its closing assertions included. Headline numbers are what "
             "the lesson recorded with `tl.record`; each is shown as min–max over the seeds.", ""]
    lines += ["| lesson | seeds | passed | time per run (s) |", "|---|---|---:|---:|"]
    for s in report["lessons"]:
        lines.append(f"| {s['lesson']} | {', '.join(map(str, s['seeds']))} | {s['passed']}/{s['runs']} | "
                     f"{s['seconds']['min']:.0f}–{s['seconds']['max']:.0f} |")
    total = sum(s["passed"] for s in report["lessons"]), sum(s["runs"] for s in report["lessons"])
    lines += ["", f"**{total[0]} of {total[1]} runs passed.**", ""]
    plan = report.get("planned")
    if plan:
        planned = len(plan["lessons"]) * len(plan["seeds"])
        ran = {(s["lesson"], seed) for s in report["lessons"] for seed in s["seeds"]}
        missing = [f"{n} seed {seed}" for seed in plan["seeds"] for n in plan["lessons"] if (n, seed) not in ran]
        if missing:
            lines += [f"**Incomplete: {planned - len(missing)} of the {planned} planned runs finished** (seeds "
                      f"{', '.join(map(str, plan['seeds']))}; the run was stopped or is still going). Not run: "
                      + ", ".join(missing) + ".", ""]
    for s in report["lessons"]:
        c = report["claims"].get(s["lesson"], {"claims": [], "assertions": [], "has_claims_section": False})
        lines += [f"## {s['lesson']}", "", f"Passed {s['passed']} of {s['runs']} (seeds "
                  f"{', '.join(map(str, s['seeds']))}). Data: {'; '.join(s['data']) or '-'}.", ""]
        for f in s["failures"]:
            lines.append(f"- **failed at seed {f['seed']}**: `{f['message'].splitlines()[0][:300]}`")
        if s["failures"]:
            lines.append("")
        if c["claims"]:
            lines += ["Claims, as the lesson states them (bracketed: the ranges it quotes):", ""]
            lines += [f"- {claim}" for claim in c["claims"]] + [""]
        label = "Assertions at the end of the lesson" if c["has_claims_section"] else \
            "No claims section; the assertions the lesson makes (mechanism checks)"
        lines += [f"{label}:", "", "```python", *c["assertions"], "```", ""]
        lines += ["| recorded number | min | max |", "|---|---:|---:|"]
        for k, v in s["numbers"].items():
            if "min" in v:
                extra = f" (None in {v['missing']} runs)" if v["missing"] else ""
                lines.append(f"| {k}{extra} | {_fmt(v['min'])} | {_fmt(v['max'])} |")
            else:
                lines.append(f"| {k} | {' / '.join(v['values'])} | |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lessons", nargs="*", help="lesson number prefixes (default: all)")
    p.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103, 104])
    p.add_argument("--jobs", type=int, default=2, help="lessons run at the same time (default 2)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per lesson run")
    p.add_argument("--merge", action="store_true", help="keep the other lessons' rows of the existing JSON")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: rewrite the report from the existing JSON and the lessons' current text")
    p.add_argument("--out", default=str(DOC))
    args = p.parse_args(argv)
    lessons = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
    if args.lessons:
        lessons = [x for x in lessons if any(x.name.startswith(s) for s in args.lessons)]
    if not lessons:
        print("no lessons selected", file=sys.stderr)
        return 2
    doc = Path(args.out)
    jpath = doc.with_suffix(".json")
    if args.report_only:
        return write_report(doc, json.loads(jpath.read_text()))
    old = json.loads(jpath.read_text()) if args.merge and jpath.exists() else {"runs": []}
    # seed-major order: every lesson meets its first untuned seed before any lesson its second, so a run cut
    # short still covers every lesson; the report is rewritten after every finished run (nothing is lost)
    jobs = [(lesson, s) for s in args.seeds for lesson in lessons]
    print(f"{len(jobs)} runs, {args.jobs} at a time", flush=True)
    ran = {x.stem for x in lessons}
    planned = {(x.stem, s) for x in lessons for s in args.seeds}
    kept = [r for r in old["runs"] if (r["lesson"], r["seed"]) not in planned]   # --merge keeps the other runs
    done: list[dict] = []
    lock = threading.Lock()

    def report() -> int:
        return write_report(doc, {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "jobs": args.jobs,
                                  "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                  "planned": {"lessons": sorted(ran | {r["lesson"] for r in kept}),
                                              "seeds": sorted(set(args.seeds) | {r["seed"] for r in kept})},
                                  "runs": kept + done})

    with tempfile.TemporaryDirectory(prefix="seed_check-") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        def go(job):
            r = run_one(job[0], job[1], Path(tmp), args.timeout)
            print(f"  {r['lesson']} seed {r['seed']}: {r['status']} in {r['seconds']:.0f} s"
                  + (f" ({r['message'].splitlines()[0][:160]})" if r["message"] else ""), flush=True)
            with lock:
                done.append(r)
                report()
            return r
        list(pool.map(go, jobs))
    return report()


def write_report(doc: Path, base: dict) -> int:
    """Summarise ``base["runs"]``, read each lesson's claims afresh, write the JSON and the markdown."""
    runs = base["runs"]
    jpath = doc.with_suffix(".json")
    names = sorted({r["lesson"] for r in runs})
    report = {"when": base["when"], "jobs": base["jobs"], "machine": base["machine"],
              "planned": base.get("planned"),
              "lessons": [summarise(n, [r for r in runs if r["lesson"] == n]) for n in names],
              "claims": {n: lesson_claims(LESSONS / f"{n}.ipynb") for n in names},
              "runs": runs}
    doc.parent.mkdir(parents=True, exist_ok=True)
    jpath.write_text(json.dumps(report, indent=1) + "\n")
    doc.write_text(render(report) + "\n")
    print(f"wrote {doc} and {jpath.name}")
    failed = [f"{s['lesson']} ({s['runs'] - s['passed']})" for s in report["lessons"] if s["passed"] < s["runs"]]
    print("failed: " + ", ".join(failed) if failed else "every run passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
