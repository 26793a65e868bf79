"""The task a lesson trains on: :class:`Task`, and the sampling that builds its splits.

Why a module of its own: every task builder (MNIST, pets, own photos) and
every experiment that shrinks a task to a few labels per class must draw
samples the same way, or two runs that should see the same images would
not. Here lives the one :class:`Task` (three disjoint splits, its kind and
its normalisation), the seeded per-class sampling (:func:`take_per_class`),
the validation slice carved from the training pool (:func:`carve_val`) and
the key (:attr:`Task.cache_key`) that caches of a task's activations are
filed under.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..infra import short_hash
from ..inputs import Normalization
from ..splits import stratified_split
from ..validate import check_choice, check_int

__all__ = ["Task", "TASK_KINDS", "TransformedDataset", "check_n_per_class", "take_per_class", "carve_val",
           "dataset_labels", "dataset_tensors", "dataset_digest", "size_label"]

#: What a task's inputs are, which decides the model that fits them:
#: ``"digits"``: 1x28x28 greyscale digits normalised like MNIST (the course's digit CNN was trained on such);
#: ``"photos"``: RGB photos normalised for an ImageNet backbone (pets, your own photos);
#: ``"custom"``: a task built by hand from other tensors (the default); no source model is implied.
TASK_KINDS = ("digits", "photos", "custom")


@dataclass(eq=False)
class Task:
    """A supervised task: named classes and three disjoint splits, ``train``, ``val`` and ``test``.

    Why three: every choice (how many epochs, how many groups to freeze, which
    learning rate) is made on ``val``, a stratified, seeded slice carved from
    the training pool (:func:`tlwidgets.splits.stratified_split`); ``test`` is
    looked at once, at the end, so the reported number is not inflated by the
    choices. ``val_note`` says how ``val`` was carved (shown in ``repr``).
    ``val`` may be None for a hand-built task; then nothing can be selected.

    ``kind`` (one of :data:`TASK_KINDS`) says what the inputs are, so code
    that picks a model or draws the images asks the task instead of guessing
    from its shape; ``normalization`` is the ``(mean, std)`` the inputs were
    normalised with (None when unknown; taken from ``train`` when that
    dataset records one), so they can be shown as pictures again and checked
    against a model's own: it is what the model check reads.

    ``fingerprint`` identifies exactly which samples and preprocessing the task
    holds, so cached features computed from it can be reused safely; the task
    builders set it, a hand-built task may leave it empty and is then keyed by
    its content (:attr:`cache_key`).
    """

    name: str
    classes: list[str]
    train: Dataset
    test: Dataset
    n_per_class: int | None = None
    input_size: tuple[int, ...] = ()
    fingerprint: str = ""
    augment: Callable | None = field(default=None, repr=False)
    val: Dataset | None = None
    val_note: str = ""
    kind: str = "custom"
    normalization: Normalization | None = None

    def __post_init__(self) -> None:
        self.kind = check_choice("task kind", self.kind, TASK_KINDS)
        self.n_per_class = check_n_per_class(self.n_per_class)   # a plain int (or None): rows and logs are JSON
        if self.normalization is None:   # a hand-built task of photo datasets: they know how they were normalised
            self.normalization = getattr(self.train, "normalization", None)
        if self.normalization is not None:
            mean, std = self.normalization
            self.normalization = (tuple(float(m) for m in mean), tuple(float(s) for s in std))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def cache_key(self) -> str:
        """What caches of this task's activations are filed under: ``fingerprint``, or its content when empty.

        Why never the empty string: two hand-built tasks (``Task(...)`` with no
        fingerprint) would share one cache entry, and the second would silently
        be served the first one's activations, from disk, in every later session.
        The content key covers the classes, the kind, the normalisation and every
        sample of every split (:func:`dataset_digest`).
        """
        if self.fingerprint:
            return self.fingerprint
        return short_hash("content", self.classes, self.kind, self.normalization, tuple(self.input_size),
                          dataset_digest(self.train), None if self.val is None else dataset_digest(self.val),
                          dataset_digest(self.test))

    def loaders(self, batch_size: int = 64, *, shuffle: bool = True, augment: bool = False,
                num_workers: int = 0, pin_memory: bool = False) -> tuple[DataLoader, DataLoader | None, DataLoader]:
        """``(train_loader, val_loader, test_loader)``; ``val_loader`` is None when the task has no ``val``.

        ``augment=True`` applies the task's training augmentation (to the training split only).

        Args:
            batch_size: training batch size (validation and test use at least 256: no gradients, less overhead).
            shuffle: shuffle the training split every epoch.
            augment: apply the task's augmentation to the training split.
            num_workers: DataLoader worker processes.
            pin_memory: pin batches in page-locked memory (faster copies to a GPU).
        """
        train = self.train
        if augment:
            if self.augment is None:
                raise ValueError(f"task {self.name!r} has no augmentation; use augment=False")
            train = TransformedDataset(self.train, self.augment)
        eval_bs = max(batch_size, 256)
        return (DataLoader(train, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                           pin_memory=pin_memory),
                None if self.val is None else DataLoader(self.val, batch_size=eval_bs, shuffle=False,
                                                         num_workers=num_workers, pin_memory=pin_memory),
                DataLoader(self.test, batch_size=eval_bs, shuffle=False, num_workers=num_workers,
                           pin_memory=pin_memory))

    def __repr__(self) -> str:
        per = size_label(self.n_per_class)
        val = "no val" if self.val is None else \
            f"{_size(self.val)} val" + (f" ({self.val_note})" if self.val_note else "")
        return (f"Task({self.name!r}: {self.num_classes} classes, {_size(self.train)} train "
                f"({per} per class), {val}, {_size(self.test)} test, input {tuple(self.input_size)})")


def _size(ds: Dataset) -> int:
    """``len(ds)``: torch's ``Dataset`` type does not promise a length, every dataset a task holds has one."""
    if not isinstance(ds, Sized):
        raise TypeError(f"a task's datasets need a length (__len__), got {type(ds).__name__}")
    return len(ds)


