"""tlwidgets.checks: every exercise check of lessons 0-5, on small real objects.

For each exercise: the lesson's placeholder gets a "❌ Not yet" hint (never an exception); an
answer computed here, independently of the check module, passes; plausible wrong answers get a
hint; an answer of the wrong type raises ValueError naming the expected type (the documented
behaviour: a check never raises on a *wrong* answer, only on one it cannot read).

No external data: digits come from the bundled MNIST subset, "photos" from generated PNGs or
hand-made tensors, learning curves are built from hand-written RunRecords.
"""
from __future__ import annotations

import dataclasses
import re
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import tlwidgets as tl
from tlwidgets import checks, data
from tlwidgets.checks import CheckResult
from tlwidgets.experiments import LearningCurve, RunRecord
from tlwidgets.features import FeatureSet
from tlwidgets.training import History
from tlwidgets.widgets import Dashboard

REPO = Path(__file__).resolve().parents[2]
BUNDLED = data.REPO_DATASETS  # the bundled MNIST subset: no shared data needed
DOMESTIC_CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models only: one thread is faster and steadier on a busy 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------------- helpers ---
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


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def group_sizes(model) -> list[int]:
    return [sum(p.numel() for p in model.groups[n].parameters()) for n in model.group_names]


def frozen_bn_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) and not m.training]


def digits_task(n):
    return tl.mnist_target_task(n, test_per_class=10, root=BUNDLED)


# -------------------------------------------------------------------------------- fixtures ---
@pytest.fixture(scope="module")
def digits_source():
    """Digits 0-4 (what the digit model knows): 5 train + 20 test per class."""
    return tl.mnist_source_task(5, test_per_class=20, root=BUNDLED)


@pytest.fixture(scope="module")
def digits5():
    """Digits 5-9 with 5 labels per class and 20 test digits per class."""
    return tl.mnist_target_task(5, test_per_class=20, root=BUNDLED)


@pytest.fixture(scope="module")
def features5(digits5):
    """conv2 activations (32x7x7) of the digit model on ``digits5``, not cached on disk."""
    return tl.cached_features(tl.load_digit_model(), digits5, upto=2, cache=False, progress=False)


@pytest.fixture(scope="module")
def head5(features5):
    """A linear head trained on ``features5`` (lesson 2's recipe): well above chance."""
    head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 5))
    train_loader, _ = features5.loaders(32)
    tl.fit(head, train_loader, None, num_epochs=30, lr=1e-3, device="cpu", seed=0, progress=False)
    return head.eval()


