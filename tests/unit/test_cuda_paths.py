"""The CUDA code paths, tested on a machine without a GPU.

What the package does differently on a GPU, and how each path is covered here:

* device selection (``select_device``): "auto" prefers cuda, then mps, then cpu; an explicit
  "cuda" without a GPU fails with a message that names the argument and the way out;
* pinned host memory (``Task.loaders(pin_memory=True)``) reaches every DataLoader, so the
  ``x.to(device, non_blocking=True)`` copies in ``fit``/``evaluate`` can overlap compute;
* benchmark clocks (``bench.synchronize``) wait for queued GPU work on cuda, and only there;
  ``bench.machine_info`` names the GPU;
* AMP: no module of the package uses autocast or a GradScaler (training is full precision on
  every device), which ``test_no_mixed_precision_anywhere`` keeps true until someone adds it
  together with a test of its own.

The fakes replace ``torch.cuda`` functions with recording ones (monkeypatch), so each test
fails if the code stops calling them. The last test runs a real fit on CUDA and is skipped
where there is no GPU.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

import tlwidgets as tl
from benchmarks import measure as bench
from tlwidgets.data import Task

PACKAGE = Path(tl.__file__).resolve().parent


@pytest.fixture
def fake_cuda(monkeypatch):
    """``torch.cuda`` reports two GPUs; every call the code makes to it is recorded."""
    calls: list[tuple] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(("synchronize", device)))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: calls.append(("name", device)) or "FakeGPU 80GB")
    return calls


@pytest.fixture
def no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


# ---------------------------------------------------------------------------- device selection ---
def test_auto_picks_cuda_when_a_gpu_is_present(fake_cuda):
    assert tl.select_device("auto") == torch.device("cuda")
    assert tl.select_device(None) == torch.device("cuda")


def test_auto_falls_back_to_mps_then_cpu(monkeypatch, no_accelerator):
    assert tl.select_device("auto") == torch.device("cpu")
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
        assert tl.select_device("auto") == torch.device("mps")


def test_explicit_cuda_index_is_kept(fake_cuda):
    assert tl.select_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"cuda:2.*2 CUDA GPU\(s\)"):  # an index the machine lacks is named
        tl.select_device("cuda:2")
    given = torch.device("cuda", 0)
    assert tl.select_device(given) is given  # a torch.device passes through untouched


def test_cuda_without_a_gpu_fails_with_the_way_out(no_accelerator):
    with pytest.raises(ValueError, match=r"device='cuda'.*no CUDA GPU.*'auto' or 'cpu'"):
        tl.select_device("cuda")
    with pytest.raises(ValueError, match=r"device='mps'"):
        tl.select_device("mps")


def test_unknown_device_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown device 'gpu'.*cuda"):
        tl.select_device("gpu")


# ---------------------------------------------------------------------------- pinned memory ---
def _task() -> Task:
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(24, 1, 8, 8, generator=g), torch.arange(24) % 3)
    return Task(name="tiny", classes=["a", "b", "c"], train=ds, test=ds, input_size=(1, 8, 8))


def _loaders(task: Task, **kw) -> list:
    out = task.loaders(batch_size=8, **kw)
    return [ld for ld in out if ld is not None]


def test_pin_memory_reaches_every_loader():
    task = _task()
    pinned = _loaders(task, pin_memory=True)
    assert len(pinned) >= 2 and all(ld.pin_memory for ld in pinned)
    plain = _loaders(task)
    assert not any(ld.pin_memory for ld in plain), "pinning is opt-in: it costs page-locked RAM on CPU-only runs"


def test_training_loop_copies_batches_without_blocking(monkeypatch):
    """fit() moves each batch with ``non_blocking=True`` (the copy overlaps compute when memory is pinned)."""
    seen: list[bool] = []
    original = torch.Tensor.to

    def recording_to(self, *args, **kwargs):
        if args and isinstance(args[0], torch.device) and self.dim() == 4:
            seen.append(bool(kwargs.get("non_blocking")))
        return original(self, *args, **kwargs)

    task = _task()
    train_loader = _loaders(task)[0]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    monkeypatch.setattr(torch.Tensor, "to", recording_to)
    tl.fit(model, train_loader, num_epochs=1, lr=1e-3, device="cpu", progress=False)
    assert seen and all(seen), seen


# ---------------------------------------------------------------------------- benchmark clocks ---
def test_synchronize_waits_for_cuda_only(fake_cuda):
    bench.synchronize("cpu")
    assert fake_cuda == []
    bench.synchronize(torch.device("cuda", 0))
    assert fake_cuda == [("synchronize", torch.device("cuda", 0))]


def test_machine_info_names_the_gpu(fake_cuda):
    info = bench.machine_info("cuda")
    assert "FakeGPU 80GB" in str(info.values())
    info_cpu = bench.machine_info("cpu")
    assert "present, not used" in str(info_cpu.values())  # a GPU the run did not use is still reported


# ---------------------------------------------------------------------------- mixed precision ---
def test_no_mixed_precision_anywhere():
    """AMP is off everywhere: no autocast, no GradScaler. Adding it needs its own on/off tests here."""
    pattern = re.compile(r"autocast|GradScaler|torch\.amp|cuda\.amp")
    users = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if pattern.search(p.read_text())]
    assert users == [], f"mixed precision is used in {users}: add AMP on/off tests to tests/unit/test_cuda_paths.py"


# ---------------------------------------------------------------------------- a real GPU ---
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_fit_and_evaluate_on_a_real_gpu():
    task = _task()
    train_loader, *rest = _loaders(task, pin_memory=True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    history = tl.fit(model, train_loader, num_epochs=2, lr=1e-2, device="cuda", progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert len(history) == 2
    assert 0.0 <= tl.evaluate(model, rest[-1], device="cuda")["acc"] <= 1.0
