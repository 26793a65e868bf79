"""Stratified, seeded train/validation splits.

Why: every choice a lesson makes (epochs, how many groups to freeze, learning
rate) must be made on a validation split carved from the training pool, so the
test split is looked at once, at the end. One function does the carving for
every task builder (MNIST, pets, own photos, text).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["stratified_split"]


def stratified_split(labels: torch.Tensor | np.ndarray | Sequence[int], val_per_class: int | None = None, *,
                     val_fraction: float | None = None, seed: int = 0,
                     min_train_per_class: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Split sample indices into ``(train_idx, val_idx)`` with the same classes in both.

    Args:
        labels: 1-D class labels of the pool (tensor, array or list).
        val_per_class: number of validation samples per class (exclusive with ``val_fraction``).
        val_fraction: fraction of each class for validation, rounded, at least 1 (exclusive with ``val_per_class``).
        seed: the split is a pure function of ``labels`` and ``seed``.
        min_train_per_class: each class keeps at least this many training samples.

    Both index tensors are sorted. Raises ValueError naming the class that is too small.
    """
    if (val_per_class is None) == (val_fraction is None):
        raise ValueError("give exactly one of val_per_class or val_fraction, "
                         f"got val_per_class={val_per_class!r}, val_fraction={val_fraction!r}")
    if val_per_class is not None and (isinstance(val_per_class, bool) or int(val_per_class) != val_per_class
                                      or val_per_class < 1):
        raise ValueError(f"val_per_class must be an integer >= 1, got {val_per_class!r}")
    if val_fraction is not None and not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    y = torch.as_tensor(labels).long()
    if y.dim() != 1 or len(y) == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence, got shape {tuple(y.shape)}")
    fraction = 0.0 if val_fraction is None else float(val_fraction)  # used only when val_per_class is None
    gen = torch.Generator().manual_seed(int(seed))
    train: list[torch.Tensor] = []
    val: list[torch.Tensor] = []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        k = int(val_per_class) if val_per_class is not None else max(1, round(len(idx) * fraction))
        if len(idx) - k < min_train_per_class:
            raise ValueError(f"class {c} has {len(idx)} samples: too few to hold out {k} for validation and keep "
                             f"{min_train_per_class} for training; lower val_per_class/val_fraction")
        val.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values
