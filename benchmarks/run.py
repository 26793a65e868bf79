"""Benchmark the course and its training paths; save the numbers and render docs/benchmarks.md.

    .venv/bin/python -m benchmarks                            # full run (`make benchmark`)
    .venv/bin/python -m benchmarks --quick --skip-lessons     # a few minutes
    .venv/bin/python -m benchmarks --device cuda              # adds/replaces the GPU section

Sections (``--only`` picks some): lessons, tests, forward, cached, boundary,
chart, data, peers, tuning. Every number is the median of ``--repeats`` runs
(lessons: ``--lesson-repeats``), comparisons are ratios taken in the same run
on the same machine, and the machine's load average is recorded because a
busy machine inflates every wall-clock number. docs/benchmarks.json keeps one
entry per device (cpu, cuda, mps): a run replaces its own device's entry and
leaves the others; docs/benchmarks.md is rendered from it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from . import caching, chart, data_loading, forward, lessons, peers, render, suite, tuning
from .config import Config
from .measure import machine_info

RUNNERS: dict[str, Callable[[Config], dict]] = {
    "lessons": lessons.measure, "tests": suite.measure, "forward": forward.measure,
    "cached": caching.measure_cached, "boundary": caching.measure_boundary, "chart": chart.measure,
    "data": data_loading.measure, "peers": peers.measure, "tuning": tuning.measure,
}
SECTIONS = tuple(RUNNERS)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=(__doc__ or "").splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer repeats and sizes; under 5 minutes without lessons")
    p.add_argument("--repeats", type=int, default=None, help="runs per number, reported as the median "
                   "(default 3; 2 with --quick)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own choice)")
    p.add_argument("--skip-lessons", action="store_true", help="do not run the lessons")
    p.add_argument("--skip-tests", action="store_true", help="never run the test command (wins over "
                   "--with-test-command)")
    p.add_argument("--with-test-command", action="store_true", help="also time the whole test command once "
                   "(many minutes; off by default)")
    p.add_argument("--test-command", default="make test", help="the test command to time (default: make test)")
    p.add_argument("--lesson-repeats", type=int, default=1, help="runs of the whole lesson sequence (default 1)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    p.add_argument("--target-acc", type=float, default=0.90, help="cat-vs-dog test accuracy every arm of the peer "
                   "race runs to (default 0.90; the cat-breed race's target is the course's own balanced accuracy)")
    p.add_argument("--peer-budget", type=float, default=None, help="seconds each peer recipe may train per race "
                   "(default 240; 60 with --quick)")
    p.add_argument("--peer-epochs", type=int, default=None, help="most epochs for each peer recipe "
                   "(default 8; 2 with --quick)")
    p.add_argument("--peer-batch-size", type=int, default=4, help="the tutorial's batch size (default 4)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (always on with CUDA; on a "
                   "CPU compiling takes minutes)")
    p.add_argument("--json", default=str(render.JSON_PATH), help="results file to update (default "
                   "docs/benchmarks.json)")
    p.add_argument("--out", default=str(render.DOC_PATH), help="Markdown file to render (default docs/benchmarks.md)")
    return p.parse_args(argv)


def make_config(args: argparse.Namespace) -> Config:
    from tlwidgets import DataMissingError
    from tlwidgets.data import PETS_SPEC, find_dataset
    from tlwidgets.infra import select_device

    sections = tuple(args.only) if args.only else SECTIONS
    if args.skip_lessons:
        sections = tuple(s for s in sections if s != "lessons")
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 3)
    if repeats < 1:
        raise SystemExit(f"--repeats must be at least 1, got {repeats}")
    cfg = Config(
        quick=args.quick, repeats=repeats, device_arg=args.device, device=select_device(args.device),
        sections=sections, with_test_command=args.with_test_command and not args.skip_tests,
        skip_tests=args.skip_tests, test_command=args.test_command, lesson_repeats=max(1, args.lesson_repeats),
        target_acc=args.target_acc,
        peer_budget_s=args.peer_budget if args.peer_budget is not None else (60.0 if args.quick else 240.0),
        peer_max_epochs=args.peer_epochs if args.peer_epochs is not None else (2 if args.quick else 8),
        peer_batch_size=args.peer_batch_size, compile=args.compile, tmp=Path(tempfile.mkdtemp(prefix="tlbench-")))
    try:
        find_dataset(PETS_SPEC)
        cfg.has_pets = True
    except DataMissingError:
        cfg.notes.append("Oxford-IIIT Pet was not found (set TLLAB_DATA): photo sections use MNIST 5-9 with the "
                         "digit CNN, and the peer comparison is not measured.")
    if "lessons" not in sections:
        cfg.notes.append("Lessons not run in this benchmark (--skip-lessons or --only).")
    return cfg


def run_sections(cfg: Config) -> list[dict]:
    """Each section's data (or its error: one broken section must not hide the others' numbers)."""
    results = []
    for key in cfg.sections:
        t0 = time.perf_counter()
        print(f"\n== {key}", flush=True)
        section: dict[str, Any]
        try:
            section = {"key": key, "data": RUNNERS[key](cfg)}
        except Exception as exc:
            traceback.print_exc()
            section = {"key": key, "error": f"{type(exc).__name__}: {exc}"}
        section["seconds"] = time.perf_counter() - t0
        results.append(section)
        print(f"   {key}: {'ok' if render.section_ok(section) else 'FAILED'} in "
              f"{render.fmt_seconds(section['seconds'])}", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = make_config(args)
    os.environ.setdefault("TLLAB_HEADLESS", "1")
    info = machine_info(cfg.device)
    print(f"benchmark: {'quick' if cfg.quick else 'full'} mode on {cfg.device} ({info['cpu']}, "
          f"{info['torch_threads']} threads, load {info['load_average']}); sections: {', '.join(cfg.sections)}",
          flush=True)
    t_start = time.perf_counter()
    try:
        sections = run_sections(cfg)
    finally:
        shutil.rmtree(cfg.tmp, ignore_errors=True)
    entry: dict[str, Any] = {"machine": info, "machine_end": machine_info(cfg.device),
             "run": {**cfg.to_json(), "wall_s": time.perf_counter() - t_start}, "sections": sections}
    results = render.merge_device(render.load(args.json), cfg.device.type, entry, only=args.only)
    render.save(results, args.json)
    render.write_doc(results, args.out)
    if args.json == str(render.JSON_PATH):      # the README's table follows the committed numbers only
        render.write_readme(results)
    print("\n" + render.render_device(cfg.device.type, entry))
    print(f"\nsaved {args.json}; wrote {args.out} in {render.fmt_seconds(entry['run']['wall_s'])}", file=sys.stderr)
    return 0 if all(render.section_ok(s) for s in sections) else 1


if __name__ == "__main__":
    raise SystemExit(main())

