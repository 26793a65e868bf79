"""tlwidgets.inference: the folded, channels_last copy computes the model's own eval-mode function.

The twin is the model itself: every check compares the copy's output with the unfolded model's, and checks
that the model given was not changed.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import tlwidgets as tl
from tlwidgets.inference import fold_batchnorm, has_convolutions, inference_copy


def _random_running_stats(model: nn.Module, seed: int = 0) -> None:
    """Make every BatchNorm's stored statistics and affine numbers non-trivial (fresh ones fold to almost nothing)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _state(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def effnet():
    return tl.efficientnet_lite0().eval()


def test_efficientnet_copy_folds_every_batchnorm_and_keeps_the_function(effnet):
    x = torch.randn(4, 3, 96, 96)
    before = _state(effnet)
    twin = inference_copy(effnet, channels_last=True)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in twin.modules()) == 0
    assert sum(isinstance(m, nn.BatchNorm2d) for m in effnet.modules()) == 49      # the model keeps its own
    with torch.no_grad():
        want = effnet(x)
        got = twin(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), (got - want).abs().max()
    assert all(torch.equal(before[k], v) for k, v in effnet.state_dict().items())
    assert not any(p.requires_grad for p in twin.parameters())


def test_features_from_the_copy_match_the_unfolded_frozen_part(effnet):
    x = torch.randn(6, 3, 64, 64)
    acts = tl.extract_features(effnet, torch.utils.data.TensorDataset(x, torch.zeros(6, dtype=torch.long)), 7,
                               device="cpu", progress=False).tensors[0]
    with torch.no_grad():
        want = effnet[:7](x)
    assert acts.shape == want.shape
    assert torch.allclose(acts, want, rtol=1e-4, atol=1e-4)


def test_resnet_blocks_fold_by_their_named_pairs():
    from torchvision.models import resnet18

    net = resnet18(weights=None).eval()
    _random_running_stats(net)
    twin = inference_copy(net)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in twin.modules()) == 0
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(twin(x), net(x), rtol=1e-4, atol=1e-4)


def test_digit_model_copy_matches_and_predict_proba_is_unchanged():
    model = tl.load_digit_model().eval()
    _random_running_stats(model, seed=1)
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        want = model(x).softmax(1)
    got, labels = tl.predict_proba(model, x, device="cpu")
    assert labels is None
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_batchnorm_that_does_not_follow_a_convolution_is_left_alone():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)).eval()
    _random_running_stats(net)
    twin = inference_copy(net)
    assert isinstance(twin[2], nn.BatchNorm2d)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(twin(x), net(x))


def test_a_model_without_convolutions_is_returned_as_it_is():
    head = nn.Linear(8, 3)
    assert not has_convolutions(head)
    assert inference_copy(head) is head


def test_folding_in_train_mode_is_refused_and_says_why():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(net)


def test_a_few_inputs_run_through_the_model_as_it_is(effnet):
    from tlwidgets.inference import MIN_INPUTS

    assert inference_copy(effnet, n_inputs=MIN_INPUTS - 1) is effnet      # a copy would cost more than it saves
    assert inference_copy(effnet, n_inputs=MIN_INPUTS) is not effnet
    x = torch.randn(2, 3, 64, 64)
    got, _ = tl.predict_proba(effnet, x, device="cpu")
    with torch.no_grad():
        assert torch.equal(got, effnet(x).softmax(1))                        # exactly the model's own pass
