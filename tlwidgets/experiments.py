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
import json
import numbers
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import replace
from typing import cast

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset, TensorDataset

from .data import ImageTensorDataset, Task, dataset_labels, size_label, take_per_class
from .features import cached_features, propagate
from .freezing import max_frozen, unfreeze_all
from .infra import derive_seed, seed_everything, select_device, short_hash
from .metrics import Spread, seed_spread
from .models import replace_head
from .runs import (
    HEAD_LR,
    STRATEGIES,
    Recipe,
    RunResult,
    Stage,
    check_equal_budgets,
    check_recipe_fields,
    choose,
    epochs_for,
    fit_and_keep,
    freeze_boundary,
    test_once,
)
from .table import Table
from .training import History
from .transfer import build_model
from .validate import check_int

__all__ = ["per_class_indices", "subset_task", "time_to_accuracy", "epochs_for", "LearningCurve", "learning_curve",
           "TRAINED"]

#: the strategies a learning curve compares by default
TRAINED = ("scratch", "feature_extraction", "fine_tune")


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
    ``resplit`` says each run was tested on the photos its draw left out
    (:func:`learning_curve`'s repeated stratified splits); ``test_per_class``
    maps a size to the test photos per class behind it.
    """

    def __init__(self, task_name: str, records: Sequence[RunResult], sizes: Sequence[int | None], num_classes: int,
                 *, test_per_class: Mapping | None = None, resplit: bool = False):
        missing = [i for i, r in enumerate(records) if r.num_train is None]
        if missing:
            raise ValueError(f"records must carry num_train (the training images behind each point); "
                             f"records {missing[:5]} have num_train=None")
        self.task_name, self.records, self.sizes = task_name, list(records), list(sizes)
        self.num_classes = num_classes
        self.test_per_class = {n: dict(v) for n, v in (test_per_class or {}).items()}
        self.resplit = bool(resplit)

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(r.name for r in self.records))

    def runs(self, strategy: str, n_per_class: int | None = None, *, any_size: bool = False) -> list[RunResult]:
        return [r for r in self.records if r.name == strategy and (any_size or r.n_per_class == n_per_class)]

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
        """Chance and majority-class rate of the test set; with re-drawn splits (``resplit``) the test set
        changes with the draw, so they are the mean over the runs at ``n_per_class`` (None: over all runs)."""
        tests = [r.test for r in self.records if r.test is not None
                 and (n_per_class is None or r.n_per_class == n_per_class)]
        if not tests:
            return {"chance": None, "majority": None}
        return {"chance": statistics.fmean(t.chance for t in tests),
                "majority": statistics.fmean(t.majority for t in tests)}

    def test_counts(self, n_per_class: int | None) -> dict[str, float]:
        """Test photos per class behind one size: the fixed test set's counts, or with re-drawn splits
        (``resplit``) the mean over the draws (empty when the curve was built without them)."""
        return dict(self.test_per_class.get(n_per_class, {}))

    def num_train(self, n_per_class: int | None) -> float:
        """Training images behind a size (mean over seeds; 'all' resolves to the pool size)."""
        return statistics.fmean(r.num_train or 0 for r in self.records if r.n_per_class == n_per_class)

    def gap(self, strategy: str, baseline: str, n_per_class: int | None, key: str = "test_acc") -> float:
        """Mean ``key`` of ``strategy`` minus that of ``baseline`` at one size, in accuracy units (0.1 = 10
        points); ``key="balanced_acc"`` for imbalanced classes (the cat breeds), ``"test_acc"`` otherwise."""
        if key not in ("test_acc", "balanced_acc"):
            raise ValueError(f"key must be 'test_acc' or 'balanced_acc', got {key!r}")
        return (self.seed_spread(strategy, n_per_class, key).mean
                - self.seed_spread(baseline, n_per_class, key).mean)

    def table(self) -> list[dict]:
        """One row per size: chance, majority, then per strategy mean test accuracy, its seed std,
        mean balanced accuracy (rounded to 3 decimals), its optimiser steps and, for fine-tuning, in how many
        seeds it fell back to the head-only model."""
        rows = []
        for n in self.sizes:
            base = self.baselines(n)
            row = {"n_per_class": size_label(n), "train_images": round(self.num_train(n)),
                   "chance": None if base["chance"] is None else round(base["chance"], 3),
                   "majority": None if base["majority"] is None else round(base["majority"], 3)}
            for s in self.strategies:
                sp = self.seed_spread(s, n)
                row[s] = round(sp.mean, 3)
                row[f"{s} ±"] = round(sp.std, 3)
                if all(r.test is not None for r in self.runs(s, n)):
                    row[f"{s} bal"] = round(self.balanced(s, n), 3)
                row[f"{s} steps"] = max(r.steps for r in self.runs(s, n))
                if any(r.strategy in ("fine_tune", "choose") for r in self.runs(s, n)):
                    row[f"{s} fell back"] = sum(r.fell_back for r in self.runs(s, n))
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


def _base_recipe(recipe: Recipe | None, fields: dict, strategies: Sequence[str]) -> Recipe:
    """One recipe for every arm of a comparison, from ``recipe`` and keyword fields, every value checked first.

    A per-strategy dict is accepted only when it gives every arm the same value
    (lesson code written as ``{"scratch": 15, ...}``); different budgets or
    learning-rate candidates per arm are refused: the comparison would measure
    them, not the strategies. Values are checked by
    :func:`~tlwidgets.runs.check_recipe_fields` (the Recipe's own check), naming
    the arm: a dict's entry by its key, a learning rate by the first arm that
    would train at it (a rate is always some arm's rate: their defaults differ).
    """
    fields = {**fields, **check_recipe_fields({k: v for k, v in fields.items() if not isinstance(v, Mapping)
                                               and k not in ("lr", "strategy")})}
    if "lr" in fields and not isinstance(fields["lr"], Mapping):
        fields["lr"] = check_recipe_fields({"lr": fields["lr"]},
                                           label=f" for {strategies[0]!r}" if strategies else "")["lr"]
    for name, value in list(fields.items()):
        if isinstance(value, Mapping):
            given = dict(value)
            value = {arm: check_recipe_fields({name: v}, label=f" for {arm!r}")[name] for arm, v in value.items()}
            if set(value) != set(strategies):
                raise ValueError(f"{name}={given} names {sorted(value)}, the arms are {list(strategies)}: a "
                                 f"comparison gives every arm the same {name}; give one value (or one list of "
                                 "candidates) for all")
            values = {json.dumps(v) for v in value.values()}
            if len(values) > 1:
                raise ValueError(f"{name}={given} gives the arms different settings; a comparison gives every "
                                 f"arm the same {name} (one value, or one list of candidates chosen on validation)")
            fields[name] = next(iter(value.values())) if value else None
    if fields.get("lr", 0) is None:
        fields.pop("lr")
    return replace(recipe if recipe is not None else Recipe(), **fields)


def _check_arms(task: Task, sizes: list, strategies: Sequence[str], scratch_task: Task | None) -> list:
    """The curve's grid checked before any work; returns the sizes as plain ints (None: all the pool)."""
    if not sizes:
        raise ValueError("sizes is empty: give the numbers of labelled images per class to try, e.g. (5, 20)")
    for s in strategies:
        if s not in STRATEGIES:
            raise ValueError(f"unknown strategy {s!r}; choose from {STRATEGIES}")
    # every argument checked before any training, as plain Python numbers (NumPy ones converted, so the
    # RunResult rows and logs they end up in stay JSON)
    for n in sizes:
        if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
            raise ValueError(f"sizes must be positive integers or None (all), got {n!r}")
    sizes = [None if n is None else int(n) for n in sizes]
    if scratch_task is not None:
        if list(scratch_task.classes) != list(task.classes) or \
                not torch.equal(dataset_labels(scratch_task.train), dataset_labels(task.train)):
            raise ValueError("scratch_task must hold the same classes and training labels as task (the same images, "
                             "e.g. built by the same builder with another image_size)")
        if len(cast(Sized, scratch_task.test)) != len(cast(Sized, task.test)):
            raise ValueError("scratch_task must have the same test set as task")
    return sizes


class _Pool:
    """The transfer arms' one pass over the pool: activations at every freeze boundary the arms need.

    Computed once at the lowest boundary, propagated up to the others; every run trains on a subset of them.
    """

    def __init__(self, task: Task, recipe: Recipe, strategies: Sequence[str], dev, cache: bool,
                 resplit: bool = False):
        seed_everything(derive_seed(recipe.seed, "weights", "pool"))
        self.base = build_model("fine_tune", task, backbone=recipe.backbone)
        self.top = max_frozen(self.base)
        ks = {freeze_boundary(s, self.base, k) for s in strategies
              for k in (recipe.n_frozen if isinstance(recipe.n_frozen, tuple) else (recipe.n_frozen,))}
        needed = ks | ({self.top} if set(strategies) & {"fine_tune", "choose"} else set())
        low, t0 = min(needed), time.perf_counter()
        # the one slow step of a curve: a progress bar while the frozen part reads the pool (none from disk)
        feats = cached_features(self.base, task, low, device=dev, cache=cache, progress=True)
        self.acts: dict[int, tuple] = {low: (feats.train, feats.val, feats.test)}
        for k in sorted(needed - {low}):
            self.acts[k] = tuple(None if d is None else propagate(self.base, d, low, k, dev)
                                 for d in (feats.train, feats.val, feats.test))
        if resplit:      # one pool of every photo (train, val, test); each run draws its own split from it
            self.acts = {k: (_concat_tensors(v), None, None) for k, v in self.acts.items()}
        self.setup = time.perf_counter() - t0

    def loader(self, k: int, split: int, idx=None, batch_size: int = 256, shuffle: bool = True):
        acts = self.acts[k][split]
        if acts is None:
            return None
        if idx is None:
            return DataLoader(acts, batch_size=256)
        return DataLoader(TensorDataset(*(t[idx] for t in acts.tensors)), batch_size=batch_size, shuffle=shuffle)

    def build(self, c: Recipe, task: Task, idx, test_idx=None) -> tuple:
        """(module, head Stage or None, main Stage, n_frozen, test loader) of one candidate on the subset ``idx``
        (``test_idx``: the pool's photos it is tested on, when the split is re-drawn; else the task's test set)."""
        k = freeze_boundary(c.strategy, self.base, c.n_frozen)
        tail = copy.deepcopy(self.base[k:])   # the top only: copying the frozen backbone would cost every run
        unfreeze_all(tail)
        replace_head(tail, task.num_classes, task.classes)
        head_e, main_e = c.stages(len(idx))
        head = Stage(tail[-1:], self.loader(self.top, 0, idx, c.batch_size), self.loader(self.top, 1), head_e,
                     HEAD_LR) if head_e else None
        main = Stage(tail, self.loader(k, 0, idx, c.batch_size), self.loader(k, 1), main_e,
                     cast(tuple, c.lr)[0], c.decay)
        test = self.loader(k, 2) if test_idx is None else self.loader(k, 0, test_idx, 256, shuffle=False)
        return tail, head, main, k, test


def _concat_tensors(parts) -> TensorDataset:
    """One TensorDataset of the non-empty ``parts`` (activations and labels of train, val, test), in that order."""
    parts = [p for p in parts if p is not None]
    return TensorDataset(*(torch.cat(ts) for ts in zip(*(p.tensors for p in parts))))


def _all_photos(task: Task) -> Dataset:
    """The images of ``task``'s train, val and test splits as one dataset, in that order (the same order as the
    pool's activations), for re-drawn splits."""
    parts = [d for d in (task.train, task.val, task.test) if d is not None]
    if all(isinstance(d, ImageTensorDataset) for d in parts):
        out = copy.copy(parts[0])
        out.images = torch.cat([d.images for d in parts])     # type: ignore[attr-defined]
        out.labels = torch.cat([d.labels for d in parts])     # type: ignore[attr-defined]
        return out
    if all(isinstance(d, TensorDataset) for d in parts):
        return _concat_tensors(parts)
    return ConcatDataset(parts)


def _complement(n: int, idx: torch.Tensor) -> torch.Tensor:
    keep = torch.ones(n, dtype=torch.bool)
    keep[idx] = False
    return torch.nonzero(keep).flatten()


def _cell(recipe: Recipe, build, task: Task, n, num_train: int, *, track: bool, dev) -> RunResult:
    """One (strategy, size, seed) cell: every candidate trained with one budget, chosen on validation, tested once."""
    tried = []
    for c in recipe.candidates():
        seed_everything(derive_seed(c.seed, "weights"))
        model, head, main, k, test_loader = build(c)
        kept = fit_and_keep(main, head=head, fall_back=c.strategy == "choose", track=track, seed=c.seed, device=dev)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        tried.append((RunResult(replace(c, n_frozen=k, lr=main.lr), task.name, n, num_train, kept.history,
                                val_acc=kept.val_acc, best_epoch=kept.best_epoch, steps=kept.steps,
                                seconds=kept.seconds, trainable_params=trainable, arch=getattr(model, "name", ""),
                                best_unfrozen_epoch=kept.best_unfrozen_epoch, fell_back=kept.fell_back),
                      model, test_loader))
    best = choose([r for r, _, _ in tried])
    best.seconds = sum(r.seconds for r, _, _ in tried)
    _, model, test_loader = next(t for t in tried if t[0] is best)
    return test_once(best, model, test_loader, task.num_classes, device=dev)


def learning_curve(task: Task, sizes: Iterable[int | None], strategies: Sequence[str] = TRAINED,
                   recipe: Recipe | None = None, *, seeds: Sequence[int] = (0,), scratch_task: Task | None = None,
                   cache: bool = True, track=True, device="auto", on_run=None,
                   resplit: bool = False, **recipe_fields) -> LearningCurve:
    """Train every strategy at every size (labelled images per class) and seed, with one budget; return the curve.

    ``task`` is the pool: its training set holds at least ``max(sizes)`` images
    per class (``None`` in ``sizes``: all of it); its validation and test splits
    are shared by every run. Every arm runs the same :class:`~tlwidgets.runs.Recipe`
    (``recipe`` and/or its fields as keywords), only its strategy differs: the
    same optimiser steps (a fine-tune's head stage counts), the same
    ``min_steps``, the same learning-rate candidates chosen on validation
    (:func:`~tlwidgets.runs.choose`); unequal steps are refused
    (:func:`~tlwidgets.runs.check_equal_budgets`). Transfer arms compute the
    pool's activations once (:class:`_Pool`) and train on subsets of them;
    "scratch" trains the whole network on the subset's images, of
    ``scratch_task`` when given (the same photos at fewer pixels: it must hold
    the same labels). ``track`` says which sizes keep the best validation
    epoch (True: all; False: none, the last epoch is kept; or a collection of
    sizes). ``on_run(result)`` is called after each run (``model`` None: the
    curve keeps numbers, not models).

    ``resplit=True`` draws a fresh split for every (size, seed): the training
    images (``n`` per class, stratified) come from *all* the pool's images —
    train, val and test together — and the run is tested on every image not
    drawn (repeated stratified splits, a Monte-Carlo cross-validation). Why: a
    small fixed test set (the cat breeds: 114 photos, 60 of them two breeds, 3 of each rare one)
    makes every point of the curve rest on the same few photos; re-drawing
    averages that out over seeds. Nothing can be chosen on validation then (it
    is in the pool): one learning rate, one ``n_frozen``, ``track=False``, and
    ``None`` (all) is not a size.
    """
    if resplit:
        if track is not False:
            raise ValueError(f"resplit=True folds the validation images into the pool, so no epoch can be kept on "
                             f"validation: give track=False (got track={track!r})")
        if None in list(sizes):
            raise ValueError("resplit=True needs sizes that leave test images: None (all the pool) is not allowed")
    sizes = _check_arms(task, list(sizes), strategies, scratch_task)
    seeds = [check_int("seeds", s, min=0, max=2**63 - 1) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed, e.g. (0,)")
    base = _base_recipe(recipe, recipe_fields, strategies)
    dev = select_device(device)
    if task.val is None and len(base.candidates()) > 1:
        raise ValueError(f"choosing among lr={base.lr} / n_frozen={base.n_frozen} needs a validation split, and "
                         f"task {task.name!r} has none (val=None); build it with a task builder, which carves one")
    if resplit and len(base.candidates()) > 1:
        raise ValueError(f"resplit=True leaves no validation images to choose among lr={base.lr} / "
                         f"n_frozen={base.n_frozen} with: give one of each")
    transfer = [s for s in strategies if s != "scratch"]
    pool = _Pool(task, base, transfer, dev, cache, resplit) if transfer else None
    if resplit:
        photos = _all_photos(task)
        scratch_photos = photos if scratch_task is None else _all_photos(scratch_task)
        pool_labels = dataset_labels(photos)
        fewest = int(torch.bincount(pool_labels, minlength=task.num_classes).min())
        if max(cast(list, sizes)) >= fewest:
            raise ValueError(f"sizes={sizes}: with resplit=True every size must leave a test image of every "
                             f"class; the rarest class has {fewest} images in all, so the largest size allowed is "
                             f"{fewest - 1}")
    else:
        pool_labels = dataset_labels(task.train)
    test_per_class: dict = {}
    own_lr = "lr" in recipe_fields or (recipe is not None and recipe.lr != Recipe(recipe.strategy).lr)
    records: list[RunResult] = []
    for s in strategies:
        for n in sizes:
            for seed in seeds:
                r = replace(base, strategy=s, seed=seed, lr=base.lr if own_lr else None)  # None: the arm's default
                tracked = track if isinstance(track, bool) else n in set(track)
                idx = per_class_indices(pool_labels, n, seed)
                test_idx = _complement(len(pool_labels), idx) if resplit else None
                if test_idx is not None:
                    counts = torch.bincount(pool_labels[test_idx], minlength=task.num_classes).tolist()
                    test_per_class.setdefault(n, []).append(counts)
                if pool is not None and s != "scratch":
                    result = _cell(r, lambda c, idx=idx, test_idx=test_idx: pool.build(c, task, idx, test_idx), task,
                                   n, len(idx), track=tracked, dev=dev)
                    others = sum(len(d) for d in pool.acts[min(pool.acts)][1:] if d is not None)
                    result.setup_seconds = pool.setup * (len(idx) + others) / (len(pool_labels) + others)
                    result.used_cache, result.arch = True, pool.base.name
                else:
                    if test_idx is not None:    # the same draw as the transfer arms, on the scratch task's pixels
                        sub = dataclasses.replace(scratch_task or task, train=_subset_dataset(scratch_photos, idx),
                                                  test=_subset_dataset(scratch_photos, test_idx), val=None,
                                                  n_per_class=n, fingerprint="")
                    else:
                        sub = subset_task(scratch_task or task, n, seed)
                    tr, va, te = sub.loaders(r.batch_size)

                    def scratch(c, sub=sub, tr=tr, va=va, te=te):
                        m = build_model("scratch", sub, backbone=c.backbone, scratch_arch=c.scratch_arch)
                        return m, None, Stage(m, tr, va, c.stages(len(cast(Sized, sub.train)))[1],
                                              cast(tuple, c.lr)[0]), 0, te
                    result = _cell(r, scratch, task, n, len(cast(Sized, sub.train)), track=tracked, dev=dev)
                records.append(result)
                if on_run is not None:
                    on_run(result)
    check_equal_budgets(records, where="learning_curve")
    if resplit:
        per_size = {n: [statistics.fmean(c) for c in zip(*runs)] for n, runs in test_per_class.items()}
    else:
        counts = torch.bincount(dataset_labels(task.test), minlength=task.num_classes).tolist()
        per_size = {n: counts for n in sizes}
    return LearningCurve(task.name, records, sizes, task.num_classes, resplit=resplit,
                         test_per_class={n: dict(zip(task.classes, v)) for n, v in per_size.items()})
