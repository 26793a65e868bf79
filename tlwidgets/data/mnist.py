"""MNIST digit tasks: the course's first running example (digits 0-4 -> digits 5-9).

Why a module of its own: the digit tasks are read from torchvision's MNIST
files, normalised with MNIST's own mean/std (their one copy is in
:mod:`tlwidgets.inputs`, which the digit CNN reads too) and held in memory as tensors; at 28x28 a whole task
fits in a few MB and every epoch is pure compute. The idx files are read by
torchvision's :class:`~torchvision.datasets.MNIST`, verified against the
data root's ``SHA256SUMS``, and cached per process by their content.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from ..infra import ChecksumError, file_digest, short_hash, verify_checksums
from ..inputs import MNIST_MEAN, MNIST_NORMALIZATION, MNIST_STD
from ..validate import check_int
from .roots import MNIST_SPEC, find_dataset
from .tasks import Task, carve_val, check_n_per_class, take_per_class

__all__ = ["MNIST_VAL_PER_CLASS", "mnist_tensors", "mnist_task",
           "mnist_source_task", "mnist_target_task"]

MNIST_VAL_PER_CLASS = 50

_MNIST_CACHE: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}


def mnist_tensors(root: str | os.PathLike[str], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images (uint8 N x 28 x 28) and labels from ``root``, cached per process by the files' *content*.

    Keyed by the sha256 of the two idx files (memoised by size + mtime +
    inode), so files replaced under the same root are read again, even in the
    same kernel.
    """
    from torchvision.datasets import MNIST

    prefix = "train" if train else "t10k"
    raw = Path(root) / "MNIST" / "raw"
    files = [raw / f"{prefix}-{kind}-idx{d}-ubyte" for kind, d in (("images", 3), ("labels", 1))]
    key = (file_digest(files[0]), file_digest(files[1]))
    if key not in _MNIST_CACHE:
        for f in files:   # name the damaged file itself, not only its folder
            _check_idx(f)
        try:
            ds = MNIST(str(root), train=train, download=False)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ChecksumError(f"{files[0].parent}: the MNIST idx files cannot be read ({exc}); they are "
                                "corrupt or truncated: delete them and fetch them again") from None
        while len(_MNIST_CACHE) >= 4:
            _MNIST_CACHE.pop(next(iter(_MNIST_CACHE)))
        _MNIST_CACHE[key] = (ds.data, ds.targets)
    return _MNIST_CACHE[key]


def _check_idx(path: Path) -> None:
    """Refuse an idx file whose size disagrees with its own header (truncated, or another file), naming it.

    The idx header is a magic number (two zero bytes, a type code, the number of dimensions) and one
    big-endian 32-bit size per dimension; the data that follows must be exactly their product.
    """
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}
    fix = "delete it and fetch it again (python -m tlwidgets.data download mnist)"
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in itemsize or not 1 <= head[3] <= 4:
                raise ChecksumError(f"{path}: not an MNIST idx file (it starts with {head!r}); {fix}")
            dims = [int.from_bytes(fh.read(4), "big") for _ in range(head[3])]
    except OSError as exc:
        raise ChecksumError(f"{path}: cannot be read ({exc.strerror or exc}); {fix}") from None
    expected = 4 + 4 * len(dims) + math.prod(dims) * itemsize[head[2]]
    if size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        raise ChecksumError(f"{path}: {what} ({size:,} bytes; its header describes {' x '.join(map(str, dims))} "
                            f"values, {expected:,} bytes); {fix}")


def _content_key(root: Path) -> tuple[str, ...]:
    return tuple(file_digest(root / rel) for rel in MNIST_SPEC.required)


