"""Checks for lesson 7 (word vectors). Each recomputes the answer from the objects passed in."""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import CheckResult, as_number, is_placeholder, need_prediction, not_yet, passed


def _need_vectors(wv, name: str) -> None:
    from ..text import WordVectors

    if not isinstance(wv, WordVectors):
        raise ValueError(f"{name} expects the WordVectors from tl.load_word_vectors() as wv, got {type(wv).__name__}")


PREDICTIONS = ("higher", "lower")


def exercise1(prediction: Any, answer: Any, wv: Any, a: str = "good", b: str = "bad",
              other: str = "excellent") -> CheckResult:
    """Predict, then measure: is cos(``a``, ``b``) higher or lower than cos(``a``, ``other``)? ``answer`` is the
    measured cos(``a``, ``b``); the verdict echoes the prediction against what the vectors say.

    Args:
        prediction: ``"higher"`` or ``"lower"``, written before measuring.
        answer: the student's cosine similarity of ``a`` and ``b``.
        wv: the lesson's WordVectors.
        a: the first word.
        b: the word compared with it (its opposite, in the lesson).
        other: the near-synonym the prediction compares against.
    """
    from ..text import nearest

    if isinstance(prediction, str):
        prediction = prediction.strip().lower()
    hint = need_prediction(prediction, f"is cos({a}, {b}) 'higher' or 'lower' than cos({a}, {other})?", PREDICTIONS)
    if hint is not None:
        return hint
    if is_placeholder(answer):
        return not_yet(f"now measure: replace `answer = ...` with the cosine similarity of wv[{a!r}] and wv[{b!r}] "
                       "(their dot product divided by the product of their lengths)")
    answer = as_number(answer, "exercise1")
    _need_vectors(wv, "exercise1")
    u, v = wv[a], wv[b]
    cos = F.cosine_similarity(u, v, dim=0).item()
    if abs(answer - cos) < 1e-3:
        top, top_sim = nearest(wv, a, 1)[0]
        versus = F.cosine_similarity(u, wv[other], dim=0).item()
        truth = "higher" if cos > versus else "lower"
        verdict = "as you predicted" if prediction == truth else f"you predicted {prediction}"
        return passed(f"cos({a}, {b}) = {cos:.3f}, {truth} than cos({a}, {other}) = {versus:.3f} ({verdict}); the "
                      f"nearest word to '{a}', '{top}', has {top_sim:.3f}. Opposites share their contexts ('the food "
                      "was ___'), so GloVe puts them close together; sentiment is only one direction among 50")
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

    if is_placeholder(answer):
        return not_yet("replace `answer = ...` with the test accuracy (a float in [0, 1]) of a head trained on "
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


# ---------------------------------------------------------------------------------- exercise 4 ---
_STRATEGIES = {"feature extraction": "feature extraction", "freeze": "feature extraction",
               "frozen": "feature extraction", "linear probe": "feature extraction",
               "fine tune": "fine-tune", "fine tuning": "fine-tune", "finetune": "fine-tune",
               "scratch": "scratch", "from scratch": "scratch", "train from scratch": "scratch",
               "earlier layer": "earlier layer", "feature extraction from an earlier layer": "earlier layer",
               "early cut": "earlier layer", "earlier cut": "earlier layer", "cut earlier": "earlier layer"}
# (data, domain) -> the answers the course's measurements support, and a hint for each typical wrong answer
_TABLE: dict[tuple[str, str], tuple[set[str], dict[str, str]]] = {
    ("small", "similar"): ({"feature extraction"}, {
        "fine-tune": "small data, similar domain: at 10 labels per class (section 5) fine-tuned vectors did not beat "
                     "frozen ones; thousands of trainable numbers memorise a few labels. Freeze and train a head",
        "scratch": "small data, similar domain: from scratch is the worst arm at few labels in lessons 4 and 7",
        "earlier layer": "small data, similar domain: the source's top features already fit a similar target; "
                         "lesson 5 found early cuts best only for a *different* domain (digits from ImageNet)"}),
    ("large", "similar"): ({"fine-tune"}, {
        "feature extraction": "large data, similar domain: with all the labels fine-tuned GloVe beat frozen GloVe "
                              "(section 5); with many labels, let the pretrained weights adapt",
        "scratch": "large data, similar domain: the pretrained start still won with all labels (section 5: "
                   "fine-tuned above random initialisation); keep it and fine-tune",
        "earlier layer": "large data, similar domain: nothing to throw away here; fine-tune the whole network"}),
    ("small", "different"): ({"earlier layer"}, {
        "feature extraction": "small data, different domain: lesson 5's cut sweep (ImageNet -> digits) was best with "
                              "an early cut; the top features are specific to the source's classes",
        "fine-tune": "small data, different domain: a few labels cannot re-train much; lesson 5 did best with a "
                     "linear head on an early layer's features",
        "scratch": "small data, different domain: lesson 5's early-cut ImageNet features still beat the digit "
                   "source and help with few labels; try an earlier cut before giving up on transfer"}),
    ("large", "different"): ({"fine-tune", "scratch"}, {
        "feature extraction": "large data, different domain: frozen top features were learned for another domain; "
                              "with many labels fine-tune the whole network (or train from scratch)",
        "earlier layer": "large data, different domain: with many labels you can afford to train everything: "
                         "fine-tune the whole network, or train from scratch"}),
}
WHEN_NOT = {   # the statements exercise 4 offers: which are reasons *not* to transfer?
    "a": "the target has few labels and looks like the source",
    "b": "the target has plenty of labels and the source learned something unrelated: measure scratch first",
    "c": "the source takes a different kind of input that cannot be converted without losing what matters "
         "(lesson 5: cat photos squeezed into the digit network's 28 px grey squares)",
    "d": "whenever the target's domain differs from the source's at all",
}
_WHEN_NOT_RIGHT = {"b", "c"}
_WHEN_NOT_HINTS = {
    "a": "(a) is transfer's best case (lessons 2, 4 and 7 at few labels), not a reason to avoid it",
    "d": "(d) is too strong: ImageNet features helped digits (lesson 5, cut early), and ImageNet initialisation is "
         "standard for audio spectrograms; a different domain calls for an earlier cut or fine-tuning, not no transfer",
}


def _strategy(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return _STRATEGIES.get(" ".join(value.lower().replace("-", " ").replace("_", " ").split()))


def exercise4(table: Any, when_not: Any) -> CheckResult:
    """The CS231n decision table (small/large data x similar/different domain) filled from the course's own
    measurements, and when *not* to transfer.

    Args:
        table: a dict ``{(data, domain): strategy}`` with data in ``"small"``/``"large"``, domain in
            ``"similar"``/``"different"`` and strategy one of ``"feature extraction"``, ``"fine-tune"``,
            ``"earlier layer"`` (a head on an earlier layer's features), ``"scratch"``.
        when_not: the letters of :data:`WHEN_NOT` that are reasons not to transfer (a string such as
            ``"bc"`` or a collection of letters).
    """
    if is_placeholder(table):
        return not_yet("fill `table`: one strategy for each of the four (data, domain) cells, chosen from what "
                       "lessons 4, 5 and 7 measured")
    if not isinstance(table, dict):
        raise ValueError(f"exercise4 expects table as a dict {{(data, domain): strategy}}, got {type(table).__name__}")
    cells = {(str(k[0]).lower(), str(k[1]).lower()) if isinstance(k, tuple) and len(k) == 2 else k: v
             for k, v in table.items()}
    missing = [k for k in _TABLE if k not in cells]
    if missing:
        return not_yet(f"the table needs all four cells; missing {missing} (keys are ('small' or 'large', "
                       "'similar' or 'different'))")
    for key, (right, hints) in _TABLE.items():
        if is_placeholder(cells[key]):
            return not_yet(f"cell {key} is still `...`: choose one of {sorted(set(_STRATEGIES.values()))}")
        choice = _strategy(cells[key])
        if choice is None:
            return not_yet(f"cell {key}: {cells[key]!r} is not one of {sorted(set(_STRATEGIES.values()))}")
        if choice not in right:
            return not_yet(hints[choice])
    if is_placeholder(when_not):
        return not_yet("the table is right; now `when_not`: the letters of the statements in "
                       "checks.lesson7.WHEN_NOT that are reasons not to transfer")
    if isinstance(when_not, str):
        letters = {c for c in when_not.lower() if c.isalpha()}
    elif isinstance(when_not, (list, tuple, set, frozenset)):
        letters = {str(c).strip().lower() for c in when_not}
    else:
        raise ValueError(f"exercise4 expects when_not as letters ('bc' or ['b', 'c']), got {type(when_not).__name__}")
    unknown = letters - set(WHEN_NOT)
    if unknown:
        return not_yet(f"{sorted(unknown)} are not statements; choose among {sorted(WHEN_NOT)}")
    wrong = sorted(letters - _WHEN_NOT_RIGHT)
    if wrong:
        return not_yet(_WHEN_NOT_HINTS[wrong[0]])
    if letters != _WHEN_NOT_RIGHT:
        return not_yet(f"{sorted(letters) or 'none'} is only part of it: one more statement is a reason not to "
                       "transfer (reread lesson 5's cats in the digit network, and section 4's bag of words with "
                       "all labels)")
    return passed("the table the course measured: few labels -> freeze; many labels -> fine-tune; a different "
                  "domain with few labels -> a head on an earlier layer; many labels and a different domain -> "
                  "fine-tune everything or train from scratch. Don't transfer when the input cannot carry what "
                  "the source learned, or when labels are plentiful and the source is unrelated: measure scratch")
