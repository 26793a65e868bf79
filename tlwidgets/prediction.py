"""Forward passes outside training: input checks, ``evaluate``, ``predict_proba``, ``predict``, confusion matrix.

The input checks here are shared with ``fit`` (:mod:`tlwidgets.training`): a
batch of the wrong shape, dtype or range is refused with a message that names
what was given and what the model expects, the same way in training and in
prediction.
"""
from __future__ import annotations

import os
from collections.abc import Sequence, Sized
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .inference import as_channels_last, inference_copy
from .infra import select_device
from .validate import check_int

__all__ = ["evaluate", "predict", "predict_proba", "confusion_matrix", "Prediction", "check_inputs", "check_loader",
           "check_label_dtype", "check_labels", "forward_batch"]

Inputs = Any

def _first_layer_input(model: nn.Module) -> str:
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return f"{m.in_channels}-channel images"
        if isinstance(m, nn.Linear):
            return f"vectors of {m.in_features} features"
    return "a different input"


def forward_batch(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, with a shape mismatch reported as what was given and what the model takes.

    Torch's own message ("expected input[8, 3, 28, 28] to have 1 channels ...")
    names internals; a student needs to hear that the data does not fit the model.
    """
    try:
        return model(x)
    except RuntimeError as exc:
        msg = str(exc)
        if not any(w in msg for w in ("shape", "size", "channels", "dimension", "D tensor")):
            raise
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(f"{name} cannot take a batch of shape {tuple(x.shape)}: its first layer takes "
                         f"{_first_layer_input(model)} ({(msg.splitlines() or [''])[0][:200]}). Does the data "
                         "match the model (digits: 1x28x28, photos: 3 channels)?") from exc


def check_loader(name: str, loader: object, *, where: str = "fit") -> None:
    """Refuse a Dataset (or a tensor) where a DataLoader is expected, saying how to wrap it."""
    if isinstance(loader, DataLoader):
        return
    if isinstance(loader, Dataset):
        raise TypeError(f"{where}(): {name} is a {type(loader).__name__} (a Dataset: one sample at a time), "
                        f"but batches are expected; wrap it: DataLoader(dataset, batch_size=32"
                        f"{', shuffle=True' if name == 'train_loader' else ''}), or use task.loaders()")
    if isinstance(loader, torch.Tensor) or not hasattr(loader, "__iter__"):
        raise TypeError(f"{where}(): {name} must be a DataLoader yielding (inputs, labels) batches, "
                        f"got {type(loader).__name__}")


def _takes_indices(model: nn.Module | None) -> bool:
    """Whether the model starts with an embedding (integer token ids are then the right input)."""
    if model is None:
        return False
    for m in model.modules():
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
            return True
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear, nn.RNNBase)):
            return False
    return False


def check_inputs(x: object, *, where: str, batch: int | None = None, model: nn.Module | None = None) -> torch.Tensor:
    """An input batch as it enters the package: a non-empty float32 tensor of finite values.

    Catches raw uint8 pixels (0..255, not normalised), float64 arrays,
    empty batches and NaN/inf values where they enter, instead of a dtype
    error from inside a convolution or a plausible-looking accuracy.

    Args:
        x: the batch as given (anything: what is not a tensor is refused with a hint).
        where: the call the batch entered through, for the message (``"fit(): epoch 2"``).
        batch: the batch's index in its loader (shown 1-based), or None for a single batch.
        model: the model it is for; integer inputs pass when it starts with an embedding (token ids).
    """
    at = f"{where}: batch {batch + 1}" if batch is not None else where
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{at}: inputs must be a tensor, got {type(x).__name__}"
                        + (" (convert images with tl.image_to_tensor(image, model))" if type(x).__module__.startswith(
                            ("PIL", "numpy")) else ""))
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{at}: the batch is empty (shape {tuple(x.shape)}); there is nothing to run the model on")
    if not x.is_floating_point() and _takes_indices(model):
        return x  # token ids for an embedding
    if x.dtype == torch.uint8:
        raise TypeError(f"{at}: inputs are uint8 (raw pixels 0..255); models take float32 inputs normalised "
                        "like their training data: x.float() / 255 then (x - mean) / std "
                        "(tl.image_to_tensor does all of it)")
    if not x.is_floating_point():
        raise TypeError(f"{at}: inputs are {str(x.dtype).replace('torch.', '')}; models take float32 "
                        "(convert with x.float(), and normalise like the training data)")
    if x.dtype != torch.float32:
        raise TypeError(f"{at}: inputs are {str(x.dtype).replace('torch.', '')}, the model's weights float32: "
                        "convert with x.float() (NumPy arrays are float64 by default: "
                        "torch.as_tensor(a, dtype=torch.float32))")
    # one reduction instead of a boolean copy of the batch: a NaN or an infinity anywhere makes the sum NaN or
    # infinite; only when it is (or finite values overflow it) are the values checked one by one
    if not bool(torch.isfinite(x.sum())):
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(f"{at}: {bad} of {x.numel()} input values are NaN or infinite; any accuracy or loss "
                             "on them would be meaningless. Find them with torch.isnan(x).nonzero() and fix the data")
    return x


def check_label_dtype(y, *, where: str, batch: int | None = None) -> None:
    """Refuse labels that are not an integer tensor (class indices), naming the batch and what was given."""
    at = f"{where}: batch {batch + 1}" if batch is not None else where
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{at}: labels must be a tensor of class indices, got {type(y).__name__}")
    if y.is_floating_point() and y.dim() == 1:
        raise TypeError(f"{at}: labels are {str(y.dtype).replace('torch.', '')} (e.g. {y[:3].tolist()}); class "
                        "labels must be integer indices 0..k-1: y.long() (or torch.tensor(labels, dtype=torch.long))")


def check_labels(out: torch.Tensor, y: torch.Tensor) -> None:
    """Labels outside the head's outputs: usually a head that was not replaced for the new task."""
    k = out.shape[1]
    if y.is_floating_point() or y.dim() != 1:
        return  # class probabilities, not indices: cross_entropy checks their shape itself
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
        bad = int(y.max()) if int(y.max()) >= k else int(y.min())
        raise ValueError(f"label {bad} does not fit a model with {k} outputs (labels must be 0..{k - 1}); "
                         "give the model a head for this task: replace_head(model, task.num_classes, task.classes)")



# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------
def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@torch.inference_mode()
def evaluate(model: nn.Module, loader: DataLoader, *, device: str | torch.device | None = None) -> dict:
    """Mean cross-entropy and accuracy over ``loader`` (model in eval mode; restores the previous mode)."""
    check_loader("loader", loader, where="evaluate")
    device = select_device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for b, (x, y) in enumerate(loader):
        check_inputs(x, where="evaluate()", batch=b, model=model)
        check_label_dtype(y, where="evaluate()", batch=b)
        x, y = x.to(device), y.to(device)
        out = forward_batch(model, x)
        check_labels(out, y)
        loss_sum += nn.functional.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        seen += y.shape[0]
    model.train(was_training)
    if seen == 0:
        raise ValueError("evaluate() got an empty loader")
    return {"loss": loss_sum / seen, "acc": correct / seen, "n": seen}


@dataclass
class Prediction:
    """Top-k classes and probabilities for one input."""

    top: list[tuple[str, float]]
    target: str | None = None

    @property
    def label(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][1]

    @property
    def correct(self) -> bool | None:
        return None if self.target is None else self.label == self.target

    def __repr__(self):
        tops = ", ".join(f"{c} {p:.1%}" for c, p in self.top)
        tgt = "" if self.target is None else f" (true: {self.target})"
        return f"Prediction({tops}){tgt}"


def _as_batch(model: nn.Module, inputs) -> torch.Tensor | None:
    """Photos given as paths, PIL images or NumPy arrays, decoded and preprocessed for ``model``; else None."""
    import numpy as np

    single = isinstance(inputs, (str, os.PathLike, np.ndarray)) or type(inputs).__module__.startswith("PIL")
    many = isinstance(inputs, (list, tuple)) and inputs and all(
        isinstance(i, (str, os.PathLike, np.ndarray)) or type(i).__module__.startswith("PIL") for i in inputs)
    if not (single or many):
        return None
    from .images import preprocess
    from .models import input_channels

    size, mean, std = getattr(model, "image_size", None), getattr(model, "mean", None), getattr(model, "std", None)
    if size is None or mean is None or std is None:
        raise ValueError(f"{getattr(model, 'name', type(model).__name__)} records no image_size/mean/std, so "
                         "photos cannot be prepared for it; pass a normalised tensor batch instead")
    channels = input_channels(model) or len(mean)
    items = [inputs] if single else list(inputs)
    return torch.stack([preprocess(i, size, mean, std, channels=channels) for i in items])


def _count(inputs: Any) -> int | None:
    """How many inputs a tensor batch, a Dataset or a DataLoader holds (None when it does not say)."""
    if isinstance(inputs, torch.Tensor):
        return 1 if inputs.dim() == 3 else len(inputs)
    data = inputs.dataset if isinstance(inputs, DataLoader) else inputs
    return len(data) if isinstance(data, Sized) else None


@torch.inference_mode()
def predict_proba(model: nn.Module, inputs: Inputs, *, device: str | torch.device | None = None,
                  batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Softmax probabilities for a tensor batch, a Dataset, a DataLoader, or photos (paths, PIL images, arrays).

    Photos go through the package's one decoder (:mod:`tlwidgets.images`),
    converted to the channels the model takes (a greyscale photo for an RGB
    model is repeated to RGB) and normalised with the model's mean/std.

    Args:
        model: the classifier; photos need its ``image_size``, ``mean`` and ``std``.
        inputs: a tensor batch (or one CxHxW image), a Dataset, a DataLoader, or one or more photos.
        device: where to run (default: where the model's parameters are).
        batch_size: how many inputs per forward pass for tensors and Datasets.

    Returns:
        ``(probabilities N x classes, labels or None)``: labels come from a labelled Dataset or DataLoader
        (``(inputs, labels)`` batches); unlabelled data (``(inputs,)`` or bare tensor batches) gives None.
    """
    batch_size = check_int("batch_size", batch_size, min=1)
    device = select_device(device) if device is not None else _model_device(model)
    model.eval()
    photos = _as_batch(model, inputs)
    if photos is not None:
        inputs = photos
    if not isinstance(inputs, (torch.Tensor, Dataset, DataLoader)):
        raise TypeError(f"predict(): expected a tensor batch, a Dataset, a DataLoader or photos (paths, PIL images, "
                        f"NumPy arrays), got {type(inputs).__name__}")
    # the same function with BatchNorms folded (model untouched), worth its copy from a few dozen inputs on
    net = inference_copy(model, channels_last=device.type == "cpu", n_inputs=_count(inputs))
    nhwc = net is not model and device.type == "cpu"

    def forward(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device)
        return forward_batch(net, as_channels_last(x) if nhwc else x)

    if isinstance(inputs, torch.Tensor):
        if inputs.dim() == 3:
            inputs = inputs.unsqueeze(0)
        check_inputs(inputs, where="predict()", model=model)
        return torch.cat([forward(inputs[i:i + batch_size]).softmax(1).cpu()
                          for i in range(0, len(inputs), batch_size)]), None
    loader = inputs if isinstance(inputs, DataLoader) else DataLoader(inputs, batch_size=batch_size)
    probs, labels = [], []
    for b, batch in enumerate(loader):
        x, y = _inputs_and_labels(batch, b)
        check_inputs(x, where="predict()", batch=b, model=model)
        probs.append(forward(x).softmax(1).cpu())
        labels.append(y)
    if not probs:
        raise ValueError("predict(): the data is empty; there is nothing to predict")
    known = [y for y in labels if y is not None]
    return torch.cat(probs), (torch.cat(known) if len(known) == len(labels) else None)


def _inputs_and_labels(batch: Any, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A batch as ``(inputs, labels or None)``: labelled ``(x, y)``, unlabelled ``(x,)`` or a bare tensor.

    Why: new photos to classify have no labels; a ``TensorDataset(x)`` or a
    DataLoader over a tensor is the natural way to hand them over, and must not
    fail with "not enough values to unpack". Anything else is refused by name.
    """
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (list, tuple)) and len(batch) in (1, 2) and isinstance(batch[0], torch.Tensor):
        return batch[0], (batch[1] if len(batch) == 2 else None)
    got = (f"a {type(batch).__name__} of {len(batch)} items" if isinstance(batch, (list, tuple))
           else type(batch).__name__)
    raise ValueError(f"predict(): batch {b} is {got}; expected inputs, (inputs,) or (inputs, labels)")


def predict(model: nn.Module, inputs: Inputs, *, k: int = 5,
            classes: Sequence[str] | None = None, device: str | torch.device | None = None) -> list[Prediction]:
    """Top-``k`` predictions with class names, so a lesson shows what a model "thinks", not a row of numbers.

    Args:
        model: the classifier.
        inputs: a tensor batch, a Dataset, a DataLoader, or photos (see :func:`predict_proba`).
        k: how many classes to list per input (at most the model's number of outputs).
        classes: class names (default: the model's ``classes``, else "0", "1", ...).
        device: where to run (default: where the model's parameters are).
    """
    k = check_int("k", k, min=1)
    classes = list(classes) if classes is not None else getattr(model, "classes", None)
    probs, labels = predict_proba(model, inputs, device=device)
    if classes is None:
        classes = [str(i) for i in range(probs.shape[1])]
    if len(classes) != probs.shape[1]:
        raise ValueError(f"{len(classes)} class names for a model with {probs.shape[1]} outputs")
    k = max(1, min(k, probs.shape[1]))
    values, idx = probs.topk(k, dim=1)
    out = []
    for i in range(len(probs)):
        target = classes[labels[i]] if labels is not None else None
        out.append(Prediction([(classes[j], float(v)) for v, j in zip(values[i].tolist(), idx[i].tolist())], target))
    return out


def confusion_matrix(model: nn.Module, loader: Dataset | DataLoader, *, num_classes: int | None = None,
                     device: str | torch.device | None = None) -> torch.Tensor:
    """``cm[true, predicted]`` counts over a labelled Dataset or DataLoader (the dashboard's heat map).

    Args:
        model: the classifier.
        loader: labelled data: a Dataset or DataLoader of (inputs, labels).
        num_classes: rows and columns of the matrix (default: the model's outputs); classes that never occur
            get a row of zeros, so matrices of different runs line up.
        device: where to run (default: where the model's parameters are).
    """
    if num_classes is not None:
        num_classes = check_int("num_classes", num_classes, min=2)
    probs, labels = predict_proba(model, loader, device=device)
    if labels is None:
        raise ValueError("confusion_matrix needs labelled data")
    labels = labels.long()
    k = num_classes or probs.shape[1]
    need = max(int(labels.max()), int(probs.argmax(1).max())) + 1
    if k < need:
        raise ValueError(f"num_classes={k} is too few: the labels and predictions use classes 0..{need - 1}, so the "
                         f"matrix needs at least {need} rows and columns (the model has {probs.shape[1]} outputs)")
    cm = torch.zeros(k, k, dtype=torch.long)
    cm.index_put_((labels, probs.argmax(1)), torch.ones_like(labels), accumulate=True)
    return cm

