"""Checks for lesson 6 (dogs -> cats with the dashboard). Each inspects the objects passed in."""
from __future__ import annotations

import html
from collections.abc import Sized
from typing import Any, cast

from ..data import Task, size_label
from ..transfer import RunResult
from . import CheckResult, as_count, is_placeholder, not_yet, passed


def exercise1(task: Any, result: Any, *, num_classes: int | None = None,
              required_class: str | None = None) -> CheckResult:
    """A photo folder turned into a task with ``tl.folder_task`` and trained better than chance.

    ``num_classes`` (when given) is the number of class folders the exercise asks for; ``required_class``
    (when given) the class it asks to add, so a folder with some other third breed is not accepted.
    """
    if is_placeholder(task) or is_placeholder(result):
        return not_yet("build `task = tl.folder_task(path, image_size=...)` on a folder of class sub-folders and "
                       "`result = tl.run_strategy('feature_extraction', task, ...)`, then pass both")
    if not isinstance(task, Task):
        raise ValueError(f"exercise1 expects a tlwidgets Task first (from tl.folder_task), got {type(task).__name__}")
    if not isinstance(result, RunResult):
        raise ValueError(f"exercise1 expects a RunResult second (from tl.run_strategy), got {type(result).__name__}")
    if not task.name.startswith("Photos in "):
        return not_yet(f"{task.name!r} is not a photo-folder task: make it with tl.folder_task(path)")
    if num_classes is not None and task.num_classes != num_classes:
        return not_yet(f"the task has {task.num_classes} classes ({', '.join(task.classes)}); the exercise asks for "
                       f"{num_classes}: add a sub-folder per missing class")
    if required_class is not None and required_class not in task.classes:
        return not_yet(f"the task's classes are {', '.join(task.classes)}; the exercise asks for "
                       f"{required_class!r}: copy its photos into a sub-folder named {required_class}")
    if result.task_name != task.name or result.model is None or result.model.classes != task.classes:
        return not_yet("the result was trained on another task: pass the task you trained on")
    chance = 1 / task.num_classes
    if result.test_acc <= chance:
        return not_yet(f"test accuracy {result.test_acc:.1%} is not better than chance ({chance:.0%}): "
                       "more photos per class, or more epochs")
    n_train, n_test = len(cast(Sized, task.train)), len(cast(Sized, task.test))  # folder tasks: map-style datasets
    return passed(f"{task.num_classes} classes ({', '.join(task.classes)}), {n_train} training photos: "
                  f"{result.test_acc:.1%} on {n_test} held-out photos (chance {chance:.0%})")


def exercise2(answer: Any, dashboard: Any, *, strategy: str = "fine_tune", n_per_class: int | None = 5,
              n_frozen: int = 7) -> CheckResult:
    """A dashboard run with the given settings, driven from Python; ``answer`` is its results row.

    Args:
        answer: the row of the student's run (``dashboard.results[-1]``).
        dashboard: the lesson's Dashboard.
        strategy: the strategy the run must have used.
        n_per_class: the labels per class it must have used.
        n_frozen: the frozen groups it must have used.
    """
    from ..widgets.dashboard import Dashboard

    if not isinstance(dashboard, Dashboard):
        raise ValueError(f"exercise2 needs the dashboard second, got {type(dashboard).__name__}")
    if is_placeholder(answer):
        return not_yet(f"run dashboard.run_sync(strategy={strategy!r}, n_per_class={n_per_class!r}, "
                       f"n_frozen={n_frozen}, ...) and answer with its row: dashboard.results[-1]")
    if not isinstance(answer, dict):
        raise ValueError("exercise2 expects a results row (a dict from dashboard.results), "
                         f"got {type(answer).__name__}")
    if answer not in dashboard.results:
        return not_yet("that row is not in this dashboard's results: pass the dashboard that ran it")
    want = {"strategy": strategy, "n_per_class": size_label(n_per_class), "n_frozen": n_frozen}
    wrong = {k: answer.get(k) for k, v in want.items() if answer.get(k) != v}
    if wrong:
        return not_yet(f"the run used {wrong}; it should use {want}")
    return passed(f"run {dashboard.results.index(answer) + 1}: fine-tuning above group {n_frozen} with "
                  f"{n_per_class}/class reached {answer['test_acc']:.3f} in {answer['epochs']} epochs")


