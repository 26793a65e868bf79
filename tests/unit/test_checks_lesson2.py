"""tlwidgets.checks.lesson2: feature extraction (cut, head parameters, a head on 5 labels, confusions, freeze and swap).

Per exercise: correct routes pass, typical wrong answers get their own hint, the lesson's untouched
placeholder gets a hint (never an exception), unreadable answers raise ValueError naming the type.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from _check_helpers import expect_hint, expect_pass, expect_placeholder
from torch import nn
from torch.utils.data import TensorDataset

import tlwidgets as tl
from tlwidgets import checks, data
from tlwidgets.features import FeatureSet

BUNDLED = data.REPO_DATASETS


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (conftest)


@pytest.fixture(scope="module")
def digits5():
    """Digits 5-9 with 5 labels per class and 20 test digits per class."""
    return tl.mnist_target_task(5, test_per_class=20, root=BUNDLED)


@pytest.fixture(scope="module")
def features5(digits5):
    """conv2 activations (32x7x7) of the digit model on ``digits5``, not cached on disk."""
    return tl.cached_features(tl.load_digit_model(), digits5, n_frozen=2, cache=False, progress=False)


@pytest.fixture(scope="module")
def head5(features5):
    """A linear head trained on ``features5`` (lesson 2's recipe): well above chance."""
    head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 5))
    train_loader = features5.loaders(32)[0]
    tl.fit(head, train_loader, None, num_epochs=30, lr=1e-3, device="cpu", seed=0, progress=False)
    return head.eval()


# --------------------------------------------------------------------------------- lesson 2 ---
def test_lesson2_exercise1_new_head_parameters(capsys):
    model = tl.load_digit_model()
    d_conv2, d_features = 32 * 7 * 7, 128  # two 2x2 poolings of 28x28 with 32 channels; the dense layer
    with torch.no_grad():
        assert model[:2](torch.zeros(1, 1, 28, 28))[0].numel() == d_conv2
    expect_pass(capsys, checks.lesson2.exercise1((d_conv2 + 1) * 5, model, 2, 5), "1,568 features")
    expect_pass(capsys, checks.lesson2.exercise1((d_features + 1) * 3, model, 3, 3))
    expect_pass(capsys, checks.lesson2.exercise1(np.int64((d_conv2 + 1) * 5), model, 2, 5))
    expect_pass(capsys, checks.lesson2.exercise1(torch.tensor((d_conv2 + 1) * 5), model, 2, 5))
    expect_hint(capsys, checks.lesson2.exercise1(d_conv2 * 5, model, 2, 5), "biases")
    expect_hint(capsys, checks.lesson2.exercise1(d_conv2, model, 2, 5), "model[:2](x)")
    expect_hint(capsys, checks.lesson2.exercise1((d_features + 1) * 5, model, 2, 5), "next group's output")
    expect_hint(capsys, checks.lesson2.exercise1(1000, model, 2, 5), "is not it")


def test_lesson2_exercise1_on_a_photo_model_keeps_its_mode(capsys):
    photo = tl.small_cnn(4, width=8, image_size=32)  # 3 channels; the features group is width*4 long
    photo.train()
    expect_pass(capsys, checks.lesson2.exercise1((8 * 4 + 1) * 4, photo, 5, 4), "32 features")
    assert photo.training  # the dummy forward pass left the model as it found it


@pytest.mark.parametrize("bad", ["7845", True, torch.tensor([7845, 1]), [7845]])
def test_lesson2_exercise1_needs_a_number(bad):
    with pytest.raises(ValueError, match="expects an integer"):
        checks.lesson2.exercise1(bad, tl.load_digit_model(), 2, 5)


@pytest.mark.parametrize("count", [7845.0, np.float64(7845), torch.tensor(7845.0), np.int32(7845),
                                   torch.tensor(7845, dtype=torch.int64)])
def test_lesson2_exercise1_judges_every_number_type(count, capsys):
    expect_pass(capsys, checks.lesson2.exercise1(count, tl.load_digit_model(), 2, 5), "7,845 parameters")


