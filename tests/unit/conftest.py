"""Fixtures for the package's unit tests: tiny models and data, data availability, measurements.

Everything here is small enough that the whole unit suite runs in about a minute on 2 CPU
cores. Tests that need the shared data (full MNIST, the Oxford-IIIT Pet subset) skip with the
data-missing message when it is not on the data-root search path.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tlwidgets import data
from tlwidgets.models import GroupedModel

REPO = Path(__file__).resolve().parents[2]
MEASUREMENTS_FILE = REPO / "test-output" / "unit" / "measurements.json"


@pytest.fixture(autouse=True)
def _private_feature_cache(isolated_cache):
    """No unit test reads or writes a feature cache another test could see."""
    return isolated_cache


# ---------------------------------------------------------------------------- tiny models and data ---
def _tiny_model(num_classes: int = 3, *, seed: int = 0, dropout: float = 0.0) -> GroupedModel:
    """Four groups (stem, block, features, head), BatchNorm in the first two, optional Dropout."""
    torch.manual_seed(seed)
    groups = [
        ("stem", nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())),
        ("block", nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8), nn.ReLU())),
        ("features", nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 16), nn.ReLU(),
                                   nn.Dropout(dropout))),
        ("head", nn.Linear(16, num_classes)),
    ]
    return GroupedModel(groups, name="tiny", classes=[f"c{i}" for i in range(num_classes)],
                        mean=(0.0,), std=(1.0,), image_size=8)


def _tiny_data(n: int = 48, num_classes: int = 3, *, seed: int = 1, noise: float = 0.8) -> TensorDataset:
    """Learnable 1x8x8 images: one random prototype per class plus noise."""
    gen = torch.Generator().manual_seed(seed)
    protos = torch.randn(num_classes, 1, 8, 8, generator=gen)
    y = torch.arange(n) % num_classes
    x = protos[y] + noise * torch.randn(n, 1, 8, 8, generator=gen)
    return TensorDataset(x, y)


@pytest.fixture
def tiny_model():
    """Factory: ``tiny_model(num_classes=3, seed=0, dropout=0.0) -> GroupedModel``."""
    return _tiny_model


@pytest.fixture
def tiny_data():
    """Factory: ``tiny_data(n=48, num_classes=3, seed=1) -> TensorDataset`` of 1x8x8 images."""
    return _tiny_data


# ---------------------------------------------------------------------------------- data on disk ---
@pytest.fixture
def mnist_copy(tmp_path) -> Path:
    """A private copy of the bundled MNIST subset with its SHA256SUMS (safe to damage)."""
    root = tmp_path / "data-copy"
    shutil.copytree(data.REPO_DATASETS / "MNIST", root / "MNIST")
    shutil.copy(data.REPO_DATASETS / "SHA256SUMS", root / "SHA256SUMS")
    return root


@pytest.fixture(scope="session")
def pets_root() -> Path:
    """The data root holding the Oxford-IIIT Pet photos, or skip (with the data-missing message)."""
    try:
        return data.find_dataset(data.PETS_SPEC)
    except data.DataMissingError as exc:
        pytest.skip(f"Oxford-IIIT Pet data not on the search path (set TLLAB_DATA): {str(exc).splitlines()[0]}")


# ---------------------------------------------------------------------------------- measurements ---
_MEASURED: dict[str, object] = {}


@pytest.fixture(scope="session")
def measurements() -> dict:
    """Numbers a test measured (speed ratios, memory); printed at the end and saved as JSON."""
    return _MEASURED


def pytest_terminal_summary(terminalreporter):
    if not _MEASURED:
        return
    terminalreporter.section("tlwidgets measurements")
    for key, value in _MEASURED.items():
        if isinstance(value, dict) and key == "faults":
            terminalreporter.write_line(f"{key} tried ({len(value)}): fault -> what it produced")
            for fault, produced in value.items():
                terminalreporter.write_line(f"  {fault} -> {produced}")
        else:
            terminalreporter.write_line(f"{key}: {value}")
    MEASUREMENTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(MEASUREMENTS_FILE.read_text()) if MEASUREMENTS_FILE.exists() else {}
    old.update(_MEASURED)
    MEASUREMENTS_FILE.write_text(json.dumps(old, indent=1, sort_keys=True, default=str))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from 2 threads, and on a shared, busy 2-core box OpenMP's spin-waiting can
    make them many times slower; test modules of tiny models use one thread (``pytestmark`` below)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
