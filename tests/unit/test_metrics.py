"""metrics and splits against their library twins (scikit-learn is not a dependency: reference by hand + numbers)."""
import pytest
import torch

from tlwidgets.metrics import classification_metrics, seed_spread
from tlwidgets.splits import stratified_split


def test_constant_predictor_scores_chance_in_balanced_accuracy_and_majority_in_accuracy():
    y = torch.tensor([0] * 30 + [1] * 10 + [2] * 10)
    m = classification_metrics(y, torch.zeros_like(y), 3)
    assert m.accuracy == pytest.approx(0.6) and m.majority == pytest.approx(0.6)
    assert m.balanced_accuracy == pytest.approx(1 / 3) and m.chance == pytest.approx(1 / 3)
    assert m.single_class and "ONE class" in repr(m)


def test_balanced_accuracy_matches_mean_recall():
    y = [0, 0, 0, 0, 1, 1, 2]
    p = [0, 0, 1, 1, 1, 0, 2]
    m = classification_metrics(y, p)
    assert m.balanced_accuracy == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert m.accuracy == pytest.approx(4 / 7) and not m.single_class


@pytest.mark.parametrize("bad, match", [
    (dict(y_true=[0, 1], y_pred=[0]), "same length"),
    (dict(y_true=[], y_pred=[]), "no samples"),
    (dict(y_true=[0, 3], y_pred=[0, 1], num_classes=2), "num_classes=2"),
    (dict(y_true=[0.5, 1], y_pred=[0, 1]), "integer class"),
])
def test_bad_inputs_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(**bad)


def test_seed_spread():
    s = seed_spread([0.5, 0.7, 0.6])
    assert s.mean == pytest.approx(0.6) and s.std == pytest.approx(0.1) and (s.min, s.max, s.n) == (0.5, 0.7, 3)
    assert seed_spread([0.4]).std == 0.0
    with pytest.raises(ValueError, match="at least one"):
        seed_spread([])


def test_stratified_split_is_disjoint_stratified_and_seeded():
    y = torch.tensor([0] * 10 + [1] * 6 + [2] * 4)
    tr, va = stratified_split(y, 2, seed=3)
    assert set(tr.tolist()).isdisjoint(va.tolist()) and len(tr) + len(va) == len(y)
    assert torch.bincount(y[va]).tolist() == [2, 2, 2]
    assert torch.equal(stratified_split(y, 2, seed=3)[1], va)
    assert not torch.equal(stratified_split(y, 2, seed=4)[1], va)
    tr, va = stratified_split(y, val_fraction=0.25, seed=0)
    assert torch.bincount(y[va]).tolist() == [2, 2, 1]


@pytest.mark.parametrize("kw, match", [
    (dict(val_per_class=4), "class 2 has 4 samples"),
    (dict(), "exactly one"),
    (dict(val_per_class=0), "val_per_class must be"),
    (dict(val_fraction=1.5), "val_fraction must be"),
])
def test_stratified_split_refuses_impossible_requests(kw, match):
    with pytest.raises(ValueError, match=match):
        stratified_split(torch.tensor([0] * 10 + [1] * 6 + [2] * 4), **kw)
