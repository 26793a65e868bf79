"""The strategies side by side: from scratch, feature extraction, fine-tuning (and choosing between the last two).

``run_strategy("feature_extraction", task)`` builds the right model for the
task (the digits-0-4 CNN cut after ``conv2`` for MNIST tasks, an ImageNet
backbone for photos), freezes it, uses cached activations whenever the frozen
part cannot change, trains, **selects on the validation split** and measures
the test split once. It returns a :class:`~tlwidgets.runs.RunResult`.

The measurement rules (keep the best validation epoch, choose on validation,
test once, equal step budgets, the strategy -> freeze boundary rule and the
head-first fine-tune recipe) live in :mod:`tlwidgets.runs`; this module builds
the models and the loaders they train on. Augmentation stays off by default
(``augment=False``): measured on the cat breeds over five seeds it gained
nothing beyond the seed spread on validation and costs the activation cache
(``docs/measurements/augment.json``, lesson 3).
"""
from __future__ import annotations

import copy
import time
from collections.abc import Sequence, Sized
from dataclasses import fields, replace
from typing import cast

import torch
from torch import nn
from torch.utils.data import DataLoader

from .data import Task
from .features import cached_features, extract_features, propagate
from .freezing import freeze, max_frozen
from .infra import derive_seed, seed_everything, select_device
from .models import GroupedModel, build_backbone, digit_cnn, load_digit_model, replace_head, small_cnn
from .runs import (
    DEFAULT_LR,
    DEFAULT_LR_DECAY,
    HEAD_LR,
    STRATEGIES,
    Recipe,
    RunResult,
    Stage,
    check_equal_budgets,
    choose,
    default_fine_tune_frozen,
    fit_and_keep,
    freeze_boundary,
    metrics_on,
    test_once,
)
from .training import StopFlag

__all__ = ["STRATEGIES", "RunResult", "Recipe", "run_strategy", "run_recipe", "compare_strategies", "build_model",
           "default_fine_tune_frozen", "DEFAULT_LR", "DEFAULT_LR_DECAY", "DIGIT_FE_CUT", "digit_cut_model",
           "metrics_on"]

#: Feature extraction on the digit model means: frozen conv1 + conv2, a new linear head on their 1568 numbers.
#: Lesson 2 measures why (the 128-unit ``features`` layer is too specific to digits 0-4).
DIGIT_FE_CUT = "conv2"


def digit_cut_model(num_classes: int, classes: Sequence[str] | None = None, *, pretrained: bool = True,
                    cut: str = DIGIT_FE_CUT) -> GroupedModel:
    """The digit model up to ``cut`` (pretrained on 0-4, or random) with a new linear head on its output.

    With the default cut ("conv2") this is the course's one definition of the
    digit transfer model: groups ``conv1``, ``conv2``, ``head`` (Flatten +
    Linear(1568, num_classes)). ``cut="features"`` keeps the 128-unit dense
    layer too (the cut lesson 2 rejects), for comparisons that label it.
    """
    source = load_digit_model() if pretrained else digit_cnn(5)
    names = source.group_names
    if cut not in names[:-1]:
        raise ValueError(f"cut must name a group of the digit model before its head {names[:-1]}, got {cut!r}")
    kept = source[:names.index(cut) + 1]
    with torch.no_grad():
        width = kept(torch.zeros(1, 1, 28, 28)).flatten(1).shape[1]
    groups = [*kept.groups.items(), ("head", nn.Sequential(nn.Flatten(), nn.Linear(width, num_classes)))]
    tag = "" if pretrained else ", random init"
    return GroupedModel(groups, name=f"digit_cnn@{cut}{tag}",
                        classes=list(classes) if classes is not None else [str(i) for i in range(num_classes)],
                        mean=source.mean, std=source.std, image_size=28).eval()


