"""Data: where it lives, how it is checked, and the tasks the lessons train on.

Everything goes through one data-root rule so a student, an instructor and CI
all find the same files:

    explicit ``root=`` argument -> ``$TLLAB_DATA`` -> the repo's ``datasets/``
    -> the user cache folder (``~/.cache/tlwidgets/data``)

Each folder follows torchvision's on-disk layouts (``MNIST/raw/...``,
``oxford-iiit-pet/{images,annotations}``), so torchvision's own dataset
classes read it; this module never parses those formats itself.

A ``SHA256SUMS`` file at the top of a data root (``sha256  relative/path``
lines) is honoured: every listed file a loader touches is verified once per
process, and a mismatch names the file and both checksums.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .images import DECODE_CACHE, IMAGE_SUFFIXES, ImageDecodeError
from .infra import (
    DATA_ENV,
    REPO_DATASETS,
    REPO_ROOT,
    ChecksumError,
    DataMissingError,
    atomic_write,
    file_digest,
    files_digest,
    network_available,
    read_manifest,
    safe_extract,
    sha256_file,
    user_cache_dir,
    verify_checksums,
)
from .results import note_data_source
from .splits import stratified_split
from .validate import check_choice, check_float, check_int, check_path

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

__all__ = [
    "DATA_ENV", "DataMissingError", "ChecksumError", "Task", "candidate_roots", "find_dataset",
    "verify_checksums", "sha256_file", "mnist_task", "mnist_source_task", "mnist_target_task",
    "pets_task", "folder_task", "download", "safe_extract", "network_available", "take_per_class",
    "fingerprint", "input_normalization", "read_pet_annotations",
]
# DataMissingError, ChecksumError, sha256_file, read_manifest, verify_checksums, network_available,
# safe_extract and REPO_ROOT live in tlwidgets.infra; they are re-exported here because lessons and
# tests import them from tlwidgets.data.
_REEXPORTED = (REPO_ROOT, read_manifest)


# ---------------------------------------------------------------------------
# data-root rule
# ---------------------------------------------------------------------------
def candidate_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """The data roots searched, in order: argument, $TLLAB_DATA, repo datasets/, user cache."""
    roots: list[Path] = []
    if root is not None:
        roots.append(Path(root).expanduser())
    env = os.environ.get(DATA_ENV)
    if env:
        roots.append(Path(env).expanduser())
    roots += [REPO_DATASETS, user_cache_dir()]
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset needs on disk and how a user gets it."""

    name: str
    required: tuple[str, ...]  # paths relative to a data root
    fetch_hint: str
    min_images: int = 0  # for image folders: how many files must be there

    def present_in(self, root: Path) -> bool:
        if not all((root / rel).exists() for rel in self.required):
            return False
        if self.min_images:
            images = root / self.required[0]
            return sum(1 for _ in images.glob("*.jpg")) >= self.min_images
        return True


