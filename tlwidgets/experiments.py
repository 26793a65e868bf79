"""Experiments over many runs: learning curves and time-to-accuracy.

Lesson 4 asks "when does transfer help?" and answers it with a grid: every
strategy, at several numbers of labelled images per class, with a few seeds.
Run naively, each cell of that grid would push its images through the frozen
backbone again. Here the frozen part runs **once** over a pool of images (the
largest size in the grid); every smaller training set is a subset of the
pool's cached activations, so a whole curve costs one forward pass plus many
cheap trainings. The subsets are nested (the 5 images of a class at N=5 are
among its 20 at N=20), which makes the curve smoother than independent draws.

Core module: no ipywidgets, no matplotlib; the picture is
:func:`tlwidgets.widgets.plot_learning_curve`.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import cast

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from .data import ImageTensorDataset, Task, dataset_labels, size_label, take_per_class
from .features import cached_features, propagate
from .freezing import max_frozen, unfreeze_all
from .infra import seed_everything, select_device, short_hash
from .metrics import Spread, seed_spread
from .models import replace_head
from .table import Table
from .training import History, evaluate, fit
from .transfer import (
    DEFAULT_LR,
    DEFAULT_LR_DECAY,
    STRATEGIES,
    BestOnValidation,
    RunResult,
    build_model,
    default_fine_tune_frozen,
    metrics_on,
)

__all__ = ["per_class_indices", "subset_task", "time_to_accuracy", "epochs_for",
           "LearningCurve", "learning_curve"]


# ---------------------------------------------------------------------------
# subsets
# ---------------------------------------------------------------------------
def per_class_indices(labels: torch.Tensor, n_per_class: int | None, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``n_per_class`` samples of every class present in ``labels`` (all when None).

    For a fixed ``seed`` the choice is nested: the samples picked for a small
    ``n`` are among those picked for a larger one. It is the same rule the task
    builders use, so ``subset_task(mnist_target_task(None), 5)`` holds exactly
    the images of ``mnist_target_task(5)``.
    """
    classes = sorted(int(c) for c in torch.unique(labels))
    return take_per_class(labels, classes, n_per_class, seed)


def _subset_dataset(data: Dataset, idx: torch.Tensor) -> Dataset:
    if isinstance(data, TensorDataset):
        return TensorDataset(*(t[idx] for t in data.tensors))
    if isinstance(data, ImageTensorDataset):
        out = copy.copy(data)  # shares mean/std, owns its own slice of the images
        out.images, out.labels = data.images[idx], data.labels[idx]
        return out
    return Subset(data, idx.tolist())


def subset_task(task: Task, n_per_class: int | None, seed: int = 0) -> Task:
    """``task`` with only ``n_per_class`` training images per class; the val and test sets are unchanged.

    The fingerprint covers the parent task and the chosen samples, so feature
    caches computed on the subset are keyed correctly.
    """
    if n_per_class is None:
        return task
    idx = per_class_indices(dataset_labels(task.train), n_per_class, seed)
    return dataclasses.replace(task, train=_subset_dataset(task.train, idx), n_per_class=n_per_class,
                               fingerprint=short_hash("subset", task.cache_key, idx))


# ---------------------------------------------------------------------------
# time to accuracy
# ---------------------------------------------------------------------------
def time_to_accuracy(history: History | Mapping, target: float, *, setup_seconds: float = 0.0,
                     key: str = "val_acc") -> float | None:
    """Seconds of training until the first epoch whose ``key`` reaches ``target``; None if it never does.

    ``key`` defaults to the validation accuracy: how fast a run gets good is read on validation, like
    every other choice, never on test.

    The time is ``setup_seconds`` (a one-off cost such as computing cached
    activations) plus the summed ``seconds`` of the epochs up to and including
    the first one at or above ``target``. Reading it from the per-epoch log
    means no extra run is needed and a stopped run still counts.
    """
    epochs = history.epochs if isinstance(history, History) else history.get("epochs", [])
    if not 0 < target <= 1:
        raise ValueError(f"target must be an accuracy in (0, 1], got {target}")
    elapsed = float(setup_seconds)
    for e in epochs:
        elapsed += float(e.get("seconds") or 0.0)
        value = e.get(key)
        if value is not None and value >= target:
            return elapsed
    return None


