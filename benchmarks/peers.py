"""Section "peers": the course's recommended path against the recipes a user would pick instead.

Every arm uses the same backbone weights (EfficientNet-Lite0, the course's offline ImageNet weights), the same
photos (the course's Oxford-IIIT Pet split: the task's ``train`` part to train, its ``test`` part to score), the
same image size and the same machine, in one run. Each arm is scored on the test photos after every epoch (a race,
not a model choice: the benchmark reads the clock, the lessons choose on validation), and its clock starts before
the photos are decoded, so data preparation counts.

Races: cat vs dog to ``--target-acc`` test accuracy (default 90 %), and the 12 cat breeds to the course's own test
**balanced** accuracy (what the course's path reaches; the breeds are imbalanced, so plain accuracy would reward
guessing the big breeds). Each at 128 px and 224 px.

Arms:

* ``course``: ``run_strategy("feature_extraction", ...)`` (the frozen backbone runs once, a linear head trains on
  cached activations; the course's recommended path on a CPU).
* ``fastai``: ``vision_learner(dls, <the course's backbone>)`` and ``fine_tune()`` with fastai's defaults: one frozen
  epoch, then unfrozen at ``base_lr / 2`` with discriminative rates, one-cycle schedules, ``aug_transforms()``,
  fastai's own head (concat pooling, BatchNorm, dropout, two linear layers). Needs the ``benchmarks`` extra.
* ``keras``: the Keras transfer-learning guide on Keras 3's PyTorch backend: frozen base + new head (Adam,
  ``RandomFlip`` + ``RandomRotation(0.1)`` augmentation, dropout 0.2) until validation stops improving, then the
  whole model unfrozen at 1e-5. The backbone is wrapped in ``keras.layers.TorchModuleWrapper`` inside a subclassed
  ``keras.Model`` (the functional API cannot call the wrapper). Needs the ``benchmarks`` extra.
* ``pytorch_tutorial``: the PyTorch "Transfer Learning for Computer Vision" tutorial: the whole network trained, SGD
  lr 0.001 momentum 0.9, StepLR(7, 0.1), batch 4, RandomResizedCrop + RandomHorizontalFlip.

An arm that does not reach the target within ``peer_budget_s`` is reported with its best score and a ratio that is
a lower bound.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from .config import Config, clear_decoded_images, fresh_cache

__all__ = ["Race", "Score", "ARMS", "races", "measure", "course_arm", "fastai_arm", "keras_arm", "tutorial_arm"]

SIZES = (128, 224)


@dataclass
class Race:
    """One race: a task, the metric raced on, its target (None: set by the course arm's own final score)."""

    kind: str               # pets task kind
    metric: str             # "accuracy" or "balanced_accuracy"
    target: float | None
    image_size: int

    @property
    def name(self) -> str:
        return f"{self.kind} @ {self.image_size} px"


@dataclass
class Score:
    """The clock of one arm: (seconds since its start, test metric) after each epoch, and when to stop."""

    target: float | None
    budget_s: float
    t0: float | None = None     # default: now
    points: list[tuple[float, float]] = field(default_factory=list)
    stopped: str = ""

    def __post_init__(self) -> None:
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def add(self, value: float) -> bool:
        """Record one epoch's test score; True when the arm should stop (target reached or budget spent)."""
        elapsed = time.perf_counter() - (self.t0 or 0.0)
        self.points.append((round(elapsed, 3), round(float(value), 4)))
        if self.target is not None and value >= self.target:
            self.stopped = f"reached {self.target:.1%}"
        elif elapsed >= self.budget_s:
            self.stopped = f"time budget of {self.budget_s:.0f} s spent"
        return bool(self.stopped)

    @property
    def seconds_to_target(self) -> float | None:
        if self.target is None:
            return None
        return next((s for s, v in self.points if v >= self.target), None)

    def result(self, **extra) -> dict:
        best = max((v for _, v in self.points), default=None)
        return {"seconds_to_target": self.seconds_to_target, "points": self.points, "best": best,
                "epochs": len(self.points), "total_s": round(time.perf_counter() - (self.t0 or 0.0), 3),
                "stopped": self.stopped or "all epochs done", **extra}


def _metric(metric: str, labels: torch.Tensor, preds: torch.Tensor, num_classes: int) -> float:
    from tlwidgets.metrics import classification_metrics

    return float(getattr(classification_metrics(labels, preds, num_classes), metric))


def _task(race: Race):
    from tlwidgets import pets_task

    clear_decoded_images()
    return pets_task(race.kind, image_size=race.image_size)


def _predict(model: torch.nn.Module, images: torch.Tensor, norm, device) -> torch.Tensor:
    """Class predictions of ``model`` for uint8 images, normalised as the backbone expects, in batches of 64."""
    mean = torch.tensor(norm[0]).view(1, 3, 1, 1)
    std = torch.tensor(norm[1]).view(1, 3, 1, 1)
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), 64):
            x = ((images[i:i + 64].float() / 255 - mean) / std).to(device)
            out.append(model(x).argmax(1).cpu())
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------------------------
# the arms
# ---------------------------------------------------------------------------------------------------------------
def course_arm(race: Race, cfg: Config) -> dict:
    """The course's recommended path, end to end: decode, cache the frozen backbone's activations, train the head
    for 10 epochs, keep the best validation epoch, score the test photos once.

    Unlike the peers it is not stopped early at the target (its one test score is read after the whole run), so its
    time is an upper bound on its time to the target."""
    from tlwidgets import run_strategy

    score = Score(race.target, float("inf"))
    with fresh_cache(cfg, f"peers-course-{race.kind}-{race.image_size}"):
        task = _task(race)
        r = run_strategy("feature_extraction", task, num_epochs=10, device=cfg.device, seed=0, progress=False)
    final = float(getattr(r.test, race.metric)) if r.test is not None else float(r.test_acc)
    score.add(final)
    return score.result(final=round(final, 4), arm="course", n_train=len(task.train), n_test=len(task.test))


