"""The one image decoder: every photo the package reads goes through :func:`decode_image`.

Photo tasks, :func:`tlwidgets.pretrained.image_to_tensor` and predictions
on single photos all decode here, the way a photo viewer shows the file:

- EXIF orientation applied (``ImageOps.exif_transpose``): a phone portrait
  stored sideways is turned upright;
- 16-bit and 32-bit greyscale (``I;16``, ``I``) scaled to 8 bits by their
  bit depth (not clipped, which would make them pure white); float images
  (``F``) scaled from [0, 1];
- transparency (``RGBA``, ``LA``, ``PA``, palette images with a transparent
  colour) composited on white, as a viewer draws it; without this a
  transparent background turns black;
- CMYK, YCbCr, LAB, HSV, palette and 1-bit images converted to RGB;
- errors name the file.

:func:`load_image` adds the course's geometry (short side to ``size``,
centre crop) and returns uint8 CHW; :class:`DecodeCache` keeps decoded
images keyed by the file's *content* (sha256), so editing a photo on disk is
seen at once, even in the same kernel.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .infra import file_digest
from .validate import check_choice, check_int

if TYPE_CHECKING:  # PIL is imported where an image is decoded, so importing the package stays cheap
    from PIL.Image import Image as PILImage

__all__ = ["ImageDecodeError", "decode_image", "load_image", "to_model_channels", "DecodeCache", "DECODE_CACHE",
           "clear_decode_cache", "IMAGE_SUFFIXES", "HEIF_SUFFIXES", "preprocess"]

#: Phone photos (iPhones save ``.HEIC`` by default): decoded through the ``pillow-heif`` plug-in.
HEIF_SUFFIXES = frozenset({".heic", ".heif"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}) | HEIF_SUFFIXES
_heif_state: list[bool] = []   # [registered?] once tried
WHITE = (255, 255, 255)


class ImageDecodeError(ValueError):
    """A file (or object) that is not a readable image; the message names it and says why."""


def _name(source: Any) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>"


def _scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """High-bit-depth greyscale as 8 bits: scaled by the bit depth, never clipped."""
    if mode.startswith("I;16"):
        return (arr.astype(np.float64) / 257.0).round().clip(0, 255).astype(np.uint8)
    if mode == "F":
        a = arr.astype(np.float64)
        a = a * 255.0 if np.nanmax(a, initial=0.0) <= 1.0 else a
        return np.nan_to_num(a).round().clip(0, 255).astype(np.uint8)
    # mode "I": 32-bit ints; PNG 16-bit greyscale opens as "I" in older Pillows
    a = arr.astype(np.int64)
    top = int(a.max(initial=0))
    if top > 65535:
        a = np.right_shift(a, 24 if top > 2**24 else 16)  # 32-bit or 24-bit data
    elif top > 255:
        return (a / 257.0).round().clip(0, 255).astype(np.uint8)
    return a.clip(0, 255).astype(np.uint8)


def _to_rgb_or_l(im, want: str):
    """A decoded PIL image as mode ``want`` ("RGB" or "L"), by the rules in the module docstring."""
    from PIL import Image

    mode = im.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        im = Image.fromarray(_scale_to_uint8(np.asarray(im), mode), mode="L")
        mode = "L"
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    elif mode == "L" and "transparency" in im.info:
        im = im.convert("LA")
        mode = "LA"
    elif mode == "RGB" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        im = Image.alpha_composite(background, rgba).convert("RGB")
        mode = "RGB"
    if mode != want:
        im = im.convert(want)  # CMYK, YCbCr, LAB, HSV, 1, L, RGB
    return im


def _heif_opener() -> bool:
    """Register ``pillow-heif``'s opener with Pillow (once); whether HEIC/HEIF photos can be read."""
    if not _heif_state:
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            _heif_state.append(False)
        else:
            register_heif_opener()
            _heif_state.append(True)
    return _heif_state[0]


