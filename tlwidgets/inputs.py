"""What a model's inputs look like: per-channel mean and std, and image size (timm's ``pretrained_cfg`` habit).

Why a module of its own: a task is normalised when it is built (before any
model exists) and a model records the input its weights expect; both must
read the same numbers from the same place. Models (:mod:`tlwidgets.models`)
and data (:mod:`tlwidgets.data`) both import this module and neither imports
the other, so there is no loop between them. The numbers come from the
library that ships the weights (timm's ``pretrained_cfg``, torchvision's
``Weights.transforms()``), except MNIST's, which are the course's own (the
digit CNN was trained on MNIST normalised this way) and live here once.
Core module: imports neither ipywidgets nor matplotlib, nor any other part of
the package except the argument check.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .validate import check_choice

__all__ = ["Normalization", "InputConfig", "MNIST_MEAN", "MNIST_STD", "MNIST_NORMALIZATION", "MNIST_INPUT",
           "BACKBONES", "backbone_input_config", "backbone_normalization", "timm_input_config",
           "torchvision_weights", "torchvision_input_config"]

#: ``(mean, std)`` per input channel, as the pixels were normalised.
Normalization = tuple[tuple[float, ...], tuple[float, ...]]


class InputConfig(NamedTuple):
    """The input a model expects: per-channel ``mean`` and ``std`` (on [0, 1] pixels) and square image size."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int

    @property
    def normalization(self) -> Normalization:
        """``(mean, std)``: what a :class:`tlwidgets.data.Task` records as its ``normalization``."""
        return self.mean, self.std


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
#: The ``(mean, std)`` a digit task carries and the digit CNN expects (one channel).
MNIST_NORMALIZATION: Normalization = ((MNIST_MEAN,), (MNIST_STD,))
#: The digit CNN's input: 28x28 greyscale, normalised like MNIST.
MNIST_INPUT = InputConfig((MNIST_MEAN,), (MNIST_STD,), 28)

#: The ImageNet backbones the course supports, by name.
BACKBONES = ("efficientnet_lite0", "resnet18", "mobilenet_v3_small")


def timm_input_config(cfg: Any) -> InputConfig:
    """The :class:`InputConfig` recorded in a timm ``pretrained_cfg`` (a dict or a ``PretrainedCfg``)."""
    get: Callable[[str], Any] = cfg.get if isinstance(cfg, Mapping) else functools.partial(getattr, cfg)
    return InputConfig(tuple(float(v) for v in get("mean")), tuple(float(v) for v in get("std")),
                       int(get("input_size")[-1]))


def torchvision_weights(name: str) -> Any:
    """torchvision's ImageNet-1k weights enum for the torchvision backbone ``name`` (nothing downloaded)."""
    import torchvision.models as tvm

    name = check_choice("torchvision backbone", name, ("resnet18", "mobilenet_v3_small"))
    return {"resnet18": tvm.ResNet18_Weights.IMAGENET1K_V1,
            "mobilenet_v3_small": tvm.MobileNet_V3_Small_Weights.IMAGENET1K_V1}[name]


def torchvision_input_config(weights: Any) -> InputConfig:
    """The :class:`InputConfig` of torchvision ``weights``, from their own ``transforms()`` preset."""
    preset = weights.transforms()   # torchvision's own preprocessing for these weights (builds no network)
    return InputConfig(tuple(float(v) for v in preset.mean), tuple(float(v) for v in preset.std),
                       int(preset.crop_size[0]))


@functools.cache
def backbone_input_config(name: str) -> InputConfig:
    """What ``name``'s pretrained weights expect, read from the library that ships them; nothing downloaded.

    EfficientNet-Lite0 from timm's ``pretrained_cfg`` of ``tf_efficientnet_lite0``
    (inputs scaled to [-1, 1]: mean = std = 0.5), the torchvision backbones from
    their ``Weights.transforms()`` (ImageNet mean/std). Why not a table of our
    own: the library that trained the weights is the authority, and a copy can
    drift from it. Photo tasks are built before any model exists, so this
    answers without building one; a misspelt name is refused, not given
    ImageNet's numbers. Cached: the first call imports timm (seconds).
    """
    name = check_choice("backbone", name, BACKBONES)
    if name == "efficientnet_lite0":
        import timm

        return timm_input_config(timm.models.get_pretrained_cfg("tf_efficientnet_lite0"))
    return torchvision_input_config(torchvision_weights(name))


def backbone_normalization(name: str) -> Normalization:
    """``(mean, std)`` the pretrained backbone ``name`` expects (see :func:`backbone_input_config`).

    Photo tasks are normalised for a backbone when they are built: feeding a model images normalised for
    another one still "works" but costs accuracy (EfficientNet-Lite0 species top-1 at 128 px: 0.80 with
    its own [-1, 1] scaling, 0.74 with ImageNet mean/std).
    """
    return backbone_input_config(name).normalization
