"""Checks for lesson 9 (the capstone: the whole workflow in plain PyTorch + torchvision on a photo folder).

Every check judges by behaviour: it runs the student's transforms, function or optimiser on a small input
it builds itself and looks at what happened (random or not, normalised or not, weights restored or not,
which parameters an optimiser holds, the mode a model was in). Each step also has a ``reference_*``
version: until the student's answer passes, the lesson runs on with the reference, so a learner can do
the steps in any order and the notebook still runs end to end.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from . import CheckResult, as_number, is_placeholder, not_yet, passed

__all__ = ["exercise1", "exercise2", "exercise3", "exercise4", "exercise5", "exercise6", "exercise7",
           "reference_transforms", "reference_lr_find", "reference_lr_pick", "reference_evaluate", "reference_fit",
           "smooth_losses"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


# ---------------------------------------------------------------- 1. transforms
def _test_photo(width: int = 200, height: int = 150):
    """A photo-like PIL image with no symmetry (a gradient plus a bright corner), so crops and flips show."""
    from PIL import Image

    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    rgb = torch.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    rgb[: height // 4, : width // 4] = 255
    return Image.fromarray(rgb.to(torch.uint8).numpy())


def _gray_photo(width: int = 200, height: int = 150, value: int = 128):
    from PIL import Image

    return Image.new("RGB", (width, height), (value, value, value))


def reference_transforms(image_size: int, mean: Sequence[float], std: Sequence[float]):
    """``(train_tf, eval_tf)``: random resized crop + flip for training; resize + center crop to evaluate."""
    from torchvision.transforms import v2

    to_input = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    train_tf = v2.Compose([v2.PILToTensor(), v2.RandomResizedCrop(image_size, scale=(0.5, 1.0), antialias=True),
                           v2.RandomHorizontalFlip(), *to_input])
    eval_tf = v2.Compose([v2.PILToTensor(), v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size),
                          *to_input])
    return train_tf, eval_tf


def _apply(tf, image, name: str) -> tuple[torch.Tensor | None, str | None]:
    try:
        out = tf(image)
    except Exception as exc:  # noqa: BLE001 - the student's code: report, never crash the lesson
        return None, f"{name}(photo) raised {_first_line(exc)}"
    if not isinstance(out, torch.Tensor):
        return None, (f"{name} returns a {type(out).__name__}, not a tensor: end with v2.ToImage() + "
                      "v2.ToDtype(torch.float32, scale=True) (or transforms.ToTensor()) and v2.Normalize")
    return out, None


def exercise1(train_tf, eval_tf, image_size: int, mean: Sequence[float], std: Sequence[float]) -> CheckResult:
    """Training transforms that augment, evaluation transforms that do not; both give normalised float
    tensors of shape (3, image_size, image_size)."""
    if is_placeholder(train_tf) or is_placeholder(eval_tf):
        return not_yet("replace both `...`: train_tf = v2.Compose([...]) with random crops/flips, and eval_tf "
                       "with a plain resize + center crop; both end with ToDtype + Normalize(mean, std)")
    for name, tf in (("train_tf", train_tf), ("eval_tf", eval_tf)):
        if not callable(tf):
            raise ValueError(f"exercise1 expects {name} to be a transform (callable), got {type(tf).__name__}")
    photo = _test_photo()
    for name, tf in (("train_tf", train_tf), ("eval_tf", eval_tf)):
        out, problem = _apply(tf, photo, name)
        if problem:
            return not_yet(problem)
        assert out is not None
        if tuple(out.shape) != (3, image_size, image_size):
            return not_yet(f"{name} gives shape {tuple(out.shape)}, expected (3, {image_size}, {image_size}): "
                           "resize the short side, then crop a square of image_size")
        if not out.is_floating_point():
            return not_yet(f"{name} gives {out.dtype} pixels: the model needs floats, "
                           "v2.ToDtype(torch.float32, scale=True)")
    gray, _ = _apply(eval_tf, _gray_photo(value=128), "eval_tf")
    assert gray is not None
    expected = (128 / 255 - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(std, dtype=torch.float32)
    if not torch.allclose(gray.mean((1, 2)), expected, atol=0.02):
        if torch.allclose(gray.mean((1, 2)), torch.full((3,), 128 / 255), atol=0.02):
            return not_yet("the pixels are in [0, 1] but not normalised: add v2.Normalize(mean, std) with the "
                           "backbone's own mean and std (the ones its ImageNet weights were trained with)")
        return not_yet(f"a gray pixel (128) becomes {gray.mean((1, 2)).tolist()}, expected {expected.tolist()}: "
                       "scale to [0, 1] once (ToDtype(..., scale=True)), then Normalize(mean, std)")
    torch.manual_seed(0)
    evals = [eval_tf(photo) for _ in range(4)]
    if any(not torch.equal(evals[0], e) for e in evals[1:]):
        return not_yet("eval_tf gives a different tensor each time: that augments the validation and test "
                       "photos, so their accuracy is noisy and not the model's. Evaluate on a plain resize + "
                       "center crop; keep random crops and flips for training")
    trains = [train_tf(photo) for _ in range(8)]
    if all(torch.equal(trains[0], t) for t in trains[1:]):
        return not_yet("train_tf gives the same tensor every time: no augmentation. Add a random crop "
                       "(v2.RandomResizedCrop) and/or v2.RandomHorizontalFlip, so each epoch sees new variants")
    return passed(f"training photos are augmented (8 calls, {len({t.sum().item() for t in trains})} different "
                  f"tensors), evaluation photos are not; both (3, {image_size}, {image_size}), normalised")


# ---------------------------------------------------------------- 3. learning-rate range test
def reference_lr_find(model: nn.Module, loader, start: float = 1e-5, end: float = 1.0, num_steps: int = 20,
                      params=None) -> tuple[list[float], list[float]]:
    """fastbook's LR finder: one AdamW step per batch at exponentially growing lr; the weights restored after."""
    state = copy.deepcopy(model.state_dict())
    params = [p for p in model.parameters() if p.requires_grad] if params is None else list(params)
    opt = torch.optim.AdamW(params, lr=start)
    gamma = (end / start) ** (1 / (num_steps - 1))
    device = next(model.parameters()).device
    lrs: list[float] = []
    losses: list[float] = []
    batches = iter(loader)
    for step in range(num_steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        lr = start * gamma ** step
        for group in opt.param_groups:
            group["lr"] = lr
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        lrs.append(lr)
        losses.append(loss.item())
        if not math.isfinite(losses[-1]) or losses[-1] > 4 * min(losses):
            break
    model.load_state_dict(state)
    return lrs, losses


def _blobs(n: int = 96, seed: int = 0) -> TensorDataset:
    """Two separable 2-D blobs: a task any linear model learns, for trying a student's function in milliseconds."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=gen) * 0.5 + torch.stack([y * 2.0 - 1, 1 - y * 2.0], 1)
    return TensorDataset(x, y)


class _StepRecorder(nn.Module):
    """A linear model that records its weights at every forward call: the update sizes show the lr used."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(2, 2)
        self.seen: list[torch.Tensor] = []
        self.modes: list[bool] = []
        self.grad_enabled: list[bool] = []

    def forward(self, x):
        self.seen.append(self.fc.weight.detach().clone())
        self.modes.append(self.training)
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.fc(x)


def exercise3(lr_find: Callable) -> CheckResult:
    """``lr_find(model, loader, start, end, num_steps) -> (lrs, losses)``: exponentially growing lr, one
    optimiser step per batch, the model's weights restored at the end. Tried on a 2-D toy problem."""
    if is_placeholder(lr_find) or not callable(lr_find):
        if is_placeholder(lr_find):
            return not_yet("write the function lr_find(model, loader, start, end, num_steps) and pass it")
        raise ValueError(f"exercise3 expects your function lr_find, got {type(lr_find).__name__}")
    model = _StepRecorder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = DataLoader(_blobs(), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    start, end, num_steps = 1e-4, 10.0, 24
    try:
        out = lr_find(model, loader, start, end, num_steps)
    except Exception as exc:  # noqa: BLE001 - the student's code
        return not_yet(f"lr_find raised {_first_line(exc)}")
    if out is None or out is Ellipsis or not isinstance(out, (tuple, list)) or len(out) != 2:
        return not_yet("lr_find must return two lists, (lrs, losses): the lr of each step and its loss")
    lrs = [as_number(v, "exercise3's lrs") for v in out[0]]
    losses = [as_number(v, "exercise3's losses") for v in out[1]]
    if len(lrs) != len(losses) or len(lrs) < 5:
        return not_yet(f"got {len(lrs)} lrs and {len(losses)} losses: one lr and one loss per step, "
                       f"at least 5 steps (this call asked for {num_steps})")
    if abs(lrs[0] / start - 1) > 1e-6:
        return not_yet(f"the first lr is {lrs[0]:.3g}, but start={start:g}: begin at start")
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    if any(r <= 1 for r in ratios):
        return not_yet("the lrs must grow at every step")
    if max(ratios) / min(ratios) > 1.01:
        return not_yet("the lrs grow, but not by a constant factor: an LR finder spaces them exponentially "
                       "(lr = start * (end / start) ** (step / (num_steps - 1))), so each decade gets as many "
                       "steps; a linear ramp spends almost every step at the largest rates")
    changed = [n for n, v in model.state_dict().items() if not torch.equal(v, before[n])]
    if changed:
        return not_yet("after lr_find the model's weights are not the ones it started with: the range test "
                       "trains the model into divergence, so save model.state_dict() (a deep copy) first and "
                       "load it back at the end")
    seen = model.seen
    updates = [float((b - a).norm()) for a, b in zip(seen, seen[1:])]
    if len(updates) < 3 or max(updates) == 0:
        return not_yet("the weights never moved between batches: each step needs loss.backward() and "
                       "opt.step() (and opt.zero_grad())")
    first = next((u for u in updates if u > 0), 0.0)
    if max(updates[len(updates) // 2:]) < 20 * first:
        return not_yet("the lrs you return grow, but the optimiser's steps do not: set each step's rate in the "
                       "optimiser (for g in opt.param_groups: g['lr'] = lr), or let a scheduler "
                       "(ExponentialLR) grow it")
    return passed(f"{len(lrs)} steps from {lrs[0]:.0e} to {lrs[-1]:.1e}, x{ratios[0]:.2f} per step, the "
                  "optimiser really used those rates, and the model's weights were restored")


# ---------------------------------------------------------------- 4. reading the range test
def smooth_losses(losses: Sequence[float], beta: float = 0.7) -> list[float]:
    """Exponential moving average with bias correction (fastbook's smoothing): one noisy batch is not a trend."""
    avg, out = 0.0, []
    for i, v in enumerate(losses, 1):
        avg = beta * avg + (1 - beta) * float(v)
        out.append(avg / (1 - beta ** i))
    return out


def reference_lr_pick(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """One order of magnitude below the lr of the smoothed loss's minimum (fastbook's rule of thumb)."""
    smooth = smooth_losses(losses)
    return float(lrs[min(range(len(smooth)), key=smooth.__getitem__)]) / 10


def _steepest(lrs: Sequence[float], smooth: Sequence[float]) -> float:
    slopes = [(smooth[i + 1] - smooth[i]) for i in range(len(smooth) - 1)]
    return float(lrs[min(range(len(slopes)), key=slopes.__getitem__)])


def exercise4(lr, lrs: Sequence[float], losses: Sequence[float]) -> CheckResult:
    """The lr picked from the range test: about one order below the (smoothed) minimum, or near the
    steepest descent; inside the range tested; not at or past the minimum."""
    if is_placeholder(lr):
        return not_yet("look at the plot and write the lr you pick (a number such as 3e-3)")
    lr = as_number(lr, "exercise4", "a learning rate (a float)")
    lrs = [float(v) for v in lrs]
    smooth = smooth_losses(losses)
    lr_min = lrs[min(range(len(smooth)), key=smooth.__getitem__)]
    steep = _steepest(lrs, smooth)
    if lr <= 0 or not math.isfinite(lr):
        return not_yet(f"{lr} is not a usable learning rate: it must be a positive number")
    if lr > lrs[-1] or lr < lrs[0]:
        return not_yet(f"{lr:.1e} is outside the range tested ({lrs[0]:.0e} to {lrs[-1]:.1e}): nothing in the "
                       "plot tells you how training behaves there; pick a rate inside it")
    if lr >= lr_min / 2:
        return not_yet(f"{lr:.1e} is at or past the minimum of the smoothed loss ({lr_min:.1e}): there the loss "
                       "is about to blow up. Pick about one order of magnitude lower")
    if lr_min / 30 <= lr <= lr_min / 3 or steep / 3 <= lr <= steep * 3:
        return passed(f"{lr:.1e}: the smoothed loss is lowest at {lr_min:.1e} and falls fastest near "
                      f"{steep:.1e}; one order below the minimum is safe and still fast")
    return not_yet(f"{lr:.1e} is far below where the loss starts to fall fast ({steep:.1e}) and the minimum "
                   f"({lr_min:.1e}): training would crawl. Pick about a tenth of the minimum")


# ---------------------------------------------------------------- 5. the training function
def reference_fit(model: Any, opt: torch.optim.Optimizer, train_loader, val_loader, num_epochs: int,
                  n_frozen: int) -> list[float]:
    """Train with a one-cycle schedule (stepped per batch), frozen groups in eval mode, validation after every
    epoch; the model ends with the best validation epoch's weights. Returns the validation accuracies."""
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                total_steps=num_epochs * len(train_loader))
    device = next(model.parameters()).device
    best_acc, best_state, history = -1.0, None, []
    for _ in range(num_epochs):
        model.train()
        model[:n_frozen].eval()
        for x, y in train_loader:
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        val_acc = reference_evaluate(model, val_loader)
        history.append(val_acc)
        if val_acc > best_acc:
            best_acc, best_state = val_acc, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


class _ScriptedRun(nn.Module):
    """A recording fake whose validation accuracy per epoch is scripted (``quality``).

    Its "weights" are a buffer counting the training batches it has seen (updated in place, as real weights
    are), so the epoch whose weights are loaded decides what it answers in eval mode: a ``fit`` that restores
    the best epoch's *copy* answers at that epoch's quality, one that keeps the last epoch (or saved
    ``state_dict()`` without copying it) at the last epoch's. It also records the learning rate of every
    training batch and the mode of every evaluation pass.
    """

    def __init__(self, quality: Sequence[float], batches_per_epoch: int):
        super().__init__()
        self.quality, self.per_epoch = list(quality), batches_per_epoch
        self.w = nn.Parameter(torch.zeros(2))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))
        self.opt: torch.optim.Optimizer | None = None
        self.lrs: list[float] = []
        self.eval_modes: list[bool] = []

    def __getitem__(self, idx):   # fit's ``model[:n_frozen].eval()``: nothing frozen in this fake
        return nn.Identity()

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            self.batches += 1
            if self.opt is not None:
                self.lrs.append(float(self.opt.param_groups[0]["lr"]))
            return torch.zeros(len(x), 2) + self.w
        self.eval_modes.append(self.training)
        epoch = min(max(int(self.get_buffer("batches")) - 1, 0) // self.per_epoch, len(self.quality) - 1)
        label, index = x[:, 0].long(), x[:, 1]
        right = index < self.quality[epoch] * _VAL_SIZE
        predicted = torch.where(right, label, 1 - label)
        return F.one_hot(predicted, 2).float()


_VAL_SIZE = 20


def exercise5(fit: Callable) -> CheckResult:
    """``fit(model, opt, train_loader, val_loader, num_epochs, n_frozen) -> val accuracy per epoch``: a schedule
    stepped, validation in eval mode after every epoch, and the model left with the best validation epoch's
    weights. Tried on a scripted fake whose validation accuracy is 50 %, 90 %, 70 % in epochs 1-3."""
    if is_placeholder(fit):
        return not_yet("write the function fit(model, opt, train_loader, val_loader, num_epochs, n_frozen)")
    if not callable(fit):
        raise ValueError(f"exercise5 expects your function fit, got {type(fit).__name__}")
    quality = [0.5, 0.9, 0.7]
    train = TensorDataset(torch.zeros(12, 2), torch.arange(12) % 2)
    val = TensorDataset(torch.stack([torch.arange(_VAL_SIZE) % 2, torch.arange(_VAL_SIZE)], 1).float(),
                        torch.arange(_VAL_SIZE) % 2)
    train_loader, val_loader = DataLoader(train, batch_size=4), DataLoader(val, batch_size=8)
    model = _ScriptedRun(quality, len(train_loader))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)   # momentum: OneCycleLR cycles it
    model.opt = opt
    try:
        history = fit(model, opt, train_loader, val_loader, len(quality), 0)
    except Exception as exc:  # noqa: BLE001 - the student's code
        return not_yet(f"fit raised {_first_line(exc)}")
    if not model.lrs:
        return not_yet("fit never trained: complete the function — loop over train_loader with model.train(), a loss, "
                       "backward, step")
    if any(model.eval_modes):
        return not_yet("validation ran in training mode: evaluate with model.eval() (your evaluate does), "
                       "and switch back with model.train() before the next epoch")
    if not isinstance(history, (list, tuple)) or len(history) != len(quality):
        return not_yet(f"fit must return the validation accuracy of every epoch ({len(quality)} numbers here)")
    got = [as_number(v, "exercise5's history") for v in history]
    if any(abs(a - b) > 1e-6 for a, b in zip(got, quality)):
        return not_yet(f"the history {[round(v, 3) for v in got]} is not the validation accuracy after each "
                       f"epoch ({quality} on this fake): measure on val_loader once per epoch, after training")
    if len(set(model.lrs)) <= 1 or model.lrs[-1] > 0.5 * max(model.lrs):
        return not_yet("the learning rate never changed (or did not anneal): make a schedule over the "
                       "optimiser (OneCycleLR with total_steps = num_epochs * len(train_loader), or "
                       "CosineAnnealingLR) and call sched.step() after opt.step()")
    model.eval()
    final = reference_evaluate(model, val_loader)
    if abs(final - max(quality)) > 1e-6:
        return not_yet(f"after fit the model scores {final:.0%} on validation, the last epoch's, but epoch "
                       f"{quality.index(max(quality)) + 1} scored {max(quality):.0%}: keep a copy of the best "
                       "epoch's weights (copy.deepcopy(model.state_dict()): state_dict() alone shares the "
                       "live tensors, which keep training) and load it at the end")
    return passed("validation in eval mode after every epoch, a schedule stepped "
                  f"({max(model.lrs):.2g} -> {model.lrs[-1]:.2g}), and the best epoch's weights kept")


# ---------------------------------------------------------------- 6. head-first optimiser
def exercise6(opt, model: nn.Module) -> CheckResult:
    """The head stage's optimiser: exactly the new head's parameters, with the rest of the model frozen."""
    if is_placeholder(opt):
        return not_yet("replace `...` with an optimiser (e.g. torch.optim.AdamW) over the parameters that train "
                       "in the head stage, at the lr you picked")
    if not isinstance(opt, torch.optim.Optimizer):
        raise ValueError(f"exercise6 expects a torch.optim optimiser, got {type(opt).__name__}")
    head = list(model.children())[-1]
    head_ids = {id(p) for p in head.parameters()}
    body = [p for m in list(model.children())[:-1] for p in m.parameters()]
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    if any(p.requires_grad for p in body):
        return not_yet("the backbone still has requires_grad=True: freeze it first "
                       "(p.requires_grad_(False) for every parameter outside the new head)")
    if not head_ids <= in_opt:
        return not_yet("the optimiser does not hold the new head's parameters: make it after the head swap, "
                       "from model.groups['head'].parameters() (an optimiser keeps the tensors it was given)")
    extra = in_opt - head_ids
    if extra:
        return not_yet(f"the optimiser also holds {len(extra)} frozen tensors: give it only what trains "
                       "(the head, or [p for p in model.parameters() if p.requires_grad]); frozen tensors in "
                       "an optimiser waste its memory and get moved by weight decay the moment you unfreeze")
    return passed(f"the optimiser holds the head's {sum(p.numel() for p in head.parameters()):,} parameters "
                  "and nothing frozen")


# ---------------------------------------------------------------- 7. discriminative rates
def exercise7(param_groups, model: nn.Module, n_frozen: int, lr: float) -> CheckResult:
    """Fine-tuning's parameter groups: every trainable group's parameters once, none frozen, the head at
    ``lr`` and smaller rates for earlier groups (non-increasing towards the input)."""
    if is_placeholder(param_groups):
        return not_yet("replace `...` with a list of {'params': ..., 'lr': ...} dicts, one per trained group, "
                       "the head at lr and smaller rates for earlier groups")
    if not isinstance(param_groups, (list, tuple)) or not all(isinstance(g, dict) and "params" in g
                                                              for g in param_groups):
        raise ValueError("exercise7 expects a list of dicts with 'params' (and 'lr'), as torch.optim takes, "
                         f"got {type(param_groups).__name__}")
    lr = as_number(lr, "exercise7's lr")
    groups = list(model.children())
    trained = groups[n_frozen:]
    owner = {id(p): i for i, g in enumerate(groups) for p in g.parameters()}
    rate_of: dict[int, set[float]] = {}
    seen: list[int] = []
    for g in param_groups:
        rate = float(g.get("lr", lr))
        params = g["params"]
        if isinstance(params, torch.Tensor):
            params = [params]
        elif not isinstance(params, (list, tuple)):
            g["params"] = params = list(params)   # a generator is used up once: keep the dict usable
        for p in params:
            seen.append(id(p))
            rate_of.setdefault(owner.get(id(p), -1), set()).add(rate)
    if len(seen) != len(set(seen)):
        return not_yet("a parameter appears in two groups: torch.optim refuses that; give each group's "
                       "parameters once")
    frozen = [i for i in rate_of if 0 <= i < n_frozen]
    if frozen:
        return not_yet(f"the groups hold parameters of frozen group(s) {frozen}: only groups {n_frozen} to "
                       f"{len(groups) - 1} train; leave the frozen ones out of the optimiser")
    wanted = {id(p) for g in trained for p in g.parameters()}
    if not wanted <= set(seen):
        missing = sorted({owner[i] for i in wanted - set(seen)})
        return not_yet(f"group(s) {missing} train but are in no parameter group: they would never update")
    if rate_of[len(groups) - 1] != {lr}:
        return not_yet(f"the head's rate is {sorted(rate_of[len(groups) - 1])}, expected lr = {lr:g}: the new "
                       "head learns fastest, at the rate the range test gave")
    rates = [max(rate_of[i]) for i in range(n_frozen, len(groups))]
    if len(set(rates)) == 1:
        return not_yet("every group has the same rate: discriminative rates give earlier groups (general "
                       "features, already good) smaller steps than the head")
    if any(b < a for a, b in zip(rates, rates[1:])):
        return not_yet(f"rates from the first trained group to the head: {[f'{r:.0e}' for r in rates]}; they "
                       "must not shrink towards the head: earlier layers get the smaller rates")
    return passed(f"{len(rates)} groups train, rates {' -> '.join(f'{r:.0e}' for r in rates)} (head at lr)")


# ---------------------------------------------------------------- 2. evaluation (used from section 3 on)
def reference_evaluate(model: nn.Module, loader) -> float:
    """Accuracy of ``model`` on ``loader``: eval mode (BatchNorm's stored statistics, no dropout), no gradients."""
    model.eval()
    device = next(model.parameters()).device
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
            total += len(y)
    return correct / total


class _DropoutProbe(_StepRecorder):
    """The step recorder with dropout in front: in train mode its answers change, in eval mode they do not."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.9)

    def forward(self, x):
        return super().forward(self.drop(x))


def exercise2(evaluate: Callable) -> CheckResult:
    """``evaluate(model, loader) -> accuracy``: in eval mode, without gradients, over every batch."""
    if is_placeholder(evaluate):
        return not_yet("write the function evaluate(model, loader) that returns the accuracy (a fraction)")
    if not callable(evaluate):
        raise ValueError(f"exercise2 expects your function evaluate, got {type(evaluate).__name__}")
    x, y = _blobs(50, seed=1).tensors
    data = TensorDataset(x, torch.cat([y[:30], 1 - y[30:]]))   # later batches mislabelled: every batch counts
    model = _DropoutProbe()
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[-1.0, 1.0], [1.0, -1.0]]))
        model.fc.bias.zero_()
    loader = DataLoader(data, batch_size=16)
    model.train()
    try:
        got = evaluate(model, loader)
    except Exception as exc:  # noqa: BLE001 - the student's code
        return not_yet(f"evaluate raised {_first_line(exc)}")
    if got is None or got is Ellipsis:
        return not_yet("evaluate must return the accuracy")
    got = as_number(got, "exercise2", "an accuracy (a float)")
    if any(model.modes):
        return not_yet("the model ran in training mode: call model.eval() before evaluating. In train mode "
                       "dropout drops features and BatchNorm uses (and updates!) the batch's statistics, so "
                       "the accuracy is not the model's and evaluating changes it")
    if any(model.grad_enabled):
        return not_yet("evaluation ran with gradients on: wrap it in torch.no_grad() (or torch.inference_mode()) "
                       "— nothing trains here, and the graph costs memory and time")
    truth = reference_evaluate(copy.deepcopy(model), loader)
    if got > 1:
        return not_yet(f"{got:g} is a count, not an accuracy: divide by the number of photos")
    if abs(got - truth) > 1e-6:
        return not_yet(f"you report {got:.3f}, the model's accuracy over all {len(data)} examples is {truth:.3f}: "
                       "count over every batch (the last one may be smaller) and divide by the total")
    return passed(f"eval mode, no gradients, all {len(data)} examples: accuracy {got:.3f}")
