""""Your own photos": a task from a folder with one sub-folder per class (torchvision's ``ImageFolder`` layout).

Why a module of its own: a student's folder is untrusted input, unlike the
shipped datasets. It may hold hidden files (``.ipynb_checkpoints``,
``.DS_Store``), symbolic links that leave the folder or loop, unreadable
files, empty classes and the same photo twice; each of these is handled
here with a message that says what was skipped, so the split is honest (no
photo in both train and test) and the lesson still runs.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from ..images import IMAGE_SUFFIXES
from ..infra import file_digest, files_digest, short_hash
from ..inputs import backbone_normalization
from ..validate import check_float, check_int, check_path
from .photos import (
    ImageTensorDataset,
    check_image_size,
    decode_images,
    default_augment,
    warn_skipped,
)
from .tasks import Task, check_n_per_class

__all__ = ["walk_images", "folder_task"]


def _class_folders(root: Path) -> tuple[list[str], int]:
    """Visible, real (not symlinked) sub-folders of ``root``, sorted; and how many links were skipped."""
    names: list[str] = []
    links = 0
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_symlink():
            links += 1
        elif entry.is_dir(follow_symlinks=False):
            names.append(entry.name)
    return names, links


def walk_images(folder: str | os.PathLike[str]) -> tuple[list[str], int]:
    """Image files under ``folder`` (recursively, sorted), never following a link; and the links skipped.

    Hidden folders and files (``.ipynb_checkpoints``, ``.DS_Store``,
    ``._photo.jpg``) are skipped. Symbolic links are never followed, so a
    link out of the tree, back into it, or in a loop adds nothing.
    """
    files: list[str] = []
    links = 0
    for dirpath, dirnames, filenames in os.walk(os.fspath(folder), followlinks=False):
        keep = []
        for d in sorted(dirnames):
            if d.startswith(".") or d == "__pycache__":
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                links += 1
            else:
                keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if f.startswith(".") or Path(f).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            full = os.path.join(dirpath, f)
            if os.path.islink(full):
                links += 1
            else:
                files.append(full)
    return files, links


def _other_files(folder: Path) -> str:
    """What a class folder without images holds instead (visible files, by type): for the error message."""
    kinds: dict[str, int] = {}
    for _, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if not f.startswith("."):
                suffix = Path(f).suffix.lower() or "no extension"
                kinds[suffix] = kinds.get(suffix, 0) + 1
    if not kinds:
        return "it is empty"
    listed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return f"it holds {sum(kinds.values())} file(s) of other types: {listed}"


def _dedupe_by_content(paths: list[str], labels: list[int], classes: list[str]) -> list[int]:
    """Indices of the first file of each content (sha256): no photo twice in a task, so none in both splits."""
    seen: dict[str, int] = {}  # digest -> index of the first file with it
    keep: list[int] = []
    dupes: list[tuple[int, int]] = []
    conflicts: list[tuple[int, int]] = []
    for i, p in enumerate(paths):
        d = file_digest(p)
        if d in seen:
            first = seen[d]
            (conflicts if labels[first] != labels[i] else dupes).append((first, i))
            continue
        seen[d] = i
        keep.append(i)
    if dupes:
        a, b = dupes[0]
        warnings.warn(f"ignored {len(dupes)} duplicate photo(s) (same bytes as another file of the class), e.g. "
                      f"{paths[b]} = {paths[a]}: a photo counts once, so it cannot be in both splits",
                      stacklevel=3)
    if conflicts:
        a, b = conflicts[0]
        warnings.warn(f"ignored {len(conflicts)} photo(s) filed under two classes, e.g. {paths[b]} has the same "
                      f"bytes as {paths[a]}; kept in {classes[labels[a]]!r} only", stacklevel=3)
    return keep


def _check_fraction(name: str, value: object) -> float:
    value = check_float(name, value)
    if not 0 < value < 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value:g}")
    return value


def folder_task(path: str | os.PathLike[str], n_per_class: int | None = None, *, image_size: int = 160,
                test_fraction: float = 0.3, val_fraction: float = 0.2, seed: int = 0,
                backbone: str = "efficientnet_lite0") -> Task:
    """"Your own photos": a folder with one sub-folder per class (torchvision ``ImageFolder`` layout).

    Each class folder is searched recursively, skipping hidden folders (such
    as ``.ipynb_checkpoints``) and never following symbolic links. A photo
    whose bytes appear twice counts once, so no photo is in both splits.
    Unreadable files are skipped with one warning that counts them, but a
    class folder with no image at all (only notes, say), or none readable, is
    refused with its path, as torchvision's ``ImageFolder`` refuses it: a
    class dropped without a word would change the task. Phone photos
    (``.HEIC``) are read through ``pillow-heif``. Each class
    is split into test (``test_fraction``), then validation (``val_fraction``
    of the rest, at least 1) and train. Pixels are normalised the way
    ``backbone`` was trained.

    Args:
        path: the folder with one sub-folder per class.
        n_per_class: training photos per class (None: all that are left after test and validation).
        image_size: the side of the square photos, in pixels.
        test_fraction: share of each class held out for the test split (at least 1 photo).
        val_fraction: share of the rest held out for validation (at least 1 photo).
        seed: which photos land in which split.
        backbone: the pretrained model the photos are for (decides the normalisation).
    """
    folder = check_path("path", path)
    if folder.is_file():
        raise NotADirectoryError(f"photo folder {folder} is a file; give the folder that holds one sub-folder per "
                                 "class")
    if not folder.is_dir():
        raise FileNotFoundError(f"photo folder {folder} does not exist; make it with one sub-folder per class")
    n_per_class = check_n_per_class(n_per_class)
    image_size = check_image_size(image_size)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    val_fraction = _check_fraction("val_fraction", val_fraction)
    seed = check_int("seed", seed, min=0)
    norm = backbone_normalization(backbone)
    classes, links = _class_folders(folder)
    found: list[str] = []
    labels_found: list[int] = []
    for c, name in enumerate(classes):
        files, n_links = walk_images(folder / name)
        links += n_links
        found += files
        labels_found += [c] * len(files)
    if links:
        warnings.warn(f"{folder}: did not follow {links} symbolic link(s); copy the photos into the folder "
                      "instead (links could leave the folder or loop back into it)", stacklevel=2)
    if not found:
        raise FileNotFoundError(f"{folder}: no class sub-folders with images (found folders: {classes or 'none'}; "
                                f"image types: {', '.join(sorted(IMAGE_SUFFIXES))})")
    counts = [labels_found.count(c) for c in range(len(classes))]
    for c, name in enumerate(classes):   # as torchvision's ImageFolder: a class with no image is an error
        if not counts[c]:
            raise FileNotFoundError(f"class folder {folder / name} has no image file ({_other_files(folder / name)}); "
                                    f"add photos of type {', '.join(sorted(IMAGE_SUFFIXES))}, or remove the folder "
                                    "(an empty class cannot be learned, and dropping it silently changes the task)")
    if len(classes) < 2:
        raise ValueError(f"{folder} has {len(classes)} class folder(s) {classes}; "
                         "a classifier needs at least 2 (one sub-folder per class)")
    images, ok, bad = decode_images(tuple(found), image_size)
    warn_skipped(bad, len(found))
    readable = [0] * len(classes)
    for i in ok:
        readable[labels_found[i]] += 1
    for c, name in enumerate(classes):
        if not readable[c]:
            first = next((b for b in bad if b.startswith(os.fspath(folder / name))), "unreadable")
            raise ValueError(f"class folder {folder / name}: none of its {counts[c]} image file(s) can be read, "
                             f"e.g. {first}; replace them with readable photos or remove the folder")
    decoded = [found[i] for i in ok]
    unique = _dedupe_by_content(decoded, [labels_found[i] for i in ok], classes)
    images = images[unique]
    paths = [decoded[i] for i in unique]
    labels = torch.tensor([labels_found[ok[i]] for i in unique], dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    train_idx, val_idx, test_idx = [], [], []
    for c in range(len(classes)):
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < 3:
            copies = sum(labels_found[ok[i]] == c for i in range(len(decoded))) - len(idx)
            also = f" ({copies} more were copies of other photos and count once)" if copies else ""
            raise ValueError(f"class folder {classes[c]!r} has {len(idx)} readable image(s){also}; "
                             "each class needs at least 3 (one to train, one to validate, one to test)")
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_test = max(1, round(len(idx) * test_fraction))
        rest = idx[n_test:]
        if len(rest) < 2:
            raise ValueError(f"class folder {classes[c]!r} has {len(idx)} readable image(s); each class "
                             "needs at least 3 (one to train, one to validate, one to test)")
        n_val = min(len(rest) - 1, max(1, round(len(rest) * val_fraction)))
        test_idx.append(idx[:n_test])
        val_idx.append(rest[:n_val])
        tr = rest[n_val:]
        train_idx.append(tr if n_per_class is None else tr[:n_per_class])
    tr, va, te = (torch.cat(i).sort().values for i in (train_idx, val_idx, test_idx))
    return Task(f"Photos in {folder.name}", list(classes), ImageTensorDataset(images[tr], labels[tr], *norm),
                ImageTensorDataset(images[te], labels[te], *norm), n_per_class, (3, image_size, image_size),
                short_hash("folder", classes, image_size, norm, files_digest(paths), tr, va, te),
                augment=default_augment(image_size), val=ImageTensorDataset(images[va], labels[va], *norm),
                val_note=f"{val_fraction:.0%} of each class after the test split, at least 1, seed {seed}",
                kind="photos", normalization=norm)