MNIST_SPEC = DatasetSpec(
    "MNIST",
    tuple(f"MNIST/raw/{n}" for n in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    "python -m tlwidgets.data download mnist   (or: python scripts/build_mnist_subset.py rebuilds the bundled subset)",
)
PETS_SPEC = DatasetSpec(
    "Oxford-IIIT Pet",
    ("oxford-iiit-pet/images", "oxford-iiit-pet/annotations/trainval.txt",
     "oxford-iiit-pet/annotations/test.txt"),
    "python -m tlwidgets.data download pets   (needs a network; ~800 MB from "
    "https://www.robots.ox.ac.uk/~vgg/data/pets/), or set TLLAB_DATA to a folder that holds "
    "oxford-iiit-pet/{images,annotations}",
    min_images=10,
)
SPECS = {"mnist": MNIST_SPEC, "pets": PETS_SPEC}


def find_dataset(spec: DatasetSpec, root=None) -> Path:
    """Return the first data root on the search path that holds ``spec``'s files."""
    searched = candidate_roots(root)
    for r in searched:
        if spec.present_in(r):
            note_data_source(spec.name, describe_data_root(spec, r))
            return r
    missing = ", ".join(spec.required)
    where = "\n".join(f"  - {r}" for r in searched)
    raise DataMissingError(
        f"{spec.name} data not found: need {missing}.\n"
        f"Searched (data-root rule: root= argument, ${DATA_ENV}, repo datasets/, user cache):\n{where}\n"
        f"To get it: {spec.fetch_hint}"
    )


# ---------------------------------------------------------------------------
# downloads (only for users with a network; never on the default offline path)
# ---------------------------------------------------------------------------
_DOWNLOADS = {
    "mnist": ("ossci-datasets.s3.amazonaws.com", [
        ("https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]),
    "pets": ("thor.robots.ox.ac.uk", [
        ("https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz", "5c4f3ee8e5d25df40f4fd59a7f44e54c"),
        ("https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz", "95a8c909bbe2e81eed6a22bccdf3f68f"),
    ]),
}


def download(name: str, root=None) -> Path:
    """Fetch MNIST or Oxford-IIIT Pet into ``root`` (default: user cache), atomically.

    Files go to a temporary folder beside the target, are verified against
    their published md5, and only then moved into place: an interrupted
    download leaves nothing half-written behind.
    """
    if not isinstance(name, str) or name not in _DOWNLOADS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(_DOWNLOADS)}")
    host, files = _DOWNLOADS[name]
    root = Path(root) if root is not None else user_cache_dir()
    spec = SPECS[name]
    if spec.present_in(root):
        return root
    if not network_available(host):
        raise DataMissingError(
            f"cannot download {spec.name}: no network connection to {host} (checked in 3 s).\n"
            f"Needed: {', '.join(spec.required)}, from {' '.join(url for url, _ in files)}\n"
            f"Copy the data into {root} instead, or set ${DATA_ENV} to a folder that holds it.")
    from torchvision.datasets.utils import download_url  # only needed here, after the quick offline check

    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".partial-") as tmp:
        tmp = Path(tmp)
        for url, md5 in files:
            download_url(url, str(tmp), md5=md5)
        if name == "mnist":
            import gzip
            raw = tmp / "MNIST" / "raw"
            raw.mkdir(parents=True)
            for gz in tmp.glob("*.gz"):
                shutil.move(gz, raw / gz.name)
                with gzip.open(raw / gz.name, "rb") as src:
                    atomic_write(raw / gz.stem, src.read())
            final = root / "MNIST"
        else:
            out = tmp / "oxford-iiit-pet"
            out.mkdir()
            for tar in tmp.glob("*.tar.gz"):
                safe_extract(tar, out)
            final = root / "oxford-iiit-pet"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / final.name, final)
    return root


def describe_data_root(spec: DatasetSpec, root: Path) -> str:
    """How much of ``spec`` a root holds and where, e.g. ``"4,000 train + 1,000 test (repo datasets/)"``."""
    where = "repo datasets/" if Path(root).resolve() == REPO_DATASETS.resolve() else str(root)
    if spec is MNIST_SPEC:
        n = [((root / f"MNIST/raw/{f}").stat().st_size - 16) // 784 for f in
             ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")]
        return f"{n[0]:,} train + {n[1]:,} test ({where})"
    if spec is PETS_SPEC:
        photos = sum(1 for _ in (root / spec.required[0]).glob("*.jpg"))
        return f"{photos:,} photos ({where})"
    return where


# ---------------------------------------------------------------------------
# tasks
# ---------------------------------------------------------------------------
@dataclass(eq=False)
class Task:
    """A supervised task: named classes and three disjoint splits, ``train``, ``val`` and ``test``.

    Why three: every choice (how many epochs, how many groups to freeze, which
    learning rate) is made on ``val``, a stratified, seeded slice carved from
    the training pool (:func:`tlwidgets.splits.stratified_split`); ``test`` is
    looked at once, at the end, so the reported number is not inflated by the
    choices. ``val_note`` says how ``val`` was carved (shown in ``repr``).
    ``val`` may be None for a hand-built task; then nothing can be selected.

    ``fingerprint`` identifies exactly which samples and preprocessing the task
    holds, so cached features computed from it can be reused safely.
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

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def loaders(self, batch_size: int = 64, *, shuffle: bool = True, augment: bool = False,
                num_workers: int = 0, pin_memory: bool = False):
        """``(train_loader, val_loader, test_loader)``; ``val_loader`` is None when the task has no ``val``.

        ``augment=True`` applies the task's training augmentation (to the training split only).
        """
        train = self.train
        if augment:
            if self.augment is None:
                raise ValueError(f"task {self.name!r} has no augmentation; use augment=False")
            train = TransformedDataset(self.train, self.augment)
        kw = dict(num_workers=num_workers, pin_memory=pin_memory)
        eval_bs = max(batch_size, 256)
        return (DataLoader(train, batch_size=batch_size, shuffle=shuffle, **kw),
                None if self.val is None else DataLoader(self.val, batch_size=eval_bs, shuffle=False, **kw),
                DataLoader(self.test, batch_size=eval_bs, shuffle=False, **kw))

    def __repr__(self) -> str:
        per = "all" if self.n_per_class is None else self.n_per_class
        val = "no val" if self.val is None else \
            f"{len(self.val)} val" + (f" ({self.val_note})" if self.val_note else "")
        return (f"Task({self.name!r}: {self.num_classes} classes, {len(self.train)} train "
                f"({per} per class), {val}, {len(self.test)} test, input {tuple(self.input_size)})")


class TransformedDataset(Dataset):
    """``base`` with ``transform`` applied to each sample's input on access (augmentation, crops)."""

    def __init__(self, base: Dataset, transform: Callable):
        self.base, self.transform = base, transform

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        return self.transform(x), y


def check_n_per_class(n, name: str = "n_per_class") -> int | None:
    """``n`` labelled images per class: a positive integer (NumPy ones too), or None for all."""
    if n is None:
        return None
    n = check_int(name, n)
    if n <= 0:
        raise ValueError(f"{name} must be a positive number of labelled images, got {n} (or None for all)")
    return n


def take_per_class(labels: torch.Tensor, classes: Sequence[int], n: int | None, seed: int) -> torch.Tensor:
    """Indices of ``n`` samples of each class (all when ``n`` is None), chosen reproducibly."""
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
                warnings.warn(f"asked for {n} images of class {c!r}, only {len(idx)} exist; using all")
            idx = idx[:n]
        picked.append(idx)
    return torch.cat(picked).sort().values


def _carve_val(labels: torch.Tensor, classes: Sequence[int], seed: int, *, val_per_class: int | None = None,
               val_fraction: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rest_idx, val_idx)`` into ``labels``: a stratified validation slice of the samples of ``classes``.

    The training images are then drawn from ``rest_idx`` only, so train and val never share a sample
    and the validation set does not depend on how many training images a lesson asks for.
    """
    pool = torch.nonzero(torch.isin(labels, torch.as_tensor(list(classes)))).flatten()
    tr, va = stratified_split(labels[pool], val_per_class, val_fraction=val_fraction, seed=seed)
    return pool[tr], pool[va]


def fingerprint(*parts) -> str:
    """A short hash of ``parts`` (tensors by their bytes, anything else by ``repr``): part of cache keys."""
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, torch.Tensor):
            h.update(p.numpy().tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()[:16]



_MNIST_CACHE: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}


def _mnist_tensors(root: str, train: bool):
    """MNIST images and labels from ``root``, cached per process by the *content* of the two idx files.

    Keyed by sha256 (memoised by size + mtime + inode), so files replaced
    under the same root are read again, even in the same kernel.
    """
    from torchvision.datasets import MNIST

    prefix = "train" if train else "t10k"
    files = [Path(root) / "MNIST" / "raw" / f"{prefix}-{kind}-idx{d}-ubyte" for kind, d in (("images", 3), ("labels", 1))]
    key = (file_digest(files[0]), file_digest(files[1]))
    if key not in _MNIST_CACHE:
        try:
            ds = MNIST(root, train=train, download=False)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ChecksumError(f"{files[0].parent}: the MNIST idx files cannot be read ({exc}); they are "
                                "corrupt or truncated: delete them and fetch them again") from None
        while len(_MNIST_CACHE) >= 4:
            _MNIST_CACHE.pop(next(iter(_MNIST_CACHE)))
        _MNIST_CACHE[key] = (ds.data, ds.targets)
    return _MNIST_CACHE[key]


def _mnist_content_key(root: Path) -> tuple[str, ...]:
    return tuple(file_digest(root / rel) for rel in MNIST_SPEC.required)


def _check_digits(digits) -> list[int]:
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


MNIST_VAL_PER_CLASS = 50


def mnist_task(digits: Iterable[int] = range(10), n_per_class: int | None = None, *,
               test_per_class: int | None = None, val_per_class: int | None = MNIST_VAL_PER_CLASS, root=None,
               seed: int = 0) -> Task:
    """MNIST restricted to ``digits`` (labels renumbered 0..k-1), ``n_per_class`` training images each.

    ``val_per_class`` images of each digit (default 50) are first set aside from
    the training file as the validation split (seeded by ``seed``); the
    ``n_per_class`` training images are drawn from the rest (``val_per_class=None``:
    no validation split, only for rebuilding the shipped source model). The images are
    normalised once and kept in memory: at 28x28 the whole task fits in a few
    MB and every epoch is pure compute.
    """
    digits = _check_digits(digits)
    n_per_class = check_n_per_class(n_per_class)
    test_per_class = check_n_per_class(test_per_class, "test_per_class")
    seed = check_int("seed", seed, min=0)
    data_root = find_dataset(MNIST_SPEC, root)
    verify_checksums(data_root, "MNIST/raw/", only=MNIST_SPEC.required)
    remap = torch.full((10,), -1, dtype=torch.long)
    remap[torch.tensor(digits)] = torch.arange(len(digits))

    def subset(images, labels, idx):
        x = (images[idx].float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)).unsqueeze(1)
        return TensorDataset(x, remap[labels[idx]])

    images, labels = _mnist_tensors(str(data_root), True)
    if val_per_class is None:      # no validation split: only for rebuilding the shipped source model
        rest = torch.nonzero(torch.isin(labels, torch.tensor(digits))).flatten()
        val_idx = rest[:0]
    else:
        rest, val_idx = _carve_val(labels, digits, seed, val_per_class=val_per_class)
    train_idx = rest[take_per_class(labels[rest], digits, n_per_class, seed)]
    test_images, test_labels = _mnist_tensors(str(data_root), False)
    test_idx = take_per_class(test_labels, digits, test_per_class, seed)
    name = f"MNIST digits {digits[0]}-{digits[-1]}" if digits == list(range(digits[0], digits[-1] + 1)) \
        else f"MNIST digits {digits}"
    return Task(name, [str(d) for d in digits], subset(images, labels, train_idx),
                subset(test_images, test_labels, test_idx), n_per_class, (1, 28, 28),
                fingerprint("mnist", _mnist_content_key(data_root), digits, train_idx, val_idx, test_idx),
                augment=None, val=None if val_per_class is None else subset(images, labels, val_idx),
                val_note="" if val_per_class is None else f"{val_per_class} per class, seed {seed}")


def mnist_source_task(n_per_class: int | None = None, **kw) -> Task:
    """Digits 0-4: the task the course's digit model was trained on."""
    return mnist_task(range(5), n_per_class, **kw)


def mnist_target_task(n_per_class: int | None = 20, **kw) -> Task:
    """Digits 5-9 with few labels: the new task we transfer to."""
    return mnist_task(range(5, 10), n_per_class, **kw)


# ----------------------------------------------------------------- images ---
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The pixel normalisation each pretrained backbone was trained with. Feeding a
#: model images normalised for another one still "works" but costs accuracy
#: (EfficientNet-Lite0 species top-1 at 128 px: 0.80 with its own [-1, 1]
#: scaling, 0.74 with ImageNet mean/std), so photo tasks are built for a backbone.
BACKBONE_NORMALIZATION = {"efficientnet_lite0": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
                          "resnet18": (IMAGENET_MEAN, IMAGENET_STD),
                          "mobilenet_v3_small": (IMAGENET_MEAN, IMAGENET_STD)}


def input_normalization(backbone: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` the pretrained ``backbone`` expects; a misspelt name is refused, not given ImageNet's."""
    return BACKBONE_NORMALIZATION[check_choice("backbone", backbone, tuple(BACKBONE_NORMALIZATION))]


def _decode_images(paths: Sequence[str], size: int):
    """Decode image files (through the content-keyed decode cache); unreadable files are reported, not fatal.

    Returns ``(uint8 N x 3 x size x size, indices of the decoded paths, "path: reason" per skipped file)``.
    """
    from tqdm.auto import tqdm

    images, ok, bad = [], [], []
    it = tqdm(paths, desc=f"decoding {len(paths)} images", leave=False, disable=len(paths) < 200)
    for i, p in enumerate(it):
        try:
            images.append(DECODE_CACHE.get(p, size))
        except ImageDecodeError as exc:
            bad.append(str(exc))
            continue
        except OSError as exc:  # vanished or unreadable between listing and decoding
            bad.append(f"{p}: cannot be read ({exc.strerror or exc})")
            continue
        ok.append(i)
    stacked = torch.stack(images) if images else torch.empty(0, 3, size, size, dtype=torch.uint8)
    return stacked, tuple(ok), tuple(bad)


def _warn_skipped(bad: Sequence[str], total: int | None = None) -> None:
    """One warning that counts the unreadable files, names the first and says what still loaded."""
    if bad:
        rest = f"; the other {total - len(bad)} loaded" if total is not None else ""
        warnings.warn(f"skipped {len(bad)} unreadable image file(s), e.g. {bad[0]}{rest}", stacklevel=3)


class ImageTensorDataset(Dataset):
    """Decoded uint8 images held in memory, normalised on access (cheap; no JPEG decoding per epoch).

    ``mean``/``std`` are the normalisation of the model the images are for;
    kept as tuples so a model can check that they match its own.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.images, self.labels = images, labels
        self.normalization = (tuple(float(m) for m in mean), tuple(float(v) for v in std))
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return (self.images[i].float() / 255 - self.mean) / self.std, self.labels[i]

    def raw_image(self, i) -> torch.Tensor:
        """The uint8 image as stored, for galleries."""
        return self.images[i]


def default_augment(size: int) -> Callable:
    """The tutorial-style augmentation: random resized crop and horizontal flip (on tensors)."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True),
                       v2.RandomHorizontalFlip()])


def _split_by_class(labels: torch.Tensor, classes: Sequence[int], n: int | None, seed: int):
    return take_per_class(labels, classes, n, seed)


PET_KINDS = ("cat_vs_dog", "cat_breeds", "dog_breeds")
PET_SPLITS = ("trainval", "test")


def read_pet_annotations(root: str | os.PathLike, split: str) -> tuple[list[str], list[str], list[str]]:
    """``(image file names, breed names, species)`` from the official ``annotations/<split>.txt``.

    Each line is ``<image id> <class id> <species 1=cat 2=dog> <breed id>``;
    the breed's name is the image id without its number, title-cased as
    torchvision names it ("american_bulldog_12" -> "American Bulldog").
    """
    split = check_choice("split", split, PET_SPLITS)
    path = Path(root) / "oxford-iiit-pet" / "annotations" / f"{split}.txt"
    names, breeds, species = [], [], []
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


PETS_VAL_FRACTION = 0.2


def pets_task(kind: str = "cat_vs_dog", n_per_class: int | None = None, *, image_size: int = 160,
              val_fraction: float = PETS_VAL_FRACTION, root=None, seed: int = 0,
              backbone: str = "efficientnet_lite0") -> Task:
    """An Oxford-IIIT Pet task: ``cat_vs_dog`` (2 classes), ``cat_breeds`` (12) or ``dog_breeds`` (25).

    The validation split is ``val_fraction`` (default 20 %, rounded, at least 1)
    of each class's ``trainval`` photos, seeded by ``seed``; the ``n_per_class``
    training photos are drawn from the rest (the shipped subset has as few as
    7 trainval photos of a breed: 1 for validation, 6 to train).

    Works on the curated subset in ``../shared/datasets`` or on the full
    dataset when a user has downloaded it; both use the official split files.
    Pixels are normalised the way ``backbone`` was trained
    (:func:`input_normalization`).
    """
    kind = check_choice("pets task", kind, PET_KINDS)
    n_per_class = check_n_per_class(n_per_class)
    image_size = _check_image_size(image_size)
    seed = check_int("seed", seed, min=0)
    norm = input_normalization(backbone)
    data_root = find_dataset(PETS_SPEC, root)
    pet_dir = data_root / "oxford-iiit-pet"
    parts, fps = {}, []
    classes: list[str] | None = None
    val_note = ""
    for split, n in (("trainval", n_per_class), ("test", None)):
        names, breeds, species = read_pet_annotations(data_root, split)
        if kind == "cat_vs_dog":
            label_names = species
        else:
            want = "cat" if kind == "cat_breeds" else "dog"
            keep = [i for i, s in enumerate(species) if s == want]
            names = [names[i] for i in keep]
            label_names = [breeds[i] for i in keep]
        if classes is None:
            classes = sorted(set(label_names), key=str.lower)
        labels = torch.tensor([classes.index(b) for b in label_names])
        splits = {split: _split_by_class(labels, range(len(classes)), n, seed)}
        if split == "trainval":
            rest, val_idx = _carve_val(labels, range(len(classes)), seed, val_fraction=val_fraction)
            splits = {"trainval": rest[_split_by_class(labels[rest], range(len(classes)), n, seed)], "val": val_idx}
            counts = torch.bincount(labels[val_idx], minlength=len(classes))
            val_note = (f"{val_fraction:.0%} of each class's trainval photos, {int(counts.min())}-"
                        f"{int(counts.max())} per class, seed {seed}")
        for part, idx in splits.items():
            files = [f"oxford-iiit-pet/images/{names[i]}" for i in idx.tolist()]
            verify_checksums(data_root, "oxford-iiit-pet/", only=files)
            paths = tuple(str(pet_dir / "images" / names[i]) for i in idx.tolist())
            images, ok, bad = _decode_images(paths, image_size)
            _warn_skipped(bad, len(paths))
            kept = idx[list(ok)]
            parts[part] = ImageTensorDataset(images, labels[kept], *norm)
            fps += [kept, files_digest(paths[i] for i in ok)]  # the key changes when any photo's bytes do
    title = {"cat_vs_dog": "Pets: cat vs dog", "cat_breeds": "Pets: 12 cat breeds",
             "dog_breeds": "Pets: 25 dog breeds"}[kind]
    return Task(title, classes, parts["trainval"], parts["test"], n_per_class, (3, image_size, image_size),
                fingerprint("pets", kind, image_size, norm, *fps),
                augment=default_augment(image_size), val=parts["val"], val_note=val_note)


def _check_image_size(image_size) -> int:
    image_size = check_int("image_size", image_size)
    if not 32 <= image_size <= 1024:
        raise ValueError(f"image_size must be at least 32 pixels, got {image_size}" if image_size < 32 else
                         f"image_size must be at most 1024 pixels, got {image_size} (the backbones are "
                         "trained at 224; larger images only cost memory)")
    return image_size


def _class_folders(root: Path) -> tuple[list[str], int]:
    """Visible, real (not symlinked) sub-folders of ``root``, sorted; and how many links were skipped."""
    names, links = [], 0
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_symlink():
            links += 1
        elif entry.is_dir(follow_symlinks=False):
            names.append(entry.name)
    return names, links


def walk_images(folder: str | os.PathLike) -> tuple[list[str], int]:
    """Image files under ``folder`` (recursively, sorted), never following a link; and the links skipped.

    Hidden folders and files (``.ipynb_checkpoints``, ``.DS_Store``,
    ``._photo.jpg``) are skipped. Symbolic links are never followed, so a
    link out of the tree, back into it, or in a loop adds nothing.
    """
    files, links = [], 0
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
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


def _dedupe_by_content(paths: list[str], labels: list[int], classes: list[str]) -> list[int]:
    """Indices of the first file of each content (sha256): no photo twice in a task, so none in both splits."""
    seen: dict[str, int] = {}  # digest -> index of the first file with it
    keep, dupes, conflicts = [], [], []
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


def folder_task(path: str | os.PathLike, n_per_class: int | None = None, *, image_size: int = 160,
                test_fraction: float = 0.3, val_fraction: float = 0.2, seed: int = 0,
                backbone: str = "efficientnet_lite0") -> Task:
    """"Your own photos": a folder with one sub-folder per class (torchvision ``ImageFolder`` layout).

    Each class folder is searched recursively, skipping hidden folders (such
    as ``.ipynb_checkpoints``) and never following symbolic links. A photo
    whose bytes appear twice counts once, so no photo is in both splits.
    Unreadable files are skipped with one warning that counts them; each class
    is split into test (``test_fraction``), then validation (``val_fraction``
    of the rest, at least 1) and train. Pixels are normalised the way
    ``backbone`` was trained.
    """
    path = check_path("path", path)
    if path.is_file():
        raise NotADirectoryError(f"photo folder {path} is a file; give the folder that holds one sub-folder per class")
    if not path.is_dir():
        raise FileNotFoundError(f"photo folder {path} does not exist; make it with one sub-folder per class")
    n_per_class = check_n_per_class(n_per_class)
    image_size = _check_image_size(image_size)
    test_fraction = check_float("test_fraction", test_fraction)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction:g}")
    val_fraction = check_float("val_fraction", val_fraction)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction:g}")
    seed = check_int("seed", seed, min=0)
    norm = input_normalization(backbone)
    classes, links = _class_folders(path)
    found, labels_found = [], []
    for c, name in enumerate(classes):
        files, n_links = walk_images(path / name)
        links += n_links
        found += files
        labels_found += [c] * len(files)
    if links:
        warnings.warn(f"{path}: did not follow {links} symbolic link(s); copy the photos into the folder "
                      "instead (links could leave the folder or loop back into it)", stacklevel=2)
    if not found:
        raise FileNotFoundError(f"{path}: no class sub-folders with images (found folders: {classes or 'none'}; "
                                f"image types: {', '.join(sorted(IMAGE_SUFFIXES))})")
    classes_with_files = sorted(set(labels_found))
    if len(classes_with_files) < len(classes):  # empty class folders are not classes (as in ImageFolder)
        names = [classes[c] for c in classes_with_files]
        labels_found = [names.index(classes[y]) for y in labels_found]
        classes = names
    if len(classes) < 2:
        raise ValueError(f"{path} has {len(classes)} class folder(s) {classes}; "
                         "a classifier needs at least 2 (one sub-folder per class)")
    images, ok, bad = _decode_images(tuple(found), image_size)
    _warn_skipped(bad, len(found))
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
    return Task(f"Photos in {path.name}", list(classes), ImageTensorDataset(images[tr], labels[tr], *norm),
                ImageTensorDataset(images[te], labels[te], *norm), n_per_class, (3, image_size, image_size),
                fingerprint("folder", classes, image_size, norm, files_digest(paths), tr, va, te),
                augment=default_augment(image_size), val=ImageTensorDataset(images[va], labels[va], *norm),
                val_note=f"{val_fraction:.0%} of each class after the test split, at least 1, seed {seed}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tlwidgets.data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download", help="download a dataset (needs a network)")
    d.add_argument("name", choices=sorted(_DOWNLOADS))
    d.add_argument("--root", default=None, help="target data root (default: user cache)")
    w = sub.add_parser("where", help="show the data-root search path and what each holds")
    w.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    if args.cmd == "download":
        try:
            print(download(args.name, args.root))
        except (DataMissingError, ChecksumError, OSError, ValueError) as exc:  # expected: no traceback
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        for r in candidate_roots(args.root):
            have = [k for k, s in SPECS.items() if s.present_in(r)]
            print(f"{r}: {', '.join(have) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
