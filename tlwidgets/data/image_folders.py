"""Photos as an ``ImageFolder`` tree (``train/``, ``val/``, ``test/``, one sub-folder per class): the capstone's data.

Why a module of its own: the capstone (lesson 9) has the student load photos
the way every practitioner does, with ``torchvision.datasets.ImageFolder``,
not through a :class:`~tlwidgets.data.tasks.Task`. Two sources give the same
layout: the shipped Oxford-IIIT Pet photos (their official split lists, a
seeded stratified validation slice of ``trainval``) and a student's own folder
of class sub-folders (split here, seeded and stratified). The tree holds links,
not copies (hard links where the file system allows, else symbolic links, else
copies), so making it costs no disk and no decoding.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from ..infra import atomic_write, cache_root, ensure_writable_dir, files_digest, short_hash
from ..validate import check_choice, check_int
from .folders import walk_images
from .pets import PET_KINDS, PETS_VAL_FRACTION, pet_labels
from .roots import PETS_SPEC, find_dataset
from .tasks import carve_val, check_n_per_class, take_per_class

__all__ = ["SPLIT_FOLDERS", "pets_image_folder", "split_image_folder", "has_split_folders"]

SPLIT_FOLDERS = ("train", "val", "test")


def _link(src: Path, dst: Path) -> None:
    """``dst`` becomes ``src``'s contents: a hard link, else a symbolic link, else a copy."""
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        try:
            dst.symlink_to(src.resolve())
        except OSError:
            shutil.copy2(src, dst)


def _write_tree(dest: Path, parts: dict[str, dict[str, list[Path]]]) -> Path:
    """Link every photo into ``dest/<split>/<class>/``; a finished tree carries a ``.complete`` marker."""
    marker = dest / ".complete"
    if marker.exists():
        return dest
    for split, by_class in parts.items():
        for cls, files in by_class.items():
            folder = dest / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for f in files:
                _link(f, folder / f.name)
    atomic_write(marker, "made by tlwidgets.data.image_folders\n")
    return dest


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a fraction strictly between 0 and 1, got {value!r}")
    return float(value)


def has_split_folders(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` already holds ``train/``, ``val/`` and ``test/`` sub-folders (then it is used as is)."""
    return all((Path(folder) / s).is_dir() for s in SPLIT_FOLDERS)


def pets_image_folder(kind: str = "cat_vs_dog", n_per_class: int | None = None, *, root: str | os.PathLike[str]
                      | None = None, dest: str | os.PathLike[str] | None = None, seed: int = 0) -> Path:
    """The shipped Oxford-IIIT Pet photos as ``dest/{train,val,test}/<class>/*.jpg``; returns ``dest``.

    The same split rule as :func:`tlwidgets.pets_task`: ``test`` is the official test list, ``val`` a seeded
    20 % of each class's ``trainval`` photos, ``train`` up to ``n_per_class`` of the rest. ``dest`` defaults to a
    folder in the tlwidgets cache named after the photos chosen, so a second call reuses it.

    Args:
        kind: ``"cat_vs_dog"``, ``"cat_breeds"`` or ``"dog_breeds"`` (the class sub-folders).
        n_per_class: training photos per class (None: all).
        root: the data root (default: the usual search path).
        dest: where the tree goes (default: under the cache).
        seed: which photos validate and which train.
    """
    kind = check_choice("pets kind", kind, PET_KINDS)
    n_per_class = check_n_per_class(n_per_class)
    seed = check_int("seed", seed, min=0)
    data_root = find_dataset(PETS_SPEC, root)
    images = data_root / "oxford-iiit-pet" / "images"
    parts: dict[str, dict[str, list[Path]]] = {}
    classes: list[str] = []
    for split in ("trainval", "test"):
        names, label_names = pet_labels(data_root, split, kind)
        if not classes:
            classes = sorted(set(label_names), key=str.lower)
        labels = torch.tensor([classes.index(b) for b in label_names])
        every = range(len(classes))
        if split == "trainval":
            rest, val_idx = carve_val(labels, every, seed, val_fraction=PETS_VAL_FRACTION)
            chosen = {"train": rest[take_per_class(labels[rest], every, n_per_class, seed)], "val": val_idx}
        else:
            chosen = {"test": torch.arange(len(labels))}
        for part, idx in chosen.items():
            parts[part] = {c: [] for c in classes}
            for i in idx.tolist():
                parts[part][classes[labels[i]]].append(images / names[i])
    if dest is None:
        every_file = [f for by_class in parts.values() for files in by_class.values() for f in files]
        key = short_hash("pets-folder", kind, n_per_class, seed, str(data_root), files_digest(every_file))
        dest = cache_root() / "image_folders" / f"pets_{kind}_{key[:12]}"
    return _write_tree(ensure_writable_dir(dest), parts)


def split_image_folder(folder: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None, *,
                       val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> Path:
    """Your own ``folder`` of class sub-folders, split (seeded, per class) into ``dest/{train,val,test}/<class>``.

    A folder that already has ``train/``, ``val/`` and ``test/`` is returned as it is: your split is kept.
    Every class needs at least 3 photos (one per split).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} does not exist; give a folder with one sub-folder of "
                                "photos per class (e.g. my_photos/cat/*.jpg, my_photos/dog/*.jpg)")
    if has_split_folders(folder):
        return folder
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    seed = check_int("seed", seed, min=0)
    paths, _ = walk_images(folder)
    by_class: dict[str, list[Path]] = {}
    for p in sorted(paths):
        by_class.setdefault(Path(p).parent.name, []).append(Path(p))
    if len(by_class) < 2:
        raise ValueError(f"folder {str(folder)!r} has {len(by_class)} class sub-folder(s) with photos; "
                         "a classifier needs at least 2")
    small = {c: len(v) for c, v in by_class.items() if len(v) < 3}
    if small:
        raise ValueError(f"folder {str(folder)!r}: classes {small} have fewer than 3 photos; each class needs at "
                         "least one photo for train, val and test")
    gen = torch.Generator().manual_seed(seed)
    parts: dict[str, dict[str, list[Path]]] = {s: {} for s in SPLIT_FOLDERS}
    for cls, files in by_class.items():
        order = [files[i] for i in torch.randperm(len(files), generator=gen).tolist()]
        n_val = max(1, round(val_fraction * len(files)))
        n_test = max(1, round(test_fraction * len(files)))
        parts["val"][cls], parts["test"][cls] = order[:n_val], order[n_val:n_val + n_test]
        parts["train"][cls] = order[n_val + n_test:]
    if dest is None:
        key = short_hash("own-folder", str(folder.resolve()), seed, val_fraction, test_fraction,
                          files_digest(p for files in by_class.values() for p in files))
        dest = cache_root() / "image_folders" / f"{folder.name}_{key[:12]}"
    return _write_tree(ensure_writable_dir(dest), parts)
