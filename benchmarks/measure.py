"""Measurement helpers for the benchmark sections: clocks, FLOP counts, throughput, time-to-accuracy.

Timings on a shared machine are noisy (on a 2-core CPU runs differ by 10-35 %,
with occasional stalls of several times), so the helpers here make the
benchmark's numbers trustworthy in three ways: every number is the median of
several runs (``Timing``), asynchronous devices are synchronised before a
clock is read (``synchronize``), and speed is set against a ceiling measured
on the same machine in the same run (``matmul_flop_rate``) rather than
against a datasheet. No ipywidgets, no matplotlib: the numbers are plain data
that ``benchmarks.render`` turns into Markdown.
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tlwidgets.experiments import time_to_accuracy
from tlwidgets.infra import select_device
from tlwidgets.training import Observer, StopFlag

__all__ = [
    "Timing", "time_runs", "synchronize", "matmul_flop_rate", "count_flops", "GRAD_MODES", "forward_step",
    "train_step", "interleave", "TimeToAccuracy", "loader_throughput", "data_wait", "cpu_model", "machine_info",
    "median",
]

Clock = Callable[[], float]
Device = str | torch.device
# a case to time: a callable, or (setup run untimed before it, the callable)
Case = Callable[[], object] | tuple[Callable[[], object] | None, Callable[[], object]]


# ---------------------------------------------------------------------------
# clocks
# ---------------------------------------------------------------------------
def synchronize(device: str | torch.device = "cpu") -> None:
    """Wait for queued GPU work: CUDA/MPS calls return before the work is done, so a clock read
    without this measures how fast work is *queued*, not how fast it runs."""
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@dataclass
class Timing:
    """Wall-clock seconds of repeated runs of one thing; the median is the number we report
    because a single stall on a shared machine moves the mean but not the median."""

    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        if not self.runs:
            raise ValueError("no runs were timed")
        return statistics.median(self.runs)

    @property
    def spread(self) -> float:
        """(max - min) / median: how much to trust the median (0.1 = runs within 10 %)."""
        m = self.median
        return (max(self.runs) - min(self.runs)) / m if m > 0 else 0.0

    def __len__(self) -> int:
        return len(self.runs)

    def __repr__(self) -> str:
        if not self.runs:
            return "Timing(no runs)"
        return (f"Timing(median {self.median:.4g} s of {len(self.runs)} run(s), "
                f"min {min(self.runs):.4g} s, max {max(self.runs):.4g} s)")


def time_runs(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 1, device: Device = "cpu",
              clock: Clock = time.perf_counter) -> Timing:
    """Call ``fn`` ``warmup`` times untimed (allocator, kernel selection and caches settle), then
    ``repeats`` times timed, synchronising ``device`` before each clock read."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup!r}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    runs = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        synchronize(device)
        runs.append(clock() - t0)
    return Timing(runs)


