"""Helpers shared by the exercise-check tests (test_checks*.py): verdict assertions and model counts."""
from __future__ import annotations

from torch import nn

from tlwidgets.checks import CheckResult


def expect_pass(capsys, result, *needles) -> str:
    """``result`` passed, printed exactly its own verdict, and its message mentions ``needles``."""
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and result and result.passed is True, result
    assert out == repr(result) + "\n" and out.startswith("✅ Correct: ")
    for needle in needles:
        assert needle in result.message, (needle, result.message)
    return result.message


def expect_hint(capsys, result, *needles) -> str:
    """``result`` is a falsy 'not yet' that printed one verdict, with a hint mentioning ``needles``."""
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result and result.passed is False, result
    assert out == repr(result) + "\n" and out.startswith("❌ Not yet: ")
    assert result.message.strip()
    for needle in needles:
        assert needle in result.message, (needle, result.message)
    return result.message


def expect_placeholder(result, capsys) -> None:
    """The lesson's untouched placeholder gets a real hint (a falsy CheckResult, one printed line), never an error."""
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert out == repr(result) + "\n" and out.startswith("❌ Not yet: ") and "✅" not in out
    assert len(result.message) > 20


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def group_sizes(model) -> list[int]:
    return [sum(p.numel() for p in model.groups[n].parameters()) for n in model.group_names]


def frozen_bn_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) and not m.training]
