"""The training loop and its observers.

``fit`` trains a model and tells its observers what happened through the
four events of :data:`EVENTS`, each carrying a plain dict:

==================  =====================================================================
event               dict keys
==================  =====================================================================
on_train_begin      num_epochs, num_batches (per epoch), start_epoch, metrics, model_name
on_batch_end        epoch, batch, loss, acc (running means over the epoch so far), size,
                    batch_loss, batch_acc (this batch's own values)
on_epoch_end        epoch, loss, acc, val_loss, val_acc (None without a val loader), seconds
on_train_end        epochs_completed, batches_completed, stopped, stop_reason, seconds
==================  =====================================================================

Progress bars, live charts, early stopping and the dashboard are observers;
the loop itself draws nothing. Every observer method is optional; a method
named like an event but misspelt (``on_epoch_ends``) is warned about, because
it would silently never run (fastai's callback lesson). Any observer ends the
run by raising :class:`StopTraining` (or by setting the :class:`StopFlag`
passed to ``fit``); the run stops after the batch or epoch in hand.

The observers live in :mod:`tlwidgets.observers`, forward passes outside
training in :mod:`tlwidgets.prediction`; their names stay importable from here.
"""
from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .inference import as_channels_last
from .infra import atomic_write, derive_seed, seed_torch, select_device, torch_bytes
from .observers import (
    EVENTS,
    EarlyStopping,
    Events,
    History,
    Observer,
    ProgressBar,
    StopFlag,
    StopTraining,
    check_observer,
)
from .prediction import (
    Prediction,
    check_inputs,
    check_label_dtype,
    check_labels,
    check_loader,
    confusion_matrix,
    evaluate,
    forward_batch,
    predict,
    predict_proba,
)
from .validate import check_float, check_int, check_lr

__all__ = [
    "Observer", "History", "ProgressBar", "EarlyStopping", "StopFlag", "StopTraining", "Events", "check_observer",
    "fit", "evaluate", "predict", "predict_proba", "confusion_matrix", "Prediction", "check_inputs", "check_loader",
    "layerwise_lr_groups", "EVENTS", "Optimiser", "Checkpoint", "trains_channels_last",
]

# ---------------------------------------------------------------------------
# optimiser helpers
# ---------------------------------------------------------------------------
def layerwise_lr_groups(model: nn.Module, lr: float, decay: float = 1.0) -> list[dict]:
    """One optimiser param group per trainable layer group, ``lr * decay**k`` for the group ``k`` below the top.

    With ``decay < 1`` the early, general-purpose groups move more slowly than
    the task-specific top: "discriminative learning rates".
    """
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay <= 1:
        raise ValueError(f"lr_decay must be in (0, 1], got {decay}")
    decay = float(decay)
    grouped: Any = model  # a GroupedModel (tlwidgets.models): named layer groups, bottom to top
    names: list[str] = list(grouped.group_names)
    groups = grouped.groups
    out = []
    for i, n in enumerate(names):
        params = [p for p in groups[n].parameters() if p.requires_grad]
        if params:
            out.append({"params": params, "lr": lr * decay ** (len(names) - 1 - i), "name": n})
    return out


def _check_lr(lr) -> float:
    return check_lr(lr)


def _fused_adam_ok(groups) -> bool:
    """Whether torch's fused Adam can take these parameters (floating point, all on the CPU or all on CUDA).

    Why fused: on a CPU torch's default Adam updates one tensor at a time; the fused kernel updates them all in
    one pass. Measured on this course's 2-core CPU (busy with other work), one thread, a MiniLM-sized set of
    parameters (22.5 M), in one process: one step 0.25 s by default, 0.12 s with ``foreach``, 0.014 s fused --
    for full fine-tuning of the transformer a large share of every step. The update rule is the same (Adam's,
    with the same hyper-parameters).
    """
    params = [p for g in groups for p in g["params"]]
    devices = {p.device.type for p in params}
    return bool(params) and all(p.is_floating_point() for p in params) and devices in ({"cpu"}, {"cuda"})