# ---------------------------------------------------------------------------
# the ceiling and the model's cost
# ---------------------------------------------------------------------------
def matmul_flop_rate(n: int = 2048, *, repeats: int = 5, device: Device = "cpu", dtype=torch.float32,
                     clock: Clock = time.perf_counter) -> tuple[float, Timing]:
    """FLOP/s of an ``n x n @ n x n`` matrix multiply (2 n^3 FLOPs): the practical peak of this
    device with the current thread count, the ceiling convolution networks are measured against."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    device = select_device(device)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    timing = time_runs(lambda: torch.matmul(a, b, out=out), repeats=repeats, warmup=1, device=device, clock=clock)
    return 2.0 * n ** 3 / timing.median, timing


def count_flops(model: nn.Module, input_shape: Sequence[int], *, device: Device = "cpu") -> int:
    """FLOPs of one forward pass of ONE input of shape ``input_shape`` (no batch dimension).

    Counted by ``torch.utils.flop_counter.FlopCounterMode``: convolutions
    (grouped/depthwise ones by their real cost) and matrix multiplies, at 2
    FLOPs per multiply-accumulate (MACs = FLOPs / 2). Elementwise work
    (BatchNorm, activations, pooling) is not counted, so this is the
    arithmetic a matmul-speed ceiling applies to.
    """
    from torch.utils.flop_counter import FlopCounterMode

    device = select_device(device)
    was_training = model.training
    model.eval()
    x = torch.zeros(1, *input_shape, device=device)
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


GRAD_MODES = {"inference_mode": torch.inference_mode, "no_grad": torch.no_grad, "grad": torch.enable_grad}


def _random_batch(batch_size: int, in_channels: int, image_size: int, device, fmt) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, in_channels, image_size, image_size, generator=gen).to(device)
    return x.contiguous(memory_format=fmt)


def forward_step(model: nn.Module, *, batch_size: int, image_size: int, channels_last: bool = False,
                 grad_mode: str = "inference_mode", device: Device = "cpu", in_channels: int = 3,
                 folded: bool = False) -> Callable[[], None]:
    """A zero-argument callable that runs one eval-mode forward pass of a fixed random batch.

    It works on a private copy of ``model`` (in NHWC when ``channels_last``; with its BatchNorms folded into
    the convolutions when ``folded``, as ``tlwidgets.inference.inference_copy`` runs frozen parts), so several
    variants can be timed side by side, interleaved, without converting one model back and forth or touching
    the caller's.
    """
    import copy

    if grad_mode not in GRAD_MODES:
        raise ValueError(f"grad_mode must be one of {sorted(GRAD_MODES)}, got {grad_mode!r}")
    device = select_device(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = copy.deepcopy(model).eval().to(device).to(memory_format=fmt)
    if folded:
        from tlwidgets.inference import inference_copy

        net = inference_copy(net, channels_last=channels_last)
    x = _random_batch(batch_size, in_channels, image_size, device, fmt)
    ctx = GRAD_MODES[grad_mode]

    def step() -> None:
        with ctx():
            net(x)

    return step


def train_step(model: nn.Module, *, batch_size: int, image_size: int, channels_last: bool = False,
               device: Device = "cpu", in_channels: int = 3) -> Callable[[], None]:
    """A zero-argument callable running one training step (forward, cross-entropy, backward, SGD update)
    in train mode on a private copy of ``model``; only parameters that require grad are updated, as in ``fit``."""
    import copy

    device = select_device(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = copy.deepcopy(model).to(device).to(memory_format=fmt)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    x = _random_batch(batch_size, in_channels, image_size, device, fmt)
    with torch.no_grad():
        num_out = net.eval()(x[:1]).shape[1]  # eval: BatchNorm cannot train on one image
    net.train()
    y = torch.randint(0, num_out, (batch_size,), generator=torch.Generator().manual_seed(1)).to(device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    return step


def interleave(cases: Mapping[Any, Case], *, repeats: int = 3, warmup: int = 1, device: Device = "cpu",
               clock: Clock = time.perf_counter) -> dict[str, Timing]:
    """Time several variants round-robin: every round runs each case once, so a change in machine load
    hits all variants alike and their ratio stays meaningful (timing them one after another does not).

    ``cases`` maps a name to ``fn`` or to ``(setup, fn)``; ``setup`` runs untimed before each ``fn``
    (e.g. ``torch.set_num_threads``). The first ``warmup`` rounds are not recorded.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if not cases:
        raise ValueError("no cases to time")
    device = select_device(device)
    timings = {name: Timing() for name in cases}
    for rnd in range(warmup + repeats):
        for name, case in cases.items():
            setup, fn = case if isinstance(case, tuple) else (None, case)
            if setup is not None:
                setup()
            synchronize(device)
            t0 = clock()
            fn()
            synchronize(device)
            elapsed = clock() - t0
            if rnd >= warmup:
                timings[name].runs.append(elapsed)
    return timings


