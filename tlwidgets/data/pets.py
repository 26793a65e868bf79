"""Oxford-IIIT Pet tasks: the course's photo example (dogs -> cats), read from the official annotation files.

Why a module of its own: the pets tasks are defined by the dataset's own
split lists (``annotations/trainval.txt`` and ``test.txt``), parsed here
rather than through torchvision's private attributes, so the shipped subset
and the full download are read the same way. Three tasks come from one
parse: cat vs dog (species), 12 cat breeds, 25 dog breeds.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..infra import ChecksumError, DataMissingError, files_digest, short_hash, verify_checksums
from ..inputs import backbone_normalization
from ..validate import check_choice, check_int
from .photos import (
    ImageTensorDataset,
    check_image_size,
    decode_images,
    default_augment,
    warn_skipped,
)
from .roots import PETS_SPEC, find_dataset
from .tasks import Task, carve_val, check_n_per_class, take_per_class

__all__ = ["PET_KINDS", "PET_SPLITS", "PETS_VAL_FRACTION", "read_pet_annotations", "pet_labels", "pets_task"]

PET_KINDS = ("cat_vs_dog", "cat_breeds", "dog_breeds")
PET_SPLITS = ("trainval", "test")
PETS_VAL_FRACTION = 0.2


def read_pet_annotations(root: str | os.PathLike[str], split: str) -> tuple[list[str], list[str], list[str]]:
    """``(image file names, breed names, species)`` from the official ``annotations/<split>.txt``.

    Each line is ``<image id> <class id> <species 1=cat 2=dog> <breed id>``;
    the breed's name is the image id without its number, title-cased as
    torchvision names it ("american_bulldog_12" -> "American Bulldog").
    """
    split = check_choice("split", split, PET_SPLITS)
    path = Path(root) / "oxford-iiit-pet" / "annotations" / f"{split}.txt"
    names: list[str] = []
    breeds: list[str] = []
    species: list[str] = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataMissingError(f"{path} is missing: the Oxford-IIIT Pet split lists are needed. "
                               f"To get them: {PETS_SPEC.fetch_hint}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 3 or fields[2] not in ("1", "2") or "_" not in fields[0]:
            raise ChecksumError(f"{path}, line {number}: expected '<image id> <class id> <species 1|2> <breed id>', "
                                f"got {line[:80]!r}; the annotation file is corrupt")
        image_id = fields[0]
        names.append(f"{image_id}.jpg")
        breeds.append(" ".join(part.title() for part in image_id.rsplit("_", 1)[0].split("_")))
        species.append("cat" if fields[2] == "1" else "dog")
    return names, breeds, species


def pet_labels(root: str | os.PathLike[str], split: str, kind: str) -> tuple[list[str], list[str]]:
    """``(image file names, class names)`` of one official split for a pets task ``kind``: species for
    ``cat_vs_dog``, breeds of that species for ``cat_breeds`` / ``dog_breeds`` (one reading of the split lists for
    :func:`pets_task` and the ``ImageFolder`` tree of :mod:`~tlwidgets.data.image_folders`)."""
    kind = check_choice("pets task", kind, PET_KINDS)
    names, breeds, species = read_pet_annotations(root, split)
    if kind == "cat_vs_dog":
        return names, species
    want = "cat" if kind == "cat_breeds" else "dog"
    keep = [i for i, s in enumerate(species) if s == want]
    return [names[i] for i in keep], [breeds[i] for i in keep]


def pets_task(kind: str = "cat_vs_dog", n_per_class: int | None = None, *, image_size: int = 160,
              val_fraction: float = PETS_VAL_FRACTION, root: str | os.PathLike[str] | None = None, seed: int = 0,
              backbone: str = "efficientnet_lite0") -> Task:
    """An Oxford-IIIT Pet task: ``cat_vs_dog`` (2 classes), ``cat_breeds`` (12) or ``dog_breeds`` (25).

    The validation split is ``val_fraction`` (default 20 %, rounded, at least 1)
    of each class's ``trainval`` photos, seeded by ``seed``; the ``n_per_class``
    training photos are drawn from the rest (the shipped subset has as few as
    7 trainval photos of a breed: 1 for validation, 6 to train).

    Works on the curated subset in ``../shared/datasets`` or on the full
    dataset when a user has downloaded it; both use the official split files.
    Pixels are normalised the way ``backbone`` was trained
    (:func:`~tlwidgets.inputs.backbone_normalization`).

    Args:
        kind: ``"cat_vs_dog"``, ``"cat_breeds"`` or ``"dog_breeds"``.
        n_per_class: training photos per class (None: all).
        image_size: the side of the square photos, in pixels.
        val_fraction: share of each class's ``trainval`` photos held out for validation.
        root: the data root (default: the usual search path).
        seed: which photos validate and which train.
        backbone: the pretrained model the photos are for (decides the normalisation).
    """
    kind = check_choice("pets task", kind, PET_KINDS)
    n_per_class = check_n_per_class(n_per_class)
    image_size = check_image_size(image_size)
    seed = check_int("seed", seed, min=0)
    norm = backbone_normalization(backbone)
    data_root = find_dataset(PETS_SPEC, root)
    pet_dir = data_root / "oxford-iiit-pet"
    parts: dict[str, ImageTensorDataset] = {}
    fps: list[object] = []
    classes: list[str] = []
    val_note = ""
    for split, n in (("trainval", n_per_class), ("test", None)):
        names, label_names = pet_labels(data_root, split, kind)
        if not classes:  # the classes are those of trainval, read first
            classes = sorted(set(label_names), key=str.lower)
        labels = torch.tensor([classes.index(b) for b in label_names])
        every_class = range(len(classes))
        splits = {split: take_per_class(labels, every_class, n, seed)}
        if split == "trainval":
            rest, val_idx = carve_val(labels, every_class, seed, val_fraction=val_fraction)
            splits = {"trainval": rest[take_per_class(labels[rest], every_class, n, seed)], "val": val_idx}
            counts = torch.bincount(labels[val_idx], minlength=len(classes))
            val_note = (f"{val_fraction:.0%} of each class's trainval photos, {int(counts.min())}-"
                        f"{int(counts.max())} per class, seed {seed}")
        for part, idx in splits.items():
            files = [f"oxford-iiit-pet/images/{names[i]}" for i in idx.tolist()]
            verify_checksums(data_root, "oxford-iiit-pet/", only=files)
            paths = tuple(str(pet_dir / "images" / names[i]) for i in idx.tolist())
            images, ok, bad = decode_images(paths, image_size)
            warn_skipped(bad, len(paths))
            kept = idx[list(ok)]
            parts[part] = ImageTensorDataset(images, labels[kept], *norm)
            fps += [kept, files_digest(paths[i] for i in ok)]  # the key changes when any photo's bytes do
    title = {"cat_vs_dog": "Pets: cat vs dog", "cat_breeds": "Pets: 12 cat breeds",
             "dog_breeds": "Pets: 25 dog breeds"}[kind]
    return Task(title, classes, parts["trainval"], parts["test"], n_per_class, (3, image_size, image_size),
                short_hash("pets", kind, image_size, norm, *fps),
                augment=default_augment(image_size), val=parts["val"], val_note=val_note,
                kind="photos", normalization=norm)