def _make_optimizer(model, lr, optimizer, lr_decay, weight_decay):
    groups = layerwise_lr_groups(model, lr, lr_decay) if hasattr(model, "group_names") else \
        [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
    if not groups or not any(g["params"] for g in groups):
        raise ValueError("the model has no trainable parameters: unfreeze at least the head (freeze(model, n) "
                         "with n < model.num_groups)")
    if not isinstance(optimizer, str) or optimizer not in ("adam", "sgd"):
        raise ValueError(f"unknown optimizer {optimizer!r}; choose 'adam' or 'sgd'")
    weight_decay = check_float("weight_decay", weight_decay, min=0)
    if optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, fused=_fused_adam_ok(groups))
    if optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}; choose 'adam' or 'sgd'")


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------
_SINGLE_SAMPLE_BN = "more than 1 value per channel"


def _dataset_size(loader) -> str:
    try:
        return str(len(loader.dataset))
    except (AttributeError, TypeError):
        return "?"


def _single_sample_warning(n_samples) -> str:
    return (f"a training batch held 1 sample ({n_samples} samples in all); BatchNorm cannot compute batch "
            "statistics from a single sample, so that batch is skipped (every epoch). Use a batch size that does "
            "not leave 1 over, or DataLoader(..., drop_last=True), to silence this")


@dataclass(frozen=True)
class Optimiser:
    """Which optimiser :func:`fit` builds: ``"adam"`` or ``"sgd"`` (momentum 0.9), and its L2 penalty."""

    name: str = "adam"
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Checkpoint:
    """Where :func:`fit` saves weights, optimiser and history after every epoch (atomically); ``resume=True``
    continues from the file when it exists."""

    path: str | os.PathLike
    resume: bool = False


