"""Run the whole course headless: every lesson executed with papermill, saved as .ipynb and HTML, one results table.

    python -m tlwidgets.course --quick              # what `make course` runs
    python -m tlwidgets.course --full --device cuda # full size, on a GPU
    python -m tlwidgets.course --lessons 02 04      # a subset

A lesson that stops on :class:`tlwidgets.DataMissingError` is reported as
*skipped* with the message that says how to get the data, never as passed.
Exit status: 0 when nothing failed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .infra import REPO_ROOT, atomic_write, ensure_writable_dir
from .results import LESSON_ENV, RESULTS_ENV, load_all, load_data_sources
from .table import Column, Table

LESSONS_DIR = REPO_ROOT / "lessons"
SKIP_ERRORS = ("DataMissingError",)


@dataclass
class LessonRun:
    """The outcome of executing one notebook."""

    name: str
    status: str  # passed | skipped | failed
    seconds: float
    peak_rss_mb: float | None = None
    message: str = ""
    results: dict = field(default_factory=dict)
    output: Path | None = None
    data: dict = field(default_factory=dict)  # dataset -> which root (and how much of it) the lesson loaded

    def __repr__(self):
        return f"LessonRun({self.name}: {self.status}, {self.seconds:.0f} s)"


def notebook_requirements(path: Path) -> list[str]:
    """Datasets a notebook declares in its metadata (``"tllab": {"requires": ["pets"]}``)."""
    meta = json.loads(Path(path).read_text()).get("metadata", {})
    return list(meta.get("tllab", {}).get("requires", []))


def missing_data_message(requirements: list[str]) -> str | None:
    """The DataMissingError message for the first unmet requirement, or None when all are met."""
    from .data import SPECS, DataMissingError, find_dataset

    for name in requirements:
        try:
            find_dataset(SPECS[name])
        except DataMissingError as exc:
            return str(exc)
    return None


def lesson_parameters(*, quick: bool = True, device: str = "auto", seed: int = 0) -> dict:
    """The papermill parameters every lesson takes: the runner injects them, and so does the test run (nbval)."""
    return {"quick": bool(quick), "device": str(device), "seed": int(seed)}


def inject_parameters(source: str, params: dict) -> str:
    """``source`` of a ``parameters`` cell followed by the assignments, as papermill's injected cell would be."""
    lines = "".join(f"{k} = {v!r}\n" for k, v in params.items())
    return f"{source.rstrip()}\n# Parameters injected by the test run (as papermill would)\n{lines}"


def find_lessons(selected: list[str] | None = None, *, solutions: bool = False) -> list[Path]:
    """The numbered lesson notebooks (or their solutions), in course order; ``selected`` keeps those whose
    names start with one of its prefixes (``["02", "07"]``)."""
    folder = LESSONS_DIR / "solutions" if solutions else LESSONS_DIR
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if selected:
        paths = [p for p in paths if any(p.name.startswith(s) for s in selected)]
    return paths


