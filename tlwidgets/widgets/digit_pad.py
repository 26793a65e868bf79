"""Draw a digit with the mouse or a finger and watch the digit model's probabilities change.

The drawing surface is a small `anywidget <https://anywidget.dev>`_ view: an
HTML canvas over a 28x28 bitmap (MNIST's own size) that paints a soft round
pen along the pointer's path while a mouse button or a finger is down. Its
JavaScript is the string below, shipped inside this file (no build step, no
CDN). During a stroke the canvas sends the bitmap to Python a few times a
second and once more when the stroke ends; Python turns it into an
MNIST-style input (cropped, scaled to 20x20, centred by its centre of mass, as
MNIST itself was made) and shows the model's class probabilities as bars.

Everything the canvas does can be done from Python (:meth:`DigitPad.stroke`,
:meth:`DigitPad.set_image`, :meth:`DigitPad.clear`), with the same pen, so
tests and headless runs need no browser.
"""
from __future__ import annotations

import html
import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import anywidget
import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
import traitlets
from torch import nn

from ..inputs import MNIST_MEAN, MNIST_STD
from ._util import widget_bundle

__all__ = ["DigitPad", "DigitCanvas", "SIZE", "pen_stroke", "pad_to_mnist", "centre_digit", "bars_html",
           "check_drawing", "check_digit_model"]

SIZE = 28  # MNIST's side: one bitmap cell is one model input pixel
PEN_RADII = {"fine": 1.0, "pen": 1.5, "marker": 2.2}  # ink is full within radius - 0.5, none beyond radius + 0.5


# --------------------------------------------------------------------------- logic (plain pytest)
def pen_stroke(grid: np.ndarray, points: Sequence[tuple[float, float]], *, radius: float = 1.5,
               erase: bool = False) -> np.ndarray:
    """Paint (or erase) a soft round pen along the polyline ``points`` (``(row, col)`` in cell units).

    A cell's ink falls off linearly from 1 (its centre within ``radius - 0.5``
    of the path) to 0 (beyond ``radius + 0.5``) and ink only ever increases, as
    with a real pen. The canvas's JavaScript implements the very same rule.
    Returns a new float32 grid in [0, 1].

    Args:
        grid: the drawing so far (H x W in [0, 1]); it is not changed.
        points: the pen's path, ``(row, col)`` in cell units.
        radius: the pen's radius in cells.
        erase: remove ink instead of adding it.
    """
    out = np.array(grid, dtype=np.float32, copy=True)
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) == 0:
        return out
    if len(pts) == 1:
        pts = np.concatenate([pts, pts])
    rows, cols = np.mgrid[0:out.shape[0], 0:out.shape[1]].astype(np.float32)
    dist = np.full(out.shape, np.inf, dtype=np.float32)
    for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:]):
        dr, dc = r1 - r0, c1 - c0
        length2 = dr * dr + dc * dc
        t = np.zeros_like(rows) if length2 == 0 else np.clip(((rows - r0) * dr + (cols - c0) * dc) / length2, 0, 1)
        dist = np.minimum(dist, np.hypot(rows - (r0 + t * dr), cols - (c0 + t * dc)))
    ink = np.clip(radius + 0.5 - dist, 0.0, 1.0)
    return np.minimum(out, 1.0 - ink) if erase else np.maximum(out, ink)


def check_drawing(image: np.ndarray | torch.Tensor | Sequence[Sequence[float]]) -> np.ndarray:
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
                         f"image must be un-normalised first: x * {MNIST_STD} + {MNIST_MEAN}")
    if hi > 1 + tolerance:
        if hi > 255:
            raise ValueError(f"drawing values must be in [0, 1] (ink = 1) or 0..255, got {lo:g}..{hi:g}")
        warnings.warn(f"the drawing's values run up to {hi:g}: read as 0..255 pixels and divided by 255 "
                      "(the pad works in [0, 1])", stacklevel=3)
        a = a / 255.0
    return np.clip(a, 0.0, 1.0)