def fit(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader | None = None, *,
        num_epochs: int = 5, lr: float = 1e-3, lr_decay: float = 1.0, optimizer: str | Optimiser = "adam",
        observers: Sequence[Observer | StopFlag] = (), device: str | torch.device = "auto", seed: int | None = 0,
        progress: bool = True, checkpoint: str | os.PathLike | Checkpoint | None = None) -> History:
    """Train ``model`` on ``train_loader`` for ``num_epochs`` and return its :class:`History`.

    Args:
        model: any ``nn.Module``; a GroupedModel's layer groups get their own learning rates (``lr_decay``).
        train_loader: a DataLoader of (inputs, labels) batches.
        val_loader: the validation split's loader (never the test split: choices are made on it), or None.
        num_epochs: how many passes over ``train_loader``.
        lr: the learning rate (of the top group, with ``lr_decay``).
        lr_decay: each lower layer group gets ``lr_decay`` times the learning rate of the one above (1: all equal).
        optimizer: ``"adam"``, ``"sgd"`` (momentum 0.9), or an :class:`Optimiser` (name and weight decay).
        observers: objects with any of the four event methods (see the module docstring), and at most one
            :class:`StopFlag`: the flag another party may set to end the run after the batch in hand.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` or a ``torch.device``.
        seed: reseeds torch at each epoch start (None: leave the random state alone).
        progress: show a ``tqdm`` bar over all batches.
        checkpoint: a path (save after every epoch) or a :class:`Checkpoint` (``resume=True``: continue from it).

    - observers get the four events (see the module docstring).
    - the :class:`StopFlag` is checked after every batch; Ctrl-C
      (KeyboardInterrupt) is treated the same way. Either way the history
      ends at the last finished batch and the model is left in eval mode.
    - ``lr_decay < 1`` gives earlier layer groups smaller learning rates.
    - ``seed`` reseeds torch at every epoch start (``derive_seed(seed, "order", epoch)``), so data
      order and dropout depend only on the epoch: a run resumed from a
      checkpoint continues exactly as the uninterrupted run would.
    """
    import numbers

    if isinstance(num_epochs, bool) or not isinstance(num_epochs, numbers.Integral) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    num_epochs = int(num_epochs)
    lr = _check_lr(lr)
    if not isinstance(model, nn.Module):
        raise TypeError(f"fit(): model must be a torch nn.Module, got {type(model).__name__}")
    check_loader("train_loader", train_loader)
    if val_loader is not None:
        check_loader("val_loader", val_loader)
    if seed is not None:
        seed = check_int("seed", seed, min=0)
    if len(train_loader) == 0:
        raise ValueError("train_loader yields no batches: the training set is empty")
    device = select_device(device)
    model.to(device)
    nhwc = trains_channels_last(model, device)
    if nhwc:
        model.to(memory_format=torch.channels_last)
    spec = optimizer if isinstance(optimizer, Optimiser) else Optimiser(optimizer)
    opt = _make_optimizer(model, lr, spec.name, lr_decay, spec.weight_decay)
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(checkpoint)
    ckpt = None if checkpoint is None else Path(checkpoint.path)
    resume = checkpoint is not None and checkpoint.resume
    history, start_epoch = _resume(ckpt, model, opt, device) if resume and ckpt else (History(), 0)
    flags = [o for o in observers if isinstance(o, StopFlag)]
    if len(flags) > 1:
        raise ValueError(f"fit(): observers hold {len(flags)} StopFlags; pass at most one (the run's stop flag)")
    stop = flags[0] if flags else StopFlag()
    watchers = [o for o in observers if not isinstance(o, StopFlag)]
    events = Events([history, *([ProgressBar()] if progress else []), *watchers], stop)
    run = _Run(model, opt, nn.CrossEntropyLoss(), device, lr, events, stop, history, ckpt, seed,
               dataset_size=_dataset_size(train_loader), nhwc=nhwc)
    events.emit("on_train_begin", {
        "num_epochs": num_epochs, "num_batches": len(train_loader), "start_epoch": start_epoch,
        "metrics": ["loss", "acc", "val_loss", "val_acc"], "model_name": getattr(model, "name", type(model).__name__)})
    stop_reason = ""
    try:
        for epoch in range(start_epoch, num_epochs):
            stop_reason = run.epoch(epoch, train_loader, val_loader)
            if stop_reason:
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted (KeyboardInterrupt)"
        warnings.warn("training interrupted: the model keeps the weights of the last finished batch", stacklevel=2)
    except BaseException as exc:
        run.end(f"error: {type(exc).__name__}: {exc}")
        raise
    run.end(stop_reason)
    return history


