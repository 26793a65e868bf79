"""What every photo task shares: decoding into memory, the in-memory dataset, augmentation.

Why a module of its own: the pets task and the own-photos task must turn
files into model inputs the same way (one decoder, one normalisation rule,
one augmentation), or a model would see different pixels depending on
where its photos came from. Photos are decoded once (through the
content-keyed cache of :mod:`tlwidgets.images`) into uint8 tensors and
normalised on access, so an epoch never decodes a JPEG. Which mean/std a
backbone expects is read from :mod:`tlwidgets.inputs`
(:func:`~tlwidgets.inputs.backbone_normalization`), the home models read too.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from ..images import DECODE_CACHE, ImageDecodeError
from ..inputs import Normalization
from ..validate import check_int

__all__ = ["check_image_size",
           "decode_images", "warn_skipped", "ImageTensorDataset", "default_augment"]

def check_image_size(image_size: Any) -> int:
    """The side of the square photos a task holds, in pixels: an integer in 32..1024."""
    image_size = check_int("image_size", image_size)
    if not 32 <= image_size <= 1024:
        raise ValueError(f"image_size must be at least 32 pixels, got {image_size}" if image_size < 32 else
                         f"image_size must be at most 1024 pixels, got {image_size} (the backbones are "
                         "trained at 224; larger images only cost memory)")
    return image_size


def decode_images(paths: Sequence[str], size: int) -> tuple[torch.Tensor, tuple[int, ...], tuple[str, ...]]:
    """Decode image files (through the content-keyed decode cache); unreadable files are reported, not fatal.

    Returns ``(uint8 N x 3 x size x size, indices of the decoded paths, "path: reason" per skipped file)``.
    """
    from tqdm.auto import tqdm

    images: list[torch.Tensor] = []
    ok: list[int] = []
    bad: list[str] = []
    it = tqdm(paths, desc=f"decoding {len(paths)} images", leave=False, disable=len(paths) < 200)
    for i, p in enumerate(it):
        try:
            images.append(DECODE_CACHE.get(p, size))
        except ImageDecodeError as exc:
            bad.append(str(exc))
            continue
        except OSError as exc:  # vanished or unreadable between listing and decoding
            bad.append(f"{p}: cannot be read ({exc.strerror or exc})")
            continue
        ok.append(i)
    stacked = torch.stack(images) if images else torch.empty(0, 3, size, size, dtype=torch.uint8)
    return stacked, tuple(ok), tuple(bad)


def warn_skipped(bad: Sequence[str], total: int | None = None) -> None:
    """One warning that counts the unreadable files, names the first and says what still loaded."""
    if bad:
        rest = f"; the other {total - len(bad)} loaded" if total is not None else ""
        warnings.warn(f"skipped {len(bad)} unreadable image file(s), e.g. {bad[0]}{rest}", stacklevel=3)


class ImageTensorDataset(Dataset):
    """Decoded uint8 images held in memory, normalised on access (cheap; no JPEG decoding per epoch).

    ``mean``/``std`` are the normalisation of the model the images are for (no default: a
    silent ImageNet guess is wrong for EfficientNet-Lite0; see :func:`tlwidgets.inputs.backbone_normalization`);
    kept as tuples so a model can check that they match its own.

    Args:
        images: uint8 N x 3 x H x W.
        labels: N class indices.
        mean: per-channel means of the model's normalisation.
        std: per-channel standard deviations of the model's normalisation.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float]):
        self.images, self.labels = images, labels
        self.normalization: Normalization = (tuple(float(m) for m in mean), tuple(float(v) for v in std))
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.images[i].float() / 255 - self.mean) / self.std, self.labels[i]

    def raw_image(self, i: int) -> torch.Tensor:
        """The uint8 image as stored, for galleries."""
        return self.images[i]


def default_augment(size: int) -> Callable:
    """The tutorial-style augmentation: random resized crop and horizontal flip (on tensors)."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True),
                       v2.RandomHorizontalFlip()])
