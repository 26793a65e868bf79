"""Classification metrics with their baselines, and the spread of a number over seeds.

Why a module of its own: every table, curve and dashboard row in the course must
show, beside accuracy, what a model that learned nothing would score on the same
test set (chance and majority class) and the class-balanced accuracy, so that a
constant predictor can never pass for a result. One definition, used everywhere.
Core module: imports neither ipywidgets nor matplotlib.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

__all__ = ["Metrics", "classification_metrics", "Spread", "seed_spread"]


@dataclass(frozen=True)
class Metrics:
    """Accuracy of one set of predictions, with the baselines of the same test set.

    ``chance`` is 1 / number of classes; ``majority`` is the accuracy of always
    answering the most frequent test class; ``balanced_accuracy`` is the mean of
    the per-class recalls (so a constant predictor scores exactly ``chance``).
    ``single_class`` flags a model whose predictions are all one class.
    """

    accuracy: float
    balanced_accuracy: float
    chance: float
    majority: float
    n: int
    num_classes: int
    predicted_classes: int

    @property
    def single_class(self) -> bool:
        return self.predicted_classes <= 1 < self.num_classes

    def row(self) -> dict:
        """JSON-friendly summary (rounded to 4 places), for results tables."""
        d = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        d["single_class"] = self.single_class
        return d

    def __repr__(self) -> str:
        flag = ", predicts ONE class" if self.single_class else ""
        return (f"Metrics(acc={self.accuracy:.3f}, balanced={self.balanced_accuracy:.3f}, "
                f"chance={self.chance:.3f}, majority={self.majority:.3f}, n={self.n}{flag})")


#: Class indices as the metrics take them: a tensor, a NumPy array or a list of integers.
Labels = torch.Tensor | np.ndarray | Sequence[int]


def _as_long(name: str, values: Labels) -> torch.Tensor:
    t = torch.as_tensor(values)
    if t.dim() != 1:
        raise ValueError(f"{name} must be a 1-D sequence of class indices, got shape {tuple(t.shape)}")
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise ValueError(f"{name} must hold integer class indices, got non-integer values")
    return t.long()


def classification_metrics(y_true: Labels, y_pred: Labels, num_classes: int | None = None) -> Metrics:
    """Accuracy, balanced accuracy, chance and majority-class rates of ``y_pred`` against ``y_true``.

    Args:
        y_true: true class indices (tensor, array or list), one per sample.
        y_pred: predicted class indices, same length.
        num_classes: number of classes of the task (default: inferred from the labels); chance is 1/num_classes.

    Balanced accuracy averages recall over the classes present in ``y_true``
    (scikit-learn's ``balanced_accuracy_score`` definition).
    """
    t, p = _as_long("y_true", y_true), _as_long("y_pred", y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {len(t)} and {len(p)}")
    if len(t) == 0:
        raise ValueError("classification_metrics() got no samples (empty y_true)")
    inferred = int(max(t.max().item(), p.max().item())) + 1
    if num_classes is None:
        num_classes = inferred
    elif isinstance(num_classes, bool) or not isinstance(num_classes, int) and not hasattr(num_classes, "__index__"):
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    num_classes = int(num_classes)
    if num_classes < 1 or num_classes < inferred or t.min() < 0 or p.min() < 0:
        raise ValueError(f"num_classes={num_classes} does not cover the labels seen (0..{inferred - 1}); "
                         f"labels must be in 0..num_classes-1")
    correct = (t == p)
    present = torch.unique(t)
    recalls = torch.stack([correct[t == c].float().mean() for c in present])
    counts = torch.bincount(t, minlength=num_classes)
    return Metrics(accuracy=correct.float().mean().item(), balanced_accuracy=recalls.mean().item(),
                   chance=1.0 / num_classes, majority=counts.max().item() / len(t), n=len(t),
                   num_classes=num_classes, predicted_classes=int(torch.unique(p).numel()))


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation, min and max of one number measured over several seeds."""

    mean: float
    std: float
    min: float
    max: float
    n: int

    def __repr__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f} (min {self.min:.3f}, max {self.max:.3f}, {self.n} seeds)"

    def row(self) -> dict:
        """JSON-friendly summary (rounded to 4 places), for results tables."""
        return {"mean": round(self.mean, 4), "std": round(self.std, 4), "min": round(self.min, 4),
                "max": round(self.max, 4), "seeds": self.n}


def seed_spread(values: Iterable[float] | Sequence[float]) -> Spread:
    """The spread of ``values`` (one per seed). std is the sample (n-1) standard deviation; 0 for one seed."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("seed_spread() needs at least one value, got none")
    if any(math.isnan(v) for v in vals):
        raise ValueError(f"seed_spread() got NaN among {vals}")
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return Spread(mean, std, min(vals), max(vals), len(vals))