# ---------------------------------------------------------------------------
# time to a target accuracy
# ---------------------------------------------------------------------------
class TimeToAccuracy(Observer):
    """Records (seconds since ``t0``, val_acc) at every epoch end and can stop the run.

    ``t0`` is when the clock started (set it before building the task and the
    model so data preparation and feature extraction count); without it the
    clock starts at ``on_train_begin``. With a ``stop`` flag, training stops
    once the target is reached or once ``budget_s`` is spent (an epoch in
    progress always finishes, so a run can overshoot the budget by one epoch).
    """

    def __init__(self, target: float, *, t0: float | None = None, stop: StopFlag | None = None,
                 budget_s: float | None = None, clock: Clock = time.perf_counter):
        if not 0 < target <= 1:
            raise ValueError(f"target accuracy must be in (0, 1], got {target!r}")
        self.target, self.t0, self.stop, self.budget_s, self.clock = target, t0, stop, budget_s, clock
        self.points: list[tuple[float, float | None]] = []

    def on_train_begin(self, info: dict) -> None:
        if self.t0 is None:
            self.t0 = self.clock()

    def on_epoch_end(self, logs: dict) -> None:
        if self.t0 is None:
            self.t0 = self.clock()
        elapsed = self.clock() - self.t0
        acc = logs.get("val_acc")
        self.points.append((elapsed, acc))
        if self.stop is not None and not self.stop.is_set():
            if acc is not None and acc >= self.target:
                self.stop.set(f"reached {self.target:.0%} test accuracy")
            elif self.budget_s is not None and elapsed >= self.budget_s:
                self.stop.set(f"time budget of {self.budget_s:.0f} s spent")

    @property
    def seconds(self) -> float | None:
        """Seconds to the target, or None if it was not reached (``experiments.time_to_accuracy``'s rule:
        the first epoch at or above the target)."""
        starts = [0.0] + [s for s, _ in self.points[:-1]]
        epochs = [{"val_acc": a, "seconds": s - s0} for (s, a), s0 in zip(self.points, starts)]
        return time_to_accuracy({"epochs": epochs}, self.target)

    @property
    def best(self) -> float | None:
        accs = [a for _, a in self.points if a is not None]
        return max(accs) if accs else None

    @property
    def elapsed(self) -> float:
        return self.points[-1][0] if self.points else 0.0

    def __repr__(self) -> str:
        got = f"reached in {self.seconds:.1f} s" if self.seconds is not None else "not reached"
        return f"TimeToAccuracy(target {self.target:.0%}: {got}, {len(self.points)} epochs)"


# ---------------------------------------------------------------------------
# data loading
# ---------------------------------------------------------------------------
def loader_throughput(loader: Iterable, *, passes: int = 3, device: Device | None = None, warmup: int = 0,
                      clock: Clock = time.perf_counter) -> tuple[float, Timing]:
    """Samples/second of iterating ``loader`` once (worker start-up included, as ``fit`` sees it),
    optionally copying each batch to ``device``; median over ``passes`` full passes."""
    device = select_device(device) if device is not None else None
    counts = []

    def one_pass() -> None:
        n = 0
        for batch in loader:
            x, y = batch[0], batch[1]
            if device is not None:
                x = x.to(device, non_blocking=True)
            n += len(y)
        counts.append(n)

    timing = time_runs(one_pass, repeats=passes, warmup=warmup, device=device or "cpu", clock=clock)
    if not counts[-1]:
        raise ValueError("the loader yielded no samples")
    return counts[-1] / timing.median, timing


def data_wait(loader: Iterable, step: Callable[[torch.Tensor, torch.Tensor], object], *, device: Device = "cpu",
              max_batches: int | None = None, clock: Clock = time.perf_counter) -> dict:
    """Split a training pass into time waiting for data (next batch + copy to the device) and
    compute (``step(x, y)``, synchronised): a large ``wait_fraction`` means the device starves."""
    device = select_device(device)
    data_s = compute_s = 0.0
    images = batches = 0
    it = iter(loader)
    while max_batches is None or batches < max_batches:
        t0 = clock()
        try:
            x, y = next(it)
        except StopIteration:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        synchronize(device)
        t1 = clock()
        step(x, y)
        synchronize(device)
        t2 = clock()
        data_s += t1 - t0
        compute_s += t2 - t1
        images += len(y)
        batches += 1
    total = data_s + compute_s
    return {"data_s": data_s, "compute_s": compute_s, "images": images, "batches": batches,
            "wait_fraction": data_s / total if total > 0 else 0.0}


# ---------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed: say so rather than fail the benchmark
        return "not installed"


def machine_info(device: Device = "cpu") -> dict:
    """What a reader needs to compare these numbers with theirs: CPU, cores, threads, GPU, versions, date, load."""
    device = select_device(device)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        load = tuple(round(v, 2) for v in os.getloadavg())
    except (AttributeError, OSError):
        load = None
    gpu = "none"
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        gpu = "Apple MPS"
    elif torch.cuda.is_available():
        gpu = f"{torch.cuda.get_device_name(0)} (present, not used)"
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": gpu,
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "timm": _version("timm"),
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average": load,
    }


def median(values: Sequence[float | None]) -> float:
    """The median of the values that are not None."""
    kept = [v for v in values if v is not None]
    if not kept:
        raise ValueError("no values to take the median of")
    return statistics.median(kept)
