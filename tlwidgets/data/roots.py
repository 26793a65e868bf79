"""Where the data lives: the one data-root rule, what each dataset needs on disk, and how to fetch it.

Why a module of its own: a student, an instructor and CI must all find the
same files, and a machine without them must fail in seconds with a message
that says what is missing, where it looked and the one command that fetches
it. Every loader (MNIST, pets, the text lesson's files) finds its root here,
by one rule::

    explicit ``root=`` argument -> ``$TLLAB_DATA`` -> the repo's ``datasets/``
    -> the user cache folder (``~/.cache/tlwidgets/data``)

Each folder follows torchvision's on-disk layouts (``MNIST/raw/...``,
``oxford-iiit-pet/{images,annotations}``). :func:`download` fetches a
dataset for users with a network; the default, offline path never calls it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..infra import (
    DATA_ENV,
    REPO_DATASETS,
    DataMissingError,
    atomic_write,
    network_available,
    safe_extract,
    user_cache_dir,
)
from ..results import note_data_source

__all__ = ["candidate_roots", "DatasetSpec", "MNIST_SPEC", "PETS_SPEC", "SPECS", "find_dataset",
           "describe_data_root", "DOWNLOADS", "download"]


def candidate_roots(root: str | os.PathLike[str] | None = None) -> list[Path]:
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
        """Whether ``root`` holds this dataset: every required path, and for image folders enough photos
        (a half-copied folder would otherwise be chosen over a complete one further down the search path)."""
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


def find_dataset(spec: DatasetSpec, root: str | os.PathLike[str] | None = None) -> Path:
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


#: What :func:`download` fetches for each name of :data:`SPECS`: the host it probes first, and (url, md5) pairs.
DOWNLOADS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "mnist": ("ossci-datasets.s3.amazonaws.com", [
        ("https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
         "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
         "d53e105ee54ea40749a09fcbcd1e9432"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
         "9fb629c4189551a2d022fa330f9573f3"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
         "ec29112dd5afa0611ce80d1b7f02629c"),
    ]),
    "pets": ("thor.robots.ox.ac.uk", [
        ("https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz", "5c4f3ee8e5d25df40f4fd59a7f44e54c"),
        ("https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz", "95a8c909bbe2e81eed6a22bccdf3f68f"),
    ]),
}


def download(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Fetch MNIST or Oxford-IIIT Pet into ``root`` (default: user cache), atomically.

    Files go to a temporary folder beside the target, are verified against
    their published md5, and only then moved into place: an interrupted
    download leaves nothing half-written behind.
    """
    if not isinstance(name, str) or name not in DOWNLOADS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DOWNLOADS)}")
    host, files = DOWNLOADS[name]
    target = Path(root) if root is not None else user_cache_dir()
    spec = SPECS[name]
    if spec.present_in(target):
        return target
    if not network_available(host):
        raise DataMissingError(
            f"cannot download {spec.name}: no network connection to {host} (checked in 3 s).\n"
            f"Needed: {', '.join(spec.required)}, from {' '.join(url for url, _ in files)}\n"
            f"Copy the data into {target} instead, or set ${DATA_ENV} to a folder that holds it.")
    from torchvision.datasets.utils import download_url  # only needed here, after the quick offline check

    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".partial-") as partial:
        tmp = Path(partial)
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
            final = target / "MNIST"
        else:
            out = tmp / "oxford-iiit-pet"
            out.mkdir()
            for tar in tmp.glob("*.tar.gz"):
                safe_extract(tar, out)
            final = target / "oxford-iiit-pet"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / final.name, final)
    return target
