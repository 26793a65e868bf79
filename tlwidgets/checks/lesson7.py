"""Checks for lesson 7 (word vectors). Each recomputes the answer from the objects passed in."""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import CheckResult, as_number, not_yet, passed


def _need_vectors(wv, name: str) -> None:
    from ..text import WordVectors

    if not isinstance(wv, WordVectors):
        raise ValueError(f"{name} expects the WordVectors from tl.load_word_vectors() as wv, got {type(wv).__name__}")


def exercise1(answer: Any, wv: Any, a: str = "good", b: str = "bad") -> CheckResult:
    """The cosine similarity of the GloVe vectors of ``a`` and ``b``.

    Args:
        answer: the student's number.
        wv: the lesson's WordVectors.
        a: the first word.
        b: the second word.
    """
    from ..text import nearest

    if answer is None:
        return not_yet(f"replace `answer = None` with a number: the cosine similarity of wv[{a!r}] and wv[{b!r}] "
                       "(their dot product divided by the product of their lengths)")
    answer = as_number(answer, "exercise1")
    _need_vectors(wv, "exercise1")
    u, v = wv[a], wv[b]
    cos = F.cosine_similarity(u, v, dim=0).item()
    if abs(answer - cos) < 1e-3:
        top, top_sim = nearest(wv, a, 1)[0]
        return passed(f"cos({a}, {b}) = {cos:.3f} (the nearest word to '{a}', '{top}', has {top_sim:.3f}). Opposites "
                      "share their contexts ('the food was ___'), so GloVe puts them close together; sentiment is "
                      "only one direction among 50")
    if abs(answer - torch.dot(u, v).item()) < 1e-3:
        return not_yet("that is the plain dot product; divide it by the lengths of both vectors "
                       "(torch.linalg.norm) so that only their direction counts")
    if abs(answer - (1 - cos)) < 1e-3:
        return not_yet("that is the cosine *distance* (1 - similarity); the question asks for the similarity")
    if abs(answer - torch.dist(u, v).item()) < 1e-3:
        return not_yet("that is the Euclidean distance between the vectors; the cosine similarity compares "
                       "their directions: dot product / (|u| |v|)")
    if abs(answer - math.acos(max(-1.0, min(1.0, cos)))) < 1e-3 or abs(answer - math.degrees(math.acos(cos))) < 1e-2:
        return not_yet("that is the angle between the vectors; the question asks for its cosine")
    if not -1.0 <= answer <= 1.0:
        return not_yet(f"{answer:.3f} cannot be a cosine similarity: it is always between -1 and 1")
    return not_yet(f"{answer:.3f} is not cos({a}, {b}); compute F.cosine_similarity(wv[{a!r}], wv[{b!r}], dim=0)")


_PROBES: tuple[list[str], ...] = (["the", "battery", "is", "great", "!"], ["not", "good", "qqqzzzx"],
                                  ["zzzqqqxx", "xxqqzz"], [], ["great", "great", "bad"])


