"""Small helpers shared by the widgets: headless detection, error display, image conversion.

Kept apart from the views so that each piece can be tested without a browser.
"""
from __future__ import annotations

import functools
import html
import io
import logging
import os
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["is_headless", "in_kernel", "ErrorBox", "rgba_to_png", "to_display_image", "fmt_params",
           "widget_bundle"]

log = logging.getLogger("tlwidgets.widgets")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def in_kernel() -> bool:
    """True inside a Jupyter kernel (a front end may be attached), False in scripts and plain pytest."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def is_headless(headless: bool | None = None) -> bool:
    """Whether widgets should avoid live drawing because nobody is watching.

    Order: an explicit ``headless`` argument wins; then ``$TLLAB_HEADLESS``
    (``1``/``true`` → headless, ``0``/``false`` → not); otherwise headless
    exactly when there is no Jupyter kernel (a script or plain pytest). The
    course runner sets ``TLLAB_HEADLESS=1`` for papermill/nbval, where a kernel
    exists but no browser will ever show the frames.
    """
    if headless is not None:
        return bool(headless)
    env = os.environ.get("TLLAB_HEADLESS", "").strip().lower()
    if env in _TRUE:
        return True
    if env in _FALSE:
        return False
    return not in_kernel()


class ErrorBox:
    """An HTML widget that shows the last exception raised inside a widget callback.

    ipywidgets sends exceptions from callbacks to the kernel log, which nobody
    reads; a slider that silently does nothing is worse than a red message
    next to it. The error is also logged, and kept in ``.error``.
    """

    def __init__(self):
        import ipywidgets as widgets

        self.widget = widgets.HTML("", layout=widgets.Layout(display="none"))
        self.widget.add_class("tl-error")
        self.error: BaseException | None = None

    def show(self, exc: BaseException, context: str = "") -> None:
        """Show ``exc`` in red under the controls (and log its traceback): an error in a widget callback
        would otherwise go to the kernel log, where a student never looks."""
        self.error = exc
        where = f"{context}: " if context else ""
        self.widget.value = (f"<div style='color:#b00020;white-space:pre-wrap;font-family:monospace'>"
                             f"{html.escape(where + type(exc).__name__ + ': ' + str(exc))}</div>")
        self.widget.layout.display = None
        log.error("%s%s", where, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))

    def clear(self) -> None:
        """Hide the box and forget the error (the next action starts clean)."""
        self.error = None
        self.widget.value = ""
        self.widget.layout.display = "none"

    def guard(self, fn: Callable, context: str = "") -> Callable:
        """Wrap a callback: exceptions are shown in the box instead of vanishing into the kernel log."""

        @functools.wraps(fn)  # keeps the callback's name (logs, tracebacks) and sets __wrapped__
        def wrapped(*args, **kwargs):
            try:
                out = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - shown to the user, logged, kept in .error
                self.show(exc, context)
                return None
            if self.error is not None:
                self.clear()
            return out

        return wrapped

    def __repr__(self) -> str:
        return f"ErrorBox({'empty' if self.error is None else repr(self.error)})"


def rgba_to_png(rgba: np.ndarray | memoryview, compress_level: int = 1) -> bytes:
    """Encode an RGBA buffer (H x W x 4) as PNG; level 1 is ~3x faster than the default for chart images."""
    from PIL import Image

    arr = np.asarray(rgba)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr[..., :3])).save(buf, format="png", compress_level=compress_level)
    return buf.getvalue()


def to_display_image(img: Any, mean: Sequence[float] | None = None,
                     std: Sequence[float] | None = None) -> np.ndarray:
    """A tensor/array image (CHW or HW; uint8, or normalised float) as an HxW or HxWx3 float array in [0, 1].

    Normalised floats are un-normalised with ``mean``/``std`` when given;
    otherwise floats outside [0, 1] are min-max scaled so they are still visible.
    """
    try:
        import torch
        if isinstance(img, torch.Tensor):
            img = img.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        arr = np.transpose(arr, (1, 2, 0))  # torch's CHW -> matplotlib's HWC
    if np.issubdtype(arr.dtype, np.integer):
        out = arr.astype(np.float32) / 255.0
    else:
        out = arr.astype(np.float32)
        if mean is not None and std is not None:
            m = np.asarray(mean, dtype=np.float32).reshape(-1)
            s = np.asarray(std, dtype=np.float32).reshape(-1)
            if out.ndim == 3 and len(m) == out.shape[-1]:
                out = out * s + m
            else:
                out = out * s[0] + m[0]
        elif out.size and (out.min() < 0 or out.max() > 1):
            lo, hi = float(out.min()), float(out.max())
            out = (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)
    if out.ndim == 3 and out.shape[-1] == 1:
        out = out[..., 0]
    return np.clip(out, 0.0, 1.0)


def fmt_params(n: int) -> str:
    """12345 -> '12,345' (parameter counts are read, not computed with)."""
    return f"{int(n):,}"


def widget_bundle(widget: Any, text: str, **kwargs: Any) -> Any:
    """``widget``'s display bundle with our own ``repr`` as its plain-text fallback.

    The fallback is what papermill/nbconvert outputs and a front end without
    the widget manager show: a readable summary instead of ``VBox(children=...)``.
    """
    bundle = widget._repr_mimebundle_(**kwargs)
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    if isinstance(data, dict):
        data["text/plain"] = text
    return bundle
