"""What every section needs to know about the run: its settings, scratch folders, the task it measures."""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
CACHE_ENV = "TLLAB_CACHE"


@dataclass
class Config:
    """The benchmark's settings (from the command line) and what it found on the machine."""

    quick: bool
    repeats: int
    device_arg: str
    device: torch.device
    sections: tuple[str, ...]
    with_test_command: bool
    skip_tests: bool
    test_command: str
    lesson_repeats: int
    target_acc: float
    peer_budget_s: float
    peer_max_epochs: int
    peer_batch_size: int
    compile: bool
    tmp: Path
    has_pets: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def forward_batches(self) -> list[int]:
        sizes = [32] if self.quick else [32, 64]
        return sizes + ([256] if self.cuda else [])

    @property
    def cached_epochs(self) -> int:
        return 3 if self.quick else 5

    @property
    def boundary_epochs(self) -> int:
        return 2 if self.quick else 3

    def to_json(self) -> dict:
        """The settings the rendered document states (saved with the numbers, so it re-renders alone)."""
        return {"mode": "quick" if self.quick else "full", "repeats": self.repeats, "device": self.device.type,
                "has_pets": self.has_pets, "notes": list(self.notes)}


@contextlib.contextmanager
def env_var(name: str, value: str | None) -> Iterator[None]:
    """Set (or unset, with None) an environment variable for the duration of a block."""
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextlib.contextmanager
def fresh_cache(cfg: Config, name: str) -> Iterator[Path]:
    """A new, empty feature-cache folder: first-run numbers (extraction included), never a warm disk cache."""
    path = cfg.tmp / f"cache-{name}"
    shutil.rmtree(path, ignore_errors=True)
    with env_var(CACHE_ENV, str(path)):
        yield path


def clear_decoded_images() -> None:
    """Forget images decoded earlier in this process so data preparation is timed from the JPEGs."""
    from tlwidgets.images import clear_decode_cache

    clear_decode_cache()


def load_task(cfg: Config, kind: str, image_size: int = 128):
    """The photo task a section measures, or MNIST 5-9 with the digit CNN when pets are missing."""
    from tlwidgets import mnist_target_task, pets_task

    if cfg.has_pets:
        return pets_task(kind, image_size=image_size)
    return mnist_target_task(100, test_per_class=100)   # the shipped subset holds 100 test digits a class


def count(dataset) -> int:
    """``len(dataset)`` (torch types ``Dataset`` without ``__len__``; the course's datasets all have one)."""
    return len(dataset)


def task_words(cfg: Config, task) -> str:
    """How the rendered document names the task a section measured."""
    if cfg.has_pets:
        return f"{task.name} at 128 px ({count(task.train)} train / {count(task.test)} test images), EfficientNet-Lite0"
    return (f"{task.name} ({count(task.train)} train / {count(task.test)} test; Oxford-IIIT Pet not found, so the "
            "digit CNN stands in for the photo backbone)")
