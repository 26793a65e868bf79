"""Using a pretrained model as is: ImageNet's dog and cat classes, and photos turned into the input a model expects.

Why a module of its own: lesson 1 (prediction) and lesson 6 (dogs -> cats)
read an ImageNet model's outputs as species, so the blocks of ImageNet-1k
that are dogs and domestic cats are written here once (:data:`DOG_CLASSES`,
:data:`CAT_CLASSES`, checked against the class list), and a photo must reach
a pretrained model exactly as its weights expect (:func:`image_to_tensor`,
:func:`model_inputs`). Core module: it imports neither ipywidgets nor
matplotlib, so the exercise checks and the tests can use it without a front end.
"""
from __future__ import annotations

from collections.abc import Sequence, Sized
from typing import Any, cast

import torch
from torch.utils.data import Dataset

from .images import preprocess
from .models import GroupedModel, imagenet_classes, input_channels

__all__ = ["DOG_CLASSES", "CAT_CLASSES", "DOMESTIC_CAT_NAMES", "imagenet_class_groups", "imagenet_species",
           "species_predictions", "image_to_tensor", "model_inputs"]

# ImageNet-1k is ordered by WordNet synset: all 118 dog breeds form one contiguous block (151 "Chihuahua"
# .. 268 "Mexican hairless"), and the five domestic cats another (281 "tabby" .. 285 "Egyptian cat").
# Wild cats (286 "cougar", 287 "lynx", ...) follow but are not pets. Lesson 1 prints the names to verify.
DOG_CLASSES = range(151, 269)
CAT_CLASSES = range(281, 286)
DOMESTIC_CAT_NAMES = ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat")


def _check_order(names: Sequence[str]) -> bool:
    return len(names) == 1000 and names[DOG_CLASSES[0]] == "Chihuahua" \
        and names[DOG_CLASSES[-1]] == "Mexican hairless" and tuple(names[i] for i in CAT_CLASSES) == DOMESTIC_CAT_NAMES


def _check_ranges() -> None:
    """Fail loudly if torchvision's class list is not the ImageNet-1k order the ranges assume."""
    if not _check_order(imagenet_classes()):
        raise RuntimeError("the ImageNet class list is not in the expected ImageNet-1k order; "
                           "DOG_CLASSES / CAT_CLASSES would be wrong")


def imagenet_class_groups(classes: Sequence[str]) -> dict[str, list[int]]:
    """Indices of ImageNet-1k's 118 dog classes (151..268) and 5 domestic-cat classes (281..285) in ``classes``.

    ``classes`` is the model's own class list; it must be in ImageNet-1k's standard order (checked), so a
    model with other outputs is refused instead of having arbitrary outputs called dogs and cats.
    """
    if len(classes) != 1000:
        raise ValueError(f"expected the 1000 ImageNet-1k class names, got {len(classes)}")
    if not _check_order(list(classes)):
        raise ValueError("the class list is not in ImageNet-1k's standard order (151 Chihuahua ... 285 Egyptian cat)")
    return {"dogs": list(DOG_CLASSES), "cats": list(CAT_CLASSES)}


def imagenet_species(index: int) -> str:
    """'dog', 'cat' or 'other' for an ImageNet-1k class index."""
    index = int(index)
    if not 0 <= index < 1000:
        raise ValueError(f"ImageNet-1k class indices run 0..999, got {index}")
    return "dog" if index in DOG_CLASSES else "cat" if index in CAT_CLASSES else "other"


def species_predictions(probs: torch.Tensor, rule: str = "top1") -> list[str]:
    """Turn ImageNet probabilities (N x 1000) into 'dog' / 'cat' / 'other' per image.

    ``rule="top1"``: the species of the single most likely class (a lynx or a
    teddy bear gives 'other'). ``rule="mass"``: compare the total probability
    of all dog classes with that of all cat classes, which is never 'other':
    a photo the model splits between 30 dog breeds still counts as a dog.
    """
    probs = torch.as_tensor(probs)
    if probs.dim() != 2 or probs.shape[1] != 1000:
        raise ValueError(f"expected ImageNet probabilities of shape (N, 1000), got {tuple(probs.shape)}")
    _check_ranges()
    if rule == "top1":
        return [imagenet_species(i) for i in probs.argmax(1).tolist()]
    if rule == "mass":
        dog = probs[:, DOG_CLASSES.start:DOG_CLASSES.stop].sum(1)
        cat = probs[:, CAT_CLASSES.start:CAT_CLASSES.stop].sum(1)
        return ["dog" if d > c else "cat" for d, c in zip(dog.tolist(), cat.tolist())]
    raise ValueError(f"rule must be 'top1' or 'mass', got {rule!r}")


def image_to_tensor(image: Any, model: GroupedModel | None = None, *, size: int | None = None,
                    mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> torch.Tensor:
    """One photo (a path, a PIL image or an HxWx3 uint8 array) as the normalised CHW tensor a model expects.

    The same preprocessing as the course's photo tasks, through the package's
    one decoder (:func:`tlwidgets.images.decode_image`: EXIF orientation,
    16-bit, transparency and CMYK handled): resize the short side to
    ``size``, centre-crop a square, scale to [0, 1], normalise with the
    model's ``mean``/``std`` (taken from ``model`` unless given). The image is
    converted to the channels the model takes (greyscale for a 1-channel
    model, RGB otherwise).

    Args:
        image: a path, a PIL image, a NumPy array or bytes.
        model: the model the tensor is for; supplies ``size``, ``mean``, ``std`` and the channels.
        size: the side of the square input (overrides the model's ``image_size``).
        mean: per-channel means (overrides the model's).
        std: per-channel standard deviations (overrides the model's).
    """
    channels = None
    if model is not None:
        size = size or model.image_size
        mean = mean if mean is not None else model.mean
        std = std if std is not None else model.std
        channels = input_channels(model)
    if size is None or mean is None or std is None:
        raise ValueError("give a model, or size, mean and std")
    channels = channels or (1 if len(mean) == 1 else 3)
    return preprocess(image, size, mean, std, channels=channels)


def model_inputs(data: Dataset, model: GroupedModel, indices: Sequence[int] | None = None) -> torch.Tensor:
    """A photo dataset's images (all, or ``indices``) normalised the way ``model``'s weights expect.

    Pretrained weights come with their own input statistics: EfficientNet-Lite0
    was trained on pixels scaled to [-1, 1] (mean = std = 0.5), torchvision's
    ResNet on ImageNet's channel means. Feeding one the other's scaling still
    "works" but the model sees washed-out or over-bright images and recognises
    less. This starts from the stored uint8 pixels (``raw_image``), so the
    result does not depend on how the dataset itself normalises.
    """
    if not hasattr(data, "raw_image"):
        raise ValueError(f"{type(data).__name__} keeps no raw images; expected a photo task's dataset")
    if model.mean is None or model.std is None:
        raise ValueError(f"{model.name} records no input mean/std")
    idx = range(len(cast(Sized, data))) if indices is None else [int(i) for i in indices]
    raw = torch.stack([data.raw_image(i) for i in idx]).float() / 255
    mean = torch.tensor(model.mean).view(1, -1, 1, 1)
    std = torch.tensor(model.std).view(1, -1, 1, 1)
    return (raw - mean) / std