def exercise3(answer: Any, dashboard: Any, *, original: Any = None) -> CheckResult:
    """How many epochs the dashboard's last replay showed (read from its chart, not guessed).

    ``original`` is the lesson's own dashboard: the exercise asks for a fresh one that loaded the log.
    """
    from ..widgets.dashboard import Dashboard

    if not isinstance(dashboard, Dashboard):
        raise ValueError(f"exercise3 needs the dashboard second, got {type(dashboard).__name__}")
    if original is not None and dashboard is original:
        return not_yet("that is the lesson's own dashboard: make a fresh one, Dashboard(cat_breeds, kind='pets'), "
                       "and load the saved log into it with load_log(log_path)")
    if is_placeholder(answer):
        return not_yet("load a log into a dashboard (load_log), replay it, and count the epochs its chart shows "
                       "(dashboard.chart.records)")
    answer = as_count(answer, "exercise3", "an integer number of epochs")   # 8, np.int64(8), 8.0 all judged
    if isinstance(answer, float):
        return not_yet(f"{answer} is not a whole number of epochs: count the chart's records")
    if not dashboard.runs:
        return not_yet("this dashboard has no runs: load_log(path) first, then replay()")
    shown = len(dashboard.chart.records)
    replayed = html.unescape(dashboard.status.value).startswith("replay")  # training since would overwrite it
    if shown == 0 or dashboard.chart.end_logs is None or not replayed:
        return not_yet("nothing was replayed yet: call dashboard.replay(seconds_per_epoch=0)")
    if answer != shown:
        return not_yet(f"the chart shows a different number of epochs than {answer}; count dashboard.chart.records")
    return passed(f"the replay showed {shown} epochs, with no training at all")


def exercise4(dog_outputs: Any, head: Any, features: Any) -> CheckResult:
    """``dog_outputs(features)`` returns the ImageNet model's 118 dog-class outputs for pooled ``features``.

    Judged by behaviour against ``head(features)``: the 118 dog columns (ImageNet classes 151..268) as logits,
    or as probabilities / log-probabilities over all 1,000 classes, are accepted.
    """
    import torch

    from ..models import imagenet_classes
    from ..pretrained import imagenet_class_groups

    if is_placeholder(dog_outputs) or not callable(dog_outputs):
        return not_yet("define `def dog_outputs(features): ...` returning the 118 dog-class outputs of the head")
    try:
        out = dog_outputs(features)
    except Exception as exc:  # the student's code failed: report it as a hint
        return not_yet(f"dog_outputs(features) raised {type(exc).__name__}: {exc}")
    if out is None:
        return not_yet("dog_outputs returned None: end the function with `return ...`")
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"exercise4 expects dog_outputs to return a tensor, got {type(out).__name__}")
    n = len(features)
    if out.dim() != 2 or out.shape[0] != n:
        return not_yet(f"expected one row per photo ({n} rows, 118 columns), got shape {tuple(out.shape)}")
    width = out.shape[1]
    if width == features.shape[1]:
        return not_yet(f"{width} columns: those are the features themselves; pass them through the head first")
    if width == 1000:
        return not_yet("1,000 columns: that is every ImageNet class; keep only the dog breeds")
    if width == 5:
        return not_yet("5 columns: those look like the domestic-cat classes; the exercise wants the dog breeds")
    if width != 118:
        return not_yet(f"{width} columns: ImageNet has 118 dog classes, indices 151 to 268 inclusive "
                       "(a Python slice 151:269)")
    dogs = imagenet_class_groups(imagenet_classes())["dogs"]
    with torch.no_grad():
        logits = head(features)
        routes = (logits[:, dogs], logits.softmax(1)[:, dogs], logits.log_softmax(1)[:, dogs])
    if not any(torch.allclose(out.detach().float(), r, atol=1e-4, rtol=1e-4) for r in routes):
        if torch.allclose(out.detach().float(), logits[:, dogs].softmax(1), atol=1e-4):
            return not_yet("softmax over the 118 dog columns only renormalises them: take the logits (or the "
                           "softmax over all 1,000 classes) and then the dog columns")
        return not_yet("118 columns, but not the dog-class outputs of this head: index the head's output with "
                       "ImageNet classes 151..268")
    return passed(f"{n} photos x 118 dog-class outputs: each cat described as a mix of dog breeds")