def _check_digits(digits: Any) -> list[int]:
    if isinstance(digits, (str, bytes)) or not isinstance(digits, Iterable):
        raise ValueError(f"digits must be distinct values in 0..9 (e.g. range(5, 10)), got {digits!r}")
    given = list(digits)
    try:
        out = [check_int("digit", d, min=0, max=9) for d in given]
    except ValueError:
        raise ValueError(f"digits must be distinct values in 0..9, got {given}") from None
    if not out or len(set(out)) != len(out):
        raise ValueError(f"digits must be distinct values in 0..9, got {out}")
    return out


def mnist_task(digits: Iterable[int] = range(10), n_per_class: int | None = None, *,
               test_per_class: int | None = None, val_per_class: int | None = MNIST_VAL_PER_CLASS,
               root: str | os.PathLike[str] | None = None, seed: int = 0) -> Task:
    """MNIST restricted to ``digits`` (labels renumbered 0..k-1), ``n_per_class`` training images each.

    ``val_per_class`` images of each digit (default 50) are first set aside from
    the training file as the validation split (seeded by ``seed``); the
    ``n_per_class`` training images are drawn from the rest (``val_per_class=None``:
    no validation split, only for rebuilding the shipped source model). The images are
    normalised once and kept in memory: at 28x28 the whole task fits in a few
    MB and every epoch is pure compute.

    Args:
        digits: the digits of the task, in label order (``range(5, 10)``: digit 5 is label 0).
        n_per_class: training images per digit (None: all).
        test_per_class: test images per digit (None: all of MNIST's test file).
        val_per_class: validation images per digit, set aside first (None: no validation split).
        root: the data root (default: the usual search path).
        seed: which images are drawn, for validation and for training.
    """
    wanted = _check_digits(digits)
    n_per_class = check_n_per_class(n_per_class)
    test_per_class = check_n_per_class(test_per_class, "test_per_class")
    seed = check_int("seed", seed, min=0)
    data_root = find_dataset(MNIST_SPEC, root)
    verify_checksums(data_root, "MNIST/raw/", only=MNIST_SPEC.required)
    remap = torch.full((10,), -1, dtype=torch.long)
    remap[torch.tensor(wanted)] = torch.arange(len(wanted))

    def subset(images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor) -> TensorDataset:
        x = (images[idx].float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)).unsqueeze(1)
        return TensorDataset(x, remap[labels[idx]])

    images, labels = mnist_tensors(data_root, True)
    if val_per_class is None:      # no validation split: only for rebuilding the shipped source model
        rest = torch.nonzero(torch.isin(labels, torch.tensor(wanted))).flatten()
        val_idx = rest[:0]
    else:
        rest, val_idx = carve_val(labels, wanted, seed, val_per_class=val_per_class)
    train_idx = rest[take_per_class(labels[rest], wanted, n_per_class, seed)]
    test_images, test_labels = mnist_tensors(data_root, False)
    test_idx = take_per_class(test_labels, wanted, test_per_class, seed)
    name = f"MNIST digits {wanted[0]}-{wanted[-1]}" if wanted == list(range(wanted[0], wanted[-1] + 1)) \
        else f"MNIST digits {wanted}"
    return Task(name, [str(d) for d in wanted], subset(images, labels, train_idx),
                subset(test_images, test_labels, test_idx), n_per_class, (1, 28, 28),
                short_hash("mnist", _content_key(data_root), wanted, train_idx, val_idx, test_idx),
                augment=None, val=None if val_per_class is None else subset(images, labels, val_idx),
                val_note="" if val_per_class is None else f"{val_per_class} per class, seed {seed}",
                kind="digits", normalization=MNIST_NORMALIZATION)


def mnist_source_task(n_per_class: int | None = None, **kw: Any) -> Task:
    """Digits 0-4: the task the course's digit model was trained on."""
    return mnist_task(range(5), n_per_class, **kw)


def mnist_target_task(n_per_class: int | None = 20, **kw: Any) -> Task:
    """Digits 5-9 with few labels: the new task we transfer to."""
    return mnist_task(range(5, 10), n_per_class, **kw)
