"""Checks for lesson 8 (a pretrained transformer). Each recomputes the answer from what is passed in."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import CheckResult, as_integer, is_placeholder, need_prediction, not_yet, passed

PREDICTIONS = ("under 1%", "1% to 10%", "over 10%")


def exercise1(answer: Any, prediction: Any, *, blocks: int = 6, hidden: int = 384, r: int = 8,
              total: int = 22_566_146) -> CheckResult:
    """How many numbers LoRA (rank ``r`` on query and value) trains in the encoder, head not counted.

    Args:
        answer: the student's count.
        prediction: which share of the encoder's parameters they expected, one of :data:`PREDICTIONS`.
        blocks: transformer blocks.
        hidden: the hidden size (query and value are ``hidden x hidden``).
        r: LoRA's rank.
        total: the classifier's parameter count, to put the answer in proportion.
    """
    ask = need_prediction(prediction, "which share of the 22.6 M parameters LoRA trains", PREDICTIONS)
    if ask is not None:
        return ask
    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with a count: A is r x 384 and B is 384 x r, for query and value "
                       "in each of the 6 blocks")
    answer = as_integer(answer, "exercise1")
    per_projection = r * hidden + hidden * r
    right = blocks * 2 * per_projection
    share = right / total
    truth = PREDICTIONS[0] if share < 0.01 else PREDICTIONS[1] if share <= 0.10 else PREDICTIONS[2]
    if answer == right:
        verdict = "as you predicted" if prediction == truth else f"you predicted {prediction!r}"
        return passed(f"{right:,} numbers, {share:.2%} of the model ({verdict}); the 22.5 M pretrained weights "
                      "stay exactly as they were, and one copy of them serves any number of LoRA adapters")
    if answer == right + hidden * 2 + 2:
        return not_yet("that includes the new head (384 x 2 + 2); the question counts the LoRA updates alone")
    if answer == right // 2:
        return not_yet("that is half of it: count both matrices (A: r x 384 and B: 384 x r) for both query and "
                       "value")
    if answer == per_projection * 2 or answer == per_projection:
        return not_yet("that is one block; LoRA sits in each of the 6 blocks")
    if answer == blocks * 2 * hidden * hidden or answer == blocks * 2 * (hidden * hidden + hidden):
        return not_yet("that is the size of the query and value weights themselves; LoRA freezes them and trains "
                       "two thin matrices beside each")
    if answer == blocks * 2 * r * r:
        return not_yet("A and B are not r x r: A maps 384 numbers to r, B maps r back to 384")
    return not_yet(f"{answer:,} is not it: per projection r x 384 + 384 x r = {per_projection:,}; how many "
                   "projections carry LoRA in 6 blocks?")


def _trainable(layer: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(n, p) for n, p in layer.named_parameters() if p.requires_grad]


def exercise2(make_layer: Any, *, in_features: int = 12, out_features: int = 10, r: int = 3,
              alpha: float = 6.0) -> CheckResult:
    """The student's LoRA layer, judged by behaviour: ``make_layer(base, r, alpha)`` must return a module whose
    output is ``base(x) + (B A x) · alpha / r``, with ``base`` frozen, ``A`` random and ``B`` zero at the start.

    Any implementation is accepted (``nn.Parameter`` matrices, two ``nn.Linear`` without bias, ``F.linear``,
    ``@``): the trainable tensors are found by their shapes, ``A`` is ``(r, in)`` and ``B`` is ``(out, r)``.
    """
    if is_placeholder(make_layer):
        return not_yet("write the class LoRA(base, r, alpha) first and pass the class itself: exercise2(LoRA)")
    if not callable(make_layer):
        raise ValueError(f"exercise2 expects your class (or a function base, r, alpha -> module), got "
                         f"{type(make_layer).__name__}")
    torch.manual_seed(0)
    base = nn.Linear(in_features, out_features)
    reference = {k: v.clone() for k, v in base.state_dict().items()}
    x = torch.randn(7, in_features)
    try:
        layer = make_layer(base, r, alpha)
    except Exception as exc:  # noqa: BLE001 - the student's code; its error becomes the hint
        return not_yet(f"LoRA(base, r={r}, alpha={alpha}) raised {type(exc).__name__}: {str(exc)[:160]}")
    if not isinstance(layer, nn.Module):
        return not_yet("your class must be an nn.Module (class LoRA(nn.Module): ...), so its parameters train")
    if any(p.requires_grad for p in base.parameters()):
        return not_yet("the pretrained weights still train: call base.weight.requires_grad_(False) (and the bias) "
                       "so that only A and B learn")
    trainable = _trainable(layer)
    shapes = sorted(tuple(p.shape) for _, p in trainable)
    if shapes != sorted([(r, in_features), (out_features, r)]):
        return not_yet(f"the trainable tensors have shapes {shapes}; LoRA trains exactly A of shape ({r}, "
                       f"{in_features}) and B of shape ({out_features}, {r}) (no bias, nothing else)")
    a = next(p for _, p in trainable if tuple(p.shape) == (r, in_features))
    b = next(p for _, p in trainable if tuple(p.shape) == (out_features, r))
    try:
        with torch.no_grad():
            start = layer(x)
    except Exception as exc:  # noqa: BLE001
        return not_yet(f"calling your layer on a batch of shape {tuple(x.shape)} raised {type(exc).__name__}: "
                       f"{str(exc)[:160]}")
    if start is None or start is Ellipsis:
        return not_yet("forward returns nothing yet: replace `...` with the layer's output")
    if tuple(start.shape) != (7, out_features):
        return not_yet(f"the output has shape {tuple(start.shape)}; it must be {(7, out_features)}, like base(x)")
    with torch.no_grad():
        if bool((b != 0).any()):
            return not_yet("B must start at zero, so that before training the layer is exactly the pretrained one")
        if bool((a == 0).all()):
            return not_yet("A must start random: with A and B both zero, no gradient ever reaches either")
        if not torch.allclose(start, base(x), atol=1e-5):
            return not_yet("with B = 0 the output must equal base(x): did you forget to add base(x)?")
        b.normal_()
        got = layer(x)
        update = x @ a.t() @ b.t()
        expected = base(x) + update * (alpha / r)
    if any(not torch.equal(v, base.state_dict()[k]) for k, v in reference.items()):
        return not_yet("your layer changed the pretrained weights; keep them, and add the update beside them")
    if torch.allclose(got, expected, atol=1e-4):
        return passed(f"base(x) + B A x · alpha/r, with {a.numel() + b.numel()} trainable numbers instead of "
                      f"{in_features * out_features}; the same as peft's LoRA layer (lesson's section 5)")
    if torch.allclose(got, base(x) + update, atol=1e-4):
        return not_yet("the update is not scaled: multiply B A x by alpha / r")
    if torch.allclose(got, base(x) + update * (r / alpha), atol=1e-4):
        return not_yet("the scale is upside down: it is alpha / r, not r / alpha")
    if torch.allclose(got, update * (alpha / r), atol=1e-4):
        return not_yet("the output is only the update; add the frozen layer's output base(x) to it")
    return not_yet("once B is no longer zero the output is not base(x) + (x A^T B^T) · alpha / r: check the order "
                   "of A and B (A first: in -> r, then B: r -> out)")