def decode_image(source: Any, *, mode: str = "RGB") -> PILImage:
    """Any image source as an upright 8-bit PIL image in ``mode`` ("RGB" or "L").

    ``source``: a path, a PIL image, a NumPy array (HxW, HxWx1, HxWx3 or
    HxWx4; uint8, or float in [0, 1]) or raw bytes. An unreadable source
    raises :class:`ImageDecodeError` naming it.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    mode = check_choice("image mode", mode, ("RGB", "L"))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageDecodeError(f"{path}: no such image file" if not path.exists() else f"{path}: not a file")
        if path.suffix.lower() in HEIF_SUFFIXES and not _heif_opener():
            raise ImageDecodeError(f"{path}: a HEIC/HEIF photo needs the pillow-heif package "
                                   "(pip install pillow-heif), or convert it to JPEG")
        try:
            with Image.open(path) as im:
                im.load()
                return _to_rgb_or_l(ImageOps.exif_transpose(im), mode)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise ImageDecodeError(f"{path}: cannot be decoded as an image ({reason})") from None
    if isinstance(source, (bytes, bytearray)):
        import io
        _heif_opener()   # bytes may be a phone photo too
        try:
            with Image.open(io.BytesIO(source)) as im:
                im.load()
                return _to_rgb_or_l(ImageOps.exif_transpose(im), mode)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ImageDecodeError(f"<{len(source)} bytes>: cannot be decoded as an image ({exc})") from None
    if isinstance(source, Image.Image):
        return _to_rgb_or_l(ImageOps.exif_transpose(source), mode)
    if isinstance(source, np.ndarray):
        return _to_rgb_or_l(_array_to_pil(source), mode)
    if isinstance(source, torch.Tensor):
        raise ImageDecodeError("got a tensor: it is already decoded. Give a path, a PIL image or a NumPy "
                               "HxWxC array, or use the tensor directly as model input")
    raise ImageDecodeError(f"expected a path, a PIL image, a NumPy array or bytes, got {type(source).__name__}")


def _array_to_pil(arr: np.ndarray):
    from PIL import Image

    a = arr
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageDecodeError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 array, got shape {arr.shape}"
                               + (" (channels first? use arr.transpose(1, 2, 0))" if a.ndim == 3 and
                                  a.shape[0] in (1, 3, 4) else ""))
    if a.dtype == np.uint8:
        pass
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageDecodeError("the image array holds NaN or infinite values")
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if lo < 0 or hi > 1:
            raise ImageDecodeError(f"a float image array must hold values in [0, 1], got {lo:g}..{hi:g} "
                                   "(for 0..255 values use arr.astype(np.uint8))")
        a = (a * 255).round().astype(np.uint8)
    elif a.dtype == np.uint16:
        a = (a.astype(np.float64) / 257).round().astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    else:
        raise ImageDecodeError(f"image arrays must be uint8 (0..255), uint16 or float in [0, 1], got {a.dtype}")
    mode = "L" if a.ndim == 2 else ("RGB" if a.shape[2] == 3 else "RGBA")
    return Image.fromarray(np.ascontiguousarray(a), mode=mode)


def load_image(source: Any, size: int, *, mode: str = "RGB") -> torch.Tensor:
    """Decode, resize the short side to ``size`` and centre-crop ``size`` x ``size``: uint8 CxHxW."""
    from torchvision.transforms import functional as F

    size = check_int("image_size", size, min=8, max=4096)
    im = decode_image(source, mode=mode)
    im = F.center_crop(F.resize(im, size, antialias=True), size)
    return F.pil_to_tensor(im)


def to_model_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """A CxHxW (or NxCxHxW) image tensor with ``channels`` channels: grey repeated to RGB, RGB averaged to grey."""
    c = x.shape[-3]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:]).clone()
    if c in (3, 4) and channels == 1:
        rgb = x[..., :3, :, :].float()
        grey = (0.299 * rgb[..., 0:1, :, :] + 0.587 * rgb[..., 1:2, :, :] + 0.114 * rgb[..., 2:3, :, :])
        return grey.round().to(x.dtype) if not x.is_floating_point() else grey
    raise ValueError(f"cannot turn a {c}-channel image into a {channels}-channel one")


class DecodeCache:
    """Decoded images keyed by (file content sha256, size, mode), bounded in bytes (least recently used out).

    Keyed by content, not by path: a photo edited on disk decodes again (and a
    copy of a photo under another name does not).
    """

    def __init__(self, max_bytes: int = 512 * 2**20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, path: str | os.PathLike, size: int, mode: str = "RGB", *, digest: str | None = None) -> torch.Tensor:
        """``load_image(path, size, mode=mode)``, decoded once per content.

        Args:
            path: the image file.
            size: the side of the square it is resized and cropped to.
            mode: ``"RGB"`` or ``"L"``.
            digest: the file's sha256 when the caller already knows it (saves hashing the file again).
        """
        key = (digest or file_digest(path), int(size), mode)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return hit
        image = load_image(path, size, mode=mode)
        with self._lock:
            self.misses += 1
            if key not in self._items:
                self._items[key] = image
                self._bytes += image.numel()
                while self._bytes > self.max_bytes and len(self._items) > 1:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= old.numel()
        return image

    def clear(self) -> None:
        """Forget every image and reset the hit counts."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return (f"DecodeCache({len(self._items)} images, {self._bytes / 2**20:.1f} MB of "
                f"{self.max_bytes / 2**20:.0f} MB, {self.hits} hits, {self.misses} misses)")


DECODE_CACHE = DecodeCache()


def clear_decode_cache() -> None:
    """Forget every decoded image (benchmarks that time cold decoding call this)."""
    DECODE_CACHE.clear()


def preprocess(image: Any, size: int, mean: Sequence[float], std: Sequence[float], *,
               channels: int = 3) -> torch.Tensor:
    """One photo as the normalised float CxHxW tensor a model expects (the course's photo-task preprocessing).

    Decoded by :func:`decode_image` in the mode the model takes (``channels``
    1: greyscale, 3: RGB; a greyscale photo for an RGB model is repeated to
    RGB, as photo viewers show it), short side resized to ``size``,
    centre-cropped, scaled to [0, 1] and normalised with ``mean``/``std``.

    Args:
        image: a path, a PIL image, a NumPy array or bytes (anything :func:`decode_image` reads).
        size: the side of the square the model takes.
        mean: per-channel means the model's weights were trained with (one value, or one per channel).
        std: per-channel standard deviations, likewise.
        channels: 1 for a greyscale model, 3 for RGB.
    """
    channels = check_int("channels", channels, min=1, max=3)
    if channels == 2:
        raise ValueError("channels must be 1 (greyscale) or 3 (RGB), got 2")
    m = torch.as_tensor(tuple(float(v) for v in mean), dtype=torch.float32).view(-1, 1, 1)
    s = torch.as_tensor(tuple(float(v) for v in std), dtype=torch.float32).view(-1, 1, 1)
    if len(m) not in (1, channels) or len(s) not in (1, channels):
        raise ValueError(f"mean/std have {len(m)}/{len(s)} values for {channels}-channel images")
    x = load_image(image, size, mode="L" if channels == 1 else "RGB").float() / 255
    return (x - m) / s