def tutorial_arm(race: Race, cfg: Config) -> dict:
    """The PyTorch tutorial's fine-tuning recipe at the race's image size (see the module docstring)."""
    from torchvision.transforms import v2

    from tlwidgets import build_backbone, replace_head
    from tlwidgets.infra import seed_everything

    seed_everything(0)
    score = Score(race.target, cfg.peer_budget_s)
    task = _task(race)
    size = race.image_size
    model = replace_head(build_backbone("efficientnet_lite0", pretrained=True), task.num_classes, task.classes)
    model = model.to(cfg.device)
    for p in model.parameters():
        p.requires_grad_(True)
    aug = v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()])
    train = task.train
    loader = torch.utils.data.DataLoader(train, batch_size=cfg.peer_batch_size, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)
    for _ in range(cfg.peer_max_epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(aug(x).to(cfg.device)), y.to(cfg.device)).backward()
            opt.step()
        sched.step()
        preds = _predict(model, task.test.images, task.test.normalization, cfg.device)
        if score.add(_metric(race.metric, task.test.labels, preds, task.num_classes)):
            break
    return score.result(arm="pytorch_tutorial", batch_size=cfg.peer_batch_size)


def fastai_arm(race: Race, cfg: Config) -> dict:
    """fastai's ``vision_learner`` + ``fine_tune`` with its defaults, on the course's backbone and photos."""
    from fastai.callback.core import Callback
    from fastai.vision.all import (
        BalancedAccuracy,
        CancelFitException,
        CategoryBlock,
        DataBlock,
        ImageBlock,
        IndexSplitter,
        Normalize,
        PILImage,
        accuracy,
        aug_transforms,
        vision_learner,
    )

    from tlwidgets import build_backbone
    from tlwidgets.infra import seed_everything

    seed_everything(0)
    score = Score(race.target, cfg.peer_budget_s)
    task = _task(race)
    images = torch.cat([task.train.images, task.test.images])
    labels = torch.cat([task.train.labels, task.test.labels]).tolist()
    n_train = len(task.train)

    def arch(pretrained: bool = True, **_):
        """The course's ImageNet EfficientNet-Lite0, as timm built it; fastai cuts it at its pooling layer."""
        return build_backbone("efficientnet_lite0", pretrained=pretrained)

    block = DataBlock(blocks=(ImageBlock, CategoryBlock),
                      get_x=lambda i: PILImage.create(images[i].permute(1, 2, 0).numpy()),
                      get_y=lambda i: task.classes[labels[i]],
                      splitter=IndexSplitter(range(n_train, len(labels))),
                      batch_tfms=[*aug_transforms(), Normalize.from_stats(*task.test.normalization)])
    dls = block.dataloaders(list(range(len(labels))), bs=64, num_workers=0, device=cfg.device)

    class RaceClock(Callback):
        """Reads the epoch's test score from fastai's own validation pass (the valid set is the test photos)."""

        order = 90   # after the Recorder has logged the epoch's metric

        def after_epoch(self) -> None:
            if score.add(float(self.recorder.values[-1][-1])):
                raise CancelFitException()

        def before_fit(self) -> None:
            if score.stopped:
                raise CancelFitException()

    metric = accuracy if race.metric == "accuracy" else BalancedAccuracy()
    learn = vision_learner(dls, arch, normalize=False, pretrained=True, metrics=[metric], cbs=[RaceClock()])
    learn.fine_tune(max(cfg.peer_max_epochs - 1, 1))
    return score.result(arm="fastai", batch_size=64)


