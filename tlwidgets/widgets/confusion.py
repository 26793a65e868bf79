"""The confusion matrix as a picture: which classes does the model mix up?"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confusion_view", "confusion_cells"]


def confusion_cells(cm: torch.Tensor | np.ndarray, normalize: bool = False) -> tuple[np.ndarray, list[list[str]]]:
    """``(values to colour, text per cell)``: counts, or with ``normalize`` each true-class row as shares.

    Normalising by row answers "of the true 7s, how many went where?", which
    stays readable when classes have different sizes.
    """
    counts = (cm.detach().cpu().numpy() if isinstance(cm, torch.Tensor) else np.asarray(cm)).astype(np.int64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"a confusion matrix is square (classes x classes), got shape {counts.shape}")
    if normalize:
        rows = counts.sum(1, keepdims=True)
        values = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
        texts = [[f"{v:.0%}" for v in row] for row in values]
    else:
        values = counts.astype(float)
        texts = [[str(v) for v in row] for row in counts]
    return values, texts


def confusion_view(cm: torch.Tensor | np.ndarray, classes: Sequence[str], normalize: bool = False, *,
                   title: str | None = None, cmap: str = "Blues") -> Figure:
    """A heatmap of ``cm[true, predicted]`` with the number in every cell; returns the Figure.

    Args:
        cm: counts, ``cm[true, predicted]`` (:func:`tlwidgets.training.confusion_matrix`).
        classes: class names, in the matrix's order.
        normalize: colour and label each true-class row as shares (readable when class sizes differ).
        title: the figure's title (default: the accuracy and the number of samples).
        cmap: a matplotlib colour map name.
    """
    import matplotlib.pyplot as plt

    values, texts = confusion_cells(cm, normalize)
    k = values.shape[0]
    if len(classes) != k:
        raise ValueError(f"{len(classes)} class names for a {k} x {k} confusion matrix")
    counts = np.asarray(cm.cpu() if isinstance(cm, torch.Tensor) else cm)
    total = counts.sum()
    size = max(3.5, 0.55 * k + 1.8)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    vmax = values.max() if values.size and values.max() > 0 else 1.0
    ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=9 if k <= 10 else 7,
                    color="white" if values[i, j] > 0.55 * vmax else "black")
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=45 if max(len(str(c)) for c in classes) > 3 else 0,
                  ha="right" if max(len(str(c)) for c in classes) > 3 else "center")
    ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(counts) / total if total else 0.0
    ax.set_title(title or f"confusion matrix · accuracy {acc:.1%} of {int(total)}", fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig
