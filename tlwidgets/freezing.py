"""Freezing: which layer groups learn and which keep their pretrained weights.

``freeze(model, n_frozen)`` freezes the first ``n_frozen`` groups (stem first)
and leaves the rest trainable. 0 means fine-tune everything;
``model.num_groups - 1`` means only the head learns (feature extraction).
Frozen BatchNorm layers are kept in eval mode even while the model trains, so
their running statistics stay the pretrained ones.

This module is the one owner of a model's freezing state: it sets
``requires_grad`` and the model's ``n_frozen`` / ``frozen_bn_mode`` together;
:meth:`GroupedModel.train` only reads them.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .models import GroupedModel
from .validate import ArgumentTypeError, check_int

__all__ = ["freeze", "check_n_frozen", "unfreeze_all", "FreezeReport", "freeze_report", "max_frozen", "BN_MODES",
           "group_states", "frozen_prefix", "on_freeze"]

BN_MODES = ("eval", "train")


@dataclass(frozen=True)
class FreezeReport:
    """What is frozen: one entry per group, with parameter counts."""

    groups: tuple[tuple[str, int, bool], ...]  # (name, parameters, frozen)
    trainable: int
    total: int
    frozen_bn_mode: str
    n_frozen: int = -1  # the frozen prefix (frozen_prefix); -1: count the frozen groups

    def __post_init__(self):
        if self.n_frozen < 0:
            object.__setattr__(self, "n_frozen", sum(1 for _, _, f in self.groups if f))

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __repr__(self) -> str:
        rows = [f"FreezeReport({self.n_frozen}/{len(self.groups)} groups frozen, "
                f"{self.trainable:,} of {self.total:,} parameters trainable ({self.trainable_fraction:.1%})"]
        rows += [f"  {'frozen   ' if f else 'trainable'} {n:<12} {p:>10,}" for n, p, f in self.groups]
        return "\n".join(rows) + ")"


def max_frozen(model: GroupedModel) -> int:
    """The most groups that can be frozen: all but the head."""
    return model.num_groups - 1


def check_n_frozen(model: GroupedModel, n_frozen: Any) -> int:
    """``n_frozen`` as a plain int in ``0..max_frozen(model)``, or an error that states the range.

    :func:`freeze` calls it, and so does anything that must refuse a bad freeze count *before* training
    (``run_strategy`` checks every candidate of a list up front).
    """
    try:
        n_frozen = check_int("n_frozen", n_frozen)  # NumPy integers too: np.arange gives them
    except ValueError:
        raise ArgumentTypeError(f"n_frozen must be an integer, got {n_frozen!r} (allowed: 0..{max_frozen(model)}, "
                                "the number of groups to freeze)") from None
    if not 0 <= n_frozen <= max_frozen(model):
        raise ValueError(f"n_frozen={n_frozen} is out of range: {model.name} has {model.num_groups} groups, "
                         f"so 0..{max_frozen(model)} can be frozen (the head always trains)")
    return n_frozen


def freeze(model: GroupedModel, n_frozen: int, *, frozen_bn: str = "eval") -> FreezeReport:
    """Freeze the first ``n_frozen`` groups of ``model`` and unfreeze the rest.

    ``frozen_bn="eval"`` (the default, and what you want) keeps frozen groups
    in eval mode during training: their BatchNorm layers keep the pretrained
    statistics and their Dropout is off, so the frozen part is a fixed
    function whose output can be cached. ``"train"`` lets them update running
    statistics, which lesson 3 shows is harmful.
    """
    if not isinstance(model, GroupedModel):
        raise TypeError(f"freeze() needs a tlwidgets GroupedModel (with layer groups), got {type(model).__name__}")
    n_frozen = check_n_frozen(model, n_frozen)
    if frozen_bn not in BN_MODES:
        raise ValueError(f"frozen_bn must be one of {BN_MODES}, got {frozen_bn!r}")
    for i, group in enumerate(model):
        group.requires_grad_(i >= n_frozen)
    model.n_frozen = n_frozen
    model.frozen_bn_mode = frozen_bn
    model.train(model.training)  # re-apply BatchNorm modes for the new boundary
    report = freeze_report(model)
    _notify(model, report)
    return report


def unfreeze_all(model: GroupedModel) -> FreezeReport:
    """Every group trains (``freeze(model, 0)``): fine-tuning the whole network, or training from scratch."""
    return freeze(model, 0)


def freeze_report(model: GroupedModel) -> FreezeReport:
    # read from the parameters themselves, so a model frozen by hand (requires_grad_) is reported as it is
    groups = tuple((name, sum(p.numel() for p in group.parameters()), state == "frozen")
                   for (name, group), state in zip(model.groups.items(), group_states(model)))
    trainable, total = model.parameter_counts()
    return FreezeReport(groups, trainable, total, model.frozen_bn_mode, frozen_prefix(model))


def batchnorm_modes(model: nn.Module) -> dict[str, bool]:
    """``{module name: training?}`` for every BatchNorm layer (used by tests and lesson 3)."""
    return {n: m.training for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def group_states(model: GroupedModel) -> list[str]:
    """``'frozen'``, ``'trainable'`` or ``'mixed'`` per group, read from ``requires_grad`` of its parameters.

    The truth about a model is in its parameters, not in ``model.n_frozen``:
    a student who freezes by hand with ``requires_grad_(False)`` never touches
    that attribute. A group without parameters counts as frozen.
    """
    states = []
    for group in model:
        flags = {p.requires_grad for p in group.parameters()}
        states.append("mixed" if len(flags) > 1 else "trainable" if flags == {True} else "frozen")
    return states


def _has_parameters(group: nn.Module) -> bool:
    return any(True for _ in group.parameters())


def frozen_prefix(model: GroupedModel) -> int:
    """How many groups, from the stem on, are entirely frozen (what ``freeze(model, n)`` would give as ``n``).

    A group without parameters (a pooling step) looks frozen and trainable at once; at the edge of the
    frozen run the flags cannot tell, so the model's own ``n_frozen`` decides when it is consistent.
    """
    states = group_states(model)
    upper = 0  # the frozen run, parameterless groups included
    for state in states[:max_frozen(model)]:
        if state != "frozen":
            break
        upper += 1
    lower = upper  # ... without the parameterless groups at its end
    while lower > 0 and not _has_parameters(model[lower - 1]):
        lower -= 1
    recorded = getattr(model, "n_frozen", None)
    return recorded if isinstance(recorded, int) and lower <= recorded <= upper else lower


# models -> callbacks run after each freeze(model, ...): a FreezeSlider follows a model frozen from code
_LISTENERS: weakref.WeakKeyDictionary[GroupedModel, list[Callable[[FreezeReport], None]]] = \
    weakref.WeakKeyDictionary()


def on_freeze(model: GroupedModel, callback: Callable[[FreezeReport], None]) -> Callable[[], None]:
    """Call ``callback(report)`` after every :func:`freeze` of ``model``; returns a function that unregisters it.

    Views (the freeze slider) use it to show the model's state the moment code
    changes it, instead of waiting for a refresh.
    """
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    callbacks = _LISTENERS.setdefault(model, [])
    callbacks.append(callback)

    def remove() -> None:
        if callback in callbacks:
            callbacks.remove(callback)
    return remove


def _notify(model: GroupedModel, report: FreezeReport) -> None:
    for callback in list(_LISTENERS.get(model, ())):
        callback(report)