def keras_arm(race: Race, cfg: Config) -> dict:
    """The Keras guide's recipe (frozen base + head until it stops improving, then all at 1e-5) on Keras 3 + torch."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from tlwidgets import build_backbone
    from tlwidgets.infra import seed_everything

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"Keras runs on the {keras.backend.backend()!r} backend; set KERAS_BACKEND=torch "
                           "before the first `import keras`")
    seed_everything(0)
    keras.utils.set_random_seed(0)
    score = Score(race.target, cfg.peer_budget_s)
    task = _task(race)
    base = build_backbone("efficientnet_lite0", pretrained=True)[:-1]   # everything up to the pooled features
    mean = torch.tensor(task.test.normalization[0]).view(1, 3, 1, 1)
    std = torch.tensor(task.test.normalization[1]).view(1, 3, 1, 1)

    class Base(torch.nn.Module):
        """NHWC floats in [0, 255] -> the backbone's pooled features (Keras images are channels-last)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = base

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.permute(0, 3, 1, 2) / 255
            return self.net((x - mean.to(x.device)) / std.to(x.device)).flatten(1)

    class Classifier(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.augment = [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1)]
            self.base = keras.layers.TorchModuleWrapper(Base())
            self.dropout = keras.layers.Dropout(0.2)
            self.head = keras.layers.Dense(task.num_classes)

        def call(self, x, training=False):
            for layer in self.augment:
                x = layer(x, training=training)
            # the guide's `base_model(x, training=False)`: BatchNorm stays in inference mode in both stages
            return self.head(self.dropout(self.base(x, training=False), training=training))

    def nhwc(images: torch.Tensor):
        return images.permute(0, 2, 3, 1).float().numpy()

    x_train, y_train = nhwc(task.train.images), task.train.labels.numpy()
    x_test = nhwc(task.test.images)
    x_val, y_val = nhwc(task.val.images), task.val.labels.numpy()   # the guide's early stopping reads validation

    class RaceClock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None) -> None:
            preds = torch.as_tensor(self.model.predict(x_test, batch_size=64, verbose=0)).argmax(1)
            if score.add(_metric(race.metric, task.test.labels, preds, task.num_classes)):
                self.model.stop_training = True

    model = Classifier()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for p in base.parameters():      # stage 1: the base frozen (the guide's base_model.trainable = False)
        p.requires_grad_(False)
    model.base.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(), loss=loss)
    stop_stage = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model.fit(x_train, y_train, batch_size=32, epochs=cfg.peer_max_epochs, verbose=0,
              validation_data=(x_val, y_val), callbacks=[RaceClock(), stop_stage])
    if not score.stopped or score.stopped.startswith("all"):
        for p in base.parameters():  # stage 2: everything unfrozen at 1e-5 (BatchNorm stays in inference mode)
            p.requires_grad_(True)
        model.base.trainable = True
        model.compile(optimizer=keras.optimizers.Adam(1e-5), loss=loss)
        model.fit(x_train, y_train, batch_size=32, epochs=cfg.peer_max_epochs, verbose=0, callbacks=[RaceClock()])
    return score.result(arm="keras", batch_size=32)


ARMS: dict[str, Callable[[Race, Config], dict]] = {
    "course": course_arm, "fastai": fastai_arm, "keras": keras_arm, "pytorch_tutorial": tutorial_arm}


def races(cfg: Config) -> Iterator[Race]:
    sizes = (128,) if cfg.quick else SIZES
    for size in sizes:
        yield Race("cat_vs_dog", "accuracy", cfg.target_acc, size)
        yield Race("cat_breeds", "balanced_accuracy", None, size)


def measure(cfg: Config) -> dict:
    """Every race, every arm; each peer's ratio to the course (a lower bound where the peer never got there)."""
    settings = {"target_acc": cfg.target_acc, "peer_budget_s": cfg.peer_budget_s,
                "peer_max_epochs": cfg.peer_max_epochs, "tutorial_batch_size": cfg.peer_batch_size}
    if not cfg.has_pets:
        return {"measured": False, **settings}
    out = []
    for race in races(cfg):
        print(f"   race {race.name} ({race.metric})", flush=True)
        course = course_arm(race, cfg)
        if race.target is None:      # race the peers to what the course reached
            race.target = course["final"]
        course["seconds_to_target"] = course["total_s"] if course["final"] >= race.target else None
        arms = {"course": course}
        for name, arm in ARMS.items():
            if name == "course":
                continue
            try:
                arms[name] = arm(race, cfg)
            except ImportError as exc:
                arms[name] = {"arm": name, "error": f"not installed ({exc.name}): pip install -e '.[benchmarks]'"}
            c, p = course["seconds_to_target"], arms[name].get("seconds_to_target")
            if c and "error" not in arms[name]:
                arms[name]["ratio_is_lower_bound"] = p is None
                arms[name]["ratio"] = round((arms[name]["total_s"] if p is None else p) / c, 2)
            print(f"     {name}: {arms[name].get('seconds_to_target')} s to target "
                  f"(best {arms[name].get('best')}, ratio {arms[name].get('ratio')})", flush=True)
        out.append({"race": race.name, "kind": race.kind, "metric": race.metric, "target": race.target,
                    "image_size": race.image_size, "arms": arms})
    return {"measured": True, **settings, "races": out}
