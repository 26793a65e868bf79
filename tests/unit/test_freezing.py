"""tlwidgets.freezing: freeze(model, n) against a hand-written requires_grad loop, BatchNorm, counts."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from tlwidgets import models
from tlwidgets.freezing import batchnorm_modes, freeze, freeze_report, max_frozen, unfreeze_all
from tlwidgets.training import fit


def _by_hand(model, n: int) -> dict[str, bool]:
    """What freezing the first n groups means, written out without tlwidgets."""
    for i, group in enumerate(model.groups.values()):
        for p in group.parameters():
            p.requires_grad = i >= n
    return {name: p.requires_grad for name, p in model.named_parameters()}


def _flags(model) -> dict[str, bool]:
    return {name: p.requires_grad for name, p in model.named_parameters()}


def test_freeze_matches_a_hand_written_loop_for_every_n(tiny_model):
    model = tiny_model()
    assert max_frozen(model) == 3
    for n in [0, 1, 2, 3, 1, 0, 3]:  # also going back down: unfreezing must work too
        report = freeze(model, n)
        expected = _by_hand(copy.deepcopy(model), n)
        assert _flags(model) == expected
        assert model.n_frozen == report.n_frozen == n
        assert [f for _, _, f in report.groups] == [i < n for i in range(4)]
        trainable = sum(p.numel() for name, p in model.named_parameters() if expected[name])
        assert report.trainable == trainable and report.total == sum(p.numel() for p in model.parameters())
        assert model.parameter_counts() == (trainable, report.total)


def test_freeze_report_counts_for_the_digit_model():
    model = models.digit_cnn(5)
    report = freeze(model, 3)
    assert report.groups == (("conv1", 192, True), ("conv2", 4704, True), ("features", 200832, True),
                             ("head", 645, False))
    assert (report.trainable, report.total) == (645, 206_373)
    assert report.trainable_fraction == pytest.approx(645 / 206_373)
    assert "3/4 groups frozen, 645 of 206,373 parameters trainable (0.3%)" in repr(report)
    assert freeze_report(model) == report
    report = unfreeze_all(model)
    assert report.n_frozen == 0 and report.trainable == report.total == 206_373


@pytest.mark.parametrize("n", [-1, 4, 10])
def test_out_of_range_freeze_count_states_the_allowed_range(tiny_model, n):
    model = tiny_model()
    freeze(model, 2)
    with pytest.raises(ValueError, match=rf"n_frozen={n} is out of range: tiny has 4 groups, so 0\.\.3 can be "
                                         r"frozen \(the head always trains\)"):
        freeze(model, n)
    assert model.n_frozen == 2 and _flags(model) == _by_hand(copy.deepcopy(model), 2)  # unchanged


@pytest.mark.parametrize("n", [1.0, "2", True, None])
def test_non_integer_freeze_count_is_refused(tiny_model, n):
    with pytest.raises(ValueError, match=rf"n_frozen must be an integer, got {n!r}"):
        freeze(tiny_model(), n)


def test_freeze_refuses_unknown_bn_mode_and_plain_modules(tiny_model):
    with pytest.raises(ValueError, match=r"frozen_bn must be one of \('eval', 'train'\), got 'frozen'"):
        freeze(tiny_model(), 1, frozen_bn="frozen")
    with pytest.raises(TypeError, match="freeze\\(\\) needs a tlwidgets GroupedModel .* got Sequential"):
        freeze(nn.Sequential(nn.Linear(2, 2)), 0)


def test_the_frozen_part_stays_in_eval_mode_after_train(tiny_model):
    model = tiny_model(dropout=0.5)
    freeze(model, 1)
    model.train()
    assert batchnorm_modes(model) == {"stem.1": False, "block.1": True}
    assert model.training and model.groups["features"][4].training
    freeze(model, 3)  # now the Dropout inside "features" is frozen too: a fixed function, no noise
    assert batchnorm_modes(model) == {"stem.1": False, "block.1": False}
    assert not model.groups["features"][4].training
    model.train()
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(model[:3](x), model[:3](x))
    freeze(model, 0)  # unfreezing puts them back into training mode
    assert all(batchnorm_modes(model).values()) and model.groups["features"][4].training
    model.eval()
    assert not any(batchnorm_modes(model).values())


def _bn_stats(model):
    return {name: (m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked))
            for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_fit_leaves_frozen_batchnorm_statistics_alone(tiny_model, tiny_data):
    model = tiny_model()
    freeze(model, 1)
    before, weights = _bn_stats(model), _snapshot(model)
    fit(model, DataLoader(tiny_data(), batch_size=8, shuffle=True), num_epochs=1, lr=1e-2, device="cpu",
        progress=False)
    after = _bn_stats(model)
    stem, block = "stem.1", "block.1"
    assert all(torch.equal(a, b) for a, b in zip(before[stem][:2], after[stem][:2])) and after[stem][2] == 0
    assert not torch.equal(before[block][0], after[block][0]) and after[block][2] == 6  # 48 images / 8
    state = model.state_dict()
    for key in weights:
        changed = not torch.equal(weights[key], state[key])
        assert changed == (not key.startswith("stem.")), key


def test_frozen_bn_train_mode_lets_frozen_statistics_drift(tiny_model, tiny_data):
    model = tiny_model()
    report = freeze(model, 1, frozen_bn="train")
    assert report.frozen_bn_mode == "train"
    before, weights = _bn_stats(model), _snapshot(model)
    model.train()
    assert all(batchnorm_modes(model).values())
    fit(model, DataLoader(tiny_data(), batch_size=8), num_epochs=1, lr=1e-2, device="cpu", progress=False)
    after = _bn_stats(model)
    assert not torch.equal(before["stem.1"][0], after["stem.1"][0])  # statistics moved ...
    assert torch.equal(weights["stem.0.weight"], model.state_dict()["stem.0.weight"])  # weights not
    assert torch.equal(weights["stem.1.weight"], model.state_dict()["stem.1.weight"])


def test_efficientnet_frozen_backbone_has_every_batchnorm_in_eval():
    model = models.efficientnet_lite0(pretrained=False)
    models.replace_head(model, 2)
    report = freeze(model, max_frozen(model))
    model.train()
    modes = batchnorm_modes(model)
    assert len(modes) == 49 and not any(modes.values())
    assert report.trainable == 1280 * 2 + 2 and report.n_frozen == 9