def build_model(strategy: str, task: Task, *, backbone: str = "efficientnet_lite0",
                scratch_arch: str = "small") -> GroupedModel:
    """The model a strategy starts from, with a fresh head sized for ``task``.

    Transfer strategies start from pretrained weights (for digit tasks the
    digits-0-4 CNN cut after ``conv2``, :func:`digit_cut_model`; for photos
    ``backbone``). "scratch" starts from random weights: ``scratch_arch="same"``
    is the transferred model's own architecture, untrained (the fair
    comparison); ``"small"`` is a small CNN (photos: :func:`small_cnn`, which
    trains in seconds on a CPU; digits: the full 4-group digit CNN).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
    if strategy == "scratch" and scratch_arch not in ("small", "same"):
        raise ValueError(f"scratch_arch must be 'small' or 'same', got {scratch_arch!r}")
    if task.kind == "digits":
        if strategy == "scratch" and scratch_arch == "small":
            return digit_cnn(task.num_classes, task.classes)
        return digit_cut_model(task.num_classes, task.classes, pretrained=strategy != "scratch")
    if strategy == "scratch":
        if scratch_arch == "small":
            return small_cnn(task.num_classes, image_size=task.input_size[-1], classes=task.classes)
        model = build_backbone(backbone, pretrained=False)
    else:
        model = build_backbone(backbone, pretrained=True)
        check_normalization(task, model)
    return replace_head(model, task.num_classes, task.classes)


def check_normalization(task: Task, model: GroupedModel) -> None:
    """Refuse a photo task normalised for another backbone: it trains, silently a few points worse."""
    norm = task.normalization
    if norm is None or model.mean is None or model.std is None:
        return
    want = (tuple(float(m) for m in model.mean), tuple(float(v) for v in model.std))
    if any(abs(a - b) > 1e-6 for got, exp in zip(norm, want) for a, b in zip(got, exp)):
        raise ValueError(f"{task.name!r} is normalised with mean/std {norm[0]}/{norm[1]}, but {model.name} was "
                         f"trained on mean/std {want[0]}/{want[1]}: build the task for it, e.g. "
                         f"pets_task(..., backbone={model.name!r})")


def _loaders(model, task, k, batch_size, augment, cache, dev, progress):
    """(module to train, train_loader, val_loader, test_loader, used_cache) for a freeze boundary ``k``."""
    if cache and k > 0 and not augment:
        feats = cached_features(model, task, k, device=dev, progress=progress)
        return (model[k:], *feats.loaders(batch_size), True)
    return (model, *task.loaders(batch_size, augment=augment), False)


def _head_stage(model, task, k, top, batch_size, cache, dev, progress):
    """(head, train_loader, val_loader) of the features at ``top`` for the head-first stage; test is not touched.

    With a cache, the features at ``top`` are derived from the activations cached at ``k`` (which stage 2
    reuses); without one they are computed from the train and val images only.
    """
    if cache and k > 0:
        feats = cached_features(model, task, k, device=dev, progress=progress)
        train, val = (None if d is None else propagate(model, d, k, top, dev) for d in (feats.train, feats.val))
    else:
        train = extract_features(model, task.train, top, device=dev, progress=progress)
        val = None if task.val is None else extract_features(model, task.val, top, device=dev, progress=progress)
    return (model[top:], DataLoader(train, batch_size=batch_size, shuffle=True),
            None if val is None else DataLoader(val, batch_size=256))



_RECIPE_FIELDS = tuple(f.name for f in fields(Recipe))


def run_strategy(strategy: str, task: Task, recipe: Recipe | None = None, *, device="auto", observers=(),
                 stop: StopFlag | None = None, progress: bool = True, model: GroupedModel | None = None,
                 cache: bool = True, **recipe_fields) -> RunResult:
    """Train ``task`` with one strategy, choose on its validation split, measure its test split once.

    The run is described by ``recipe`` (a :class:`~tlwidgets.runs.Recipe`) or,
    the short form, by its fields as keywords (``num_epochs=``, ``lr=``,
    ``n_frozen=``, ``head_epochs=``, ``batch_size=``, ``min_steps=``,
    ``seed=``, ``backbone=``, ``scratch_arch=``, ``augment=``, ``lr_decay=``);
    keywords override the recipe's fields. ``n_frozen`` and ``lr`` may be
    lists: every combination trains with the same budget and
    :func:`~tlwidgets.runs.choose` keeps the best on validation
    (``RunResult.selection`` lists them all). ``observers`` watch the main
    stage (a fine-tune's unfrozen epochs); ``stop`` ends either stage. When the
    frozen part's output is fixed (``augment=False``) training runs on
    activations cached at the freeze boundary.
    """
    unknown = sorted(set(recipe_fields) - set(_RECIPE_FIELDS))
    if unknown:
        raise TypeError(f"run_strategy() got unknown keyword(s) {unknown}; recipe fields are {list(_RECIPE_FIELDS)}")
    base = recipe if recipe is not None else Recipe(strategy)
    return run_recipe(replace(base, strategy=strategy, **recipe_fields), task, device=device, observers=observers,
                      stop=stop, progress=progress, model=model, cache=cache)


def run_recipe(recipe: Recipe, task: Task, *, device="auto", observers=(), stop: StopFlag | None = None,
               progress: bool = True, model: GroupedModel | None = None, cache: bool = True) -> RunResult:
    """:func:`run_strategy` for a ready :class:`~tlwidgets.runs.Recipe`: every candidate, chosen, tested once."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"run_recipe: recipe must be a tlwidgets.runs.Recipe, got {type(recipe).__name__}")
    candidates = recipe.candidates()
    if len(candidates) > 1 and task.val is None:
        raise ValueError(f"choosing among n_frozen={recipe.n_frozen} / lr={recipe.lr} needs a validation split, "
                         f"and task {task.name!r} has none (val=None); build it with a task builder, which carves one")
    _check_boundaries(recipe, task, model)
    dev = select_device(device)
    runs = [_run_one(c, task, dev=dev, observers=observers, stop=stop, progress=progress, cache=cache,
                     model=None if model is None else copy.deepcopy(model) if len(candidates) > 1 else model)
            for c in candidates]
    best = choose([r for r, _, _, _ in runs])
    _, trained, test_loader, _ = next(run for run in runs if run[0] is best)
    result = test_once(best, trained, test_loader, task.num_classes, device=dev)
    if all(run[3] is not None for run in runs):       # "choose": the fine-tune rule, from the same trainings
        ft_best = choose([run[3][0] for run in runs])
        _, _, ft_loader, (_, ft_trained) = next(run for run in runs if run[3][0] is ft_best)
        result.fine_tuned = test_once(ft_best, ft_trained, ft_loader, task.num_classes, device=dev)
    return result


def _check_boundaries(recipe: Recipe, task: Task, model: GroupedModel | None) -> None:
    """Refuse an out-of-range ``n_frozen`` candidate before any candidate trains (the Recipe checked the rest).

    The range depends on the model, so it is checked here, on ``model`` or on the model the strategy builds;
    only fine-tuning reads ``n_frozen`` (scratch freezes nothing, feature extraction everything but the head).
    """
    ks = recipe.n_frozen if isinstance(recipe.n_frozen, tuple) else (recipe.n_frozen,)
    if recipe.strategy not in ("fine_tune", "choose") or ks == (None,):
        return
    probe = model if model is not None else build_model(recipe.strategy, task, backbone=recipe.backbone)
    for k in ks:
        freeze_boundary(recipe.strategy, probe, k)   # names the model, its groups and the allowed range


def compare_strategies(task: Task, strategies: Sequence[str] = ("scratch", "feature_extraction", "fine_tune"),
                       recipe: Recipe | None = None, *, device="auto", progress: bool = False, cache: bool = True,
                       **recipe_fields) -> list[RunResult]:
    """A strategy table: every strategy on ``task`` with one recipe (same optimiser steps, same ``min_steps``,
    same learning-rate candidates chosen on validation); unequal steps are refused. One RunResult per strategy,
    in order (``row()`` shows ``steps`` and ``fell_back``)."""
    base = replace(recipe if recipe is not None else Recipe(), **recipe_fields)
    own_lr = "lr" in recipe_fields or recipe is not None
    results = [run_recipe(replace(base, strategy=s, lr=base.lr if own_lr else None), task, device=device,
                          progress=progress, cache=cache) for s in strategies]
    check_equal_budgets(results, where="compare_strategies")
    return results


def _run_one(recipe: Recipe, task: Task, *, dev, observers, stop, progress, cache, model) -> tuple:
    """One candidate recipe: build, freeze by the strategy's rule, train (head first for fine-tuning), keep best.

    Returns (RunResult, the module that was trained, its test loader, fine-tune rule): the test split is read
    by the caller, once, for the candidate it chose. For "choose" the fourth item is (RunResult, module) of the
    same training kept at its best unfrozen epoch (what "fine_tune" keeps); None otherwise."""
    seed_everything(derive_seed(recipe.seed, "weights"))
    if model is None:
        model = build_model(recipe.strategy, task, backbone=recipe.backbone, scratch_arch=recipe.scratch_arch)
    k, top = freeze_boundary(recipe.strategy, model, recipe.n_frozen), max_frozen(model)
    num_train = len(cast(Sized, task.train))
    head_epochs, main_epochs = recipe.stages(num_train)
    t0 = time.perf_counter()
    report = freeze(model, k)          # checks k's range before any training
    head = None
    if head_epochs > 0:                # a fine-tune's head stage: the new head alone on the frozen backbone
        module, head_train, head_val = _head_stage(model, task, k, top, recipe.batch_size,
                                                   cache and not recipe.augment, dev, progress)
        head = Stage(module, head_train, head_val, head_epochs, HEAD_LR)
    trained, train_loader, val_loader, test_loader, used_cache = _loaders(model, task, k, recipe.batch_size,
                                                                           recipe.augment, cache, dev, progress)
    lr = cast(tuple, recipe.lr)[0]
    kept = fit_and_keep(Stage(trained, train_loader, val_loader, main_epochs, lr, recipe.decay), head=head,
                        fall_back=recipe.strategy == "choose", seed=recipe.seed, device=dev, observers=observers,
                        stop=stop, progress=progress)
    model.eval()
    result = RunResult(replace(recipe, n_frozen=k, lr=lr), task.name, task.n_per_class, num_train, kept.history,
                     val_acc=kept.val_acc, best_epoch=kept.best_epoch, steps=kept.steps,
                     seconds=time.perf_counter() - t0, model=model, trainable_params=report.trainable,
                     arch=model.name, used_cache=used_cache, best_unfrozen_epoch=kept.best_unfrozen_epoch,
                     fell_back=kept.fell_back)
    unfrozen = None
    if kept.unfrozen_state is not None:
        ft_model = copy.deepcopy(model)
        ft_trained = ft_model[k:] if used_cache else ft_model
        ft_trained.load_state_dict(kept.unfrozen_state)
        ft_model.eval()
        ft = RunResult(replace(recipe, strategy="fine_tune", n_frozen=k, lr=lr), task.name, task.n_per_class,
                       num_train, kept.history, val_acc=kept.unfrozen_val_acc, best_epoch=kept.best_unfrozen_epoch,
                       steps=kept.steps, seconds=result.seconds, model=ft_model, trainable_params=report.trainable,
                       arch=model.name, used_cache=used_cache, best_unfrozen_epoch=kept.best_unfrozen_epoch)
        unfrozen = (ft, ft_trained)
    return result, trained, test_loader, unfrozen
