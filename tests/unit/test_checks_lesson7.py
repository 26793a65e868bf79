"""tlwidgets.checks.lesson7: for each exercise, two correct routes pass, typical wrong answers get their own
hint, the lesson's untouched placeholder is rejected, and an unreadable answer raises ValueError."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tlwidgets as tl
from tlwidgets import checks
from tlwidgets.checks import CheckResult

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (conftest)


@pytest.fixture(scope="module")
def wv():
    return tl.load_word_vectors()


def ok(capsys, result, *needles):
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and result.passed, result
    assert out == repr(result) + "\n" and out.startswith("✅ Correct: ")
    for n in needles:
        assert n in result.message, (n, result.message)


def hint(capsys, result, *needles):
    out = capsys.readouterr().out
    assert isinstance(result, CheckResult) and not result.passed and not result, result
    assert out.startswith("❌ Not yet: ")
    for n in needles:
        assert n in result.message, (n, result.message)
    return result.message


# ---------------------------------------------------------------------------------------- exercise 1 ---
def test_exercise1_accepts_the_cosine_by_library_or_by_hand(wv, capsys):
    u, v = wv["good"], wv["bad"]
    ok(capsys, checks.lesson7.exercise1(F.cosine_similarity(u, v, dim=0), wv, "good", "bad"), "cos(good, bad)")
    by_hand = float(u @ v) / math.sqrt(float(u @ u) * float(v @ v))
    ok(capsys, checks.lesson7.exercise1(by_hand, wv, "good", "bad"))


def test_exercise1_rejects_placeholder_and_typical_mistakes_each_with_its_hint(wv, capsys):
    u, v = wv["good"], wv["bad"]
    cos = F.cosine_similarity(u, v, dim=0).item()
    hints = {hint(capsys, checks.lesson7.exercise1(None, wv), "replace `answer = None`"),
             hint(capsys, checks.lesson7.exercise1(torch.dot(u, v).item(), wv), "dot product"),
             hint(capsys, checks.lesson7.exercise1(1 - cos, wv), "distance"),
             hint(capsys, checks.lesson7.exercise1(torch.dist(u, v).item(), wv), "Euclidean"),
             hint(capsys, checks.lesson7.exercise1(math.acos(cos), wv), "angle"),
             hint(capsys, checks.lesson7.exercise1(F.cosine_similarity(u, wv["excellent"], dim=0).item(), wv),
                  "is not cos(good, bad)")}
    assert len(hints) == 6
    with pytest.raises(ValueError, match="a number"):
        checks.lesson7.exercise1("0.8", wv)


# ---------------------------------------------------------------------------------------- exercise 2 ---
def test_exercise2_accepts_a_loop_and_an_embedding_bag(wv, capsys):
    def with_loop(tokens):
        known = [wv[t] for t in tokens if t in wv]
        return torch.stack(known).mean(0) if known else torch.zeros(wv.dim)

    bag = nn.EmbeddingBag.from_pretrained(torch.cat([torch.zeros(1, wv.dim), wv.vectors]), mode="mean",
                                          padding_idx=0)

    def with_bag(tokens):
        ids = [i + 1 for i in wv.ids(tokens)] or [0]
        with torch.no_grad():
            return bag(torch.tensor([ids]))[0].numpy()  # a NumPy array is fine too

    ok(capsys, checks.lesson7.exercise2(with_loop, wv), "unknown words")
    ok(capsys, checks.lesson7.exercise2(with_bag, wv))


def test_exercise2_rejects_placeholder_and_typical_mistakes_each_with_its_hint(wv, capsys):
    def placeholder(tokens):
        ...

    def summed(tokens):
        ids = wv.ids(tokens)
        return wv.vectors[ids].sum(0)

    def unknown_as_zeros(tokens):
        if not tokens:
            return torch.zeros(wv.dim)
        return torch.stack([wv[t] if t in wv else torch.zeros(wv.dim) for t in tokens]).mean(0)

    def no_empty_case(tokens):
        return wv.vectors[wv.ids(tokens)].mean(0)  # NaN for a sentence with no known word

    def raises_on_empty(tokens):
        return torch.stack([wv[t] for t in tokens if t in wv]).mean(0)

    def distinct_words(tokens):
        ids = sorted(set(wv.ids(tokens)))
        return wv.vectors[ids].mean(0) if ids else torch.zeros(wv.dim)

    def per_word_mean(tokens):
        ids = wv.ids(tokens)
        return wv.vectors[ids].mean(1) if ids else torch.zeros(wv.dim)

    hints = {hint(capsys, checks.lesson7.exercise2(placeholder, wv), "returns nothing"),
             hint(capsys, checks.lesson7.exercise2(summed, wv), "sum of the vectors"),
             hint(capsys, checks.lesson7.exercise2(unknown_as_zeros, wv), "counting the unknown one as zeros"),
             hint(capsys, checks.lesson7.exercise2(no_empty_case, wv), "NaN"),
             hint(capsys, checks.lesson7.exercise2(raises_on_empty, wv), "raised RuntimeError"),
             hint(capsys, checks.lesson7.exercise2(distinct_words, wv), "counts twice"),
             hint(capsys, checks.lesson7.exercise2(per_word_mean, wv), "must have 50")}
    assert len(hints) == 7
    with pytest.raises(ValueError, match="your function"):
        checks.lesson7.exercise2(torch.zeros(50), wv)


# ---------------------------------------------------------------------------------------- exercise 3 ---
@pytest.fixture(scope="module")
def imdb_to_amazon(wv):
    task = tl.text_task(sources="imdb", test_sources="amazon", seed=0)
    x = [tl.sentence_vectors(wv, s.tokens) for s in (task.train, task.val, task.test)]
    head = tl.fit_linear_head(x[0], task.train.labels, x[1], task.val.labels, weight_decays=[1e-2])
    return task, head, x


def test_exercise3_accepts_metrics_or_counting_correct_predictions(wv, imdb_to_amazon, capsys):
    task, head, x = imdb_to_amazon
    tested = tl.fit_linear_head(x[0], task.train.labels, x[1], task.val.labels, weight_decays=[1e-2],
                                test=(x[2], task.test.labels))
    ok(capsys, checks.lesson7.exercise3(tested.test_acc, tested, task, wv), "amazon")
    by_hand = (head.model(x[2]).argmax(1) == task.test.labels).float().mean()  # a 0-d tensor
    ok(capsys, checks.lesson7.exercise3(by_hand, head, task, wv))


def test_exercise3_rejects_placeholder_and_typical_mistakes_each_with_its_hint(wv, imdb_to_amazon, capsys):
    task, head, x = imdb_to_amazon
    acc = (head.model(x[2]).argmax(1) == task.test.labels).float().mean().item()
    val = (head.model(x[1]).argmax(1) == task.val.labels).float().mean().item()
    wrong_way = tl.text_task(sources="amazon", test_sources="imdb", seed=0)
    bow = tl.BagOfWords(task.train.tokens)
    bow_head = tl.fit_linear_head(bow.encode(task.train.tokens), task.train.labels, bow.encode(task.val.tokens),
                                  task.val.labels, weight_decays=[1e-2])
    hints = {hint(capsys, checks.lesson7.exercise3(None, None, None, wv), "replace `answer = None`"),
             hint(capsys, checks.lesson7.exercise3(acc, head, wrong_way, wv), "other direction"),
             hint(capsys, checks.lesson7.exercise3(val, head, task, wv), "validation"),
             hint(capsys, checks.lesson7.exercise3(100 * acc, head, task, wv), "percentage"),
             hint(capsys, checks.lesson7.exercise3(acc, bow_head, task, wv), "sentence vectors"),
             hint(capsys, checks.lesson7.exercise3(0.5, head, task, wv), "evaluate the head you pass in")}
    assert len(hints) == 6
    with pytest.raises(ValueError, match="TextTask"):
        checks.lesson7.exercise3(acc, head, "imdb", wv)
    with pytest.raises(ValueError, match="RunResult of tl.fit_linear_head"):
        checks.lesson7.exercise3(acc, nn.Linear(50, 2), task, wv)
