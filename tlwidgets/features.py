"""Cached activations: run the frozen part of a network once, train the rest many times.

When the first ``n_frozen`` groups are frozen and no augmentation is used,
their output for a given image never changes. So we compute it once
(``model[:n_frozen]``), keep it (in memory and on disk), and train the
remaining groups (``model[n_frozen:]``, the same modules) on it: for feature
extraction (``n_frozen = num_groups - 1``) only a linear head is left, and every
epoch costs milliseconds instead of a full backbone pass.

This module is the package's one on-disk activation cache
(:func:`activation_cache`): every cache of what a network computes from a
task (features at a boundary here, pooled cut features in
:mod:`tlwidgets.layer_transfer`) is keyed, checked for writability, loaded
safely and written atomically the same way.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .inference import as_channels_last, inference_copy
from .infra import CACHE_ENV, atomic_write, cache_root, select_device, short_hash, torch_bytes, writable_cache_dir
from .models import GroupedModel, check_model_fits_task, weights_fingerprint
from .validate import check_bool, check_int

__all__ = ["extract_features", "propagate", "cached_features", "feature_cache_dir", "activation_key",
           "activation_cache", "FeatureSet", "CACHE_ENV"]


def feature_cache_dir() -> Path:
    """``$TLLAB_CACHE/features`` or ``~/.cache/tlwidgets/features``: shared by all lessons, safe to delete."""
    return cache_root() / "features"


def activation_key(model: GroupedModel, stop: int, task: Any, *extra: Any) -> str:
    """The cache key of what ``model[:stop]`` computes from ``task``: weights of that part, boundary, task content.

    Only ``model[:stop]``'s weights count (training the head leaves the key valid);
    the task enters by :attr:`tlwidgets.data.Task.cache_key` (its fingerprint, or
    its content when it has none: never an empty string). ``extra`` separates
    kinds of cache (e.g. ``"pooled"`` and the boundaries kept).
    """
    return short_hash(model.name, weights_fingerprint(model[:stop]), stop, task.cache_key, *extra, length=20)


def activation_cache(name: str, compute: Callable[[], dict], *, cache: bool = True,
                     accept: Callable[[dict], bool] | None = None) -> tuple[dict, bool]:
    """``(blob, from_disk)``: the tensors cached under ``name`` (a file name stem), or ``compute()``'s, then saved.

    The one on-disk activation cache. The folder is proven writable before
    any work (an unwritable one is reported with its two fixes: ``$TLLAB_CACHE``
    or ``cache=False``); files are read with ``weights_only=True``; a damaged
    file, or one ``accept`` rejects, is recomputed, never trusted; writes are
    atomic. ``cache=False`` computes and touches no file.
    """
    if not cache:
        return compute(), False
    path = writable_cache_dir("features") / f"{name}.pt"
    if path.exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if accept is None or accept(blob):
                return blob, True
        except Exception:  # a damaged cache file is recomputed, never trusted
            path.unlink(missing_ok=True)
    blob = compute()
    atomic_write(path, torch_bytes(blob))
    return blob, False


@torch.no_grad()  # not inference_mode: cached activations must be usable in autograd for fine-tuning
def extract_features(model: GroupedModel, data: Dataset | DataLoader, n_frozen: int | None = None, *,
                     device="auto", batch_size: int = 64, progress: bool = True,
                     channels_last: bool = True) -> TensorDataset:
    """Run ``model[:n_frozen]`` over ``data`` in eval mode; return (activations, labels).

    ``n_frozen`` defaults to ``num_groups - 1``: everything but the head, i.e.
    the features a new head is trained on. ``data`` may itself hold
    activations: ``extract_features(model[a:], acts_at_a, b - a)`` carries
    activations cached at boundary ``a`` on to boundary ``b``.
    """
    from tqdm.auto import tqdm

    if not isinstance(model, GroupedModel):
        raise TypeError(f"extract_features needs a tlwidgets GroupedModel, got {type(model).__name__}")
    n_frozen = _check_boundary(model, n_frozen)
    batch_size = check_int("batch_size", batch_size, min=1)
    device = select_device(device)
    if not isinstance(data, (Dataset, DataLoader)):
        raise TypeError(f"data must be a Dataset or a DataLoader (e.g. task.train), got {type(data).__name__}")
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=batch_size, shuffle=False)
    was_training = model.training
    model.eval().to(device)        # eval for a model the copy returns as it is (no convolution to fold)
    nhwc = channels_last and device.type == "cpu"
    frozen = inference_copy(model[:n_frozen], channels_last=nhwc)   # BatchNorms folded; the model is untouched
    feats, labels = [], []
    bar = tqdm(loader, desc=f"{model.name}: features at group {n_frozen}", leave=False, disable=not progress)
    for x, y in bar:
        x = x.to(device)
        feats.append(frozen(as_channels_last(x) if nhwc else x).float().contiguous().cpu())
        labels.append(y)
    model.train(was_training)
    return TensorDataset(torch.cat(feats), torch.cat(labels))



def propagate(model: GroupedModel, acts: TensorDataset, start: int, stop: int, device="auto") -> TensorDataset:
    """Activations cached at boundary ``start`` carried on to boundary ``stop``: ``model[start:stop]`` over them.

    Why: one forward pass over the images at the lowest boundary a run needs
    serves every higher boundary too (fine-tuning's head-first stage, learning
    curves at several ``n_frozen``).
    """
    return extract_features(model[start:], acts, stop - start, device=device, batch_size=256, progress=False,
                            channels_last=False)

def _check_boundary(model: GroupedModel, n_frozen) -> int:
    if n_frozen is None:
        return model.num_groups - 1
    n_frozen = check_int("n_frozen", n_frozen)
    if not 1 <= n_frozen < model.num_groups:
        raise ValueError(f"n_frozen must be in 1..{model.num_groups - 1} for {model.name}, got {n_frozen}")
    return n_frozen


class FeatureSet:
    """Cached train/val/test activations of one task at one group boundary of one model.

    ``val`` is None when the task had no validation split.
    """

    def __init__(self, train: TensorDataset, test: TensorDataset, n_frozen: int, key: str, from_disk: bool,
                 val: TensorDataset | None = None):
        self.train, self.test, self.n_frozen, self.key, self.from_disk = train, test, n_frozen, key, from_disk
        self.val = val

    def loaders(self, batch_size: int = 64, *, shuffle: bool = True):
        """``(train_loader, val_loader, test_loader)``, like :meth:`tlwidgets.data.Task.loaders`."""
        eval_bs = max(256, batch_size)
        return (DataLoader(self.train, batch_size=batch_size, shuffle=shuffle),
                None if self.val is None else DataLoader(self.val, batch_size=eval_bs),
                DataLoader(self.test, batch_size=eval_bs))

    def __repr__(self):
        shape = tuple(self.train.tensors[0].shape[1:])
        src = "disk cache" if self.from_disk else "computed"
        val = "" if self.val is None else f" + {len(self.val)} val"
        return (f"FeatureSet(group boundary {self.n_frozen}, {len(self.train)} train{val} + {len(self.test)} test, "
                f"shape {shape}, {src})")


def cached_features(model: GroupedModel, task, n_frozen: int | None = None, *, device="auto", cache: bool = True,
                    progress: bool = True) -> FeatureSet:
    """Activations of ``task``'s train, val and test images after ``model[:n_frozen]``, from disk when possible.

    The cache key (:func:`activation_key`) covers the model's frozen weights,
    the boundary and the task's exact samples and preprocessing
    (``task.cache_key``: its fingerprint, which includes the sha256 of every
    input file, or its content for a hand-built task), so a stale cache cannot
    be picked up by mistake: edit one photo and the features are computed
    again. Stored by :func:`activation_cache` (atomic writes; an unwritable
    folder is reported with its two fixes, ``$TLLAB_CACHE`` or ``cache=False``).
    """
    if not isinstance(model, GroupedModel):
        raise TypeError(f"cached_features needs a tlwidgets GroupedModel, got {type(model).__name__}")
    n_frozen = _check_boundary(model, n_frozen)
    cache = check_bool("cache", cache)
    check_model_fits_task(model, task)
    key = activation_key(model, n_frozen, task)
    val_data = getattr(task, "val", None)

    def compute() -> dict:
        def run(data):
            return list(extract_features(model, data, n_frozen, device=device, progress=progress).tensors)

        return {"train": run(task.train), "test": run(task.test), "val": None if val_data is None else run(val_data)}

    blob, from_disk = activation_cache(f"{model.name}-{n_frozen}-{key}", compute, cache=cache,
                                       accept=lambda b: (not b.get("val")) == (val_data is None))
    return FeatureSet(TensorDataset(*blob["train"]), TensorDataset(*blob["test"]), n_frozen, key, from_disk,
                      val=TensorDataset(*blob["val"]) if blob.get("val") else None)
