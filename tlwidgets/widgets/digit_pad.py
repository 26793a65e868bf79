"""Draw a digit with the mouse and watch the digit model's probabilities change.

Without a JavaScript build step ipywidgets has no drawing canvas, so the pad
is a grid of small buttons: clicking one paints a soft blob (like a pen
stroke), the picture is turned into an MNIST-style 28x28 input (cropped,
scaled to 20x20, centred by its centre of mass, as MNIST itself was made) and
the model's class probabilities are shown as bars after every click.
"""
from __future__ import annotations

import html
import warnings

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F

from ..validate import check_int
from ._util import widget_bundle

__all__ = ["DigitPad", "stamp", "pad_to_mnist", "grid_from_image", "check_drawing"]


# --------------------------------------------------------------------------- logic (plain pytest)
def stamp(grid: np.ndarray, row: int, col: int, *, brush: int = 1, erase: bool = False) -> np.ndarray:
    """Paint (or erase) a soft blob centred on ``(row, col)``; returns a new grid with values in [0, 1].

    ``brush=0`` paints one cell; ``brush=1`` adds a fainter ring around it,
    which makes strokes of separate clicks join up like pen strokes.
    """
    out = grid.copy()
    h, w = out.shape
    for dr in range(-brush, brush + 1):
        for dc in range(-brush, brush + 1):
            r, c = row + dr, col + dc
            if not (0 <= r < h and 0 <= c < w):
                continue
            d = max(abs(dr), abs(dc))
            ink = 1.0 if d == 0 else (0.6 if abs(dr) + abs(dc) == 1 else 0.3)
            if erase:
                out[r, c] = 0.0 if d == 0 else min(out[r, c], 1.0 - ink)
            else:
                out[r, c] = max(out[r, c], ink)
    return out