def trains_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Whether :func:`fit` trains ``model`` in channels_last memory order: on the CPU, when it has 2-D convolutions.

    Why: oneDNN's CPU convolutions (forward and backward) are much faster on channels_last tensors; one
    training step of the course's digit CNN at one thread took 15 -> 9 ms, of the small photo CNN 27 -> 15 ms
    at 64 px and 115 -> 47 ms at 128 px. The same arithmetic in another summation order: a step agrees to float
    rounding, a whole run closely but not bit for bit (Adam turns the rounding noise of a gradient that is
    mathematically zero, a conv bias before a BatchNorm, into steps), so recorded numbers move within their
    seed spread. The weights are handed back in the default (contiguous) order when ``fit`` ends.
    """
    return device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in model.modules())


def _resume(ckpt: Path, model: nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> tuple[History, int]:
    """Weights, optimiser and history from ``ckpt``; ``(History(), 0)`` when there is no checkpoint yet."""
    if not ckpt.exists():
        return History(), 0
    from .models import load_checkpoint  # the safe loader: refuses pickles, names the file

    state = load_checkpoint(ckpt)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    history = History.from_dict(state["history"])
    history.stopped, history.stop_reason = False, ""
    return history, state["epoch"] + 1


@dataclass
class _Run:
    """The state of one ``fit`` call, and its steps: an epoch, a batch, the epoch's end, the run's end."""

    model: nn.Module
    opt: torch.optim.Optimizer
    loss_fn: nn.Module
    device: torch.device
    lr: float
    events: Events
    stop: StopFlag
    history: History
    ckpt: Path | None
    seed: int | None
    dataset_size: str = ""  # for the warning when a batch of 1 sample has to be dropped
    nhwc: bool = False      # training in channels_last (see trains_channels_last); the model is handed back NCHW
    warned_single: bool = False
    batches_done: int = 0
    t0: float = field(default_factory=time.perf_counter)

    def stop_reason(self) -> str:
        return (self.stop.reason or "stop requested") if self.stop.is_set() else ""

    def epoch(self, epoch: int, train_loader: DataLoader, val_loader: DataLoader | None) -> str:
        """Train one epoch, then validate and checkpoint it; returns why the run stopped ("" to go on)."""
        if self.seed is not None:
            seed_torch(derive_seed(self.seed, "order", epoch))
        te = time.perf_counter()
        self.model.train()
        totals = {"loss_sum": 0.0, "correct": 0, "seen": 0}
        for b, (x, y) in enumerate(train_loader):
            check_inputs(x, where=f"fit(): epoch {epoch + 1}", batch=b, model=self.model)
            check_label_dtype(y, where=f"fit(): epoch {epoch + 1}", batch=b)
            self.batch(epoch, b, x, y, totals)
            if self.stop_reason():
                return self.stop_reason()
        if totals["seen"] == 0:
            raise ValueError("every training batch held 1 sample: BatchNorm layers cannot compute batch "
                             "statistics from one sample; use batch_size >= 2 (and at least 2 samples)")
        logs = {"epoch": epoch, "loss": totals["loss_sum"] / totals["seen"], "acc": totals["correct"] / totals["seen"],
                "val_loss": None, "val_acc": None}
        if val_loader is not None:
            val = evaluate(self.model, val_loader, device=self.device)
            logs.update(val_loss=val["loss"], val_acc=val["acc"])
        logs["seconds"] = time.perf_counter() - te
        self.events.emit("on_epoch_end", logs)
        if self.ckpt is not None:
            atomic_write(self.ckpt, torch_bytes({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                                                 "history": self.history.to_dict(), "epoch": epoch}))
        return self.stop_reason()

    def batch(self, epoch: int, b: int, x: torch.Tensor, y: torch.Tensor, totals: dict) -> None:
        """One optimiser step; emits this batch's own loss/acc beside the epoch's running means."""
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.nhwc:
            x = as_channels_last(x)
        self.opt.zero_grad(set_to_none=True)
        try:
            out = forward_batch(self.model, x)
        except ValueError as exc:  # a last batch of 1 reaching a training BatchNorm: drop it, say so
            if x.shape[0] != 1 or _SINGLE_SAMPLE_BN not in str(exc):
                raise
            if not self.warned_single:
                warnings.warn(_single_sample_warning(self.dataset_size), stacklevel=4)
                self.warned_single = True
            return
        check_labels(out, y)
        loss = self.loss_fn(out, y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}, batch {b + 1}: "
                                     f"the learning rate ({self.lr}) is probably too high")
        loss.backward()
        self.opt.step()
        n = y.shape[0]
        batch_loss, batch_correct = loss.item(), (out.argmax(1) == y).sum().item()
        totals["loss_sum"] += batch_loss * n
        totals["correct"] += batch_correct
        totals["seen"] += n
        self.batches_done += 1
        self.events.emit("on_batch_end", {"epoch": epoch, "batch": b, "loss": totals["loss_sum"] / totals["seen"],
                                          "acc": totals["correct"] / totals["seen"], "size": n,
                                          "batch_loss": batch_loss, "batch_acc": batch_correct / n})

    def end(self, stop_reason: str) -> None:
        if self.nhwc:
            self.model.to(memory_format=torch.contiguous_format)
        self.model.eval()
        self.events.emit("on_train_end", {"epochs_completed": len(self.history.epochs),
                                          "batches_completed": self.batches_done, "stopped": bool(stop_reason),
                                          "stop_reason": stop_reason, "seconds": time.perf_counter() - self.t0})