def centre_digit(grid: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A drawing (any HxW in [0, 1], ink = 1) as an MNIST-style 28x28 image in [0, 1].

    MNIST digits were scaled to fit a 20x20 box and centred by their centre of
    mass in 28x28; a drawing in a corner would otherwise look nothing like
    what the model learnt from.
    """
    g = torch.as_tensor(check_drawing(grid))
    canvas = torch.zeros(SIZE, SIZE)
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
        top = min(max(int(round(13.5 - cy)), 0), SIZE - nh)
        left = min(max(int(round(13.5 - cx)), 0), SIZE - nw)
        canvas[top:top + nh, left:left + nw] = small
    return canvas


def pad_to_mnist(grid: np.ndarray | torch.Tensor, mean: float = MNIST_MEAN, std: float = MNIST_STD) -> torch.Tensor:
    """The pad's drawing as the model's input: :func:`centre_digit`, normalised, shaped 1x1x28x28."""
    return ((centre_digit(grid) - mean) / std)[None, None]


def check_digit_model(model: Any) -> None:
    """Refuse, by name, a model that cannot read the pad: it draws one grey 28x28 digit, MNIST-style.

    Without this a photo model (3 channels, 160 px) fails inside torch at the first stroke with a shape error.
    """
    from ..models import input_channels

    if not isinstance(model, nn.Module):
        raise TypeError(f"DigitPad(model): model must be a torch nn.Module (the digit CNN), got {type(model).__name__}")
    name = getattr(model, "name", type(model).__name__)
    channels, size = input_channels(model), getattr(model, "image_size", None)
    mean = getattr(model, "mean", None)
    if channels not in (None, 1) or (size is not None and size != SIZE) or (mean is not None and len(mean) != 1):
        took = f"{channels}-channel" if channels else f"{len(mean) if mean else '?'}-channel"
        raise ValueError(f"DigitPad(model): the pad draws one grey {SIZE}x{SIZE} digit, but {name} takes {took} "
                         f"images of {size or '?'} px (a photo model); give a digit model, e.g. "
                         "tl.load_digit_model() or one built with tl.digit_cnn")


def bars_html(probs: dict[str, float]) -> str:
    """Horizontal probability bars, the most likely class highlighted."""
    best = max(probs, key=probs.__getitem__) if probs else None
    rows = []
    for name, p in probs.items():
        colour = "#1565c0" if name == best else "#90a4ae"
        rows.append(f"<div style='display:flex;align-items:center;gap:6px;font-family:monospace'>"
                    f"<span style='width:1.5em;text-align:right'>{html.escape(name)}</span>"
                    f"<span style='display:inline-block;height:12px;width:{160 * p:.0f}px;background:{colour}'></span>"
                    f"<span>{p:.0%}</span></div>")
    return "<div class='tl-digit-probs'>" + "".join(rows) + "</div>"


# --------------------------------------------------------------------------- the drawing surface
_ESM = r"""
function render({ model, el }) {
  const size = model.get("size");
  const cell = model.get("cell_px");
  const canvas = document.createElement("canvas");
  canvas.width = size * cell;
  canvas.height = size * cell;
  canvas.className = "tl-digit-canvas";
  canvas.style.cssText = "touch-action:none;cursor:crosshair;border:1px solid #90a4ae;background:#fff;" +
                         "display:block;user-select:none";
  el.appendChild(canvas);
  const ctx = canvas.getContext("2d");
  const small = document.createElement("canvas");
  small.width = size; small.height = size;
  const sctx = small.getContext("2d");
  let ink = new Float32Array(size * size);

  function load() {
    const px = model.get("pixels");
    ink = new Float32Array(size * size);
    for (let i = 0; i < Math.min(px.length, ink.length); i++) ink[i] = px[i] / 255;
    draw();
  }
  function draw() {
    const img = sctx.createImageData(size, size);
    for (let i = 0; i < ink.length; i++) {
      const v = Math.round(255 * (1 - ink[i]));
      img.data[4 * i] = v; img.data[4 * i + 1] = v; img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
    }
    sctx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  }
  // the same rule as pen_stroke() in Python: full ink within radius - 0.5 of the segment, none past radius + 0.5
  function segment(r0, c0, r1, c1) {
    const radius = model.get("pen_radius");
    const erase = model.get("mode") === "erase";
    const dr = r1 - r0, dc = c1 - c0, len2 = dr * dr + dc * dc;
    const lo = Math.max(0, Math.floor(Math.min(r0, r1) - radius - 1));
    const hi = Math.min(size - 1, Math.ceil(Math.max(r0, r1) + radius + 1));
    const left = Math.max(0, Math.floor(Math.min(c0, c1) - radius - 1));
    const right = Math.min(size - 1, Math.ceil(Math.max(c0, c1) + radius + 1));
    for (let r = lo; r <= hi; r++) {
      for (let c = left; c <= right; c++) {
        let t = len2 === 0 ? 0 : ((r - r0) * dr + (c - c0) * dc) / len2;
        t = Math.max(0, Math.min(1, t));
        const d = Math.hypot(r - (r0 + t * dr), c - (c0 + t * dc));
        const a = Math.max(0, Math.min(1, radius + 0.5 - d));
        const i = r * size + c;
        ink[i] = erase ? Math.min(ink[i], 1 - a) : Math.max(ink[i], a);
      }
    }
  }
  function send() {
    model.set("pixels", Array.from(ink, (v) => Math.round(255 * v)));
    model.set("strokes", model.get("strokes") + 1);
    model.save_changes();
  }
  function where(e) {
    const box = canvas.getBoundingClientRect();
    return [(e.clientY - box.top) / box.height * size - 0.5, (e.clientX - box.left) / box.width * size - 0.5];
  }
  let last = null, timer = null;
  canvas.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* e.g. a synthetic pointer: draw anyway */ }
    last = where(e);
    segment(last[0], last[1], last[0], last[1]);
    draw();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (last === null) return;
    e.preventDefault();
    const p = where(e);
    segment(last[0], last[1], p[0], p[1]);
    last = p;
    draw();
    if (timer === null) timer = setTimeout(() => { timer = null; if (last !== null) send(); }, 150);
  });
  function end(e) {
    if (last === null) return;
    last = null;
    if (timer !== null) { clearTimeout(timer); timer = null; }
    send();
  }
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  model.on("change:pixels", () => { if (last === null) load(); });
  load();
}
export default { render };
"""


class DigitCanvas(anywidget.AnyWidget):
    """The drawing surface: a ``size`` x ``size`` bitmap (``pixels``: 0..255, row-major) drawn on by pointer drags."""

    _esm = _ESM
    size = traitlets.Int(SIZE).tag(sync=True)
    cell_px = traitlets.Int(10).tag(sync=True)
    pixels = traitlets.List(traitlets.Int(), default_value=[0] * SIZE * SIZE).tag(sync=True)
    pen_radius = traitlets.Float(PEN_RADII["pen"]).tag(sync=True)
    mode = traitlets.Unicode("draw").tag(sync=True)
    strokes = traitlets.Int(0).tag(sync=True)  # how many bitmaps the front end has sent (a test can wait on it)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("tl-digit-pad")


# --------------------------------------------------------------------------- view
class DigitPad:
    """``DigitPad(model)``: drag to draw; the bars show ``model``'s probability for each class.

    ``model`` is the course's digit CNN (default: :func:`~tlwidgets.models.load_digit_model`,
    which knows digits 0-4). Python API: :meth:`stroke`, :meth:`set_image`,
    :meth:`clear`, :meth:`image`, :meth:`input_tensor`, :meth:`probabilities`.
    """

    def __init__(self, model: nn.Module | None = None, *, cell_px: int = 10, pen: str = "pen") -> None:
        if model is None:
            from ..models import load_digit_model

            model = load_digit_model()
        if pen not in PEN_RADII:
            raise ValueError(f"pen must be one of {sorted(PEN_RADII)}, got {pen!r}")
        if not 4 <= int(cell_px) <= 40:
            raise ValueError(f"cell_px must be 4..40 screen pixels per cell, got {cell_px}")
        check_digit_model(model)
        self.model = model.eval()
        self.classes = list(getattr(model, "classes", None) or [])
        mean, std = getattr(model, "mean", None), getattr(model, "std", None)
        self._mean = float(mean[0]) if mean else MNIST_MEAN
        self._std = float(std[0]) if std else MNIST_STD
        self.canvas = DigitCanvas(cell_px=int(cell_px), pen_radius=PEN_RADII[pen])
        self.mode = widgets.ToggleButtons(options=["draw", "erase"], value="draw", style={"button_width": "60px"})
        self.pen = widgets.Dropdown(options=list(PEN_RADII), value=pen, description="pen",
                                    layout=widgets.Layout(width="150px"))
        self.clear_button = widgets.Button(description="Clear", icon="eraser")
        self.clear_button.add_class("tl-digit-clear")
        self.prediction = widgets.HTML()
        self.prediction.add_class("tl-digit-prediction")
        self.bars = widgets.HTML()
        widgets.link((self.mode, "value"), (self.canvas, "mode"))
        self.pen.observe(lambda ch: setattr(self.canvas, "pen_radius", PEN_RADII[ch["new"]]), names="value")
        self.clear_button.on_click(lambda _b: self.clear())
        self.canvas.observe(lambda _ch: self._update_prediction(), names="pixels")
        known = " ".join(self.classes) if self.classes else "?"
        self.widget = widgets.HBox([
            widgets.VBox([widgets.HTML(f"draw a digit (the model knows: {html.escape(known)})"), self.canvas,
                          widgets.HBox([self.mode, self.pen, self.clear_button])]),
            widgets.VBox([self.prediction, self.bars], layout=widgets.Layout(margin="24px 0 0 16px")),
        ])
        self.widget.add_class("tl-digit-pad-box")
        self._update_prediction()

    # -- the bitmap -------------------------------------------------------------------
    @property
    def grid(self) -> np.ndarray:
        """The drawing as a 28x28 float32 array in [0, 1] (ink = 1), exactly as the canvas holds it."""
        return np.asarray(self.canvas.pixels, dtype=np.float32).reshape(SIZE, SIZE) / 255.0

    def _set_grid(self, grid) -> dict[str, float]:
        g = check_drawing(grid)
        if g.shape != (SIZE, SIZE):
            raise ValueError(f"the pad holds a {SIZE}x{SIZE} image, got shape {g.shape}")
        self.canvas.pixels = np.round(g * 255).astype(int).ravel().tolist()  # observe() updates the prediction
        return dict(self._probs)

    # -- Python API ------------------------------------------------------------------
    def stroke(self, points: Iterable[tuple[float, float]], *, erase: bool | None = None) -> dict[str, float]:
        """Draw along ``points`` (``(row, col)`` in 0..27) with the current pen, as a drag would; returns
        probabilities."""
        erase = self.mode.value == "erase" if erase is None else erase
        points = list(points)
        for p in points:  # refused, not silently drawn off the pad
            if (len(p) != 2 or not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                                       and math.isfinite(v) and -0.5 <= v <= SIZE - 0.5 for v in p)):
                raise ValueError(f"stroke points must be (row, col) pairs of numbers in 0..{SIZE - 1}, got {p!r}")
        return self._set_grid(pen_stroke(self.grid, list(points), radius=self.canvas.pen_radius, erase=erase))

    def clear(self) -> None:
        """Wipe the pad (and update the prediction, which shows what the model makes of a blank)."""
        self._set_grid(np.zeros((SIZE, SIZE), np.float32))

    def set_image(self, image: np.ndarray | torch.Tensor) -> dict[str, float]:
        """Put a 28x28 image in [0, 1] (ink = 1, e.g. an un-normalised MNIST digit) on the pad; returns
        probabilities."""
        img = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        return self._set_grid(img.reshape(SIZE, SIZE) if img.size == SIZE * SIZE else img)

    def image(self) -> torch.Tensor:
        """What the model sees, before normalisation: the drawing centred MNIST-style, 28x28 in [0, 1]."""
        return centre_digit(self.grid)

    def input_tensor(self) -> torch.Tensor:
        """The model's input: :meth:`image` normalised with the model's mean/std, shaped 1x1x28x28."""
        return pad_to_mnist(self.grid, self._mean, self._std)

    @torch.inference_mode()
    def probabilities(self) -> dict[str, float]:
        """``class name -> probability`` for the drawing as it is now, in eval mode and without gradients."""
        device = next(self.model.parameters()).device
        p = self.model(self.input_tensor().to(device)).softmax(1)[0].cpu().tolist()
        names = self.classes if len(self.classes) == len(p) else [str(i) for i in range(len(p))]
        return dict(zip(names, p))

    def _update_prediction(self) -> dict[str, float]:
        if not (self.grid > 0.05).any():
            self.prediction.value = "<i>draw something</i>"
            self.bars.value = ""
            self._probs = {}
            return {}
        probs = self._probs = self.probabilities()
        best = max(probs, key=probs.__getitem__)
        self.prediction.value = f"<span style='font-size:28px'>{html.escape(best)}</span> ({probs[best]:.0%})"
        self.bars.value = bars_html(probs)
        return probs

    def _repr_mimebundle_(self, **kwargs):
        return widget_bundle(self.widget, repr(self), **kwargs)

    def __repr__(self) -> str:
        ink = int((self.grid > 0.05).sum())
        return f"DigitPad({getattr(self.model, 'name', type(self.model).__name__)}, {SIZE}x{SIZE}, {ink} pixels inked)"
