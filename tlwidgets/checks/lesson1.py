"""Checks for lesson 1 (prediction with a pretrained model). Answers are recomputed, never looked up."""
from __future__ import annotations

from typing import Any

import torch

from . import CheckResult, as_number, is_placeholder, not_yet, passed

FRACTION = "a number between 0 and 1 (e.g. 0.93)"
# exercise 1's batches at most: the lesson's 5,139 digits in thirds made 1,714-digit batches whose activations
# the allocator maps afresh for every layer (as much system time as arithmetic); the accuracy is a count either way
LARGEST_BATCH = 512


def exercise1(accuracy: Any, model: Any, task: Any) -> CheckResult:
    """Write ``accuracy(model, loader)`` by hand: the share of correct top-1 answers, in eval mode, whole loader.

    Judged by behaviour against ``tl.evaluate`` on ``task.test``: called with
    the model left in training mode (a typical slip: BatchNorm then uses the
    batch's statistics and Dropout drops features), with a last batch smaller
    than the others, and as fraction rather than percentage.
    """
    from torch.utils.data import DataLoader

    from ..training import evaluate

    if not callable(accuracy):
        raise ValueError(f"exercise1 expects your function accuracy(model, loader), got {type(accuracy).__name__}")
    n = len(task.test)
    batch = max(2, n // 3 + 1)  # three batches, the last one smaller
    if batch > LARGEST_BATCH:   # then more batches, the last one still smaller
        batch = next(b for b in range(LARGEST_BATCH, 1, -1) if n % b)
    was_training = model.training
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        model.train()
        got = accuracy(model, DataLoader(task.test, batch_size=batch))
    except Exception as exc:  # noqa: BLE001 - a student's bug is a hint, not a crash
        return not_yet(f"accuracy(model, loader) raised {type(exc).__name__}: {exc}")
    finally:
        changed = [k for k, v in model.state_dict().items() if not torch.equal(v, saved[k])]
        model.load_state_dict(saved)  # the lesson's model leaves the check as it came
        model.train(was_training)
    if changed:
        return not_yet(f"measuring changed the model ({changed[0]}): in training mode BatchNorm updates its "
                       "running statistics (and Dropout drops features) - call model.eval() first, and compute "
                       "under torch.no_grad()")
    if is_placeholder(got):
        return not_yet("accuracy returned nothing: fill in its body - loop over the loader, count "
                       "(logits.argmax(1) == y).sum() and divide by the number of examples; return a float")
    value = as_number(got, "exercise1", FRACTION)
    want = evaluate(model, DataLoader(task.test, batch_size=batch))["acc"]
    if abs(value - want) <= 1e-6:
        return passed(f"{value:.4f} on {n:,} test digits, the same as tl.evaluate, even when handed a model "
                      "in training mode")
    if abs(value / 100 - want) <= 1e-6:
        return not_yet(f"that looks like a percentage ({value:.2f}); return a fraction in [0, 1]")
    if abs((1 - value) - want) <= 1e-6:
        return not_yet("that is the error rate (share of mistakes); accuracy is the share of correct answers")
    with torch.no_grad():
        model.eval()
        per_batch = [float((model(x).argmax(1) == y).float().mean()) for x, y in
                     DataLoader(task.test, batch_size=batch)]
        model.train(was_training)
    if abs(value - sum(per_batch) / len(per_batch)) <= 1e-6:
        return not_yet("you averaged the batches' accuracies, but the last batch is smaller: count correct "
                       "answers and examples over the whole loader, then divide once")
    if any(abs(value - b) <= 1e-6 for b in per_batch):
        return not_yet("that is one batch's accuracy: go over every batch of the loader")
    return not_yet(f"{value:.4f} is not tl.evaluate's {want:.4f}: the model came in training mode - call "
                   "model.eval() first (and torch.no_grad()), so BatchNorm and Dropout behave as at test time")


def exercise2(prediction: Any, measured: Any, net: Any, x_pets: Any, truth: Any, size: int = 96, *,
              probs: Any = None) -> CheckResult:
    """Predict, then measure: top-1 species accuracy of the ImageNet model on the pet photos at ``size`` px.

    The check measures it too (the lesson's photos resized with antialiasing)
    and accepts any route within 2 points (decoding the files again at
    ``size`` px gives slightly different pixels than resizing the tensors).

    The accuracy at the lesson's own size (for the message, and to recognise
    an answer measured without resizing) needs every photo at full size, the
    costliest pass of the check. A caller that already holds those
    probabilities can hand them in as ``probs``: the check then recomputes
    only a spread of :data:`SPOT_CHECKED` photos and requires them to agree,
    so the verdict on ``measured`` (always recomputed at ``size`` px, on every
    photo) is the same either way.

    Args:
        prediction: the student's guess, made before measuring.
        measured: the accuracy the student measured.
        net: the ImageNet model.
        x_pets: the lesson's pet photos as a normalised tensor batch.
        truth: the true species, ``"dog"`` or ``"cat"`` per photo.
        size: the resolution the photos are resized to before the model sees them.
        probs: optional, ``net``'s probabilities for ``x_pets`` as they are (the lesson's ``probs_pets``).
    """
    import torch.nn.functional as F

    from ..pretrained import species_predictions
    from ..training import predict_proba

    if is_placeholder(prediction):
        return not_yet(f"first write your prediction (a fraction in [0, 1]) in `prediction`: at {size} px will "
                       "species accuracy go up or down, and to about what?")
    if is_placeholder(measured):
        return not_yet(f"now measure: resize x_pets to {size} px (F.interpolate(..., antialias=True)), run "
                       "predict_proba and species_predictions(probs, 'top1'), compare with truth")
    pred = as_number(prediction, "exercise2 (prediction)", FRACTION)
    value = as_number(measured, "exercise2 (measured)", FRACTION)
    truth = list(truth)
    small = F.interpolate(x_pets, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    at_size, _ = predict_proba(net, small, batch_size=64)
    want = sum(s == t for s, t in zip(species_predictions(at_size, "top1"), truth)) / len(truth)
    full = _full_size_probs(net, x_pets, probs)
    at_lesson = sum(s == t for s, t in zip(species_predictions(full, "top1"), truth)) / len(truth)
    mass = sum(s == t for s, t in zip(species_predictions(at_size, "mass"), truth)) / len(truth)
    if abs(value - at_lesson) <= 1e-9 and abs(at_lesson - want) > 1e-9:
        return not_yet(f"that is the accuracy at the lesson's {x_pets.shape[-1]} px: resize the photos to "
                       f"{size} px before predicting")
    if abs(value - want) <= 0.02:
        gap = pred - want
        return passed(f"{want:.1%} at {size} px vs {at_lesson:.1%} at {x_pets.shape[-1]} px; your prediction "
                      f"{pred:.0%} was {'spot on' if abs(gap) < 0.02 else f'{gap:+.0%} off'}. "
                      "Now explain in a sentence why fewer pixels cost accuracy.")
    if abs(value / 100 - want) <= 0.02:
        return not_yet("that looks like a percentage; give a fraction in [0, 1]")
    if abs(value - mass) <= 1e-3:
        return not_yet("that uses the probability-mass rule (exercise 3); this exercise measures the top-1 rule")
    return not_yet(f"{value:.3f} is not the top-1 species accuracy at {size} px; check that the photos are "
                   f"{size} x {size} and that you compare species_predictions(probs, 'top1') with truth")


SPOT_CHECKED = 8  # photos of the lesson's size a handed-in ``probs`` is recomputed on (exercise 2)


def _full_size_probs(net: Any, x_pets: Any, probs: Any) -> torch.Tensor:
    """``net``'s probabilities for ``x_pets``: ``probs`` when it agrees with the net on a spread of photos, else
    computed here; a ``probs`` that disagrees is a mix-up of arguments and raises, naming the photo."""
    from ..training import predict_proba

    if probs is None:
        return predict_proba(net, x_pets, batch_size=64)[0]
    given = torch.as_tensor(probs, dtype=torch.float32).cpu()
    if given.dim() != 2 or given.shape[0] != len(x_pets):
        raise ValueError(f"exercise2: probs must hold one row of class probabilities per photo of x_pets "
                         f"({len(x_pets)} rows), got shape {tuple(given.shape)}")
    rows = torch.linspace(0, len(x_pets) - 1, min(SPOT_CHECKED, len(x_pets))).round().long().unique()
    again, _ = predict_proba(net, x_pets[rows])
    if again.shape[1] != given.shape[1]:
        raise ValueError(f"exercise2: probs has {given.shape[1]} classes per photo, the net gives "
                         f"{again.shape[1]}; pass the lesson's probs_pets, or leave probs out")
    differ = (again - given[rows]).abs().amax(1)
    if float(differ.max()) > 1e-4:
        raise ValueError(f"exercise2: probs are not the net's probabilities for x_pets (photo "
                         f"{int(rows[differ.argmax()])} differs by {float(differ.max()):.2g}); pass the lesson's "
                         "probs_pets, computed with predict_proba(net, x_pets), or leave probs out")
    return given


def exercise3(answer: Any, probs: Any, truth: Any) -> CheckResult:
    """Species accuracy when the species is decided by summed dog vs cat probability."""
    from ..pretrained import species_predictions

    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with a float: sum probs over the dog classes (151..268) and over "
                       "the cat classes (281..285) for each photo, call it a dog when the dog sum is larger, "
                       "and compare with truth")
    value = as_number(answer, "exercise3", FRACTION)
    truth = list(truth)
    if len(truth) != len(probs):
        raise ValueError(f"probs has {len(probs)} rows but truth has {len(truth)} labels")
    mass = species_predictions(probs, "mass")
    acc = sum(s == t for s, t in zip(mass, truth)) / len(truth)
    top1 = sum(s == t for s, t in zip(species_predictions(probs, "top1"), truth)) / len(truth)
    if abs(value - acc) <= 1e-3:
        return passed(f"{acc:.1%} by probability mass vs {top1:.1%} by the top-1 label: summing over all breeds "
                      "uses what the model knows even when no single breed wins")
    if abs(value - top1) <= 1e-3:
        return not_yet("that is the top-1 rule's accuracy; add up the probabilities over each species' classes")
    if abs(value / 100 - acc) <= 1e-3:
        return not_yet("that looks like a percentage; give a fraction in [0, 1]")
    return not_yet(f"{value:.3f} is not it; check the ranges (dogs 151..268 inclusive, cats 281..285) and that "
                   "you compare 'dog'/'cat' strings with truth")
