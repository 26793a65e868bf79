"""Many kernels on few cores (issue 23 §2): lesson times alone and at once, torch threads as inherited vs the policy.

Why: every kernel used to start torch with one thread per core. On a 2-core machine two kernels then
ran four spinning OpenMP threads on two cores and each was 4-16x slower instead of about 2x (the
issue's numbers). The policy (``tlwidgets.infra.thread_count``; the hub sets ``TLLAB_THREADS`` from
each student's CPU share) gives each of k concurrent kernels ``max(1, cores // k)`` threads.

Two measurements, each in two thread modes, written to ``docs/load.md`` and ``docs/load.json``:

1. **Lessons**: each lesson of ``--lessons`` alone, then k = 2 and 4 lessons started at once (the list
   cycled: lesson 02, 05, 02, 05 for k = 4). Each run is ``python -m tlwidgets.course --quick --lessons NN``
   in its own process (papermill + a kernel), so every lesson's own assertions run too; a failed lesson is
   reported as failed. "At once / one after another" = the wall time until the last of the k lessons
   finished, over the sum of the same lessons' times alone. Goal of the issue: <= 1.25 with 4 lessons.
2. **Forward-pass throughput**: EfficientNet-Lite0, batch 32, 128 px, in 1 / 2 / 4 processes at once
   (each loads the model, then all start together and run for ``--seconds``): images/s per process and
   in total, relative to one process alone.

Modes: ``inherited`` = ``TLLAB_THREADS`` set to the machine's core count (what torch picks by itself,
i.e. what every kernel did before the policy); ``policy`` = ``TLLAB_THREADS=OMP_NUM_THREADS=max(1, cores // k)``
(what the hub's per-student share gives k students on this machine).

Take the measurement on a quiet machine (nothing else running); it prints the load average before and after,
and the tables say so. ``--quick`` is a smoke test (one lesson, k = 1 and 2, 3 s forward passes): its numbers
mean nothing; it writes to ``--out`` like a real run, so point ``--out`` elsewhere.

    python scripts/measure_load.py                         # the real run (~30-60 min on 2 cores)
    python scripts/measure_load.py --quick --out /tmp/load # smoke test
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODES = ("inherited", "policy")
THREAD_VARS = ("TLLAB_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class Run:
    """One lesson process: which lesson, how many ran at once, thread mode, seconds, exit status."""

    lesson: str
    concurrent: int
    mode: str
    threads: int
    seconds: float
    status: str


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_for(mode: str, concurrent: int) -> int:
    """torch threads per process: all cores (inherited) or the per-student share of the policy."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return cores() if mode == "inherited" else max(1, cores() // concurrent)