def check_drawing(image) -> np.ndarray:
    """A drawing as float32 in [0, 1] (ink = 1); 0..255 pixel values are rescaled with a warning.

    Values 0..255 clamped to [0, 1] would turn every faint pixel into full ink
    and the prediction silently worse; NaN or values outside both ranges are refused.
    """
    raw = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if raw.dtype == object or raw.ndim < 2 or raw.size == 0:
        raise ValueError(f"a drawing must be a 2-D array of pixel values (e.g. 28x28), got shape {raw.shape}")
    a = raw.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError("the drawing holds NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    tolerance = 1e-3  # un-normalising a float32 MNIST digit lands a hair outside [0, 1]
    if lo < -tolerance:
        raise ValueError(f"drawing values must be in [0, 1] (ink = 1), got {lo:g}..{hi:g}; a normalised MNIST "
                         "image must be un-normalised first: x * 0.3081 + 0.1307")
    if hi > 1 + tolerance:
        if hi > 255:
            raise ValueError(f"drawing values must be in [0, 1] (ink = 1) or 0..255, got {lo:g}..{hi:g}")
        warnings.warn(f"the drawing's values run up to {hi:g}: read as 0..255 pixels and divided by 255 "
                      "(the pad works in [0, 1])", stacklevel=3)
        a = a / 255.0
    return np.clip(a, 0.0, 1.0)


def grid_from_image(image, size: int = 14) -> np.ndarray:
    """A 28x28 image in [0, 1] (ink = 1) averaged down to ``size`` x ``size`` (to put an MNIST digit on the pad)."""
    image = check_drawing(image)
    t = torch.as_tensor(image).reshape(1, 1, *np.shape(image)[-2:])
    return F.adaptive_avg_pool2d(t, size)[0, 0].clamp(0, 1).numpy()


def pad_to_mnist(grid: np.ndarray, mean: float = 0.1307, std: float = 0.3081) -> torch.Tensor:
    """The pad's picture as the model's input: a normalised 1x1x28x28 tensor, prepared the MNIST way.

    MNIST digits were scaled to fit a 20x20 box and centred by their centre of
    mass in 28x28; a drawing in a corner would otherwise look nothing like
    what the model learnt from.
    """
    g = torch.as_tensor(check_drawing(grid))
    canvas = torch.zeros(28, 28)
    ys, xs = torch.nonzero(g > 0.05, as_tuple=True)
    if len(ys):
        crop = g[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        h, w = crop.shape
        scale = 20.0 / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        small = F.interpolate(crop[None, None], size=(nh, nw), mode="bilinear", align_corners=False,
                              antialias=True)[0, 0].clamp(0, 1)
        total = small.sum()
        cy = float((small.sum(1) * torch.arange(nh)).sum() / total)
        cx = float((small.sum(0) * torch.arange(nw)).sum() / total)
        top = int(round(13.5 - cy))
        left = int(round(13.5 - cx))
        top, left = min(max(top, 0), 28 - nh), min(max(left, 0), 28 - nw)
        canvas[top:top + nh, left:left + nw] = small
    return ((canvas - mean) / std)[None, None]


def _colour(v: float) -> str:
    g = int(round(255 * (1.0 - float(v))))
    return f"#{g:02x}{g:02x}{g:02x}"


def bars_html(probs: dict[str, float]) -> str:
    """Horizontal probability bars, the most likely class highlighted."""
    best = max(probs, key=probs.get) if probs else None
    rows = []
    for name, p in probs.items():
        colour = "#1565c0" if name == best else "#90a4ae"
        rows.append(f"<div style='display:flex;align-items:center;gap:6px;font-family:monospace'>"
                    f"<span style='width:1.5em;text-align:right'>{html.escape(name)}</span>"
                    f"<span style='display:inline-block;height:12px;width:{160 * p:.0f}px;background:{colour}'></span>"
                    f"<span>{p:.0%}</span></div>")
    return "<div class='tl-digit-probs'>" + "".join(rows) + "</div>"


# --------------------------------------------------------------------------- view
class DigitPad:
    """``DigitPad(model)``: click cells to draw; the bars show ``model``'s probability for each class.

    ``model`` is the course's digit CNN (default: :func:`~tlwidgets.models.load_digit_model`,
    which knows digits 0-4). ``grid`` cells per side (14: each cell is 2x2 MNIST pixels).
    Python API: :meth:`paint`, :meth:`clear`, :meth:`set_image`, :meth:`probabilities`.
    """

    def __init__(self, model=None, *, grid: int = 14, cell_px: int = 18, brush: int = 1):
        if model is None:
            from ..models import load_digit_model

            model = load_digit_model()
        if not 7 <= grid <= 28:
            raise ValueError(f"grid must be 7..28 cells per side, got {grid}")
        self.model = model.eval()
        self.classes = list(getattr(model, "classes", None) or [])
        mean, std = getattr(model, "mean", None), getattr(model, "std", None)
        self._mean = float(mean[0]) if mean else 0.1307
        self._std = float(std[0]) if std else 0.3081
        self.size = grid
        self.grid = np.zeros((grid, grid), dtype=np.float32)
        cell = widgets.Layout(width=f"{cell_px}px", height=f"{cell_px}px", padding="0", margin="0",
                              border="1px solid #eee")
        self._buttons = []
        for r in range(grid):
            for c in range(grid):
                b = widgets.Button(description="", layout=cell, tooltip=f"{r},{c}")
                b.style.button_color = "#ffffff"
                b.on_click(self._click_handler(r, c))
                self._buttons.append(b)
        self.pad = widgets.GridBox(self._buttons, layout=widgets.Layout(
            grid_template_columns=f"repeat({grid}, {cell_px}px)", grid_gap="0px", width=f"{grid * cell_px + 4}px"))
        self.pad.add_class("tl-digit-pad")
        self.mode = widgets.ToggleButtons(options=["draw", "erase"], value="draw",
                                          style={"button_width": "60px"})
        self.brush = widgets.Dropdown(options=[("fine", 0), ("pen", 1), ("marker", 2)], value=brush,
                                      description="brush", layout=widgets.Layout(width="150px"))
        self.clear_button = widgets.Button(description="Clear", icon="eraser")
        self.clear_button.on_click(lambda _b: self.clear())
        self.prediction = widgets.HTML()
        self.bars = widgets.HTML()
        known = " ".join(self.classes) if self.classes else "?"
        self.widget = widgets.HBox([
            widgets.VBox([widgets.HTML(f"draw a digit (the model knows: {html.escape(known)})"), self.pad,
                          widgets.HBox([self.mode, self.brush, self.clear_button])]),
            widgets.VBox([self.prediction, self.bars], layout=widgets.Layout(margin="24px 0 0 16px")),
        ])
        self.widget.add_class("tl-digit-pad-box")
        self._update_prediction()

    def _click_handler(self, r, c):
        return lambda _b: self.paint(r, c)

    # -- Python API ------------------------------------------------------------------
    def paint(self, row: int, col: int, *, erase: bool | None = None) -> dict[str, float]:
        """Paint (or erase, following the mode) at a cell; returns the new probabilities."""
        row = check_int("row", row, min=0, max=self.size - 1)  # refused, not silently ignored off the pad
        col = check_int("col", col, min=0, max=self.size - 1)
        erase = self.mode.value == "erase" if erase is None else erase
        self._set_grid(stamp(self.grid, row, col, brush=self.brush.value, erase=erase))
        return self._update_prediction()

    def clear(self) -> None:
        self._set_grid(np.zeros_like(self.grid))
        self._update_prediction()

    def set_image(self, image) -> dict[str, float]:
        """Put a 28x28 image in [0, 1] (e.g. an MNIST digit) on the pad; returns the probabilities."""
        self._set_grid(grid_from_image(image, self.size))
        return self._update_prediction()

    def input_tensor(self) -> torch.Tensor:
        """What the model sees (1x1x28x28, normalised)."""
        return pad_to_mnist(self.grid, self._mean, self._std)

    @torch.inference_mode()
    def probabilities(self) -> dict[str, float]:
        device = next(self.model.parameters()).device
        p = self.model(self.input_tensor().to(device)).softmax(1)[0].cpu().tolist()
        names = self.classes if len(self.classes) == len(p) else [str(i) for i in range(len(p))]
        return dict(zip(names, p))

    # -- view updates --------------------------------------------------------------------
    def _set_grid(self, new: np.ndarray) -> None:
        changed = np.argwhere(np.abs(new - self.grid) > 1e-6)
        self.grid = new.astype(np.float32)
        for r, c in changed:
            self._buttons[r * self.size + c].style.button_color = _colour(self.grid[r, c])

    def _update_prediction(self) -> dict[str, float]:
        if not self.grid.any():
            self.prediction.value = "<i>draw something</i>"
            self.bars.value = ""
            return {}
        probs = self.probabilities()
        best = max(probs, key=probs.get)
        self.prediction.value = f"<span style='font-size:28px'>{html.escape(best)}</span> ({probs[best]:.0%})"
        self.bars.value = bars_html(probs)
        return probs

    def _repr_mimebundle_(self, **kwargs):
        return widget_bundle(self.widget, repr(self), **kwargs)

    def __repr__(self) -> str:
        ink = int((self.grid > 0.05).sum())
        return f"DigitPad({getattr(self.model, 'name', type(self.model).__name__)}, {self.size}x{self.size}, {ink} cells inked)"
