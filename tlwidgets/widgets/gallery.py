"""Static pictures the lessons show: prediction galleries, sample grids, 2-D feature maps.

Each function returns a matplotlib Figure (closed in pyplot, so a notebook
shows it once, as the cell's value or via ``display(fig)``, and never twice).
The pure parts (which images, what each title says, the PCA) are separate
functions so tests can check them without looking at pixels.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data import Task, dataset_labels
from ..training import Prediction
from ..validate import check_int
from ._util import to_display_image

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: What a gallery shows: an image batch, a list of images, or a dataset of (image, label).
Images = torch.Tensor | Sequence[Any] | Dataset
#: What a gallery labels them with: Predictions, probabilities (N x classes) or class indices.
Predictions = Sequence[Prediction] | torch.Tensor | Sequence[int]

__all__ = ["gallery", "gallery_items", "GalleryItem", "show_task", "plot_features_2d", "pca_2d"]

WRONG = "#c62828"
RIGHT = "#1b5e20"


@dataclass
class GalleryItem:
    """One tile: the image to show, predicted and true class names, confidence, correctness."""

    image: np.ndarray
    pred: str
    confidence: float | None
    true: str | None

    @property
    def correct(self) -> bool | None:
        return None if self.true is None else self.pred == self.true

    @property
    def title(self) -> str:
        conf = "" if self.confidence is None else f" ({self.confidence:.0%})"
        return f"{self.pred}{conf}" + ("" if self.true is None else f" / {self.true}")


def _name(idx, classes) -> str:
    idx = int(idx)
    return classes[idx] if classes is not None and 0 <= idx < len(classes) else str(idx)


def _images_and_labels(source, n: int, mean, std):
    """First ``n`` display images (float HxW[x3] in [0, 1]) and their labels (or None) from any source."""
    if isinstance(source, torch.Tensor) or isinstance(source, np.ndarray):
        imgs = [source[i] for i in range(min(n, len(source)))]
        return [to_display_image(x, mean, std) for x in imgs], None
    if isinstance(source, (list, tuple)):
        return [to_display_image(x, mean, std) for x in source[:n]], None
    # a Dataset of (image, label)
    mean = mean if mean is not None else _stat(getattr(source, "mean", None))
    std = std if std is not None else _stat(getattr(source, "std", None))
    images, labels = [], []
    for i in range(min(n, len(source))):
        x, y = source[i]
        raw = source.raw_image(i) if hasattr(source, "raw_image") else None
        images.append(to_display_image(raw) if raw is not None else to_display_image(x, mean, std))
        labels.append(int(y))
    return images, labels


def _stat(v):
    if v is None:
        return None
    return v.flatten().tolist() if isinstance(v, torch.Tensor) else v


def gallery_items(images_or_dataset: Images, predictions: Predictions, classes: Sequence[str] | None = None, *,
                  labels: torch.Tensor | Sequence[int] | None = None, max_images: int = 24,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> list[GalleryItem]:
    """The tiles of :func:`gallery` (logic only).

    ``predictions``: a list of :class:`~tlwidgets.training.Prediction` (from
    ``predict``), a probability tensor (N x classes), or predicted class
    indices. True labels come from the predictions' targets, else ``labels``,
    else the dataset.

    Args:
        images_or_dataset: an image tensor batch, a list of images, or a dataset of (image, label).
        predictions: Predictions, probabilities (N x classes) or class indices.
        classes: class names for indices (default: the Predictions' own names, else the indices).
        labels: true class indices, when neither the predictions nor the dataset carry them.
        max_images: at most this many tiles.
        mean: the normalisation to undo for display (default: the dataset's raw images, or min-max scaling).
        std: likewise.
    """
    n = min(max_images, len(predictions))
    images, ds_labels = _images_and_labels(images_or_dataset, n, mean, std)
    if len(images) < n:
        raise ValueError(f"{len(predictions)} predictions but only {len(images)} images")
    if labels is not None:
        labels = [int(v) for v in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]
    else:
        labels = ds_labels
    items = []
    for i in range(n):
        p = predictions[i]
        if hasattr(p, "label") and hasattr(p, "confidence"):
            pred, conf = p.label, float(p.confidence)
            true = getattr(p, "target", None)
            if true is None and labels is not None:
                true = _name(labels[i], classes)
        else:
            row = p if isinstance(p, torch.Tensor) else torch.as_tensor(p)
            if row.dim() == 1 and row.numel() > 1:  # probabilities
                top, idx = row.max(0)
                pred, conf = _name(idx, classes), float(top)
            else:
                pred, conf = _name(row.item(), classes), None
            true = _name(labels[i], classes) if labels is not None else None
        items.append(GalleryItem(images[i], str(pred), conf, None if true is None else str(true)))
    return items


def gallery(images_or_dataset: Images, predictions: Predictions, classes: Sequence[str] | None = None,
            ncols: int = 6, max_images: int = 24, *, labels: torch.Tensor | Sequence[int] | None = None,
            mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
            title: str | None = None) -> Figure:
    """A grid of images titled "pred (conf%) / true"; mistakes get a red title and a red frame.

    Seeing *which* images a model gets wrong (and how sure it was) teaches more
    than an accuracy number. Images may be normalised tensors (un-normalised
    with ``mean``/``std``, or the dataset's own) or uint8. Returns the Figure.

    Args:
        images_or_dataset: an image tensor batch, a list of images, or a dataset of (image, label).
        predictions: Predictions, probabilities (N x classes) or class indices.
        classes: class names for indices.
        ncols: tiles per row.
        max_images: at most this many tiles.
        labels: true class indices, when neither the predictions nor the dataset carry them.
        mean: the normalisation to undo for display.
        std: likewise.
        title: the figure's title.
    """
    import matplotlib.pyplot as plt

    items = gallery_items(images_or_dataset, predictions, classes, labels=labels, max_images=max_images,
                          mean=mean, std=std)
    if not items:
        raise ValueError("gallery() got no predictions to show")
    ncols = max(1, min(ncols, len(items)))
    nrows = math.ceil(len(items) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.0 * ncols, 2.3 * nrows), squeeze=False)
    for ax, item in zip(axes.flat, items):
        ax.imshow(item.image, cmap="gray" if item.image.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        wrong = item.correct is False
        colour = WRONG if wrong else (RIGHT if item.correct else "black")
        text = item.title if len(item.title) <= 24 else item.title.replace(" / ", "\n/ ", 1)  # long class names
        ax.set_title(text, fontsize=9, color=colour)
        for spine in ax.spines.values():
            spine.set_visible(wrong)
            if wrong:
                spine.set_edgecolor(WRONG)
                spine.set_linewidth(3)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    known = [it for it in items if it.correct is not None]
    head = f"{sum(not it.correct for it in known)} of {len(known)} wrong" if known else f"{len(items)} predictions"
    fig.suptitle(f"{title} · {head}" if title else head, fontsize=11)
    fig.tight_layout()
    plt.close(fig)
    return fig


def show_task(task: Task, n_per_class: int = 4, *, split: str = "train") -> Figure:
    """A grid with one row per class and ``n_per_class`` samples each: what the model will learn from."""
    import matplotlib.pyplot as plt

    n_per_class = check_int("n_per_class", n_per_class, min=1, max=50)   # 0 would fail inside matplotlib
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    ds = task.train if split == "train" else task.test
    labels = dataset_labels(ds)
    mean, std = task.normalization or (None, None)
    mean = mean or _stat(getattr(ds, "mean", None))
    std = std or _stat(getattr(ds, "std", None))
    k = len(task.classes)
    fig, axes = plt.subplots(k, n_per_class, figsize=(1.5 * n_per_class, 1.5 * k), squeeze=False)
    for c in range(k):
        idx = torch.nonzero(labels == c).flatten()[:n_per_class].tolist()
        for j in range(n_per_class):
            ax = axes[c, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(idx):
                i = idx[j]
                img = ds.raw_image(i) if hasattr(ds, "raw_image") else ds[i][0]
                arr = to_display_image(img, None if hasattr(ds, "raw_image") else mean, std)
                ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1)
            if j == 0:
                ax.set_ylabel(task.classes[c], rotation=0, ha="right", va="center", fontsize=10)
    fig.suptitle(f"{task.name}: {n_per_class} {split} images per class", fontsize=11)
    fig.tight_layout()
    plt.close(fig)
    return fig


def pca_2d(features: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, tuple[float, float]]:
    """Project features (N x ...) onto their first two principal components; also return the variance shares.

    Exact, in float64: no random projection, so the picture is reproducible, distances in a truly 2-D cloud
    are kept, and the caller's random state is untouched. Wide inputs (more numbers per vector than vectors,
    e.g. 740 photos of 49,152 pixels) go through the N x N Gram matrix ``x xᵀ = U S² Uᵀ`` (the projection is
    ``U S``): the same components as the SVD of ``x`` for a fraction of its cost (lesson 2's raw photos: ~5x
    less); narrow ones through ``torch.linalg.svd``. Each axis's sign is arbitrary, as in any PCA.
    """
    x = torch.as_tensor(features).detach().float().cpu()
    x = x.reshape(len(x), -1)
    if len(x) < 2:
        raise ValueError("need at least 2 feature vectors for a 2-D projection")
    x = (x - x.mean(0, keepdim=True)).double()
    q = min(2, *x.shape)
    if x.shape[1] > x.shape[0]:
        evals, evecs = torch.linalg.eigh(x @ x.T)                # ascending
        top = evals.flip(0)[:q].clamp_min(0)
        proj = (evecs.flip(1)[:, :q] * top.sqrt()).float()
        s2 = top
    else:
        _, s, vh = torch.linalg.svd(x, full_matrices=False)
        proj = (x @ vh[:q].T).float()
        s2 = s[:q] ** 2
    if q < 2:
        proj = torch.cat([proj, torch.zeros(len(x), 2 - q)], 1)
    total = float((x ** 2).sum()) or 1.0
    shares = [float(v) / total for v in s2] + [0.0] * (2 - q)
    return proj, (shares[0], shares[1])


def plot_features_2d(features: torch.Tensor | np.ndarray, labels: torch.Tensor | Sequence[int],
                     classes: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Scatter features in 2-D (PCA), coloured by class: do the classes separate *before* any training?

    Lessons call it on a network's features before and after transfer to show
    why a linear head on pretrained features already works.

    Args:
        features: one row (or one tensor) per sample.
        labels: the class index of each sample.
        classes: class names for the legend (default: the indices).
        title: the axes' title.
    """
    import matplotlib.pyplot as plt

    proj, (v1, v2) = pca_2d(features)
    labels = torch.as_tensor(labels).reshape(-1)
    if len(labels) != len(proj):
        raise ValueError(f"{len(proj)} feature vectors but {len(labels)} labels")
    present = sorted(set(labels.tolist()))
    # tab10 repeats its colours after ten classes; 12 cat breeds need tab20 to stay distinguishable
    cmap = plt.get_cmap("tab10" if len(present) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    for i, c in enumerate(present):
        m = labels == c
        ax.scatter(proj[m, 0].numpy(), proj[m, 1].numpy(), s=10, alpha=0.7, label=_name(c, classes),
                   color=cmap(i % cmap.N))
    ax.set_xlabel(f"PC 1 ({v1:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({v2:.0%} of variance)")
    ax.set_title(title or "features, first two principal components", fontsize=10)
    ax.legend(fontsize=8, markerscale=1.5, loc="best")
    fig.tight_layout()
    plt.close(fig)
    return fig
