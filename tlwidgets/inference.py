"""Inference copies: the same eval-mode function as a network, computed with less work.

Why: the course runs frozen networks forward far more often than it trains
them: every cached feature set, every pooled cut, every test split read once.
In eval mode a BatchNorm is a fixed per-channel scale and shift, so it can be
folded into the convolution that feeds it (torch's own
:func:`torch.nn.utils.fusion.fuse_conv_bn_eval` does the arithmetic): one
layer's pass over the activations instead of two. On a CPU the copy also runs
in channels_last (NHWC) order, which oneDNN's convolutions prefer. Measured on
this course's quiet 2-core CPU (``docs/benchmarks.md``, forward pass, alternating):
EfficientNet-Lite0 at 128 px, 168 img/s in NHWC as stored, 244 img/s folded
(batch 32); 163 vs 211 img/s (batch 64).

The copy computes the same function up to float rounding (relative difference
about 3e-6 on those features, the size of the differences torch's own
convolutions show between batch sizes); the model given is never changed, so
training, freezing and ``frozen_bn`` modes are untouched.

Only pairs whose order is known are folded: a convolution directly followed
by a BatchNorm inside an ``nn.Sequential`` (run in order by definition), and
the named pairs of the timm and torchvision blocks the course's backbones are
made of, read from those blocks' ``forward``. Anything else runs as it is.
"""
from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["inference_copy", "fold_batchnorm", "has_convolutions", "as_channels_last", "MIN_INPUTS"]

#: Fewer inputs than this run through the model as it is: copying and folding EfficientNet-Lite0 costs about
#: 40 ms on one thread, more than folding saves on a few photos (one 224-px photo: 28 ms as it is, 99 ms with
#: the copy made for it).
MIN_INPUTS = 32

M = TypeVar("M", bound=nn.Module)

#: (convolution, norm) attribute pairs, in the order each block's ``forward`` runs them with nothing in between
#: (timm ``_efficientnet_blocks``, torchvision ``resnet``); keyed by (module prefix, class name).
_BLOCK_PAIRS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("timm", "InvertedResidual"): (("conv_s2d", "bn_s2d"), ("conv_pw", "bn1"), ("conv_dw", "bn2"),
                                   ("conv_pwl", "bn3")),
    ("timm", "DepthwiseSeparableConv"): (("conv_s2d", "bn_s2d"), ("conv_dw", "bn1"), ("conv_pw", "bn2")),
    ("timm", "ConvBnAct"): (("conv", "bn1"),),
    ("torchvision", "ResNet"): (("conv1", "bn1"),),
    ("torchvision", "BasicBlock"): (("conv1", "bn1"), ("conv2", "bn2")),
    ("torchvision", "Bottleneck"): (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
}


def _norm_replacement(norm: nn.Module) -> nn.Module | None:
    """What stays of ``norm`` once folded into the convolution before it, or None when it cannot be folded.

    A plain BatchNorm2d leaves nothing; timm's BatchNormAct2d (norm, then its dropout, then its activation)
    leaves its dropout and activation. Other norms, and BatchNorms without running statistics, are not folded.
    """
    if not isinstance(norm, nn.BatchNorm2d) or not norm.track_running_stats or norm.running_mean is None:
        return None
    if type(norm) is nn.BatchNorm2d:
        return nn.Identity()
    if type(norm).__name__ == "BatchNormAct2d" and type(norm).__module__.startswith("timm."):
        drop, act = norm.drop, norm.act
        assert isinstance(drop, nn.Module) and isinstance(act, nn.Module)
        return nn.Sequential(drop, act)
    return None


def _fold_pair(parent: nn.Module, conv_name: str, norm_name: str) -> bool:
    conv, norm = parent._modules.get(conv_name), parent._modules.get(norm_name)
    if not isinstance(conv, nn.Conv2d) or not isinstance(norm, nn.BatchNorm2d):
        return False
    rest = _norm_replacement(norm)
    if rest is None or norm.num_features != conv.out_channels:
        return False
    parent._modules[conv_name] = fuse_conv_bn_eval(conv, norm)   # a copy of conv with the norm in its weights
    parent._modules[norm_name] = rest
    return True


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm that directly follows a convolution into it, in place; returns how many were folded.

    In place and eval-only: the model must be in eval mode (its BatchNorms then use their stored statistics, the
    only case where folding keeps the function). :func:`inference_copy` is the safe way to call it.
    """
    if any(m.training for m in model.modules()):
        raise ValueError("fold_batchnorm needs a model in eval mode (call .eval() first): in train mode a "
                         "BatchNorm normalises with each batch's statistics, which cannot be folded into weights")
    folded = 0
    for parent in list(model.modules()):
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            for a, b in zip(names, names[1:]):
                folded += _fold_pair(parent, a, b)
            continue
        owner = type(parent).__module__.split(".")[0]
        for conv_name, norm_name in _BLOCK_PAIRS.get((owner, type(parent).__name__), ()):
            folded += _fold_pair(parent, conv_name, norm_name)
    return folded


def has_convolutions(model: nn.Module) -> bool:
    """Whether ``model`` holds a 2-d convolution (only then do folding and channels_last change anything)."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


@torch.no_grad()
def inference_copy(model: M, *, channels_last: bool = False, n_inputs: int | None = None) -> M:
    """An eval-mode copy of ``model`` for forward passes only: BatchNorms folded, optionally channels_last.

    ``model`` itself is returned, untouched (in whatever mode it is: the caller puts it in eval mode), when it
    holds no convolution (nothing to fold: a head on cached features, a text model) or when ``n_inputs`` (how
    many inputs the copy would see, when known) is below :data:`MIN_INPUTS`, so the call costs nothing there.
    Feed a channels_last copy channels_last inputs (:func:`as_channels_last`), and only a copy: test
    ``copy is not model``.
    """
    if not has_convolutions(model) or (n_inputs is not None and n_inputs < MIN_INPUTS):
        return model
    with torch.inference_mode(False):   # called from predict_proba's inference mode: the copy is a normal module
        twin = copy.deepcopy(model).eval()
        for p in twin.parameters():
            p.requires_grad_(False)
        fold_batchnorm(twin)
        if channels_last:
            twin.to(memory_format=torch.channels_last)
    return twin


def as_channels_last(x: torch.Tensor) -> torch.Tensor:
    """A batch of images (4-d) in channels_last order, what a channels_last copy is fed; other inputs as they are."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