class TransformedDataset(Dataset):
    """``base`` with ``transform`` applied to each sample's input on access (augmentation, crops)."""

    def __init__(self, base: Dataset, transform: Callable):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return _size(self.base)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        x, y = self.base[i]
        return self.transform(x), y


def check_n_per_class(n: Any, name: str = "n_per_class") -> int | None:
    """``n`` labelled images per class: a positive integer (NumPy ones too), or None for all."""
    if n is None:
        return None
    n = check_int(name, n)
    if n <= 0:
        raise ValueError(f"{name} must be a positive number of labelled images, got {n} (or None for all)")
    return n


def size_label(n: int | None) -> int | str:
    """How a table, a repr or a message names ``n`` labelled images per class: the number, or ``"all"`` for None.

    One spelling everywhere, so a row written by a run and a row a student is asked to match compare equal.
    """
    return "all" if n is None else n


def take_per_class(labels: torch.Tensor, classes: Sequence[int], n: int | None, seed: int) -> torch.Tensor:
    """Indices of ``n`` samples of each class (all when ``n`` is None), chosen reproducibly.

    Args:
        labels: the class label of every sample.
        classes: the classes to draw from (others are left out).
        n: samples per class; None takes all, more than a class has takes all of it with a warning.
        seed: the draw is a pure function of ``labels``, ``classes`` and ``seed``.
    """
    n = check_n_per_class(n)
    seed = check_int("seed", seed, min=0)
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for c in classes:
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) == 0:
            raise ValueError(f"class {c!r} has no samples in this dataset")
        idx = idx[torch.randperm(len(idx), generator=gen)]
        if n is not None:
            if n > len(idx):
                warnings.warn(f"asked for {n} images of class {c!r}, only {len(idx)} exist; using all",
                              stacklevel=2)
            idx = idx[:n]
        picked.append(idx)
    return torch.cat(picked).sort().values


def carve_val(labels: torch.Tensor, classes: Sequence[int], seed: int, *, val_per_class: int | None = None,
              val_fraction: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rest_idx, val_idx)`` into ``labels``: a stratified validation slice of the samples of ``classes``.

    The training images are then drawn from ``rest_idx`` only, so train and val never share a sample
    and the validation set does not depend on how many training images a lesson asks for.

    Args:
        labels: the class label of every sample of the training file.
        classes: the classes of the task (samples of other classes are in neither part).
        seed: which samples validate.
        val_per_class: validation samples per class (exclusive with ``val_fraction``).
        val_fraction: share of each class for validation (exclusive with ``val_per_class``).
    """
    pool = torch.nonzero(torch.isin(labels, torch.as_tensor(list(classes)))).flatten()
    tr, va = stratified_split(labels[pool], val_per_class, val_fraction=val_fraction, seed=seed)
    return pool[tr], pool[va]


def dataset_labels(data: Dataset) -> torch.Tensor:
    """The label of every sample: the package's one label reader, which touches no image when it can avoid it.

    Reads ``TensorDataset``'s last tensor, a ``labels`` or ``targets`` tensor
    (the photo tasks' dataset, torchvision's datasets), a subset of any of
    these by its indices, and otherwise every sample's second item.
    """
    from torch.utils.data import Subset, TensorDataset

    if isinstance(data, TensorDataset):
        return data.tensors[-1]
    if isinstance(data, Subset):
        return dataset_labels(data.dataset)[torch.as_tensor(list(data.indices), dtype=torch.long)]
    for attr in ("labels", "targets"):
        found = getattr(data, attr, None)
        if isinstance(found, torch.Tensor):
            return found
    return torch.as_tensor([int(data[i][1]) for i in range(_size(data))], dtype=torch.long)


def dataset_tensors(data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``(inputs, labels)`` of a dataset as two tensors (in memory: the course's data is small).

    Handy for small test splits and plots; a ``TensorDataset`` gives its own tensors without a copy.
    """
    from torch.utils.data import TensorDataset

    if isinstance(data, TensorDataset):
        return data.tensors[0], data.tensors[-1]
    n = _size(data)
    if n == 0:
        raise ValueError(f"dataset {type(data).__name__} is empty: no samples to stack")
    xs, ys = zip(*(data[i] for i in range(n)))
    return torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor([int(y) for y in ys], dtype=torch.long)


def dataset_digest(data: Dataset) -> str:
    """A short hash of every sample of ``data`` (inputs and labels), for keying caches by content.

    Tensor-backed datasets (``TensorDataset``, the photo tasks' in-memory
    dataset, subsets of either) are hashed by their tensors at once; any other
    map-style dataset sample by sample (the course's data is small).
    """
    from torch.utils.data import Subset, TensorDataset

    if isinstance(data, TensorDataset):
        return short_hash("tensors", *data.tensors)
    if isinstance(data, Subset):
        return short_hash("subset", dataset_digest(data.dataset), torch.as_tensor(list(data.indices)))
    images, labels = getattr(data, "images", None), getattr(data, "labels", None)
    if isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor):   # ImageTensorDataset and alike
        return short_hash("images", images, labels, getattr(data, "normalization", None))
    parts: list[Any] = [type(data).__name__]
    for i in range(_size(data)):
        x, y = data[i]
        parts += [torch.as_tensor(x), torch.as_tensor(y)]
    return short_hash(*parts)