def exercise2(sentence_vector: Any, wv: Any) -> CheckResult:
    """A function ``sentence_vector(tokens)``: the mean of the vectors of the known tokens, zeros if none."""
    from ..text import sentence_vectors

    _need_vectors(wv, "exercise2")
    if not callable(sentence_vector):
        raise ValueError(f"exercise2 expects your function sentence_vector, got {type(sentence_vector).__name__}")
    for tokens in _PROBES:
        expected = sentence_vectors(wv, [tokens])[0]
        try:
            got = sentence_vector(list(tokens))
        except Exception as exc:  # noqa: BLE001 - the student's code; its error becomes the hint
            if not tokens or not any(t in wv for t in tokens):
                return not_yet(f"sentence_vector({tokens}) raised {type(exc).__name__}: a sentence with no known "
                               f"word must give a vector of {wv.dim} zeros (nothing to average)")
            return not_yet(f"sentence_vector({tokens}) raised {type(exc).__name__}: {str(exc)[:160]}")
        if got is None or got is Ellipsis:
            return not_yet("your function returns nothing yet: replace `...` with code that returns a tensor")
        got = torch.as_tensor(got).float().reshape(-1)
        if got.numel() != wv.dim:
            return not_yet(f"sentence_vector({tokens}) has {got.numel()} numbers; it must have {wv.dim}, "
                           "one per dimension of the word vectors (average over the words, not over dimensions)")
        if torch.isnan(got).any():
            return not_yet(f"sentence_vector({tokens}) contains NaN: the mean of no vectors; return "
                           f"torch.zeros({wv.dim}) when no token has a vector")
        if torch.allclose(got, expected, atol=1e-5):
            continue
        known = [t for t in tokens if t in wv]
        if known and torch.allclose(got, wv.vectors[wv.ids(known)].sum(0), atol=1e-4):
            return not_yet("that is the sum of the vectors; divide by the number of known words (the mean), "
                           "so a long sentence is not simply a 'bigger' vector")
        if known and len(known) < len(tokens) and torch.allclose(got, expected * len(known) / len(tokens), atol=1e-5):
            return not_yet(f"for {tokens} you averaged over all {len(tokens)} tokens, counting the unknown one as "
                           "zeros; skip tokens that have no vector and average over the known ones")
        if len(set(known)) < len(known) and torch.allclose(got, sentence_vectors(wv, [list(dict.fromkeys(known))])[0],
                                                           atol=1e-5):
            return not_yet(f"for {tokens} you counted each distinct word once; a word that occurs twice counts "
                           "twice in the mean (as in nn.EmbeddingBag)")
        return not_yet(f"sentence_vector({tokens}) differs from the mean of the known words' vectors "
                       f"(first numbers {got[:3].tolist()} vs {expected[:3].tolist()})")
    return passed(f"matches tl.sentence_vectors on {len(_PROBES)} sentences, including one with unknown words, "
                  "one with none known and an empty one")


def _accuracy(head, x, y) -> float:
    with torch.no_grad():
        return (head(x.float()).argmax(1) == y).float().mean().item()


def exercise3(answer: Any, head: Any, task: Any, wv: Any) -> CheckResult:
    """Test accuracy of a GloVe-mean linear head trained on imdb sentences and tested on amazon sentences.

    Args:
        answer: the student's test accuracy.
        head: the RunResult of ``tl.fit_linear_head`` (its ``model`` is the linear head).
        task: the TextTask (imdb -> amazon).
        wv: the WordVectors the sentence features came from.
    """
    from ..runs import RunResult
    from ..text import TextTask, sentence_vectors

    if answer is None:
        return not_yet("replace `answer = None` with the test accuracy (a float in [0, 1]) of a head trained on "
                       "tl.text_task(sources='imdb', test_sources='amazon')")
    answer = as_number(answer, "exercise3")
    if not isinstance(task, TextTask):
        raise ValueError(f"exercise3 expects the TextTask third, got {type(task).__name__}")
    if not isinstance(head, RunResult) or not isinstance(head.model, nn.Linear):
        raise ValueError(f"exercise3 expects the RunResult of tl.fit_linear_head second, got {type(head).__name__}")
    _need_vectors(wv, "exercise3")
    train_sites, test_sites = set(task.train.sources), set(task.test.sources)
    if train_sites != {"imdb"} or test_sites != {"amazon"}:
        return not_yet(f"this task trains on {sorted(train_sites)} and tests on {sorted(test_sites)}; the exercise "
                       "is the other direction: tl.text_task(sources='imdb', test_sources='amazon')")
    if head.model.in_features != wv.dim:
        return not_yet(f"this head takes {head.model.in_features} features; train it on the {wv.dim}-number "
                       "sentence vectors (tl.sentence_vectors)")
    acc = _accuracy(head.model, sentence_vectors(wv, task.test.tokens), task.test.labels)
    if abs(answer - acc) < 1e-3:
        return passed(f"{acc:.1%} on amazon sentences after training on movie reviews only "
                      "(chance 50%); compare it with amazon -> imdb in section 6")
    val_acc = _accuracy(head.model, sentence_vectors(wv, task.val.tokens), task.val.labels)
    if abs(answer - val_acc) < 1e-3:
        return not_yet("that is the accuracy on the validation split (imdb sentences); report the test split's")
    if abs(answer - head.val_acc) < 1e-3:
        return not_yet("that is head.val_acc, measured on imdb validation sentences; evaluate on task.test")
    if abs(answer - 100 * acc) < 0.1:
        return not_yet("give the accuracy as a fraction between 0 and 1, not a percentage")
    return not_yet(f"you report {answer:.3f} but this head scores {acc:.3f} on the task's test sentences; "
                   "evaluate the head you pass in on task.test")