def _photo_folder(root: Path, classes: dict[str, tuple[int, int, int]], per_class: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, color in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(color) + rng.integers(-30, 30, size=(40, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}_{i}.png")
    return root


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory):
    """A folder of generated red/green 'photos', its task, and a from-scratch run that separates them."""
    root = _photo_folder(tmp_path_factory.mktemp("lesson6") / "my_photos",
                         {"green": (30, 220, 30), "red": (220, 30, 30)}, 8)
    task = tl.folder_task(root, image_size=32)
    result = tl.run_strategy("scratch", task, num_epochs=3, lr=1e-2, device="cpu", progress=False)
    return task, result


@pytest.fixture(scope="module")
def dashboard():
    """A headless digits dashboard with two runs: fine-tune (2 epochs), then feature extraction (3)."""
    dash = Dashboard(digits_task, kind="mnist", n_per_class=5, num_epochs=1, headless=True)
    dash.run_sync(strategy="fine_tune", n_per_class=5, n_frozen=1, num_epochs=2)
    dash.run_sync(strategy="feature_extraction", n_per_class=5, num_epochs=3)
    return dash


# Learning curves, by hand: {strategy: {size: [test_acc of seed 0, seed 1]}}
DIGIT_ACCS = {
    "fine_tune": {2: [0.80, 0.84], 5: [0.86, 0.88], 20: [0.92, 0.94]},
    "scratch": {2: [0.50, 0.60], 5: [0.85, 0.79], 20: [0.91, 0.93]},  # seed 0 alone is close at 5: the mean is not
}
CAT_ACCS = {
    "feature_extraction": {5: [0.50, 0.60], None: [0.80, 0.82]},
    "scratch": {5: [0.20, 0.30], None: [0.35, 0.37]},
}
# per-epoch val_acc at the largest size (seconds per epoch, setup seconds) per (strategy, seed)
CAT_HISTORIES = {
    ("feature_extraction", 0): ([0.40, 0.55, 0.65, 0.70], 0.25, 1.5),
    ("feature_extraction", 1): ([0.62, 0.70], 0.25, 1.0),
    ("scratch", 0): ([0.20, 0.30, 0.35], 0.5, 0.0),
    ("scratch", 1): ([0.25, 0.37], 0.5, 0.0),
}


def make_history(val_accs, seconds):
    h = History()
    for e, acc in enumerate(val_accs):
        h.on_epoch_end({"epoch": e, "loss": 1.0 - acc, "acc": acc, "val_loss": 1.0 - acc, "val_acc": acc,
                        "seconds": seconds})
    h.on_train_end({"stopped": False, "stop_reason": "", "seconds": seconds * len(val_accs)})
    return h


def make_curve(name, accs, sizes, histories=None, num_classes=5):
    records = []
    for strategy, per_size in accs.items():
        for n in sizes:
            for seed, acc in enumerate(per_size[n]):
                val, sec, setup = (histories or {}).get((strategy, seed), ([acc], 0.1, 0.0)) \
                    if n == sizes[-1] else ([acc], 0.1, 0.0)
                records.append(RunRecord(strategy, n, seed, num_classes * (n or 50), 0, acc, sec * len(val), setup,
                                         make_history(val, sec)))
    return LearningCurve(name, records, sizes, num_classes)


def mean(xs):
    return sum(xs) / len(xs)


def first_catch_up(accs, sizes, strategy, baseline, margin):
    for n in sizes:
        if mean(accs[baseline][n]) >= mean(accs[strategy][n]) - margin:
            return n
    return "never"


@pytest.fixture(scope="module")
def digit_curve():
    return make_curve("digits", DIGIT_ACCS, [2, 5, 20])


@pytest.fixture(scope="module")
def cat_curve():
    return make_curve("cats", CAT_ACCS, [5, None], CAT_HISTORIES, num_classes=12)


# ------------------------------------------------------------------------------ CheckResult ---
def test_check_result_truthiness_repr_and_immutability():
    ok, no = CheckResult(True, "well done"), CheckResult(False, "try again")
    assert bool(ok) is True and bool(no) is False
    assert repr(ok) == "✅ Correct: well done" and repr(no) == "❌ Not yet: try again"
    assert repr(ok).startswith("✅ Correct") and repr(no).startswith("❌ Not yet")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ok.passed = False


def test_check_result_ipython_display_shows_nothing(capsys):
    for r in (CheckResult(True, "x"), CheckResult(False, "y")):
        assert callable(getattr(r, "_ipython_display_", None))
        assert r._ipython_display_() is None
    assert capsys.readouterr() == ("", "")


def test_passed_and_not_yet_print_exactly_one_line(capsys):
    r = checks.passed("all good")
    out = capsys.readouterr().out
    assert out.splitlines() == ["✅ Correct: all good"] and out.endswith("\n") and r and r.message == "all good"
    r = checks.not_yet("look at the head")
    out = capsys.readouterr().out
    assert out.splitlines() == ["❌ Not yet: look at the head"] and not r and r.message == "look at the head"


def test_is_placeholder_knows_the_untouched_answers():
    assert checks.is_placeholder(...) and checks.is_placeholder(None)
    assert not any(checks.is_placeholder(x) for x in (0, 0.0, "", [], False, torch.tensor(0)))


def test_lesson_modules_load_on_first_use():
    assert checks.lesson3.exercise2 is checks.lesson3.exercise2
    with pytest.raises(AttributeError, match="no exercise checks named 'lesson9'"):
        checks.lesson9
    with pytest.raises(AttributeError):
        checks.nothing_here


def test_every_check_a_lesson_calls_exists():
    """The lessons call checks.lessonN.exerciseK for K = 1..3, and each check module has exactly those."""
    called = set()
    for path in sorted((REPO / "lessons").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"])
            called |= {(int(path.name[:2]), int(k)) for k in
                       re.findall(r"checks\.lesson%d\.exercise(\d)" % int(path.name[:2]), src)}
    assert called == {(n, k) for n in range(6) for k in (1, 2, 3)}
    for n in range(6):
        module = getattr(checks, f"lesson{n}")
        assert sorted(name for name in vars(module) if name.startswith("exercise")) == [
            "exercise1", "exercise2", "exercise3"]


# ------------------------------------------------- the lessons' placeholders get a hint, never raise ---
def _placeholders():
    """(id, fixtures it needs, call) for the answer each lesson cell starts with."""
    return [
        ("lesson0.exercise1", [], lambda: checks.lesson0.exercise1(..., ..., ...)),
        ("lesson0.exercise2", [], lambda: checks.lesson0.exercise2(..., None)),
        ("lesson0.exercise3", [], lambda: checks.lesson0.exercise3(freeze_first_stub)),
        ("lesson1.exercise1", ["digits_source"], lambda task: checks.lesson1.exercise1(accuracy_stub,
                                                                                      tl.load_digit_model(), task)),
        ("lesson1.exercise2", [], lambda: checks.lesson1.exercise2(..., ..., *fake_photos())),
        ("lesson1.exercise3", [], lambda: checks.lesson1.exercise3(..., *species_probs())),
        ("lesson2.exercise1", [], lambda: checks.lesson2.exercise1(None, tl.load_digit_model(), 2, 5)),
        ("lesson2.exercise2", ["features5"], lambda feats: checks.lesson2.exercise2(None, None, feats)),
        ("lesson2.exercise3", [], lambda: checks.lesson2.exercise3(None, *confused_breeds()[:3])),
        ("lesson3.exercise1", [], lambda: checks.lesson3.exercise1(None, tl.load_digit_model(), fraction=0.15)),
        ("lesson3.exercise2", [], lambda: checks.lesson3.exercise2(None, tl.load_digit_model(), ratio=0.01)),
        ("lesson3.exercise3", [], lambda: checks.lesson3.exercise3(None, tl.load_digit_model())),
        ("lesson4.exercise1", ["digit_curve"], lambda curve: checks.lesson4.exercise1(
            None, curve, strategy="fine_tune", baseline="scratch", margin=0.02)),
        ("lesson4.exercise2", ["cat_curve"], lambda curve: checks.lesson4.exercise2(
            None, curve, target=0.6, n_per_class=None, strategy="feature_extraction", seed=0)),
        ("lesson4.exercise3", ["cat_curve"], lambda curve: checks.lesson4.exercise3(
            None, curve, strategy="feature_extraction", baseline="scratch")),
        ("lesson6.exercise1", [], lambda: checks.lesson6.exercise1(None, None)),
        ("lesson6.exercise2", ["dashboard"], lambda dash: checks.lesson6.exercise2(
            None, dash, strategy="fine_tune", n_per_class=5, n_frozen=1)),
        # the lesson starts with `fresh = dashboard` (the one that trained in exercise 2) and `answer = None`
        ("lesson6.exercise3", ["dashboard"], lambda dash: checks.lesson6.exercise3(None, dash)),
    ]


@pytest.mark.parametrize("fixtures, call", [(f, c) for _, f, c in _placeholders()],
                         ids=[i for i, _, _ in _placeholders()])
def test_placeholder_answer_gets_a_hint_without_raising(fixtures, call, request, capsys):
    args = [request.getfixturevalue(name) for name in fixtures]
    capsys.readouterr()  # what building the fixtures printed
    result = call(*args)
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result
    assert out == repr(result) + "\n" and out.startswith("❌ Not yet: ") and "✅" not in out
    assert len(result.message) > 20  # a real hint, not just a verdict


# --------------------------------------------------------------------------------- lesson 0 ---
def freeze_first_stub(model, n):
    """The lesson's stub, untouched."""
    ...


def accuracy_stub(model, loader):
    """The lesson's stub, untouched."""
    ...


@pytest.fixture(scope="module")
def photo_model():
    """EfficientNet-Lite0's architecture (random weights: counting parameters needs no ImageNet)."""
    return tl.efficientnet_lite0(pretrained=False)


def fe_by_hand(model, classes=12):
    import copy

    fe = copy.deepcopy(model)
    for p in fe.parameters():
        p.requires_grad_(False)
    fe.groups["head"] = nn.Linear(fe.head.in_features, classes)
    return fe


def test_lesson0_exercise1_predict_then_measure_feature_extraction(photo_model, capsys):
    import copy

    right = 1280 * 12 + 12
    fe = fe_by_hand(photo_model)
    expect_pass(capsys, checks.lesson0.exercise1(15000, trainable_params(fe), fe), "15,372", "off by -372")
    with_tl = copy.deepcopy(photo_model)  # the other route: the helpers
    tl.freeze(with_tl, with_tl.num_groups - 1)
    tl.replace_head(with_tl, 12)
    expect_pass(capsys, checks.lesson0.exercise1(right, torch.tensor(right), with_tl), "exactly right")
    # typical wrong answers, each with its own hint
    expect_hint(capsys, checks.lesson0.exercise1(right, 1280 * 12, fe), "biases train too")
    expect_hint(capsys, checks.lesson0.exercise1(right, sum(p.numel() for p in fe.parameters()), fe),
                "every parameter")
    swapped_first = copy.deepcopy(photo_model)
    swapped_first.groups["head"] = nn.Linear(1280, 12)
    swapped_first.requires_grad_(False)  # froze the new head too
    expect_hint(capsys, checks.lesson0.exercise1(right, 0, swapped_first), "nothing trains")
    not_frozen = copy.deepcopy(photo_model)
    not_frozen.groups["head"] = nn.Linear(1280, 12)
    expect_hint(capsys, checks.lesson0.exercise1(right, trainable_params(not_frozen), not_frozen),
                "backbone tensors still train")
    old_head = copy.deepcopy(photo_model).requires_grad_(False)
    expect_hint(capsys, checks.lesson0.exercise1(right, 1281000, old_head), "1000 outputs")
    # the placeholders: no prediction yet, then no measurement yet
    expect_hint(capsys, checks.lesson0.exercise1(..., right, fe), "prediction")
    expect_hint(capsys, checks.lesson0.exercise1(15000, ..., ...), "now measure")
    with pytest.raises(ValueError, match="integer count"):
        checks.lesson0.exercise1(15000, "15372", fe)


@pytest.mark.parametrize("bad", [645, 645.0, True, [645]])
def test_lesson0_exercise2_needs_a_path(bad, mnist_copy):
    with pytest.raises(ValueError, match="expects a path"):
        checks.lesson0.exercise2(bad, mnist_copy)


def test_lesson0_exercise2_finds_the_first_root_holding_mnist(mnist_copy, tmp_path, capsys):
    expect_pass(capsys, checks.lesson0.exercise2(mnist_copy, mnist_copy), str(mnist_copy))
    expect_pass(capsys, checks.lesson0.exercise2(str(mnist_copy), str(mnist_copy)))
    expect_hint(capsys, checks.lesson0.exercise2(mnist_copy / "MNIST", mnist_copy), "data root itself")
    expect_hint(capsys, checks.lesson0.exercise2(mnist_copy / "MNIST" / "raw", mnist_copy), "data root itself")
    expect_hint(capsys, checks.lesson0.exercise2(BUNDLED, mnist_copy), "first one wins")
    expect_hint(capsys, checks.lesson0.exercise2(tmp_path / "elsewhere", mnist_copy), "candidate_roots")
    expect_hint(capsys, checks.lesson0.exercise2(None, mnist_copy), "with a path")


def test_lesson0_exercise2_without_a_root_argument(capsys):
    first = next(r for r in tl.candidate_roots(None) if data.SPECS["mnist"].present_in(r))
    expect_pass(capsys, checks.lesson0.exercise2(first))


def test_lesson0_exercise2_with_no_mnist_anywhere(env, tmp_path, capsys):
    env.empty_data_search_path()
    expect_hint(capsys, checks.lesson0.exercise2(tmp_path, None), "no MNIST anywhere")


def freeze_loop(model, n):  # route 1: the lesson's plain-PyTorch loop
    for i, name in enumerate(model.group_names):
        for p in model.groups[name].parameters():
            p.requires_grad_(i >= n)


def freeze_modules(model, n):  # route 2: requires_grad_ on whole modules
    model.requires_grad_(True)
    for name in model.group_names[:n]:
        model.groups[name].requires_grad_(False)


def test_lesson0_exercise3_freeze_first_by_hand_every_route(capsys):
    expect_pass(capsys, checks.lesson0.exercise3(freeze_loop), "tl.freeze(model, n)")
    expect_pass(capsys, checks.lesson0.exercise3(freeze_modules))
    expect_pass(capsys, checks.lesson0.exercise3(lambda model, n: tl.freeze(model, n)))  # the helper is a route too


def test_lesson0_exercise3_typical_mistakes_get_their_own_hints(capsys):
    def from_the_head(model, n):
        freeze_loop(model, 0)
        for name in model.group_names[len(model.group_names) - n:]:
            model.groups[name].requires_grad_(False)

    def one_too_many(model, n):
        for i, name in enumerate(model.group_names):
            model.groups[name].requires_grad_(i > n)

    def never_unfreezes(model, n):
        for name in model.group_names[:n]:
            model.groups[name].requires_grad_(False)

    def weights_only(model, n):
        freeze_loop(model, 0)
        for name in model.group_names[:n]:
            for pname, p in model.groups[name].named_parameters():
                if pname.endswith("weight"):
                    p.requires_grad_(False)

    def crashes(model, n):
        model.groups[n].requires_grad_(False)

    hints = [expect_hint(capsys, checks.lesson0.exercise3(from_the_head), "head's end"),
             expect_hint(capsys, checks.lesson0.exercise3(one_too_many), "one group too many"),
             expect_hint(capsys, checks.lesson0.exercise3(never_unfreezes), "trainable again"),
             expect_hint(capsys, checks.lesson0.exercise3(weights_only), "only part of a group"),
             expect_hint(capsys, checks.lesson0.exercise3(crashes), "raised KeyError")]
    assert len(set(hints)) == len(hints)
    expect_hint(capsys, checks.lesson0.exercise3(freeze_first_stub), "changed nothing")
    with pytest.raises(ValueError, match="your function freeze_first"):
        checks.lesson0.exercise3(tl.load_digit_model())


# --------------------------------------------------------------------------------- lesson 1 ---
def accuracy_loop(model, loader):  # route 1: the plain-PyTorch loop
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            seen += len(y)
    return correct / seen


def accuracy_probs(model, loader):  # route 2: predict_proba (which switches to eval itself), then a tensor
    from tlwidgets.training import predict_proba

    probs, labels = predict_proba(model, loader)
    return (probs.argmax(1) == labels).float().mean()


def test_lesson1_exercise1_accuracy_by_hand_every_route(digits_source, capsys):
    model = tl.load_digit_model()
    expect_pass(capsys, checks.lesson1.exercise1(accuracy_loop, model, digits_source), "100 test digits",
                "tl.evaluate")
    expect_pass(capsys, checks.lesson1.exercise1(accuracy_probs, model, digits_source))
    expect_pass(capsys, checks.lesson1.exercise1(lambda m, loader: tl.evaluate(m, loader)["acc"], model,
                                                 digits_source))


def test_lesson1_exercise1_typical_mistakes_get_their_own_hints(digits_source, capsys):
    model = tl.load_digit_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def no_eval(model, loader):
        correct = seen = 0
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            seen += len(y)
        return correct / seen

    def mean_of_batches(model, loader):
        model.eval()
        with torch.no_grad():
            return sum((model(x).argmax(1) == y).float().mean().item() for x, y in loader) / len(loader)

    def first_batch(model, loader):
        model.eval()
        x, y = next(iter(loader))
        with torch.no_grad():
            return (model(x).argmax(1) == y).float().mean().item()

    hints = [expect_hint(capsys, checks.lesson1.exercise1(no_eval, model, digits_source), "model.eval()",
                         "running statistics"),
             expect_hint(capsys, checks.lesson1.exercise1(lambda m, l: 100 * accuracy_loop(m, l), model,
                                                          digits_source), "percentage"),
             expect_hint(capsys, checks.lesson1.exercise1(lambda m, l: 1 - accuracy_loop(m, l), model,
                                                          digits_source), "error rate"),
             expect_hint(capsys, checks.lesson1.exercise1(mean_of_batches, model, digits_source), "last batch"),
             expect_hint(capsys, checks.lesson1.exercise1(first_batch, model, digits_source), "one batch")]
    assert len(set(hints)) == len(hints)
    expect_hint(capsys, checks.lesson1.exercise1(accuracy_stub, model, digits_source), "returned nothing")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the check restored the model


class DetailNet(nn.Module):
    """A fake ImageNet model: 'Chihuahua' (a dog) for images with fine detail, 'tabby' (a cat) for smooth ones.

    Fine detail is what a lower resolution loses, so its species accuracy drops when photos shrink.
    """

    def forward(self, x):
        detail = (x[..., 1:, :] - x[..., :-1, :]).abs().mean((1, 2, 3))
        logits = torch.zeros(len(x), 1000)
        logits[:, 281] = 10.0
        logits[:, 151] = 10.0 + 50 * (detail - 0.5)
        return logits


def fake_photos():
    """(net, photos, truth): 6 striped 'dogs' (stripes 1 px wide) and 6 smooth 'cats', 32 px."""
    torch.manual_seed(0)
    stripes = (torch.arange(32) % 2).float().view(1, 1, 32, 1).expand(6, 3, 32, 32) * 2 - 1
    smooth = torch.linspace(-1, 1, 32).view(1, 1, 1, 32).expand(6, 3, 32, 32)
    return DetailNet(), torch.cat([stripes, smooth]).contiguous(), ["dog"] * 6 + ["cat"] * 6


def test_lesson1_exercise2_predict_then_measure_resolution(capsys):
    import torch.nn.functional as F

    from tlwidgets.lesson_utils import species_predictions
    from tlwidgets.training import predict_proba

    net, x, truth = fake_photos()
    small = F.interpolate(x, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
    measured = float(np.mean([s == t for s, t in zip(species_predictions(predict_proba(net, small)[0]), truth)]))
    assert measured == 0.5  # the stripes blur away: every photo looks like a cat
    expect_pass(capsys, checks.lesson1.exercise2(0.9, measured, net, x, truth, size=16), "50.0% at 16 px",
                "100.0% at 32 px", "+40% off")
    # the other route: photos made again at 16 px (here: nearest-neighbour subsampling, also striped-out)
    again = x[..., ::2, ::2]
    measured2 = float(np.mean([s == t for s, t in zip(species_predictions(predict_proba(net, again)[0]), truth)]))
    expect_pass(capsys, checks.lesson1.exercise2(0.5, measured2, net, x, truth, size=16), "spot on")
    hints = [expect_hint(capsys, checks.lesson1.exercise2(0.9, 100 * measured, net, x, truth, size=16),
                         "percentage"),
             expect_hint(capsys, checks.lesson1.exercise2(0.9, 1.0, net, x, truth, size=16), "resize the photos"),
             expect_hint(capsys, checks.lesson1.exercise2(0.9, 0.25, net, x, truth, size=16), "16 x 16")]
    assert len(set(hints)) == 3
    expect_hint(capsys, checks.lesson1.exercise2(..., measured, net, x, truth, size=16), "prediction")
    expect_hint(capsys, checks.lesson1.exercise2(0.9, ..., net, x, truth, size=16), "now measure")
    with pytest.raises(ValueError, match="number between 0 and 1"):
        checks.lesson1.exercise2("most", measured, net, x, truth, size=16)


def species_probs():
    """Six fake ImageNet predictions, where the top-1 and the summed-mass species rules disagree."""
    probs = torch.zeros(6, 1000)
    probs[0, 151] = 0.9                                  # clear dog
    probs[1, 281] = 0.9                                  # clear cat
    probs[2, 160:170] = 0.06; probs[2, 282] = 0.3        # dog split over 10 breeds, top-1 'tiger cat'
    probs[3, 281:286] = 0.15; probs[3, 287] = 0.2        # cat split over 5 classes, top-1 'lynx' (other)
    probs[4, 283] = 0.6; probs[4, 200] = 0.3             # a dog both rules call a cat
    probs[5, 287] = 0.5; probs[5, 284] = 0.1; probs[5, 152] = 0.3  # a cat: top-1 lynx, more dog mass
    probs[:, 999] = 1 - probs.sum(1)                     # the rest on 'toilet tissue'
    truth = ["dog", "cat", "dog", "cat", "dog", "cat"]
    return probs, truth


def test_lesson1_exercise3_species_by_probability_mass(capsys):
    from tlwidgets.lesson_utils import species_predictions

    probs, truth = species_probs()
    mass = sum(s == t for s, t in zip(species_predictions(probs, "mass"), truth)) / len(truth)
    top1 = sum(s == t for s, t in zip(species_predictions(probs, "top1"), truth)) / len(truth)
    assert mass != top1
    dog, cat = probs[:, 151:269].sum(1), probs[:, 281:286].sum(1)  # the by-hand route
    by_hand = float(np.mean([("dog" if d > c else "cat") == t for d, c, t in zip(dog, cat, truth)]))
    expect_pass(capsys, checks.lesson1.exercise3(by_hand, probs, truth), "by probability mass")
    expect_pass(capsys, checks.lesson1.exercise3(round(mass, 3), probs, tuple(truth)))
    hints = [expect_hint(capsys, checks.lesson1.exercise3(top1, probs, truth), "top-1 rule"),
             expect_hint(capsys, checks.lesson1.exercise3(100 * mass, probs, truth), "percentage"),
             expect_hint(capsys, checks.lesson1.exercise3(0.5, probs, truth), "check the ranges")]
    assert len(set(hints)) == 3
    expect_hint(capsys, checks.lesson1.exercise3(..., probs, truth), "replace `answer = ...`")


def test_lesson1_exercise3_bad_input():
    probs, truth = species_probs()
    with pytest.raises(ValueError):
        checks.lesson1.exercise3("0.67", probs, truth)
    with pytest.raises(ValueError):
        checks.lesson1.exercise3(0.6, probs, truth[:5])


# --------------------------------------------------------------------------------- lesson 2 ---
def test_lesson2_exercise1_new_head_parameters(capsys):
    model = tl.load_digit_model()
    d_conv2, d_features = 32 * 7 * 7, 128  # two 2x2 poolings of 28x28 with 32 channels; the dense layer
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 28, 28), 0, 2)[0].numel() == d_conv2
    expect_pass(capsys, checks.lesson2.exercise1((d_conv2 + 1) * 5, model, 2, 5), "1568 features")
    expect_pass(capsys, checks.lesson2.exercise1((d_features + 1) * 3, model, 3, 3))
    expect_pass(capsys, checks.lesson2.exercise1(np.int64((d_conv2 + 1) * 5), model, 2, 5))
    expect_pass(capsys, checks.lesson2.exercise1(torch.tensor((d_conv2 + 1) * 5), model, 2, 5))
    expect_hint(capsys, checks.lesson2.exercise1(d_conv2 * 5, model, 2, 5), "biases")
    expect_hint(capsys, checks.lesson2.exercise1(d_conv2, model, 2, 5), "model(x, 0, 2)")
    expect_hint(capsys, checks.lesson2.exercise1((d_features + 1) * 5, model, 2, 5), "is not it")


def test_lesson2_exercise1_on_a_photo_model_keeps_its_mode(capsys):
    photo = tl.small_cnn(4, width=8, image_size=32)  # 3 channels; the features group is width*4 long
    photo.train()
    expect_pass(capsys, checks.lesson2.exercise1((8 * 4 + 1) * 4, photo, 5, 4), "32 features")
    assert photo.training  # the dummy forward pass left the model as it found it


@pytest.mark.parametrize("bad", [7845.0, "7845", True, torch.tensor(7845.0), torch.tensor([7845, 1])])
def test_lesson2_exercise1_needs_an_integer(bad):
    with pytest.raises(ValueError, match="expects an integer"):
        checks.lesson2.exercise1(bad, tl.load_digit_model(), 2, 5)


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


# --------------------------------------------------------------------------------- lesson 3 ---
def smallest_k_by_hand(model, fraction):
    sizes = group_sizes(model)
    total = sum(sizes)
    return next((k for k in range(model.num_groups) if sum(sizes[k:]) / total < fraction), None)


def test_lesson3_exercise1_fewest_frozen_groups(capsys):
    model = tl.load_digit_model()
    assert smallest_k_by_hand(model, 0.15) == 3 and smallest_k_by_hand(model, 0.98) == 2
    expect_pass(capsys, checks.lesson3.exercise1(3, model, fraction=0.15), "after 'features'")
    expect_pass(capsys, checks.lesson3.exercise1(2, model, fraction=0.98), "97.6%")
    expect_pass(capsys, checks.lesson3.exercise1(np.int64(2), model, fraction=0.98))
    expect_hint(capsys, checks.lesson3.exercise1(3, model, fraction=0.98), "is it the smallest")
    expect_hint(capsys, checks.lesson3.exercise1(1, model, fraction=0.98), "99.9%", "fewer than 98%")
    expect_hint(capsys, checks.lesson3.exercise1(9, model, fraction=0.98), "out of range")
    expect_hint(capsys, checks.lesson3.exercise1(-1, model, fraction=0.98), "out of range")
    assert smallest_k_by_hand(model, 1e-4) is None  # even the head alone is more than that
    expect_hint(capsys, checks.lesson3.exercise1(3, model, fraction=1e-4), "0.3%")


def test_lesson3_exercise1_on_a_tiny_model_leaves_it_as_it_was(tiny_model, capsys):
    model = tiny_model()
    tl.freeze(model, 1, frozen_bn="train")
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    k = smallest_k_by_hand(model, 0.7)
    assert k == 2  # groups of 48 / 312 / 528 / 51 parameters: 579 of 939 train with 2 frozen
    expect_pass(capsys, checks.lesson3.exercise1(k, model, fraction=0.7), "61.7%")
    expect_hint(capsys, checks.lesson3.exercise1(1, model, fraction=0.7), "94.9%")
    expect_hint(capsys, checks.lesson3.exercise1(3, model, fraction=0.7), "is it the smallest")
    assert [p.requires_grad for p in model.parameters()] == flags
    assert (model.num_frozen, model.frozen_bn_mode, model.training) == (1, "train", True)


@pytest.mark.parametrize("bad", [2.0, "2", True, [2]])
def test_lesson3_exercise1_needs_an_integer(bad):
    with pytest.raises(ValueError, match="integer number of frozen groups"):
        checks.lesson3.exercise1(bad, tl.load_digit_model())


def test_lesson3_checks_need_the_model():
    for exercise in (checks.lesson3.exercise1, checks.lesson3.exercise2, checks.lesson3.exercise3):
        with pytest.raises(ValueError, match="GroupedModel"):
            exercise(None, nn.Linear(2, 2))


def lr_groups_by_hand(model, lr, decay, names=None):
    last = model.num_groups - 1
    return [{"params": list(model.groups[n].parameters()), "lr": lr * decay ** (last - i)}
            for i, n in enumerate(model.group_names) if names is None or n in names]


def test_lesson3_exercise2_layerwise_learning_rates(capsys):
    model = tl.load_digit_model()
    tl.freeze(model, 0)
    decay = 0.01 ** (1 / (model.num_groups - 1))
    groups = lr_groups_by_hand(model, 1e-3, decay)
    assert groups[0]["lr"] == pytest.approx(1e-5) and groups[-1]["lr"] == pytest.approx(1e-3)
    expect_pass(capsys, checks.lesson3.exercise2(groups, model, ratio=0.01), "ratio 0.01", "4 groups")
    expect_pass(capsys, checks.lesson3.exercise2(torch.optim.Adam(groups), model, ratio=0.01))
    expect_pass(capsys, checks.lesson3.exercise2(lr_groups_by_hand(model, 1e-2, 0.5), model, ratio=0.125))


def test_lesson3_exercise2_wrong_groups_get_hints(capsys):
    model = tl.load_digit_model()
    tl.freeze(model, 0)
    decay = 0.01 ** (1 / (model.num_groups - 1))
    hint = expect_hint(capsys, checks.lesson3.exercise2(lr_groups_by_hand(model, 1e-3, 0.5), model), "aim for 0.01")
    assert "d**3" in hint
    expect_hint(capsys, checks.lesson3.exercise2(lr_groups_by_hand(model, 1e-3, 0.01 ** (1 / 4)), model),
                "aim for 0.01")
    backwards = lr_groups_by_hand(model, 1e-3, decay)
    for g, lr in zip(backwards, reversed([g["lr"] for g in backwards])):
        g["lr"] = lr
    expect_hint(capsys, checks.lesson3.exercise2(backwards, model), "grow from the stem")
    left_out = len(list(model.groups["conv2"].parameters())) + len(list(model.groups["features"].parameters()))
    expect_hint(capsys, checks.lesson3.exercise2(lr_groups_by_hand(model, 1e-3, decay, ["conv1", "head"]), model),
                f"{left_out} trainable tensors are in no parameter group")
    other = tl.load_digit_model()
    expect_hint(capsys, checks.lesson3.exercise2(lr_groups_by_hand(other, 1e-3, decay), model), "not in this model")
    twice = lr_groups_by_hand(model, 1e-3, decay)
    twice[1]["params"] = twice[1]["params"] + twice[0]["params"][:1]
    expect_hint(capsys, checks.lesson3.exercise2(twice, model), "two groups")
    split = lr_groups_by_hand(model, 1e-3, decay)
    conv2 = split.pop(1)
    split[1:1] = [{"params": conv2["params"][:1], "lr": conv2["lr"]}, {"params": conv2["params"][1:], "lr": 1.0}]
    expect_hint(capsys, checks.lesson3.exercise2(split, model), "'conv2' got two different learning rates")
    zero = lr_groups_by_hand(model, 1e-3, decay)
    zero[0]["lr"] = 0
    expect_hint(capsys, checks.lesson3.exercise2(zero, model), "positive 'lr'")


def test_lesson3_exercise2_stem_frozen(capsys):
    model = tl.load_digit_model()
    tl.freeze(model, 2)  # forgot tl.freeze(model, 0): only features and head are trainable
    trainable = [n for n in model.group_names if all(p.requires_grad for p in model.groups[n].parameters())]
    groups = lr_groups_by_hand(model, 1e-3, 0.1, trainable)
    expect_hint(capsys, checks.lesson3.exercise2(groups, model), "both the stem and the head")


@pytest.mark.parametrize("bad", [0.01, [torch.zeros(2)], "layerwise_lr_groups", [{"lr": 1e-3}]])
def test_lesson3_exercise2_needs_parameter_groups(bad):
    with pytest.raises(ValueError, match="optimiser parameter groups"):
        checks.lesson3.exercise2(bad, tl.load_digit_model())


def test_lesson3_exercise3_batchnorms_of_frozen_groups(capsys):
    model = tl.load_digit_model()
    tl.freeze(model, 2)
    model.train()
    answer = frozen_bn_names(model)
    assert answer == ["groups.conv1.1", "groups.conv2.1"]
    model.eval()  # the check puts the model in training mode itself, then back
    expect_pass(capsys, checks.lesson3.exercise3(answer, model), "2 BatchNorm layers", "conv1, conv2")
    expect_pass(capsys, checks.lesson3.exercise3(tuple(reversed(answer)), model))
    expect_pass(capsys, checks.lesson3.exercise3(set(answer), model))
    assert not model.training
    expect_hint(capsys, checks.lesson3.exercise3(answer[:1], model), "1 missing, 0 that should not be there")
    expect_hint(capsys, checks.lesson3.exercise3([], model), "2 missing")

    tl.freeze(model, 1)
    model.train()
    assert frozen_bn_names(model) == ["groups.conv1.1"]
    expect_pass(capsys, checks.lesson3.exercise3(["groups.conv1.1"], model), "conv1 (the frozen groups)")
    expect_hint(capsys, checks.lesson3.exercise3(answer, model), "1 that should not be there")

    tl.freeze(model, 2, frozen_bn="train")
    model.train()
    assert frozen_bn_names(model) == []
    expect_pass(capsys, checks.lesson3.exercise3([], model), "none")
    expect_hint(capsys, checks.lesson3.exercise3(answer, model), "frozen_bn='train'")
    assert model.training


@pytest.mark.parametrize("bad", ["groups.conv1.1", 2, {"groups.conv1.1": False}])
def test_lesson3_exercise3_needs_a_list_of_names(bad):
    with pytest.raises(ValueError, match="list of BatchNorm module names"):
        checks.lesson3.exercise3(bad, tl.load_digit_model())


# --------------------------------------------------------------------------------- lesson 4 ---
def test_lesson4_exercise1_first_size_where_scratch_catches_up(digit_curve, capsys):
    sizes = [2, 5, 20]
    answer = first_catch_up(DIGIT_ACCS, sizes, "fine_tune", "scratch", 0.02)
    assert answer == 20
    expect_pass(capsys, checks.lesson4.exercise1(answer, digit_curve, margin=0.02),
                "at 20 per class", "+1.0 points behind")
    loose = first_catch_up(DIGIT_ACCS, sizes, "fine_tune", "scratch", 0.07)
    assert loose == 5
    expect_pass(capsys, checks.lesson4.exercise1(loose, digit_curve, margin=0.07))
    expect_hint(capsys, checks.lesson4.exercise1(5, digit_curve, margin=0.02), "look again")  # seed 0 alone says 5
    expect_hint(capsys, checks.lesson4.exercise1(50, digit_curve, margin=0.02), "not one of the curve's sizes")
    expect_hint(capsys, checks.lesson4.exercise1("never", digit_curve, margin=0.02), "at no size")
    expect_hint(capsys, checks.lesson4.exercise1("all", digit_curve, margin=0.02), "not one of the curve's sizes")


def test_lesson4_exercise1_never_and_all(cat_curve, capsys):
    sizes = [5, None]
    assert first_catch_up(CAT_ACCS, sizes, "feature_extraction", "scratch", 0.02) == "never"
    expect_pass(capsys, checks.lesson4.exercise1("never", cat_curve, strategy="feature_extraction"), "never")
    expect_hint(capsys, checks.lesson4.exercise1(5, cat_curve, strategy="feature_extraction"))
    expect_hint(capsys, checks.lesson4.exercise1("all", cat_curve, strategy="feature_extraction"))


def test_lesson4_exercise1_catching_up_only_with_all_labels(capsys):
    """The size None ("all") is answered as "all": None itself is the lesson's placeholder."""
    accs = {"fine_tune": {5: [0.90], None: [0.95]}, "scratch": {5: [0.70], None: [0.94]}}
    curve = make_curve("digits, all sizes", accs, [5, None])
    assert first_catch_up(accs, [5, None], "fine_tune", "scratch", 0.02) is None
    expect_pass(capsys, checks.lesson4.exercise1("all", curve), "at all per class")
    expect_hint(capsys, checks.lesson4.exercise1(None, curve), "'all'")
    expect_hint(capsys, checks.lesson4.exercise1(5, curve), "look again")
    expect_hint(capsys, checks.lesson4.exercise1("never", curve), "look again")


@pytest.mark.parametrize("bad", [20.0, "20", True, [20]])
def test_lesson4_exercise1_needs_a_size(bad, digit_curve):
    with pytest.raises(ValueError, match="expects a size"):
        checks.lesson4.exercise1(bad, digit_curve)


def test_lesson4_checks_need_the_curve(digit_curve):
    for exercise, args in ((checks.lesson4.exercise1, ()), (checks.lesson4.exercise2, (0.6,)),
                           (checks.lesson4.exercise3, ())):
        with pytest.raises(ValueError, match="LearningCurve"):
            exercise(None, digit_curve.records, *args)


def test_lesson4_exercise2_seconds_to_target_with_setup(cat_curve, capsys):
    val, per_epoch, setup = CAT_HISTORIES[("feature_extraction", 0)]
    epochs = next(i + 1 for i, a in enumerate(val) if a >= 0.6)
    answer = setup + epochs * per_epoch
    assert answer == pytest.approx(2.25)
    kw = dict(target=0.6, n_per_class=None, strategy="feature_extraction", seed=0)
    expect_pass(capsys, checks.lesson4.exercise2(answer, cat_curve, **kw), "2.25 s", "3 epoch(s)")
    expect_pass(capsys, checks.lesson4.exercise2(2.251, cat_curve, **kw))
    expect_hint(capsys, checks.lesson4.exercise2(answer - setup, cat_curve, **kw), "setup_seconds")
    other_seed = CAT_HISTORIES[("feature_extraction", 1)]
    expect_hint(capsys, checks.lesson4.exercise2(other_seed[2] + other_seed[1], cat_curve, **kw), "not quite")
    expect_hint(capsys, checks.lesson4.exercise2("never", cat_curve, **kw), "not quite")
    expect_pass(capsys, checks.lesson4.exercise2(1.25, cat_curve, **{**kw, "seed": 1}))
    expect_hint(capsys, checks.lesson4.exercise2(answer, cat_curve, **{**kw, "seed": 7}), "no feature_extraction run")


def test_lesson4_exercise2_a_run_that_never_gets_there(cat_curve, capsys):
    kw = dict(target=0.6, n_per_class=None, strategy="scratch", seed=0)
    assert max(CAT_HISTORIES[("scratch", 0)][0]) < 0.6
    expect_pass(capsys, checks.lesson4.exercise2(None, cat_curve, **kw), "never reached 60%")  # the documented answer
    expect_pass(capsys, checks.lesson4.exercise2("never", cat_curve, **kw))
    expect_hint(capsys, checks.lesson4.exercise2(1.5, cat_curve, **kw), "ever reach 60%")


@pytest.mark.parametrize("bad", ["2.25", True, [2.25]])
def test_lesson4_exercise2_needs_seconds(bad, cat_curve):
    with pytest.raises(ValueError, match="number of seconds or None"):
        checks.lesson4.exercise2(bad, cat_curve, target=0.6, strategy="feature_extraction")


def test_lesson4_exercise3_gap_in_points(cat_curve, capsys):
    answer = {n: 100 * (mean(CAT_ACCS["feature_extraction"][n]) - mean(CAT_ACCS["scratch"][n])) for n in (5, None)}
    assert answer == pytest.approx({5: 30.0, None: 45.0})
    kw = dict(strategy="feature_extraction", baseline="scratch")
    expect_pass(capsys, checks.lesson4.exercise3(answer, cat_curve, **kw), "5: +30.0", "all: +45.0", "does not shrink")
    expect_pass(capsys, checks.lesson4.exercise3({5: 30, None: 45.04}, cat_curve, **kw))
    expect_hint(capsys, checks.lesson4.exercise3({n: v / 100 for n, v in answer.items()}, cat_curve, **kw),
                "accuracy units")
    expect_hint(capsys, checks.lesson4.exercise3({n: -v for n, v in answer.items()}, cat_curve, **kw),
                "check the sign")
    expect_hint(capsys, checks.lesson4.exercise3({5: 30.0, None: 40.0}, cat_curve, **kw), "at all per class")
    expect_hint(capsys, checks.lesson4.exercise3({5: 30.0, "all": 45.0}, cat_curve, **kw), "curve's sizes")
    expect_hint(capsys, checks.lesson4.exercise3({5: 30.0}, cat_curve, **kw), "curve's sizes")


def test_lesson4_exercise3_bad_input(cat_curve):
    with pytest.raises(ValueError, match="expects a dict"):
        checks.lesson4.exercise3([30.0, 45.0], cat_curve, strategy="feature_extraction")
    with pytest.raises(ValueError, match="numbers of points"):
        checks.lesson4.exercise3({5: "30", None: 45.0}, cat_curve, strategy="feature_extraction")


# --------------------------------------------------------------------------------- lesson 6 ---
def test_lesson6_exercise1_photo_folder_task_and_run(photo_run, capsys):
    task, result = photo_run
    model = result.model.eval()
    x, y = task.test[:][0], task.test.labels
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.5 and result.test_acc == pytest.approx(acc)
    expect_pass(capsys, checks.lesson6.exercise1(task, result), "2 classes (green, red)", "chance 50%")


def test_lesson6_exercise1_wrong_pairs(photo_run, digits5, capsys):
    task, result = photo_run
    expect_hint(capsys, checks.lesson6.exercise1(task, None), "tl.folder_task")
    expect_hint(capsys, checks.lesson6.exercise1(None, result), "tl.folder_task")
    expect_hint(capsys, checks.lesson6.exercise1(digits5, result), "not a photo-folder task")
    expect_hint(capsys, checks.lesson6.exercise1(task, dataclasses.replace(result, task_name="Photos in other")),
                "another task")
    renamed = dataclasses.replace(result, model=tl.small_cnn(2, image_size=32, classes=["cat", "dog"]))
    expect_hint(capsys, checks.lesson6.exercise1(task, renamed), "another task")
    expect_hint(capsys, checks.lesson6.exercise1(task, dataclasses.replace(result, test_acc=0.5)),
                "not better than chance")


def test_lesson6_exercise1_bad_types(photo_run):
    task, result = photo_run
    with pytest.raises(ValueError, match="expects a tlwidgets Task"):
        checks.lesson6.exercise1("my_photos", result)
    with pytest.raises(ValueError, match="expects a RunResult"):
        checks.lesson6.exercise1(task, 0.9)
    with pytest.raises(ValueError, match="expects a RunResult"):
        checks.lesson6.exercise1(task, result.row())


def test_lesson6_exercise2_the_row_of_the_requested_run(dashboard, capsys):
    rows = dashboard.results
    answer = next(r for r in rows if r["strategy"] == "fine_tune" and r["frozen_groups"] == 1)
    kw = dict(strategy="fine_tune", n_per_class=5, n_frozen=1)
    expect_pass(capsys, checks.lesson6.exercise2(answer, dashboard, **kw), "run 1", "in 2 epochs")
    expect_hint(capsys, checks.lesson6.exercise2(rows[-1], dashboard, **kw), "the run used", "feature_extraction")
    expect_hint(capsys, checks.lesson6.exercise2(answer, dashboard, **{**kw, "n_frozen": 2}), "'frozen_groups': 1")
    expect_hint(capsys, checks.lesson6.exercise2(answer, dashboard, **{**kw, "n_per_class": None}),
                "'n_per_class': 5")
    forged = {**answer, "test_acc": 1.0}
    expect_hint(capsys, checks.lesson6.exercise2(forged, dashboard, **kw), "not in this dashboard's results")


def test_lesson6_exercise2_bad_types(dashboard):
    with pytest.raises(ValueError, match="a results row"):
        checks.lesson6.exercise2(dashboard.run_results[0], dashboard)  # the RunResult, not its row
    with pytest.raises(ValueError, match="a results row"):
        checks.lesson6.exercise2(dashboard.results, dashboard)
    with pytest.raises(ValueError, match="needs the dashboard"):
        checks.lesson6.exercise2(dashboard.results[0], None)


def test_lesson6_exercise3_epochs_of_a_replay(dashboard, tmp_path, capsys):
    log = dashboard.save_log(tmp_path / "log.json")
    logged = json.loads(log.read_text())["runs"]
    answer = len(logged[-1]["history"]["epochs"])  # replay() shows the last run of the log
    assert answer == 3

    fresh = Dashboard(digits_task, kind="mnist", n_per_class=5, headless=True)
    expect_hint(capsys, checks.lesson6.exercise3(answer, fresh), "no runs")
    assert fresh.load_log(log) == 2
    expect_hint(capsys, checks.lesson6.exercise3(answer, fresh), "nothing was replayed")
    fresh.replay(seconds_per_epoch=0)
    expect_pass(capsys, checks.lesson6.exercise3(answer, fresh), "3 epochs")
    expect_hint(capsys, checks.lesson6.exercise3(answer - 1, fresh), "different number of epochs")
    expect_hint(capsys, checks.lesson6.exercise3(len(logged), fresh), "different number of epochs")
    with pytest.raises(ValueError, match="integer number of epochs"):
        checks.lesson6.exercise3(3.0, fresh)
    with pytest.raises(ValueError, match="integer number of epochs"):
        checks.lesson6.exercise3(True, fresh)
    with pytest.raises(ValueError, match="needs the dashboard"):
        checks.lesson6.exercise3(answer, str(log))


def test_lesson6_exercise3_a_dashboard_that_only_trained(dashboard, capsys):
    """The lesson's `fresh = dashboard` placeholder: its chart shows the last training, not a replay."""
    shown = len(dashboard.chart.records)
    assert shown == 3 and dashboard.chart.end_logs is not None
    expect_hint(capsys, checks.lesson6.exercise3(shown, dashboard), "nothing was replayed")