def epochs_for(num_train: int, batch_size: int, num_epochs: int, min_steps: int = 0) -> int:
    """``num_epochs``, raised so that training takes at least ``min_steps`` optimiser steps.

    With 5 images per class an epoch is a single batch: a fixed epoch count
    would give small training sets far fewer updates than large ones and make
    them look worse than they are. A floor on the number of steps is fairer.
    """
    batches = max(1, math.ceil(num_train / batch_size))
    return max(int(num_epochs), math.ceil(min_steps / batches))


# ---------------------------------------------------------------------------
# learning curves
# ---------------------------------------------------------------------------
class LearningCurve:
    """Test accuracy of several strategies against the number of labelled images per class.

    Every run chose its epoch on validation and was tested once; the table shows
    the mean over seeds with its spread, balanced accuracy, and the chance and
    majority-class rates of the test set. ``records`` holds one
    :class:`~tlwidgets.transfer.RunResult` per cell (strategy, size, seed),
    each with its ``num_train``; the curve keeps their numbers, not their models.
    """

    def __init__(self, task_name: str, records: Sequence[RunResult], sizes: Sequence[int | None], num_classes: int):
        missing = [i for i, r in enumerate(records) if r.num_train is None]
        if missing:
            raise ValueError(f"records must carry num_train (the training images behind each point); "
                             f"records {missing[:5]} have num_train=None")
        self.task_name, self.records, self.sizes = task_name, list(records), list(sizes)
        self.num_classes = num_classes

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(r.strategy for r in self.records))

    def runs(self, strategy: str, n_per_class: int | None = None, *, any_size: bool = False) -> list[RunResult]:
        return [r for r in self.records if r.strategy == strategy and (any_size or r.n_per_class == n_per_class)]

    def accuracy(self, strategy: str, n_per_class: int | None) -> float:
        """Mean test accuracy over seeds of one strategy at one size."""
        runs = self.runs(strategy, n_per_class)
        if not runs:
            raise KeyError(f"no run of {strategy!r} at n_per_class={n_per_class!r} in this curve")
        return statistics.fmean(r.test_acc for r in runs)

    def spread(self, strategy: str, n_per_class: int | None) -> float:
        """Max - min test accuracy over seeds (0 with one seed): how much to trust a difference."""
        accs = [r.test_acc for r in self.runs(strategy, n_per_class)]
        return max(accs) - min(accs) if accs else float("nan")

    def seed_spread(self, strategy: str, n_per_class: int | None, key: str = "test_acc") -> Spread:
        """Mean, std, min and max over seeds of ``key`` ("test_acc" or "balanced_acc") at one size."""
        runs = self.runs(strategy, n_per_class)
        if not runs:
            raise KeyError(f"no run of {strategy!r} at n_per_class={n_per_class!r} in this curve")
        return seed_spread(r.row()[key] if key != "test_acc" else r.test_acc for r in runs)

    def balanced(self, strategy: str, n_per_class: int | None) -> float:
        """Mean balanced accuracy over seeds of one strategy at one size."""
        return self.seed_spread(strategy, n_per_class, "balanced_acc").mean

    def gaps(self, strategy: str, baseline: str, n_per_class: int | None) -> list[float]:
        """Per-seed ``strategy - baseline`` test accuracy at one size (seeds paired: same images)."""
        a = {r.seed: r.test_acc for r in self.runs(strategy, n_per_class)}
        b = {r.seed: r.test_acc for r in self.runs(baseline, n_per_class)}
        return [a[s] - b[s] for s in sorted(a) if s in b]

    def baselines(self, n_per_class: int | None = None) -> dict:
        """Chance and majority-class rate of the (fixed) test set."""
        t = next((r.test for r in self.records if r.test is not None), None)
        return {"chance": None if t is None else t.chance, "majority": None if t is None else t.majority}

    def num_train(self, n_per_class: int | None) -> float:
        """Training images behind a size (mean over seeds; 'all' resolves to the pool size)."""
        return statistics.fmean(r.num_train or 0 for r in self.records if r.n_per_class == n_per_class)

    def gap(self, strategy: str, baseline: str, n_per_class: int | None) -> float:
        """``accuracy(strategy) - accuracy(baseline)`` at one size, in accuracy units (0.1 = 10 points)."""
        return self.accuracy(strategy, n_per_class) - self.accuracy(baseline, n_per_class)

    def table(self) -> list[dict]:
        """One row per size: chance, majority, then per strategy mean test accuracy, its seed std and
        mean balanced accuracy (rounded to 3 decimals)."""
        rows = []
        base = self.baselines()
        for n in self.sizes:
            row = {"n_per_class": size_label(n), "train_images": round(self.num_train(n)),
                   "chance": None if base["chance"] is None else round(base["chance"], 3),
                   "majority": None if base["majority"] is None else round(base["majority"], 3)}
            for s in self.strategies:
                sp = self.seed_spread(s, n)
                row[s] = round(sp.mean, 3)
                row[f"{s} ±"] = round(sp.std, 3)
                if all(r.test is not None for r in self.runs(s, n)):
                    row[f"{s} bal"] = round(self.balanced(s, n), 3)
            rows.append(row)
        return rows

    def time_table(self, target: float, n_per_class: int | None) -> list[dict]:
        """Per strategy at one size: epochs and seconds until validation accuracy first reaches ``target``.

        ``setup_s`` is the one-off cost of the cached activations that run
        used; ``to_target_s`` includes it. None means the target was never
        reached within the epochs trained.
        """
        rows = []
        for s in self.strategies:
            for r in self.runs(s, n_per_class):
                train_t = time_to_accuracy(r.history, target)
                epoch = next((i + 1 for i, a in enumerate(r.history["val_acc"]) if a is not None and a >= target),
                             None)
                rows.append({"strategy": s, "seed": r.seed, "epochs_to_target": epoch,
                             "setup_s": round(r.setup_seconds, 2),
                             "to_target_s": None if train_t is None else round(train_t + r.setup_seconds, 2),
                             "epoch_s": round(statistics.fmean(r.history["seconds"]), 3),
                             "best_val_acc": None if r.val_acc is None else round(r.val_acc, 3),
                             "test_acc": round(r.test_acc, 3)})
        return rows

    def to_dict(self) -> dict:
        return {"task": self.task_name, "sizes": self.sizes, "num_classes": self.num_classes,
                "records": [{**r.row(), "history": r.history.to_dict()} for r in self.records]}

    def __repr__(self) -> str:
        head = f"LearningCurve({self.task_name!r}, {len(self.records)} runs)"
        return head + "\n" + repr(Table(self.table()))

    def _repr_html_(self) -> str:
        return Table(self.table(), title=f"{self.task_name}: mean test accuracy over seeds")._repr_html_()


