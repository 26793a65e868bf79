"""tlwidgets.checks: the check machinery and the exercise checks of lessons 0, 1 and 5 (2-4: test_checks_lesson2-4.py).

For each exercise: the lesson's placeholder gets a "❌ Not yet" hint (never an exception); an
answer computed here, independently of the check module, passes; plausible wrong answers get a
hint; an answer of the wrong type raises ValueError naming the expected type (the documented
behaviour: a check never raises on a *wrong* answer, only on one it cannot read).

No external data: digits come from the bundled MNIST subset, "photos" from generated PNGs or
hand-made tensors, learning curves are built from hand-written RunResults.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _check_helpers import expect_hint, expect_pass, trainable_params
from torch import nn

import tlwidgets as tl
from tlwidgets import checks, data
from tlwidgets.checks import CheckResult
from tlwidgets.widgets import Dashboard

REPO = Path(__file__).resolve().parents[2]
BUNDLED = data.REPO_DATASETS  # the bundled MNIST subset: no shared data needed
DOMESTIC_CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (conftest)


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
    with pytest.raises(AttributeError, match="no exercise checks named 'lesson99'"):
        _ = checks.lesson99
    with pytest.raises(AttributeError):
        _ = checks.nothing_here


def test_every_check_a_lesson_calls_exists():
    """The lessons call checks.lessonN.exerciseK (K = 1..3 at least), and each check module has exactly those."""
    called = set()
    for path in sorted((REPO / "lessons").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"])
            called |= {(int(path.name[:2]), int(k)) for k in
                       re.findall(rf"checks\.lesson{int(path.name[:2])}\.exercise(\d)", src)}
    assert {(n, k) for n in range(6) for k in (1, 2, 3)} <= called
    for n in range(6):
        module = getattr(checks, f"lesson{n}")
        assert sorted(name for name in vars(module) if name.startswith("exercise")) == [
            f"exercise{k}" for m, k in sorted(called) if m == n]


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
        ("lesson6.exercise1", [], lambda: checks.lesson6.exercise1(..., ...)),
        ("lesson6.exercise2", ["dashboard"], lambda dash: checks.lesson6.exercise2(
            None, dash, strategy="fine_tune", n_per_class=5, n_frozen=1)),
        # the lesson starts with `fresh = dashboard` (the one that trained in exercise 2) and `answer = None`
        ("lesson6.exercise3", ["dashboard"], lambda dash: checks.lesson6.exercise3(..., dash)),
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
    with pytest.raises(ValueError, match="a count"):
        checks.lesson0.exercise1(15000, "15372", fe)
    with pytest.raises(ValueError, match="prediction"):
        checks.lesson0.exercise1("about 15k", right, fe)


@pytest.mark.parametrize("prediction, measured", [
    (np.int64(15372), np.int64(15372)),                 # np.sum / np.prod of the shapes
    (np.float32(1.5e4), np.float64(15372.0)),           # a float count that is whole
    (torch.tensor(15000.0), torch.tensor(15372.0)),     # a float tensor's sum
    (15000, 15372.0),
])
def test_lesson0_exercise1_judges_numbers_whatever_their_type(prediction, measured, photo_model, capsys):
    fe = fe_by_hand(photo_model)
    expect_pass(capsys, checks.lesson0.exercise1(prediction, measured, fe), "15,372")


def test_lesson0_exercise1_a_fractional_count_gets_a_hint(photo_model, capsys):
    fe = fe_by_hand(photo_model)
    expect_hint(capsys, checks.lesson0.exercise1(15000, np.float64(15372.5), fe), "whole number")


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


@pytest.mark.parametrize("largest_batch", [None, 32], ids=["three batches", "batches capped, more of them"])
def test_lesson1_exercise1_typical_mistakes_get_their_own_hints(largest_batch, digits_source, capsys, monkeypatch):
    if largest_batch:   # the lesson's 5,139 digits are capped at 512 a batch; 100 digits capped at 32 take that path
        monkeypatch.setattr(checks.lesson1, "LARGEST_BATCH", largest_batch)
    model = tl.load_digit_model()
    expect_pass(capsys, checks.lesson1.exercise1(accuracy_loop, model, digits_source), "100 test digits")
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

    from tlwidgets.pretrained import species_predictions
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


def test_lesson1_exercise2_reuses_full_size_probs_only_when_they_are_the_nets(capsys):
    """Handing in the full-size probabilities changes no verdict and no number; wrong ones are refused."""
    import torch.nn.functional as F

    from tlwidgets.pretrained import species_predictions
    from tlwidgets.training import predict_proba

    net, x, truth = fake_photos()
    full, _ = predict_proba(net, x)
    small = F.interpolate(x, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
    measured = float(np.mean([s == t for s, t in zip(species_predictions(predict_proba(net, small)[0]), truth)]))
    for answer, verdict in ((measured, "50.0% at 16 px vs 100.0% at 32 px"), (1.0, "resize the photos"),
                            (100 * measured, "percentage"), (0.25, "16 x 16")):
        computed = checks.lesson1.exercise2(0.9, answer, net, x, truth, size=16)
        for given in (full, full.numpy(), full.tolist()):
            reused = checks.lesson1.exercise2(0.9, answer, net, x, truth, size=16, probs=given)
            assert (bool(reused), reused.message) == (bool(computed), computed.message)
            assert verdict in reused.message
    capsys.readouterr()
    swapped = full.flip(0)  # the photos' rows in the wrong order: a spot-checked row disagrees
    with pytest.raises(ValueError, match=r"probs are not the net's probabilities for x_pets \(photo 0"):
        checks.lesson1.exercise2(0.9, measured, net, x, truth, size=16, probs=swapped)
    with pytest.raises(ValueError, match=r"one row .* per photo of x_pets \(12 rows\), got shape \(6, 1000\)"):
        checks.lesson1.exercise2(0.9, measured, net, x, truth, size=16, probs=full[:6])
    with pytest.raises(ValueError, match="probs has 3 classes per photo, the net gives 1000"):
        checks.lesson1.exercise2(0.9, measured, net, x, truth, size=16, probs=torch.ones(12, 3) / 3)


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
    from tlwidgets.pretrained import species_predictions

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
    coin = tl.classification_metrics(torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 0, 0]), 2)
    assert coin.accuracy == 0.5
    expect_hint(capsys, checks.lesson6.exercise1(task, dataclasses.replace(result, test=coin)),
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
    answer = next(r for r in rows if r["strategy"] == "fine_tune" and r["n_frozen"] == 1)
    kw = dict(strategy="fine_tune", n_per_class=5, n_frozen=1)
    expect_pass(capsys, checks.lesson6.exercise2(answer, dashboard, **kw), "run 1", "in 2 epochs")
    expect_hint(capsys, checks.lesson6.exercise2(rows[-1], dashboard, **kw), "the run used", "feature_extraction")
    expect_hint(capsys, checks.lesson6.exercise2(answer, dashboard, **{**kw, "n_frozen": 2}), "'n_frozen': 1")
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
    for same in (3.0, np.int64(3), torch.tensor(3), np.float32(3)):   # the number is judged, not its type
        expect_pass(capsys, checks.lesson6.exercise3(same, fresh), "3 epochs")
    expect_hint(capsys, checks.lesson6.exercise3(2.5, fresh), "not a whole number")
    with pytest.raises(ValueError, match="integer number of epochs"):
        checks.lesson6.exercise3("3", fresh)
    with pytest.raises(ValueError, match="integer number of epochs"):
        checks.lesson6.exercise3(True, fresh)
    with pytest.raises(ValueError, match="needs the dashboard"):
        checks.lesson6.exercise3(answer, str(log))


def test_lesson6_exercise3_a_dashboard_that_only_trained(dashboard, capsys):
    """The lesson's `fresh = dashboard` placeholder: its chart shows the last training, not a replay."""
    shown = len(dashboard.chart.records)
    assert shown == 3 and dashboard.chart.end_logs is not None
    expect_hint(capsys, checks.lesson6.exercise3(shown, dashboard), "nothing was replayed")
