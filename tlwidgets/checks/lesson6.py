"""Checks for lesson 6 (dogs -> cats with the dashboard). Each inspects the objects passed in."""
from __future__ import annotations

import html

from . import CheckResult, not_yet, passed
from ..data import Task
from ..transfer import RunResult


def exercise1(task, result) -> CheckResult:
    """A photo folder turned into a task with ``tl.folder_task`` and trained better than chance."""
    if task is None or result is None:
        return not_yet("build `task = tl.folder_task(path, image_size=...)` on a folder of class sub-folders and "
                       "`result = tl.run_strategy('feature_extraction', task, ...)`, then pass both")
    if not isinstance(task, Task):
        raise ValueError(f"exercise1 expects a tlwidgets Task first (from tl.folder_task), got {type(task).__name__}")
    if not isinstance(result, RunResult):
        raise ValueError(f"exercise1 expects a RunResult second (from tl.run_strategy), got {type(result).__name__}")
    if not task.name.startswith("Photos in "):
        return not_yet(f"{task.name!r} is not a photo-folder task: make it with tl.folder_task(path)")
    if result.task_name != task.name or result.model.classes != task.classes:
        return not_yet("the result was trained on another task: pass the task you trained on")
    chance = 1 / task.num_classes
    if result.test_acc <= chance:
        return not_yet(f"test accuracy {result.test_acc:.1%} is not better than chance ({chance:.0%}): "
                       "more photos per class, or more epochs")
    return passed(f"{task.num_classes} classes ({', '.join(task.classes)}), {len(task.train)} training photos: "
                  f"{result.test_acc:.1%} on {len(task.test)} held-out photos (chance {chance:.0%})")


def exercise2(answer, dashboard, *, strategy: str = "fine_tune", n_per_class=5, n_frozen: int = 7) -> CheckResult:
    """A dashboard run with the given settings, driven from Python; ``answer`` is its results row."""
    from ..widgets.dashboard import Dashboard

    if not isinstance(dashboard, Dashboard):
        raise ValueError(f"exercise2 needs the dashboard second, got {type(dashboard).__name__}")
    if answer is None:
        return not_yet(f"run dashboard.run_sync(strategy={strategy!r}, n_per_class={n_per_class!r}, "
                       f"n_frozen={n_frozen}, ...) and answer with its row: dashboard.results[-1]")
    if not isinstance(answer, dict):
        raise ValueError(f"exercise2 expects a results row (a dict from dashboard.results), got {type(answer).__name__}")
    if answer not in dashboard.results:
        return not_yet("that row is not in this dashboard's results: pass the dashboard that ran it")
    want = {"strategy": strategy, "n_per_class": "all" if n_per_class is None else n_per_class,
            "frozen_groups": n_frozen}
    wrong = {k: answer.get(k) for k, v in want.items() if answer.get(k) != v}
    if wrong:
        return not_yet(f"the run used {wrong}; it should use {want}")
    return passed(f"run {dashboard.results.index(answer) + 1}: fine-tuning above group {n_frozen} with "
                  f"{n_per_class}/class reached {answer['test_acc']:.3f} in {answer['epochs']} epochs")


def exercise3(answer, dashboard) -> CheckResult:
    """How many epochs the dashboard's last replay showed (read from its chart, not guessed)."""
    from ..widgets.dashboard import Dashboard

    if not isinstance(dashboard, Dashboard):
        raise ValueError(f"exercise3 needs the dashboard second, got {type(dashboard).__name__}")
    if answer is None:
        return not_yet("load a log into a dashboard (load_log), replay it, and count the epochs its chart shows "
                       "(dashboard.chart.records)")
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise ValueError(f"exercise3 expects an integer number of epochs, got {type(answer).__name__}")
    if not dashboard.runs:
        return not_yet("this dashboard has no runs: load_log(path) first, then replay()")
    shown = len(dashboard.chart.records)
    replayed = html.unescape(dashboard.status.value).startswith("replay")  # training since would overwrite it
    if shown == 0 or dashboard.chart.end_logs is None or not replayed:
        return not_yet("nothing was replayed yet: call dashboard.replay(seconds_per_epoch=0)")
    if answer != shown:
        return not_yet(f"the chart shows a different number of epochs than {answer}; count dashboard.chart.records")
    return passed(f"the replay showed {shown} epochs, with no training at all")
