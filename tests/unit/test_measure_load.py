"""scripts/measure_load.py: thread modes, the environment each process gets, the rendered table.

The measurement itself needs a quiet machine (it is run by hand, see its docstring); here only its
pieces, on made-up reports.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tllab_measure_load", REPO / "scripts" / "measure_load.py")
load = sys.modules.setdefault("tllab_measure_load", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(load)


@pytest.mark.parametrize("n_cores, k, inherited, policy", [(2, 1, 2, 2), (2, 2, 2, 1), (2, 4, 2, 1), (8, 4, 8, 2),
                                                           (16, 3, 16, 5)])
def test_threads_for_each_mode(monkeypatch, n_cores, k, inherited, policy):
    monkeypatch.setattr(load, "cores", lambda: n_cores)
    assert load.threads_for("inherited", k) == inherited
    assert load.threads_for("policy", k) == policy


def test_threads_for_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match=r"mode must be one of \('inherited', 'policy'\), got 'fast'"):
        load.threads_for("fast", 2)


def test_env_for_sets_every_thread_variable_and_the_repo_path(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    env = load.env_for(3)
    assert [env[v] for v in load.THREAD_VARS] == ["3", "3", "3"]
    assert env["PYTHONPATH"].split(":")[0] == str(REPO)


def _report(quick: bool) -> dict:
    run = {"lesson": "02", "concurrent": 2, "mode": "policy", "threads": 1, "seconds": 40.0, "status": "passed"}
    return {"command": "python scripts/measure_load.py", "date": "2026-12-07 03:00 UTC", "quick": quick,
            "machine": {"cores": 2, "processor": "x86_64", "python": "3.11", "torch": "2.x", "data": "datasets/",
                        "load_before": [0.1, 0.1, 0.1], "load_after": [2.0, 1.0, 0.5]},
            "runs": [run],
            "lesson_table": [{"mode": "policy", "concurrent": 2, "threads": 1, "runs": [run, {**run, "seconds": 44.0}],
                              "wall": 44.0, "sequential": 40.0, "ratio": 1.1}],
            "forward": [{"processes": 1, "mode": "policy", "threads": 2, "img_per_s": [88.0], "total": 88.0},
                        {"processes": 2, "mode": "policy", "threads": 1, "img_per_s": [47.0, 48.0], "total": 95.0}]}


def test_render_shows_the_ratio_and_throughput_relative_to_one_process():
    text = load.render(_report(quick=False))
    assert "| policy | 2 | 1 | 02 40.0, 02 44.0 | 44.0 | 40.0 | **1.10** | all passed |" in text
    assert "| policy | 2 | 1 | 47.0, 48.0 | 95.0 | **1.08x** |" in text
    assert "smoke test" not in text


def test_render_marks_a_quick_run_as_meaningless():
    assert "--quick: a smoke test, these numbers mean nothing" in load.render(_report(quick=True))


def test_main_refuses_a_zero_count():
    with pytest.raises(SystemExit):
        load.main(["--concurrent", "0"])