def _per_strategy(value, strategy: str, default):
    if isinstance(value, Mapping):
        return value.get(strategy, default)
    return default if value is None else value


def _lr_candidates(lr, strategy: str) -> list[float]:
    """The learning rates to try for ``strategy``: one, or a list to choose from on validation."""
    value = _per_strategy(lr, strategy, DEFAULT_LR[strategy])
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"lr for {strategy!r} is an empty list: give one rate or a list of candidates")
        return [float(v) for v in value]
    return [float(value)]


def learning_curve(task: Task, sizes: Iterable[int | None], strategies: Sequence[str] = STRATEGIES, *,
                   seeds: Sequence[int] = (0,), num_epochs: int | Mapping[str, int] = 10,
                   lr: float | Sequence[float] | Mapping[str, float | Sequence[float]] | None = None,
                   n_frozen: int | None = None,
                   lr_decay: float | None = None, head_epochs: int | None = None,
                   min_steps: int = 0, batch_size: int = 32, backbone: str = "efficientnet_lite0",
                   scratch_arch: str = "small", scratch_task: Task | None = None, cache: bool = True, track=True,
                   device="auto", progress: bool = False, on_run=None) -> LearningCurve:
    """Train every strategy at every size (labelled images per class) and seed; return the curve.

    ``task`` is the pool: its training set must hold at least ``max(sizes)``
    images per class (``None`` in ``sizes`` means all of it); its validation
    and test splits are shared by every run. Transfer strategies compute the
    pool's activations once at the lowest freeze boundary they need and train
    on subsets of them; "scratch" trains the whole network on the subset's
    images. ``num_epochs`` and ``lr`` may be dicts keyed by strategy;
    ``min_steps`` raises the epochs of small sets (see :func:`epochs_for`).
    Fine-tuning follows :func:`tlwidgets.transfer.run_strategy`'s recipe: the
    head alone first (``head_epochs``, default the strategy's epochs), then
    the unfrozen groups with discriminative rates (``lr_decay``).
    ``scratch_task`` lets "scratch" train on another version of the same
    pool, e.g. the same photos at fewer pixels: it must hold the same classes
    and labels in the same order, so every run sees the same images.
    ``track`` says which runs measure validation accuracy after every epoch
    and keep the best epoch (True: all; False: none, the last epoch is kept;
    or a collection of sizes). Every run is tested once, at the end.

    ``lr`` (or its value for one strategy in a dict) may be a list of
    candidates: every cell (strategy, size, seed) then trains once per rate,
    keeps the rate with the best validation accuracy (the best epoch's when
    tracked, else the last epoch's) and tests only that one
    (``RunResult.selection`` lists every rate tried). Choosing needs
    ``task.val``. ``on_run(record)`` is called after each run with its
    :class:`~tlwidgets.transfer.RunResult` (``model`` None: the curve keeps numbers, not models).
    """
    sizes = list(sizes)
    if not sizes:
        raise ValueError("sizes is empty: give the numbers of labelled images per class to try, e.g. (5, 20)")
    for s in strategies:
        if s not in STRATEGIES:
            raise ValueError(f"unknown strategy {s!r}; choose from {STRATEGIES}")
    for n in sizes:
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"sizes must be positive integers or None (all), got {n!r}")
    dev = select_device(device)
    rates = {s: _lr_candidates(lr, s) for s in strategies}
    if task.val is None and any(len(r) > 1 for r in rates.values()):
        raise ValueError(f"choosing among lr={lr} needs a validation split, and task {task.name!r} has none "
                         f"(val=None); build it with a task builder, which carves one")
    pool_labels = dataset_labels(task.train)
    if scratch_task is not None:
        if list(scratch_task.classes) != list(task.classes) or \
                not torch.equal(dataset_labels(scratch_task.train), pool_labels):
            raise ValueError("scratch_task must hold the same classes and training labels as task (the same images, "
                             "e.g. built by the same builder with another image_size)")
        if len(cast(Sized, scratch_task.test)) != len(cast(Sized, task.test)):
            raise ValueError("scratch_task must have the same test set as task")

    def tracked(n) -> bool:
        return track if isinstance(track, bool) else n in set(track)

    def train_select(model, train_loader, val_loader, n, seed, epochs, rate, num_train, decay=1.0, start=None,
                     choosing=False):
        """Fit, keeping the best validation epoch when tracked; the test split is not touched here.

        Returns (history, (val_acc, best_epoch), seconds). An untracked run that takes part in a choice
        among learning rates is read on validation once, after its last epoch.
        """
        t0 = time.perf_counter()
        keep = BestOnValidation(model, start=start) if tracked(n) and val_loader is not None else None
        hist = fit(model, train_loader, val_loader if keep is not None else None, device=dev, seed=seed,
                   progress=progress, lr=rate, lr_decay=decay, observers=[keep] if keep is not None else [],
                   num_epochs=epochs_for(num_train, batch_size, epochs, min_steps))
        if keep is not None:
            keep.restore()
            best = (keep.best, keep.best_epoch)
        else:
            best = (evaluate(model, val_loader, device=dev)["acc"] if choosing else None, len(hist))
        return hist, best, time.perf_counter() - t0

    def choose_and_test(candidates, runs, test_loader):
        """Train every candidate rate (``runs(rate)``), keep the best on validation, test it once."""
        tried = [(rate, *runs(rate)) for rate in candidates]
        chosen = tried[0] if len(tried) == 1 else max(tried, key=lambda t: t[3][0])   # first best wins a tie
        rate, model, hist, (val_acc, best_epoch), secs = chosen
        metrics = metrics_on(model, test_loader, task.num_classes, device=dev)
        selection = [] if len(tried) == 1 else [{"lr": r, "val_acc": round(v[0], 4), "best_epoch": v[1]}
                                                 for r, _, _, v, _ in tried]
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return rate, hist, metrics, val_acc, best_epoch, sum(t[4] for t in tried), selection, trainable, model.name
    records: list[RunResult] = []

    def finish(record):
        records.append(record)
        if on_run is not None:
            on_run(record)

    def loader(acts, idx=None, shuffle=False):
        if acts is None:
            return None
        if idx is None:
            return DataLoader(acts, batch_size=256)
        return DataLoader(TensorDataset(acts.tensors[0][idx], acts.tensors[1][idx]), batch_size=batch_size,
                          shuffle=shuffle)

    # transfer strategies: one forward pass over the pool at the lowest boundary needed
    transfer = [s for s in strategies if s != "scratch"]
    if transfer:
        seed_everything(seeds[0])
        base = build_model("fine_tune", task, backbone=backbone)
        top = max_frozen(base)
        bounds = {}
        for s in transfer:
            if s == "feature_extraction":
                bounds[s] = top
            else:
                bounds[s] = default_fine_tune_frozen(base) if n_frozen is None else int(n_frozen)
                if not 0 < bounds[s] < top:
                    raise ValueError(f"fine_tune needs 0 < n_frozen < {top} here, got {bounds[s]}")
        needed = set(bounds.values()) | ({top} if "fine_tune" in transfer else set())
        low = min(needed)
        t0 = time.perf_counter()
        feats = cached_features(base, task, low, device=dev, cache=cache, progress=progress)
        acts = {low: (feats.train, feats.val, feats.test, time.perf_counter() - t0)}
        for k in sorted(needed - {low}):
            t0 = time.perf_counter()
            acts[k] = (propagate(base, feats.train, low, k, dev),
                       None if feats.val is None else propagate(base, feats.val, low, k, dev),
                       propagate(base, feats.test, low, k, dev), acts[low][3] + time.perf_counter() - t0)
        for s in transfer:
            k = bounds[s]
            train_acts, val_acts, test_acts, setup = acts[k]
            epochs = _per_strategy(num_epochs, s, 10)
            decay = DEFAULT_LR_DECAY[s] if lr_decay is None or s != "fine_tune" else lr_decay
            choosing = len(rates[s]) > 1
            for n in sizes:
                for seed in seeds:
                    idx = per_class_indices(pool_labels, n, seed)

                    def transfer_run(rate, s=s, k=k, n=n, seed=seed, idx=idx, epochs=epochs, decay=decay,
                                     train_acts=train_acts, val_acts=val_acts, choosing=choosing):
                        seed_everything(seed)
                        # an independent copy of the top only (copying the frozen backbone would cost every
                        # run), all of it trainable, with a new head whose initial weights follow the seed
                        tail = copy.deepcopy(base[k:])
                        unfreeze_all(tail)
                        replace_head(tail, task.num_classes, task.classes)
                        start = None
                        h_epochs = epochs if head_epochs is None else head_epochs
                        if s == "fine_tune" and h_epochs > 0:     # the head learns alone first
                            top_train, top_val, _, _ = acts[top]
                            _, (start, _), _ = train_select(
                                tail[-1:], loader(top_train, idx, True), loader(top_val), n, seed,
                                h_epochs, DEFAULT_LR["feature_extraction"], len(idx))
                            unfreeze_all(tail)
                        return (tail, *train_select(tail, loader(train_acts, idx, True), loader(val_acts), n, seed,
                                                    epochs, rate, len(idx), decay=decay, start=start,
                                                    choosing=choosing))
                    rate, hist, metrics, val_acc, best_epoch, secs, selection, trainable, _ = choose_and_test(
                        rates[s], transfer_run, loader(test_acts))
                    # setup is charged in proportion to the images this run used (train subset + val + test)
                    others = len(test_acts) + (len(val_acts) if val_acts is not None else 0)
                    share = (len(idx) + others) / (len(train_acts) + others)
                    finish(RunResult(s, task.name, n, k, trainable, hist, metrics.accuracy, secs, used_cache=True,
                                     test=metrics, val_acc=val_acc, best_epoch=best_epoch, lr=rate, seed=seed,
                                     arch=base.name, selection=selection, num_train=len(idx),
                                     setup_seconds=setup * share))
    if "scratch" in strategies:
        epochs = _per_strategy(num_epochs, "scratch", 10)
        choosing = len(rates["scratch"]) > 1
        for n in sizes:
            for seed in seeds:
                sub = subset_task(scratch_task or task, n, seed)
                train_loader, val_loader, test_loader = sub.loaders(batch_size)
                n_train = len(cast(Sized, sub.train))

                def scratch_run(rate, n=n, seed=seed, sub=sub, train_loader=train_loader, val_loader=val_loader,
                                n_train=n_train):
                    seed_everything(seed)
                    model = build_model("scratch", sub, backbone=backbone, scratch_arch=scratch_arch)
                    return (model, *train_select(model, train_loader, val_loader, n, seed, epochs, rate,
                                                 n_train, choosing=choosing))
                rate, hist, metrics, val_acc, best_epoch, secs, selection, trainable, scratch_name = choose_and_test(
                    rates["scratch"], scratch_run, test_loader)
                finish(RunResult("scratch", task.name, n, 0, trainable, hist, metrics.accuracy, secs, test=metrics,
                                 val_acc=val_acc, best_epoch=best_epoch, lr=rate, seed=seed, arch=scratch_name,
                                 selection=selection, num_train=n_train))
    order = {s: i for i, s in enumerate(strategies)}
    records.sort(key=lambda r: (order[r.strategy], sizes.index(r.n_per_class), r.seed))
    return LearningCurve(task.name, records, sizes, task.num_classes)
