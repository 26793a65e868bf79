"""A task in another domain's clothes: digits as photos (for an ImageNet model), photos as digits (for the digit CNN).

Why a module of its own: lesson 5 asks which source helps which target, so
each source model must look at each target's images. Converting a task is a
data concern (pixels and their normalisation), not a training one; the copy
is made with :func:`dataclasses.replace`, so every field the conversion does
not change (the validation split and its note, the class names, the sample
size, the augmentation) is kept, and a field added to :class:`Task` later is
kept too.
"""
from __future__ import annotations

import dataclasses

import torch
from torch.utils.data import Dataset, TensorDataset

from ..infra import short_hash
from ..inputs import MNIST_MEAN, MNIST_NORMALIZATION, MNIST_STD, backbone_normalization
from ..validate import check_int
from .photos import ImageTensorDataset
from .tasks import Task, dataset_tensors

__all__ = ["as_photos", "as_digits"]


def as_photos(task: Task, image_size: int = 64, backbone: str = "efficientnet_lite0") -> Task:
    """A digit task as 3-channel photos of ``image_size`` px, normalised for ``backbone``; ``val`` converted too.

    So an ImageNet model can look at MNIST: undo MNIST's normalisation, repeat
    the grey channel three times, resize (antialiased).
    """
    from torch.nn.functional import interpolate

    image_size = check_int("image_size", image_size, min=8, max=1024)
    norm = backbone_normalization(backbone)

    def convert(data: Dataset) -> ImageTensorDataset:
        x, y = dataset_tensors(data)
        x = (x * MNIST_STD + MNIST_MEAN).clamp(0, 1)
        x = interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8).repeat(1, 3, 1, 1)
        return ImageTensorDataset(x, y, *norm)

    return dataclasses.replace(
        task, name=f"{task.name} as {image_size}px photos", train=convert(task.train), test=convert(task.test),
        val=None if task.val is None else convert(task.val), input_size=(3, image_size, image_size),
        fingerprint=short_hash("as_photos", task.cache_key, image_size, backbone), augment=None,
        kind="photos", normalization=norm)


def as_digits(task: Task) -> Task:
    """A photo task as 28x28 grey "digits" normalised like MNIST, so the digit network can look at it."""
    from torch.nn.functional import interpolate

    def convert(data: Dataset) -> TensorDataset:
        if not isinstance(data, ImageTensorDataset):
            raise TypeError(f"as_digits() needs a photo task (ImageTensorDataset), got {type(data).__name__}")
        x = data.images.float().div(255).mean(1, keepdim=True)
        x = interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
        return TensorDataset((x - MNIST_MEAN) / MNIST_STD, data.labels)

    return dataclasses.replace(
        task, name=f"{task.name} as 28px grey", train=convert(task.train), test=convert(task.test),
        val=None if task.val is None else convert(task.val), input_size=(1, 28, 28),
        fingerprint=short_hash("as_digits", task.cache_key), augment=None, kind="digits",
        normalization=MNIST_NORMALIZATION)
