"""Data: where it lives, how it is checked, and the tasks the lessons train on.

One module per concept:

- :mod:`.roots`: the data-root rule (``root=`` argument -> ``$TLLAB_DATA``
  -> the repo's ``datasets/`` -> the user cache), what each dataset needs on
  disk, and :func:`download` for users with a network;
- :mod:`.tasks`: :class:`Task` (train / val / test, its kind and
  normalisation), seeded per-class sampling, the validation slice, the
  content digest behind a task's cache key;
- :mod:`.mnist`: the digit tasks; :mod:`.pets`: the Oxford-IIIT Pet tasks;
  :mod:`.folders`: a task from your own photos; :mod:`.photos`: what the two
  photo tasks share (normalisation for a backbone, decoding, the in-memory
  dataset, augmentation); :mod:`.convert`: digits as photos and photos as digits;
- :mod:`.cli`: ``python -m tlwidgets.data download|where``.

A ``SHA256SUMS`` file at the top of a data root (``sha256  relative/path``
lines) is honoured: every listed file a loader touches is verified once per
process, and a mismatch names the file and both checksums.

The checksum, network and extraction helpers live in :mod:`tlwidgets.infra`;
the ones lessons and tests reach through ``tlwidgets.data`` are re-exported
below.
"""
from ..infra import (
    DATA_ENV,
    REPO_DATASETS,
    ChecksumError,
    DataMissingError,
    network_available,
    read_manifest,
    safe_extract,
    sha256_file,
    user_cache_dir,
    verify_checksums,
)
from .cli import main
from .convert import as_digits, as_photos
from .folders import folder_task, walk_images
from .mnist import (
    MNIST_VAL_PER_CLASS,
    mnist_source_task,
    mnist_target_task,
    mnist_task,
    mnist_tensors,
)
from .pets import PET_KINDS, PETS_VAL_FRACTION, pets_task, read_pet_annotations
from .photos import ImageTensorDataset, default_augment
from .roots import MNIST_SPEC, PETS_SPEC, SPECS, DatasetSpec, candidate_roots, download, find_dataset
from .tasks import (
    TASK_KINDS,
    Task,
    TransformedDataset,
    carve_val,
    check_n_per_class,
    dataset_digest,
    dataset_labels,
    dataset_tensors,
    size_label,
    take_per_class,
)

__all__ = [
    # re-exported from tlwidgets.infra
    "DATA_ENV", "REPO_DATASETS", "ChecksumError", "DataMissingError", "network_available", "read_manifest",
    "safe_extract", "sha256_file", "user_cache_dir", "verify_checksums",
    # roots
    "candidate_roots", "DatasetSpec", "MNIST_SPEC", "PETS_SPEC", "SPECS", "find_dataset", "download",
    # tasks
    "Task", "TASK_KINDS", "TransformedDataset", "check_n_per_class", "take_per_class", "carve_val",
    "dataset_labels", "dataset_tensors", "dataset_digest", "size_label",
    # one task dressed as another domain
    "as_photos", "as_digits",
    # MNIST
    "MNIST_VAL_PER_CLASS", "mnist_tensors", "mnist_task",
    "mnist_source_task", "mnist_target_task",
    # photos, pets, own photos
    "ImageTensorDataset",
    "default_augment", "PET_KINDS", "PETS_VAL_FRACTION", "read_pet_annotations", "pets_task", "walk_images",
    "folder_task",
    # command line
    "main",
]
