"""tlwidgets.checks.lesson8: for each exercise, two correct routes pass, typical wrong answers get their own
hint, the lesson's untouched placeholder is rejected, and an unreadable answer raises ValueError."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _check_helpers import expect_hint, expect_pass, expect_placeholder
from torch import nn

from tlwidgets import checks
from tlwidgets.transformer import LoRALinear

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RIGHT = 6 * 2 * (8 * 384 + 384 * 8)


# ---------------------------------------------------------------------------------------- exercise 1 ---
def test_exercise1_accepts_the_formula_or_a_count_of_peft_parameters(capsys):
    expect_pass(capsys, checks.lesson8.exercise1(6 * 2 * 2 * 8 * 384, "under 1%"), "73,728", "as you predicted")
    counted = np.int64(sum(m.A.numel() + m.B.numel() for m in
                           [LoRALinear(nn.Linear(384, 384), r=8) for _ in range(12)]))
    expect_pass(capsys, checks.lesson8.exercise1(counted, "over 10%"), "you predicted 'over 10%'")
    expect_pass(capsys, checks.lesson8.exercise1(torch.tensor(RIGHT), "1% to 10%"))


def test_exercise1_rejects_placeholder_and_typical_mistakes_each_with_its_hint(capsys):
    expect_placeholder(checks.lesson8.exercise1(..., ...), capsys)
    expect_placeholder(checks.lesson8.exercise1(..., "under 1%"), capsys)
    hints = {expect_hint(capsys, checks.lesson8.exercise1(RIGHT, "tiny"), "not one of"),
             expect_hint(capsys, checks.lesson8.exercise1(RIGHT + 770, "under 1%"), "head"),
             expect_hint(capsys, checks.lesson8.exercise1(RIGHT // 2, "under 1%"), "half"),
             expect_hint(capsys, checks.lesson8.exercise1(2 * (8 * 384 * 2), "under 1%"), "one block"),
             expect_hint(capsys, checks.lesson8.exercise1(12 * 384 * 384, "under 1%"), "freezes them"),
             expect_hint(capsys, checks.lesson8.exercise1(12 * 64, "under 1%"), "not r x r"),
             expect_hint(capsys, checks.lesson8.exercise1(12345, "under 1%"), "is not it")}
    assert len(hints) == 7
    with pytest.raises(ValueError, match="exercise1 expects an integer"):
        checks.lesson8.exercise1("73728", "under 1%")


# ---------------------------------------------------------------------------------------- exercise 2 ---
class WithParameters(nn.Module):
    """Route 1: A and B as nn.Parameter, the update with @."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.A = nn.Parameter(torch.randn(r, base.in_features) * 0.01)
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale


class WithLinears(nn.Module):
    """Route 2: peft's layout, two bias-free nn.Linear layers, F.linear for the frozen part."""

    def __init__(self, base, r, alpha):
        super().__init__()
        base.requires_grad_(False)
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.zeros_(self.lora_B.weight)
        self.alpha, self.r = alpha, r

    def forward(self, x):
        return F.linear(x, self.base.weight, self.base.bias) + self.lora_B(self.lora_A(x)) * self.alpha / self.r


def test_exercise2_accepts_parameters_linears_and_the_course_layer(capsys):
    expect_pass(capsys, checks.lesson8.exercise2(WithParameters), "B A x")
    expect_pass(capsys, checks.lesson8.exercise2(WithLinears))
    expect_pass(capsys, checks.lesson8.exercise2(lambda base, r, alpha: LoRALinear(base, r, alpha)))


def _variant(**changes):
    class Variant(WithParameters):
        def __init__(self, base, r, alpha):
            super().__init__(base, r, alpha)
            if changes.get("train_base"):
                base.weight.requires_grad_(True)
            if changes.get("b_random"):
                self.B.data.normal_()
            if changes.get("a_zero"):
                self.A.data.zero_()
            if changes.get("bias"):
                self.extra = nn.Parameter(torch.zeros(base.out_features))

        def forward(self, x):
            update = x @ self.A.T @ self.B.T
            if changes.get("no_scale"):
                return self.base(x) + update
            if changes.get("inverse_scale"):
                return self.base(x) + update / self.scale
            if changes.get("no_base"):
                return update * self.scale
            return super().forward(x)
    return Variant


def test_exercise2_rejects_placeholder_and_typical_mistakes_each_with_its_hint(capsys):
    expect_placeholder(checks.lesson8.exercise2(...), capsys)

    class Placeholder(nn.Module):
        def __init__(self, base, r, alpha):
            super().__init__()
            base.requires_grad_(False)
            self.A = nn.Parameter(torch.randn(r, base.in_features))
            self.B = nn.Parameter(torch.zeros(base.out_features, r))

        def forward(self, x):
            ...

    hints = {expect_hint(capsys, checks.lesson8.exercise2(Placeholder), "returns nothing"),
             expect_hint(capsys, checks.lesson8.exercise2(_variant(train_base=True)), "still train"),
             expect_hint(capsys, checks.lesson8.exercise2(_variant(b_random=True)), "start at zero"),
             expect_hint(capsys, checks.lesson8.exercise2(_variant(a_zero=True)), "A must start random"),
             expect_hint(capsys, checks.lesson8.exercise2(_variant(bias=True)), "shapes"),
             expect_hint(capsys, checks.lesson8.exercise2(_variant(no_scale=True)), "not scaled"),
             expect_hint(capsys, checks.lesson8.exercise2(_variant(inverse_scale=True)), "upside down"),
             expect_hint(capsys, checks.lesson8.exercise2(_variant(no_base=True)), "forget to add base")}
    assert len(hints) == 8
    with pytest.raises(ValueError, match="exercise2 expects your class"):
        checks.lesson8.exercise2(42)