def test_lesson2_exercise1_a_count_that_is_not_whole_gets_a_hint(capsys):
    expect_hint(capsys, checks.lesson2.exercise1(7845.5, tl.load_digit_model(), 2, 5), "not a whole number")


def test_lesson2_exercise1_an_unpooled_cut_sees_the_prediction(capsys):
    """The lesson's new exercise 1: a head one group below the usual cut, on a feature *map*; the student's
    prediction is required first and echoed beside the measurement."""
    photo = tl.small_cnn(4, width=8, image_size=64)
    k = photo.num_groups - 3                    # two groups below the pooling head: a 32 x 4 x 4 map
    shape = photo[:k](torch.zeros(1, 3, 64, 64)).shape[1:]
    assert len(shape) == 3
    d = shape.numel()
    right = (d + 1) * 4
    expect_placeholder(checks.lesson2.exercise1(right, photo, k, 4, input_size=(3, 64, 64), prediction=...), capsys)
    expect_pass(capsys, checks.lesson2.exercise1(right, photo, k, 4, input_size=(3, 64, 64), prediction=right),
                "as you predicted", "flattened")
    msg = expect_pass(capsys, checks.lesson2.exercise1(float(right), photo, k, 4, input_size=(3, 64, 64),
                                                       prediction=np.int64(shape[0] * 4 + 4)))
    assert f"you predicted {shape[0] * 4 + 4:,}" in msg
    # typical wrong answers, each with its own hint
    expect_hint(capsys, checks.lesson2.exercise1((shape[0] + 1) * 4, photo, k, 4, input_size=(3, 64, 64),
                                                 prediction=1), "channels")
    expect_hint(capsys, checks.lesson2.exercise1(d * 4, photo, k, 4, input_size=(3, 64, 64), prediction=1),
                "biases")
    usual = (photo[:k + 1](torch.zeros(1, 3, 64, 64))[0].numel() + 1) * 4
    expect_hint(capsys, checks.lesson2.exercise1(usual, photo, k, 4, input_size=(3, 64, 64), prediction=1),
                "next group's output")
    # the map grows with the photo: measured at the task's input size, not the model's default
    big = (photo[:k](torch.zeros(1, 3, 128, 128))[0].numel() + 1) * 4
    expect_pass(capsys, checks.lesson2.exercise1(big, photo, k, 4, input_size=(3, 128, 128), prediction=1))
    expect_hint(capsys, checks.lesson2.exercise1(right, photo, k, 4, input_size=(3, 64, 64), prediction=0.5),
                "not a whole number")


def test_lesson2_exercise2_reported_accuracy_of_the_head(features5, head5, capsys):
    x, y = features5.test.tensors
    with torch.no_grad():
        acc = (head5(x).argmax(1) == y).float().mean().item()
    assert acc > 0.5
    expect_pass(capsys, checks.lesson2.exercise2(acc, head5, features5), "5 labelled images per class")
    expect_pass(capsys, checks.lesson2.exercise2(torch.tensor(acc), head5, features5))
    expect_hint(capsys, checks.lesson2.exercise2(acc - 0.1, head5, features5), "evaluate the head you pass in")


def test_lesson2_exercise2_wrong_heads_and_features(features5, head5, capsys):
    x, y = features5.train.tensors
    uneven = FeatureSet(TensorDataset(x[1:], y[1:]), features5.test, 2, "uneven", False)
    expect_hint(capsys, checks.lesson2.exercise2(0.8, head5, uneven), "n_per_class=5")
    wrong_boundary = nn.Sequential(nn.Flatten(), nn.Linear(128, 5))  # a head for the 128 features of group 3
    expect_hint(capsys, checks.lesson2.exercise2(0.8, wrong_boundary, features5), "same group boundary")
    always_first = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 5))
    with torch.no_grad():
        always_first[1].weight.zero_()
        always_first[1].bias.copy_(torch.tensor([1.0, 0, 0, 0, 0]))
    expect_hint(capsys, checks.lesson2.exercise2(0.2, always_first, features5), "barely above chance")