class _PeakMemory:
    """Polls the resident memory of this process's children (the kernel) while a lesson runs."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        try:
            import psutil

            self._me = psutil.Process()
        except ImportError:  # psutil is optional; the column then shows "-"
            self._me = None

    def __enter__(self):
        if self._me is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            try:
                rss = sum(c.memory_info().rss for c in self._me.children(recursive=True))
                self.peak = max(self.peak, rss)
            except Exception:  # a child may exit between listing and reading it
                pass
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        if self._me is not None:
            self._thread.join()

    @property
    def peak_mb(self) -> float | None:
        return self.peak / 2**20 if self._me is not None else None


def run_lesson(path: Path, out_dir: Path, parameters: dict, *, html: bool = True, timeout: int = 900) -> LessonRun:
    """Execute one lesson with papermill into ``out_dir`` (plus HTML); classify the outcome.

    Args:
        path: the lesson notebook.
        out_dir: where the executed notebook, its HTML, its recorded results and its stderr log go.
        parameters: values for the notebook's papermill ``parameters`` cell (``quick``, ``device``, ``seed``).
        html: also write an HTML copy (what ``make course`` publishes).
        timeout: seconds one cell may run before the lesson counts as failed.
    """
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    results_dir = out_dir / "results"
    # the kernel inherits these (only while this lesson runs): tl.record writes into results_dir, and the
    # data module notes there which data this lesson loaded
    env = {RESULTS_ENV: str(results_dir), LESSON_ENV: path.stem}
    t0 = time.perf_counter()
    status, message = "passed", ""
    log = out_dir / "logs" / f"{path.stem}.stderr.txt"
    with _environment(env), _PeakMemory() as mem, _stderr_to(log):
        try:
            pm.execute_notebook(str(path), str(out), parameters=parameters, kernel_name="python3",
                                cwd=str(path.parent), progress_bar=False, execution_timeout=timeout,
                                log_output=False)
        except pm.PapermillExecutionError as exc:
            if exc.ename in SKIP_ERRORS:
                status, message = "skipped", exc.evalue
            else:
                status, message = "failed", f"{exc.ename}: {exc.evalue}"
        except Exception as exc:  # a cell timeout, a dead kernel: this lesson failed, the course goes on
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            status, message = "failed", f"{type(exc).__name__}: {first}"
    seconds = time.perf_counter() - t0
    if html and out.exists():
        _to_html(out, out_dir / "html")
    stem = path.stem
    results = load_all(results_dir).get(stem, {}) if results_dir.exists() else {}
    data = load_data_sources(results_dir, stem)
    return LessonRun(stem, status, seconds, mem.peak_mb, message, results, out, data)


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """Set environment variables for the duration of the block, then restore what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _stderr_to(log: Path):
    """Send this process's stderr file descriptor, and so the kernel's (it inherits it), to ``log``.

    The kernel's stderr holds start-up warnings and low-level logs that would
    otherwise interleave with the runner's table; the file keeps them for a
    failed lesson.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log, "wb") as fh:
            os.dup2(fh.fileno(), 2)
            try:
                yield log
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _to_html(notebook: Path, html_dir: Path) -> None:
    from nbconvert import HTMLExporter

    html_dir.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter().from_filename(str(notebook))
    atomic_write(html_dir / notebook.with_suffix(".html").name, body)


def results_table(runs: list[LessonRun]) -> Table:
    """Lesson, status, time, peak memory, the data it ran on and the lesson's headline numbers, one row each.

    A failed or skipped lesson shows the first line of its message where the numbers would be, so the
    table alone says why a lesson has none.
    """
    rows = []
    for r in runs:
        if r.status == "passed":
            detail = ", ".join(f"{k}={v}" for k, v in r.results.items()) or "-"
        else:
            detail = r.message.splitlines()[0][:160] if r.message else "-"
        rows.append({"lesson": r.name, "status": r.status, "seconds": r.seconds, "rss": r.peak_rss_mb or None,
                     "data": "; ".join(f"{k}: {v}" for k, v in sorted(r.data.items())) or "-", "detail": detail})
    return Table(rows, [Column("lesson", align="left"), Column("status", align="left"),
                        Column("seconds", "time (s)", fmt=".0f"), Column("rss", "peak RSS (MB)", fmt=".0f"),
                        Column("data", "data it ran on", align="left"),
                        Column("detail", "headline results", align="left")])


def format_table(runs: list[LessonRun]) -> str:
    """``results.md``: the Markdown results table and a line of totals (the README's table is pasted from it)."""
    total = sum(r.seconds for r in runs)
    counts = {s: sum(r.status == s for r in runs) for s in ("passed", "skipped", "failed")}
    return (results_table(runs).to_markdown() + f"\n\n{counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped in {total:.0f} s")


def _check_options(args) -> str | None:
    """What is wrong with the command line (device, seed, output folder), or None; checked before any work."""
    from .infra import select_device

    try:
        select_device(args.device)
    except ValueError as exc:
        return f"--device: {exc}"
    if args.seed < 0:
        return f"--seed must be a non-negative integer, got {args.seed}"
    out = Path(args.out)
    try:
        ensure_writable_dir(out)
    except OSError as exc:
        return f"--out {out} is not a writable folder ({exc.strerror or exc}); choose another with --out"
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m tlwidgets.course``: run the lessons, write their HTML and a results table.

    Returns the exit status: 2 for bad options (checked before any kernel starts), 1 when no lesson was found
    or one failed, else 0 (a lesson skipped for missing data does not fail the run: it says what to fetch).
    """
    parser = argparse.ArgumentParser(prog="python -m tlwidgets.course", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="quick", action="store_true", default=True, help="quick mode (default)")
    mode.add_argument("--full", dest="quick", action="store_false", help="full size (meant for a GPU)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda (or cuda:N) or mps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lessons", nargs="*", help="lesson number prefixes, e.g. 01 04")
    parser.add_argument("--solutions", action="store_true", help="run the solution notebooks instead")
    parser.add_argument("--out", default=str(REPO_ROOT / "build"), help="output folder (default: build/)")
    parser.add_argument("--no-html", action="store_true")
    args = parser.parse_args(argv)
    problem = _check_options(args)  # before any kernel starts
    if problem:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {problem}", file=sys.stderr)
        return 2

    lessons = find_lessons(args.lessons, solutions=args.solutions)
    if not lessons:
        print("no lessons found", file=sys.stderr)
        return 1
    out_dir = Path(args.out) / ("solutions" if args.solutions else "lessons")
    if (out_dir / "results").exists():
        shutil.rmtree(out_dir / "results")
    os.environ.setdefault("TLLAB_HEADLESS", "1")
    params = lesson_parameters(quick=args.quick, device=args.device, seed=args.seed)
    print(f"Running {len(lessons)} notebook(s) in {'quick' if args.quick else 'full'} mode, device={args.device}, "
          f"data root={os.environ.get('TLLAB_DATA') or '(search path)'} -> {out_dir}", flush=True)
    runs = []
    for path in lessons:
        print(f"  {path.name} ...", end=" ", flush=True)
        run = run_lesson(path, out_dir, params, html=not args.no_html)
        runs.append(run)
        print(f"{run.status} in {run.seconds:.0f} s" + (f" ({run.message.splitlines()[0][:120]})"
                                                          if run.message else ""), flush=True)
        if run.status == "skipped":
            print("    " + run.message.replace("\n", "\n    "), flush=True)
    table = format_table(runs)
    atomic_write(out_dir / "results.md", table + "\n")
    atomic_write(out_dir / "results.json", json.dumps(
        [{"lesson": r.name, "status": r.status, "seconds": round(r.seconds, 1), "peak_rss_mb":
          None if r.peak_rss_mb is None else round(r.peak_rss_mb), "message": r.message, "results": r.results,
          "data": r.data}
         for r in runs], indent=1))
    print("\n" + table)
    print(f"\nExecuted notebooks: {out_dir}  HTML: {out_dir / 'html'}")
    return 1 if any(r.status == "failed" for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