def env_for(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update({var: str(threads) for var in THREAD_VARS})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["TLLAB_HEADLESS"] = "1"
    return env


def run_lessons_at_once(lessons: list[str], mode: str, work: Path, timeout: int) -> tuple[list[Run], float]:
    """Start one ``tlwidgets.course`` process per lesson at the same moment; their runs and the wall time of all."""
    k = len(lessons)
    threads = threads_for(mode, k)
    procs = []
    t0 = time.perf_counter()
    for i, lesson in enumerate(lessons):
        out = work / f"{mode}-{k}-{i}-{lesson}"
        cmd = [sys.executable, "-m", "tlwidgets.course", "--quick", "--no-html", "--lessons", lesson, "--out", str(out)]
        log = open(out.with_suffix(".log"), "wb")
        procs.append((lesson, subprocess.Popen(cmd, cwd=REPO, env=env_for(threads), stdout=log,
                                               stderr=subprocess.STDOUT), log))
    ended: dict[int, tuple[float, str]] = {}
    while len(ended) < len(procs):  # poll all: each lesson's own end time, whichever finishes first
        for i, (_, proc, log) in enumerate(procs):
            if i in ended:
                continue
            rc = proc.poll()
            if rc is None and time.perf_counter() - t0 > timeout:
                proc.kill()
                proc.wait()
                ended[i] = (time.perf_counter() - t0, f"timed out after {timeout} s")
            elif rc is not None:
                ended[i] = (time.perf_counter() - t0, "passed" if rc == 0 else f"failed (exit {rc}, see {log.name})")
        time.sleep(0.2)
    runs = []
    for i, (lesson, _, log) in enumerate(procs):
        log.close()
        runs.append(Run(lesson, k, mode, threads, *ended[i]))
    return runs, time.perf_counter() - t0


FORWARD = r"""
import sys, time, torch, tlwidgets as tl
seconds = float(sys.argv[1])
model = tl.efficientnet_lite0().eval()
x = torch.randn(32, 3, 128, 128)
with torch.inference_mode():
    model(x)  # warm-up
    print("ready", flush=True)
    sys.stdin.readline()  # all start together
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model(x)
        n += 32
print(n / (time.perf_counter() - t0), torch.get_num_threads())
"""


def forward_throughput(k: int, mode: str, seconds: float) -> dict:
    """``k`` processes run the forward pass at the same time; images/s of each."""
    threads = threads_for(mode, k)
    procs = [subprocess.Popen([sys.executable, "-c", FORWARD, str(seconds)], cwd=REPO, env=env_for(threads),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(k)]
    for p in procs:  # every process has loaded the model and run one warm-up batch ...
        if p.stdout.readline().strip() != "ready":
            p.wait()
            raise RuntimeError(f"forward-pass process failed ({p.returncode}):\n{p.stderr.read()[-2000:]}")
    for p in procs:  # ... then all go at once
        p.stdin.write("go\n")
        p.stdin.flush()
    rates = []
    for p in procs:
        out, err = p.communicate(timeout=seconds * 20 + 120)
        if p.returncode:
            raise RuntimeError(f"forward-pass process failed ({p.returncode}):\n{err[-2000:]}")
        rate, used = out.split()
        if int(used) != threads:
            raise RuntimeError(f"the process ran {used} torch threads, {threads} were asked for")
        rates.append(float(rate))
    return {"processes": k, "mode": mode, "threads": threads, "img_per_s": rates, "total": sum(rates)}


def render(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Many kernels on one machine: lesson times and forward-pass throughput",
        "",
        f"Written by `{report['command']}` on {report['date']}: {m['cores']} usable cores, {m['processor']}, "
        f"Python {m['python']}, torch {m['torch']}, data {m['data']}; "
        f"load average before {m['load_before']}, after {m['load_after']}"
        + (" (**--quick: a smoke test, these numbers mean nothing**)" if report["quick"] else "") + ".",
        "",
        "Thread modes: **inherited** = one torch thread per core in every process (what each kernel did by itself "
        "before the policy); **policy** = `max(1, cores // k)` threads for each of k processes at once "
        "(`tlwidgets.infra.thread_count`, `TLLAB_THREADS` as the hub sets it from each student's CPU share).",
        "",
        "## Lessons (quick mode), alone and at once",
        "",
        "| mode | lessons at once | threads each | each lesson (s) | all finished (s) | one after another (s) "
        "| at once / one after another | status |",
        "|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for row in report["lesson_table"]:
        each = ", ".join(f"{r['lesson']} {r['seconds']:.1f}" for r in row["runs"])
        status = "all passed" if all(r["status"] == "passed" for r in row["runs"]) else \
            "; ".join(f"{r['lesson']}: {r['status']}" for r in row["runs"] if r["status"] != "passed")
        lines.append(f"| {row['mode']} | {row['concurrent']} | {row['threads']} | {each} | {row['wall']:.1f} | "
                     f"{row['sequential']:.1f} | **{row['ratio']:.2f}** | {status} |")
    lines += ["", "\"One after another\" is the sum of the same lessons' times alone in the same mode; the issue's "
              "goal is at most 1.25 with 4 lessons at once (no collapse).", "",
              "## Forward pass: EfficientNet-Lite0, batch 32, 128 px", "",
              "| mode | processes | threads each | img/s per process | total img/s | total / one process alone |",
              "|---|---:|---:|---|---:|---:|"]
    alone = {r["mode"]: r["total"] for r in report["forward"] if r["processes"] == 1}
    for r in report["forward"]:
        per = ", ".join(f"{x:.1f}" for x in r["img_per_s"])
        rel = r["total"] / alone[r["mode"]] if alone.get(r["mode"]) else float("nan")
        lines.append(f"| {r['mode']} | {r['processes']} | {r['threads']} | {per} | {r['total']:.1f} | "
                     f"**{rel:.2f}x** |")
    lines += ["", "A total well below 1.0x with several processes is the collapse the issue describes: the "
              "processes' threads wait on each other instead of computing.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lessons", nargs="+", help="lesson number prefixes, cycled (default 02 05)")
    p.add_argument("--concurrent", nargs="+", type=int, help="lessons at once (default 2 4)")
    p.add_argument("--processes", nargs="+", type=int, help="forward-pass processes at once (default 1 2 4)")
    p.add_argument("--seconds", type=float, help="forward-pass duration per process (default 20)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds one batch of lessons may take (default 3600)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: defaults become the first lesson only, 2 at once, 1-2 processes for 3 s")
    p.add_argument("--skip-lessons", action="store_true", help="only the forward-pass check")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "load", help="writes OUT.md and OUT.json")
    args = p.parse_args(argv)
    quick = args.quick
    args.lessons = args.lessons or (["02"] if quick else ["02", "05"])
    args.concurrent = args.concurrent or ([2] if quick else [2, 4])
    args.processes = args.processes or ([1, 2] if quick else [1, 2, 4])
    args.seconds = args.seconds or (3.0 if quick else 20.0)
    if any(k < 1 for k in args.concurrent + args.processes):
        p.error(f"--concurrent and --processes must be >= 1, got {args.concurrent} and {args.processes}")
    if 1 not in args.processes:
        p.error(f"--processes must include 1 (the baseline the others are compared with), got {args.processes}")

    import torch

    report: dict = {
        "command": "python scripts/measure_load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": args.quick,
        "machine": {"cores": cores(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "data": os.environ.get("TLLAB_DATA") or "the repo's datasets/",
                    "load_before": [round(x, 2) for x in os.getloadavg()]},
        "runs": [], "lesson_table": [], "forward": []}
    with tempfile.TemporaryDirectory(prefix="tllab-load-") as tmp:
        work = Path(tmp)
        for mode in MODES if not args.skip_lessons else ():
            alone: dict[str, float] = {}
            for lesson in dict.fromkeys(args.lessons):
                runs, wall = run_lessons_at_once([lesson], mode, work, args.timeout)
                alone[lesson] = wall
                report["runs"] += [asdict(r) for r in runs]
                report["lesson_table"].append({"mode": mode, "concurrent": 1, "threads": runs[0].threads,
                                               "runs": [asdict(r) for r in runs], "wall": wall, "sequential": wall,
                                               "ratio": 1.0})
                print(f"[load] {mode}: {lesson} alone {wall:.1f} s ({runs[0].status})", flush=True)
            for k in args.concurrent:
                chosen = [args.lessons[i % len(args.lessons)] for i in range(k)]
                runs, wall = run_lessons_at_once(chosen, mode, work, args.timeout)
                sequential = sum(alone[x] for x in chosen)
                report["runs"] += [asdict(r) for r in runs]
                report["lesson_table"].append({"mode": mode, "concurrent": k, "threads": runs[0].threads,
                                               "runs": [asdict(r) for r in runs], "wall": wall,
                                               "sequential": sequential, "ratio": wall / sequential})
                print(f"[load] {mode}: {k} at once {wall:.1f} s vs one after another {sequential:.1f} s "
                      f"({wall / sequential:.2f})", flush=True)
    for mode in MODES:
        for k in args.processes:
            r = forward_throughput(k, mode, args.seconds)
            report["forward"].append(r)
            print(f"[load] forward {mode}: {k} process(es) x {r['threads']} threads: "
                  f"{', '.join(f'{x:.1f}' for x in r['img_per_s'])} img/s", flush=True)
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(render(report))
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}")
    failed = [r for r in report["runs"] if r["status"] != "passed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