def test_lesson2_exercise2_bad_input(features5, head5):
    with pytest.raises(ValueError, match="a float between 0 and 1"):
        checks.lesson2.exercise2("0.8", head5, features5)
    with pytest.raises(ValueError, match=r"head \(an nn.Module\)"):
        checks.lesson2.exercise2(0.8, None, features5)
    with pytest.raises(ValueError, match="FeatureSet"):
        checks.lesson2.exercise2(0.8, head5, None)


def confused_breeds(perfect: bool = False):
    """A hand-made 3-breed test set of 'features' (one-hot of the prediction) and an identity head.

    Mistakes (true -> predicted): Bengal -> Abyssinian 3x, Sphynx -> Bengal 2x, Abyssinian -> Bengal 1x.
    """
    classes = ["Abyssinian", "Bengal", "Sphynx"]
    pairs = [(0, 0), (0, 0), (0, 1), (1, 1), (1, 0), (1, 0), (1, 0), (2, 2), (2, 1), (2, 1), (2, 2)]
    if perfect:
        pairs = [(t, t) for t, _ in pairs]
    y = torch.tensor([t for t, _ in pairs])
    x = torch.eye(3)[[p for _, p in pairs]]
    head = nn.Linear(3, 3)
    with torch.no_grad():
        head.weight.copy_(torch.eye(3))
        head.bias.zero_()
    feats = FeatureSet(TensorDataset(x, y), TensorDataset(x, y), 8, "breeds", False)
    return head, feats, classes, pairs


def test_lesson2_exercise3_most_confused_pair(capsys):
    head, feats, classes, pairs = confused_breeds()
    mistakes = Counter((classes[t], classes[p]) for t, p in pairs if t != p)
    answer, count = mistakes.most_common(1)[0]
    assert answer == ("Bengal", "Abyssinian") and count == 3
    expect_pass(capsys, checks.lesson2.exercise3(answer, head, feats, classes), "3 test photos of Bengal")
    expect_pass(capsys, checks.lesson2.exercise3(list(answer), head, feats, tuple(classes)))
    expect_hint(capsys, checks.lesson2.exercise3(answer[::-1], head, feats, classes), "wrong order")
    expect_hint(capsys, checks.lesson2.exercise3(("Sphynx", "Bengal"), head, feats, classes), "happens 2 times")
    expect_hint(capsys, checks.lesson2.exercise3(("Bengal", "Persian"), head, feats, classes), "not class names")


def test_lesson2_exercise3_a_head_without_mistakes(capsys):
    head, feats, classes, _ = confused_breeds(perfect=True)
    expect_pass(capsys, checks.lesson2.exercise3(("Bengal", "Sphynx"), head, feats, classes), "no mistakes")


@pytest.mark.parametrize("bad", ["Bengal", ("Bengal", "Sphynx", "Abyssinian"), 3, ("Bengal",)])
def test_lesson2_exercise3_needs_a_pair(bad):
    head, feats, classes, _ = confused_breeds()
    with pytest.raises(ValueError, match="a pair of class names"):
        checks.lesson2.exercise3(bad, head, feats, classes)


def test_lesson2_exercise3_needs_a_head_and_features():
    head, feats, classes, _ = confused_breeds()
    with pytest.raises(ValueError, match="nn.Module"):
        checks.lesson2.exercise3(("Bengal", "Sphynx"), None, feats, classes)
    with pytest.raises(ValueError, match="FeatureSet"):
        checks.lesson2.exercise3(("Bengal", "Sphynx"), head, None, classes)




# ------------------------------------------------------------- placeholders, new routes and exercise 4 ---
def test_lesson2_placeholders_get_a_hint_without_raising(features5, capsys):
    capsys.readouterr()
    expect_placeholder(checks.lesson2.exercise1(None, tl.load_digit_model(), 2, 5), capsys)
    expect_placeholder(checks.lesson2.exercise2(None, None, features5), capsys)
    expect_placeholder(checks.lesson2.exercise3(None, *confused_breeds()[:3]), capsys)

    def freeze_and_swap(source, num_classes):
        ...  # the lesson's stub
    expect_placeholder(checks.lesson2.exercise4(freeze_and_swap), capsys)


def test_lesson2_exercise2_by_hand_route_with_plain_tensors_and_no_flatten(features5, capsys):
    """The lesson's own by-hand route: flattened tensors, a bare nn.Linear; the check must accept it."""
    f_train, y_train = features5.train.tensors[0].flatten(1), features5.train.tensors[1]
    f_test, y_test = features5.test.tensors[0].flatten(1), features5.test.tensors[1]
    torch.manual_seed(0)
    head = nn.Linear(1568, 5)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(200):
        loss = nn.functional.cross_entropy(head(f_train), y_train)
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        acc = (head(f_test).argmax(1) == y_test).float().mean().item()
    expect_pass(capsys, checks.lesson2.exercise2(acc, head, (f_train, y_train, f_test, y_test)), "5 labelled")
    # the same bare head also works on the FeatureSet's unflattened 32x7x7 activations
    expect_pass(capsys, checks.lesson2.exercise2(acc, head, features5))


def test_lesson2_exercise2_a_head_on_the_rejected_cut_is_refused(digits5, capsys):
    late = tl.cached_features(tl.load_digit_model(), digits5, n_frozen=3, cache=False, progress=False)
    head = nn.Linear(128, 5)
    tl.fit(head, late.loaders(32)[0], None, num_epochs=20, lr=1e-2, device="cpu", seed=0, progress=False)
    acc = tl.evaluate(head, late.loaders(32)[-1])["acc"]
    expect_hint(capsys, checks.lesson2.exercise2(acc, head, late), "n_frozen=2", "128 numbers")


class _FrozenConvHead(nn.Module):
    def __init__(self, source, num_classes, keep_eval=True):
        super().__init__()
        self.backbone = nn.Sequential(source.groups["conv1"], source.groups["conv2"])
        self.backbone.requires_grad_(False)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, num_classes))
        self.keep_eval = keep_eval

    def train(self, mode=True):
        super().train(mode)
        if self.keep_eval:
            self.backbone.eval()
        return self

    def forward(self, x):
        return self.head(self.backbone(x))


def test_lesson2_exercise4_two_correct_routes(capsys):
    expect_pass(capsys, checks.lesson2.exercise4(lambda s, c: _FrozenConvHead(s, c)), "BatchNorm statistics")

    def no_grad_route(source, num_classes):
        backbone = nn.Sequential(source.groups["conv1"], source.groups["conv2"]).requires_grad_(False)
        head = nn.Linear(1568, num_classes)

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone, self.head = backbone, head

            def forward(self, x):
                with torch.no_grad():
                    f = self.backbone.eval()(x)
                return self.head(f.flatten(1))
        return Model()
    expect_pass(capsys, checks.lesson2.exercise4(no_grad_route))


def test_lesson2_exercise4_typical_mistakes_get_their_own_hints(capsys):
    expect_hint(capsys, checks.lesson2.exercise4(lambda s, c: _FrozenConvHead(s, c, keep_eval=False)),
                "BatchNorm's running statistics")
    expect_hint(capsys, checks.lesson2.exercise4(
        lambda s, c: nn.Sequential(s.groups["conv1"], s.groups["conv2"], nn.Flatten(), nn.Linear(1568, c))),
        "requires_grad_(False)")
    expect_hint(capsys, checks.lesson2.exercise4(lambda s, c: s.requires_grad_(False)), "cut after conv2")

    def frozen_head_too(source, num_classes):
        return _FrozenConvHead(source, num_classes).requires_grad_(False)
    expect_hint(capsys, checks.lesson2.exercise4(frozen_head_too), "nothing in your model can train")

    def batch_statistics(source, num_classes):
        """Buffers that never move, yet not frozen: BatchNorm normalises every batch by its own statistics."""
        model = _FrozenConvHead(source, num_classes, keep_eval=False)
        for m in model.backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.track_running_stats = False
        return model
    expect_hint(capsys, checks.lesson2.exercise4(batch_statistics), "track_running_stats=False")
    with pytest.raises(ValueError, match="your function freeze_and_swap"):
        checks.lesson2.exercise4(None)
