"""Reliability, round 3 (issue 25): silent wrong answers closed at their root, one fault class at a time.

Test names carry the fault class, numbered after round 2's eleven: ``test_cNN_...`` with NN from 12
(a class silently disappears) to 25 (one long sentence pads a batch). ``scripts/reliability_table.py``
counts the cases per class and writes ``docs/reliability.md``. Each class is fixed in one place (the
table under "Where each fix lives" names it); the tests here drive that place through the public calls
a careless or unlucky user makes. Where "nothing ran before the refusal" is the claim, a recording fake
of ``fit`` proves it. Tiny photos, tiny models, the bundled data: seconds, not minutes.
"""
from __future__ import annotations

import html
import json
import pickle
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import tlwidgets as tl
from tlwidgets import data, experiments, images, layer_transfer, models, runlog, runs, text, transfer
from tlwidgets.data.mnist import mnist_tensors
from tlwidgets.data.tasks import Task
from tlwidgets.infra import ChecksumError
from tlwidgets.table import Table
from tlwidgets.validate import check_candidates, check_float, check_int, check_lr

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------- helpers ---
def _png(path: Path, rgb, size=(24, 20), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.zeros((size[1], size[0], 3)) + np.array(rgb) + rng.integers(-20, 20, (size[1], size[0], 3)),
                     0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _two_classes(root: Path, per_class: int = 4) -> Path:
    for c, rgb in (("cats", (200, 40, 40)), ("dogs", (40, 40, 200))):
        for i in range(per_class):
            _png(root / c / f"{c}_{i}.png", rgb, seed=10 * len(c) + i)
    return root


def _grey_task(n: int = 30, size: int = 28, *, with_val: bool = True) -> Task:
    """A digit-kind task of grey ``size`` px images, 3 classes (what as_photos converts)."""
    gen = torch.Generator().manual_seed(0)

    def ds(k):
        y = torch.arange(k) % 3
        return TensorDataset(torch.randn(k, 1, size, size, generator=gen) + y.view(-1, 1, 1, 1).float(), y)

    return Task("grey", ["a", "b", "c"], ds(n), ds(12), None, (1, size, size), "grey-test",
                val=ds(9) if with_val else None, val_note="9 held out" if with_val else "", kind="digits")


def _tiny_task() -> Task:
    """3 classes of 1x8x8 images, with train/val/test: what the conftest's tiny model reads."""
    gen = torch.Generator().manual_seed(0)

    def ds(k):
        y = torch.arange(k) % 3
        return TensorDataset(torch.randn(k, 1, 8, 8, generator=gen) + y.view(-1, 1, 1, 1).float(), y)

    return Task("tiny", ["a", "b", "c"], ds(30), ds(15), None, (1, 8, 8), "tiny-test", val=ds(15), kind="digits")


class _NoTraining(RuntimeError):
    """Raised by the recording fake of ``fit``: a run reached training."""


def _recording_fit(calls: list):
    def fake_fit(*args, **kwargs):
        calls.append(kwargs.get("lr"))
        raise _NoTraining("fit was called")
    return fake_fit


def _word_vectors(words=("good", "bad", "movie", "phone", "great"), dim=4, seed=0) -> text.WordVectors:
    gen = torch.Generator().manual_seed(seed)
    return text.WordVectors(list(words), torch.randn(len(words), dim, generator=gen), name="test vectors")


def _text_root(tmp_path: Path) -> Path:
    """A private data root with the three text files (no SHA256SUMS: the loaders' own checks are on trial)."""
    root = tmp_path / "root"
    for rel in (text.VECTORS_FILE, text.VOCAB_FILE, text.SENTENCES_FILE):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data.REPO_DATASETS / rel, root / rel)
    return root


# ------------------------------------------------------------- 12 a class silently disappears ---
def test_c12_class_folder_of_notes_is_refused_by_name(tmp_path):
    root = _two_classes(tmp_path / "photos")
    (root / "birds").mkdir()
    (root / "birds" / "where_to_find_them.txt").write_text("notes, no photos yet")
    (root / "birds" / "plan.md").write_text("# todo")
    with pytest.raises(FileNotFoundError, match=r"class folder .*birds has no image file \(it holds 2 file\(s\) "
                                                r"of other types: 1 \.md, 1 \.txt\)"):
        data.folder_task(root, image_size=32)


def test_c12_empty_class_folder_is_refused_as_imagefolder_refuses_it(tmp_path):
    from torchvision.datasets import ImageFolder

    root = _two_classes(tmp_path / "photos")
    (root / "birds").mkdir()
    with pytest.raises(FileNotFoundError):   # the library twin the docstring follows
        ImageFolder(str(root))
    with pytest.raises(FileNotFoundError, match=r"class folder .*birds has no image file \(it is empty\)"):
        data.folder_task(root, image_size=32)


def test_c12_class_folder_of_unreadable_images_is_refused_by_name(tmp_path):
    root = _two_classes(tmp_path / "photos")
    for i in range(3):
        (root / "birds" / f"b{i}.jpg").parent.mkdir(exist_ok=True)
        (root / "birds" / f"b{i}.jpg").write_bytes(b"not a jpeg at all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the skipped-file warning is round 2's; the refusal is on trial here
        with pytest.raises(ValueError, match=r"class folder .*birds: none of its 3 image file\(s\) can be read, "
                                             r"e\.g\. .*b0\.jpg: cannot be decoded"):
            data.folder_task(root, image_size=32)


def test_c12_heic_phone_photos_are_read(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    root = _two_classes(tmp_path / "photos")
    pillow_heif.register_heif_opener()
    (root / "birds").mkdir()
    for i in range(4):   # what an iPhone saves by default
        pixels = np.full((20, 24, 3), (40, 200, 40)) + np.random.default_rng(i).integers(-8, 8, (20, 24, 3))
        Image.fromarray(pixels.astype(np.uint8)).save(root / "birds" / f"IMG_{i}.HEIC")
    task = data.folder_task(root, image_size=32)
    assert task.classes == ["birds", "cats", "dogs"]
    birds = task.train.images[task.train.labels == 0].float().mean((0, 2, 3))
    assert torch.allclose(birds, torch.tensor([40.0, 200.0, 40.0]), atol=12)   # HEIC is lossy, colours stay


def test_c12_heic_without_pillow_heif_names_the_package(tmp_path, monkeypatch):
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\0\0\0\x18ftypheic")
    monkeypatch.setattr(images, "_heif_state", [False])   # as on a machine without the plug-in
    with pytest.raises(images.ImageDecodeError, match=r"IMG_0001\.HEIC: a HEIC/HEIF photo needs the pillow-heif "
                                                      r"package \(pip install pillow-heif\)"):
        images.decode_image(path)


# ------------------------------------------------------------ 13 numbers that are not numbers ---
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_c13_word_vectors_with_a_non_finite_row_are_refused_naming_the_word(bad):
    vectors = np.eye(3, 4, dtype=np.float32)
    vectors[1, 2] = bad
    with pytest.raises(ValueError, match=r"1 word vector\(s\) hold NaN or infinite numbers: 'bad' \(row 1\)"):
        text.WordVectors(["good", "bad", "movie"], vectors)


def test_c13_loaded_vectors_with_nan_name_the_word_and_the_file(tmp_path):
    root = _text_root(tmp_path)
    vectors = np.load(root / text.VECTORS_FILE)
    words = (root / text.VOCAB_FILE).read_text(encoding="utf-8").split("\n")
    vectors[7] = np.nan
    np.save(root / text.VECTORS_FILE, vectors)
    with pytest.raises(ValueError, match=rf"in {root / text.VECTORS_FILE} hold NaN or infinite numbers: "
                                         rf"{words[7]!r} \(row 7\)"):
        text.load_word_vectors(root)


# -------------------------------------------------------------------- 14 text that is not text ---
_WV = _word_vectors()
BATCH_FUNCTIONS = {
    "sentence_vectors": lambda texts: text.sentence_vectors(_WV, texts),
    "encode_ids": lambda texts: text.encode_ids(_WV, texts),
    "coverage": lambda texts: _WV.coverage(texts),
    "BagOfWords": lambda texts: text.BagOfWords(texts),
    "BagOfWords.encode": lambda texts: text.BagOfWords(["good movie"]).encode(texts),
}


@pytest.mark.parametrize("fn", BATCH_FUNCTIONS.values(), ids=BATCH_FUNCTIONS.keys())
@pytest.mark.parametrize("texts, message", [
    (["good movie", b"bad phone"], r"sentence 1 is bytes, not str \(bytes: a file read in binary mode; decode it"),
    ([["good", b"movie"]], r"sentence 0 is a token list with a bytes among its tokens"),
    (b"good movie\nbad phone", r"expected a list of sentences, got one bytes"),
    ([3.5], r"sentence 0 must be a string or a list of tokens \(strings\), got float"),
], ids=["bytes sentence", "bytes token", "whole file as bytes", "a number"])
def test_c14_every_batch_function_refuses_what_is_not_text(fn, texts, message):
    with pytest.raises(TypeError, match=message):
        fn(texts)


def test_c14_text_still_works_as_strings_and_token_lists():
    as_strings = text.sentence_vectors(_WV, ["Good movie", "bad phone"])
    as_tokens = text.sentence_vectors(_WV, [["good", "movie"], ("bad", "phone")])
    assert torch.equal(as_strings, as_tokens)
    assert as_strings.abs().sum(1).min() > 0   # no row of zeros: every sentence has known words


# --------------------------------------------------------------- 15 two vocabularies, one model ---
def test_c15_bag_model_refuses_ids_from_another_vocabulary_before_training(monkeypatch):
    built_on = _word_vectors(("good", "bad", "movie", "phone", "great"))
    other = _word_vectors(("great", "phone", "movie", "bad", "good"))   # same size, other order: silent chance
    model = text.bag_model(built_on)
    calls: list = []
    monkeypatch.setattr(text, "fit_and_keep", _recording_fit(calls))
    with pytest.raises(ValueError, match=r"bag_frozen was built on test vectors \(5 words, digest [0-9a-f]{16}\); "
                                         r"the ids given come from test vectors \(5 words, digest"):
        text.train_bag_model(model, other, object())   # the task is never reached
    assert calls == []


def test_c15_ids_outside_the_models_table_are_refused_by_name():
    model = text.bag_model(_word_vectors(), init="random", freeze=False)
    bigger = _word_vectors(tuple(f"w{i}" for i in range(50)))
    ids = text.encode_ids(bigger, [["w40", "w3"]])
    with pytest.raises(ValueError, match=r"bag_random: ids must be in 0\.\.5 .* got ids from 4 to 41: they were "
                                         r"encoded with another vocabulary"):
        model(ids)


def test_c15_the_same_vocabulary_passes_and_matches_embeddingbag():
    wv = _word_vectors()
    model = text.bag_model(wv)
    model.check_vocabulary(text.WordVectors(list(wv.words), wv.vectors.clone(), name="a copy"))   # same words
    ids = text.encode_ids(wv, [["good", "movie"], ["bad"]])
    twin = nn.EmbeddingBag.from_pretrained(torch.cat([torch.zeros(1, wv.dim), wv.vectors]), mode="mean",
                                           padding_idx=0)
    assert torch.allclose(model.embedding(ids), twin(ids))


# ------------------------------------------------------------------------------ 16 NumPy scalars ---
@pytest.mark.parametrize("value, expected", [
    (np.int64(3), 3), (np.int32(3), 3), (np.uint8(3), 3), (np.array(3), 3), (torch.tensor(3), 3),
])
def test_c16_the_argument_check_returns_plain_python_integers(value, expected):
    out = check_int("n", value, min=0)
    assert out == expected and type(out) is int


@pytest.mark.parametrize("value", [np.float32(0.25), np.float64(0.25), np.array(0.25), torch.tensor(0.25)])
def test_c16_the_argument_check_returns_plain_python_floats(value):
    for out in (check_float("x", value, min=0), check_lr(value)):
        assert out == 0.25 and type(out) is float


@pytest.mark.parametrize("value", [np.array([3]), torch.tensor([3]), np.True_, torch.tensor(True)])
def test_c16_arrays_and_bools_are_still_not_integers(value):
    with pytest.raises(TypeError, match=r"n must be an integer"):
        check_int("n", value)


def test_c16_numpy_seeds_and_sizes_reach_json_as_plain_numbers(tiny_model, tmp_path):
    task = _tiny_task()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = transfer.run_strategy("scratch", task, num_epochs=np.int64(1), seed=np.int64(2),
                                       batch_size=np.int32(16), lr=np.float32(1e-3), model=tiny_model(3),
                                       progress=False)
    row = result.row()
    assert type(row["seed"]) is int and type(row["lr"]) is float and row["epochs"] == 1
    runlog.write_log(tmp_path / "log.json", [{"row": row, "config": {}, "history": result.history.to_dict()}])
    assert runlog.read_log(tmp_path / "log.json")["runs"][0]["row"]["seed"] == 2


def test_c16_numpy_sizes_and_seeds_in_a_learning_curve_and_seed_tables():
    pool = tl.mnist_target_task(4, test_per_class=4)
    curve = experiments.learning_curve(pool, [np.int64(2)], ["feature_extraction"], seeds=[np.int64(3)],
                                       num_epochs=np.int64(1))
    rows = [r.row() for r in curve.records]
    assert json.loads(json.dumps(rows))[0]["seed"] == 3 and rows[0]["n_per_class"] == 2
    x, y = torch.randn(12, 5), torch.arange(12) % 3
    table = layer_transfer.probe_table({"f": (x, y, x, y)}, 3, [np.int64(1)], num_epochs=1, progress=False)
    assert json.loads(json.dumps(table.rows))[0]["seed"] == 1
    task = Task("t", ["a", "b"], TensorDataset(torch.zeros(2, 1)), TensorDataset(torch.zeros(2, 1)), np.int64(5))
    assert type(task.n_per_class) is int


def test_c16_text_task_stores_plain_numbers():
    task = text.text_task(np.int64(10), val_per_class=np.int32(20), seed=np.int64(3))
    assert type(task.n_per_class) is int and type(task.seed) is int and len(task.val) == 40
    assert task.train.texts == text.text_task(10, val_per_class=20, seed=3).train.texts


def test_c16_layer_transfer_takes_numpy_depths(tiny_model):
    target = layer_transfer.transplant(tiny_model(3, seed=1), tiny_model(3, seed=2), np.int64(2))
    assert target.n_frozen == 2


# ------------------------------------------------------------------------ 17 late argument checks ---
LATE_CASES = {
    "bad last lr candidate": (dict(strategy="scratch", lr=[1e-3, -1.0]), r"lr\[1\]: lr must be a positive number"),
    "NaN fine-tuning lr": (dict(strategy="fine_tune", n_frozen=1, lr=float("nan")), r"lr must be a positive number"),
    "lr given as text": (dict(strategy="fine_tune", n_frozen=1, lr="1e-3"), r"lr must be a positive number"),
    "lr_decay above 1": (dict(strategy="fine_tune", n_frozen=1, lr_decay=2.0), r"lr_decay must be a number in"),
    "negative head_epochs": (dict(strategy="fine_tune", n_frozen=1, head_epochs=-1), r"head_epochs must be"),
    "zero epochs": (dict(strategy="scratch", num_epochs=0), r"num_epochs must be an integer >= 1"),
    "negative seed": (dict(strategy="scratch", seed=-1), r"seed must be an integer"),
    "float n_frozen candidate": (dict(strategy="fine_tune", n_frozen=[1, 2.5]), r"n_frozen\[1\]: n_frozen must be"),
    "out-of-range n_frozen candidate": (dict(strategy="fine_tune", n_frozen=[1, 9]),
                                        r"n_frozen=9 is out of range: tiny has 4 groups, so 0\.\.3"),
}


@pytest.mark.parametrize("kw, message", LATE_CASES.values(), ids=LATE_CASES.keys())
def test_c17_run_strategy_checks_every_argument_before_any_training(kw, message, tiny_model, monkeypatch):
    calls: list = []
    monkeypatch.setattr(runs, "fit", _recording_fit(calls))   # the one training call of every run
    kw = dict(kw)
    with pytest.raises(ValueError, match=message):
        transfer.run_strategy(kw.pop("strategy"), _tiny_task(), model=tiny_model(3), progress=False, **kw)
    assert calls == []   # refused at the door: no head stage, no first candidate trained


@pytest.mark.parametrize("kw, message", [
    (dict(lr={"scratch": [1e-3, 0.0]}), r"lr for 'scratch'\[1\]: lr for 'scratch' must be a positive number"),
    (dict(lr=float("inf")), r"lr for 'feature_extraction' must be a positive number"),
    (dict(seeds=[0, -2]), r"seeds must be an integer"),
    (dict(num_epochs={"scratch": 0}), r"num_epochs for 'scratch' must be an integer >= 1"),
    (dict(head_epochs=-1), r"head_epochs must be an integer >= 0"),
], ids=["bad scratch lr candidate", "inf lr", "negative seed", "zero epochs", "negative head_epochs"])
def test_c17_learning_curve_checks_every_argument_before_any_training(kw, message, monkeypatch):
    calls: list = []
    monkeypatch.setattr(runs, "fit", _recording_fit(calls))   # the one training call of every run
    monkeypatch.setattr(experiments, "cached_features", _recording_fit(calls))
    pool = _tiny_task()
    with pytest.raises(ValueError, match=message):
        experiments.learning_curve(pool, [2], ["feature_extraction", "scratch"], **kw)
    assert calls == []


def test_c17_candidate_check_names_the_position_and_keeps_single_values():
    assert check_candidates("lr", 0.1, check_lr) == [0.1]
    assert check_candidates("lr", (np.float32(0.5), 1), check_lr) == [0.5, 1.0]
    with pytest.raises(ValueError, match=r"lr is an empty list"):
        check_candidates("lr", [], check_lr)


# --------------------------------------------------------------- 18 loader errors name the file ---
def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("which, keep", [("train-images-idx3-ubyte", 5000), ("train-labels-idx1-ubyte", 100),
                                         ("train-images-idx3-ubyte", 3)])
def test_c18_truncated_mnist_idx_file_is_named(mnist_copy, which, keep):
    path = mnist_copy / "MNIST" / "raw" / which
    _truncate(path, keep)
    what = "not an MNIST idx file" if keep < 4 else "truncated"
    with pytest.raises(ChecksumError, match=rf"{path}: {what}"):
        mnist_tensors(mnist_copy, train=True)


def _damage_vectors_truncated(root):
    _truncate(root / text.VECTORS_FILE, 4000)
    return root / text.VECTORS_FILE, r"cannot be read as word vectors \(truncated or damaged"


def _damage_vectors_pickle(root):
    vectors = np.load(root / text.VECTORS_FILE)
    (root / text.VECTORS_FILE).write_bytes(pickle.dumps(vectors))
    return root / text.VECTORS_FILE, r"is a pickle, not a NumPy \.npy array of word vectors"


def _damage_vectors_object_array(root):
    np.save(root / text.VECTORS_FILE, np.array([{"king": 1}], dtype=object), allow_pickle=True)
    return root / text.VECTORS_FILE, r"object arrays need pickle"


def _damage_vectors_torch_save(root):
    torch.save(torch.zeros(3, 50), root / text.VECTORS_FILE)
    return root / text.VECTORS_FILE, r"is a zip archive, not a NumPy \.npy array"


def _damage_vocab_latin1(root):
    path = root / text.VOCAB_FILE
    path.write_bytes(path.read_bytes().replace(b"the\n", "thé\n".encode("latin-1"), 1))
    return path, r"is not UTF-8 text \(byte b'\\xe9' at offset"


def _damage_vocab_truncated(root):
    path = root / text.VOCAB_FILE
    _truncate(path, 2000)
    return path, r"lists [\d,]+ words but .* holds 50,535 vectors"


def _damage_sentences_latin1(root):
    path = root / text.SENTENCES_FILE
    path.write_bytes(path.read_bytes() + "\n99,très bien,1,positive,amazon,train\n".encode("latin-1"))
    return path, r"is not UTF-8 text"


def _damage_sentences_columns(root):
    (root / text.SENTENCES_FILE).write_text("id;text;label\n1;good;1\n", encoding="utf-8")
    return root / text.SENTENCES_FILE, r"is not the sentences table"


TEXT_DAMAGE = {f.__name__.removeprefix("_damage_"): f for f in (
    _damage_vectors_truncated, _damage_vectors_pickle, _damage_vectors_object_array, _damage_vectors_torch_save,
    _damage_vocab_latin1, _damage_vocab_truncated, _damage_sentences_latin1, _damage_sentences_columns)}


@pytest.mark.parametrize("damage", TEXT_DAMAGE.values(), ids=TEXT_DAMAGE.keys())
def test_c18_damaged_text_files_are_named_never_unsafely(damage, tmp_path):
    root = _text_root(tmp_path)
    path, message = damage(root)
    load = text.load_sentences if "sentences" in path.name else text.load_word_vectors
    with pytest.raises(ValueError) as info:
        load(root)
    assert str(path) in str(info.value)
    assert re.search(message, str(info.value)), str(info.value)
    assert "unsafe" not in str(info.value) and "allow_pickle=True" not in str(info.value)


def test_c18_undamaged_text_files_still_load(tmp_path):
    root = _text_root(tmp_path)
    wv = text.load_word_vectors(root)
    assert len(wv) == 50_535 and wv.source == str(root / text.VECTORS_FILE)
    assert len(text.load_sentences(root)) == 2000


# ------------------------------------------------------------ 19 Markdown tables escape HTML ---
def test_c19_markdown_escapes_markup_like_the_html_renderer():
    evil = "<img src=x onerror=alert(1)> & co"
    t = Table([{"class": evil, "acc": 0.5}], title="<script>x</script>")
    md, page = t.to_markdown(), t.to_html()
    for rendered in (md, page):
        assert "<img" not in rendered and "<script" not in rendered
    cell = md.splitlines()[-1].split(" | ")[0].removeprefix("| ")
    assert html.unescape(cell) == evil                         # the reader sees exactly the text
    assert html.escape(evil, quote=False).replace("&gt;", ">") == cell   # the same entities as the HTML twin
    assert "->" in Table([{"a": "0-4 -> 5-9"}]).to_markdown()   # arrows stay readable


# ------------------------------------------------------------- 20 converted tasks keep val ---
def test_c20_as_photos_keeps_the_validation_split():
    task = _grey_task()
    photos = data.as_photos(task, image_size=32)
    assert photos.val is not None and len(photos.val) == len(task.val) and photos.val_note == task.val_note
    assert torch.equal(photos.val.labels, task.val.tensors[1])
    assert photos.val[0][0].shape == (3, 32, 32)


def test_c20_as_digits_keeps_the_validation_split(tmp_path):
    photos = data.folder_task(_two_classes(tmp_path / "p", per_class=6), image_size=32)
    digits = data.as_digits(photos)
    assert digits.val is not None and len(digits.val) == len(photos.val)
    assert torch.equal(digits.val.tensors[1], photos.val.labels) and digits.val.tensors[0].shape[1:] == (1, 28, 28)
    assert data.as_photos(_grey_task(with_val=False), image_size=32).val is None


# -------------------------------------------------------------------- 21 replay of a bad log ---
class _Recorder:
    def __init__(self):
        self.events = []

    def on_train_begin(self, logs):
        self.events.append("on_train_begin")


def test_c21_a_damaged_batch_entry_is_named_not_a_key_error():
    broken = {"epochs": [], "batches": [{"epoch": 0, "batch": 0, "loss": 1.0}]}
    with pytest.raises(ValueError, match=r"the logged history is damaged: batch entry 0 .* lacks 'acc'"):
        runlog.replay(broken, [])


def _history():
    return {"epochs": [{"epoch": 0, "loss": 1.0, "acc": 0.5, "val_loss": None, "val_acc": None, "seconds": 0.1}],
            "batches": [{"epoch": 0, "batch": 0, "loss": 1.0, "acc": 0.5}], "seconds": 0.1}


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), -1.0, "fast"])
def test_c21_replay_refuses_a_speed_that_is_not_a_number_before_any_event(seconds):
    rec = _Recorder()
    with pytest.raises(ValueError, match=r"seconds_per_epoch must be a number >= 0"):
        runlog.replay(_history(), [rec], seconds_per_epoch=seconds)
    assert rec.events == []


def test_c21_blocking_dashboard_replay_of_a_bad_log_raises(tmp_path):
    from tlwidgets.widgets.dashboard import Dashboard

    dash = Dashboard(kind="mnist", headless=True)
    broken = {"epochs": [{"epoch": 0, "loss": "high"}], "batches": [{"epoch": 0, "batch": 0, "loss": 1.0,
                                                                       "acc": 0.5}]}
    with pytest.raises(TypeError) as info:   # fails while drawing: it used to return with the error kept aside
        dash.replay(broken, seconds_per_epoch=0, block=True)
    assert dash.last_error is info.value   # the same error the widget shows, not hidden in last_error only
    with pytest.raises(ValueError, match=r"seconds_per_epoch must be a number >= 0, got nan"):
        dash.replay(_history(), seconds_per_epoch=float("nan"))


# ------------------------------------------------------------- 22 widgets that take a model ---
def test_c22_digit_pad_refuses_a_photo_model_by_name():
    from tlwidgets.widgets.digit_pad import DigitPad

    torch.manual_seed(0)
    photo = models.GroupedModel([("stem", nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())),
                                 ("head", nn.Linear(4, 2))], name="tiny_photo", classes=["cat", "dog"],
                                mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), image_size=160)
    with pytest.raises(ValueError, match=r"the pad draws one grey 28x28 digit, but tiny_photo takes 3-channel "
                                         r"images of 160 px \(a photo model\); give a digit model"):
        DigitPad(photo)
    pad = DigitPad(tl.load_digit_model())   # the digit model is still welcome
    assert pad.classes == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize("n, error", [(0, ValueError), (-2, ValueError), (2.5, TypeError), ("4", TypeError)])
def test_c22_show_task_refuses_bad_sample_counts_before_drawing(n, error):
    from tlwidgets.widgets.gallery import show_task

    with pytest.raises(error, match=r"n_per_class must be an integer in 1\.\.50"):
        show_task(_grey_task(), n)


def test_c22_show_task_draws_with_a_numpy_count():
    import matplotlib.pyplot as plt

    from tlwidgets.widgets.gallery import show_task

    fig = show_task(_grey_task(), np.int64(2))
    assert len(fig.axes) == 3 * 2
    plt.close(fig)


# ------------------------------------------------------------------------- 23 model slices ---
@pytest.mark.parametrize("sl", [slice(99, None), slice(None, 99), slice(-99, None), slice(5, 6)])
def test_c23_slices_beyond_the_groups_are_refused(sl, tiny_model):
    model = tiny_model(3)
    with pytest.raises(IndexError, match=r"tiny has 4 layer groups \['stem', 'block', 'features', 'head'\]; a slice "
                                         r"bound must be in -4\.\.4"):
        model[sl]


def test_c23_slices_within_the_groups_behave_like_a_sequence(tiny_model):
    model = tiny_model(3)
    assert len(model[:0]) == 0 and len(model[4:]) == 0   # empty, as list(range(4))[4:] is
    top = model[np.int64(2):]
    assert top.group_names == ["features", "head"] and top[1] is model[3]   # same modules, shared weights
    assert model[-1:].group_names == ["head"]


# ------------------------------------------------------------------ 24 predict on unlabelled data ---
@pytest.mark.parametrize("make", [
    lambda x: TensorDataset(x),
    lambda x: DataLoader(TensorDataset(x), batch_size=3),
    lambda x: DataLoader(x, batch_size=3),   # a plain tensor as a dataset: bare batches
], ids=["TensorDataset(x)", "its DataLoader", "bare tensor batches"])
def test_c24_predict_on_unlabelled_data_gives_predictions_without_targets(make, tiny_model):
    model = tiny_model(3)
    x = torch.randn(7, 1, 8, 8)
    preds = tl.predict(model, make(x), k=2)
    twin = tl.predict(model, x, k=2)   # the same inputs as one tensor batch
    assert [p.target for p in preds] == [None] * 7
    # the same classes, and probabilities equal up to float rounding (batches of another size may take other kernels)
    assert [[c for c, _ in p.top] for p in preds] == [[c for c, _ in p.top] for p in twin]
    assert [q for p in preds for _, q in p.top] == pytest.approx([q for p in twin for _, q in p.top], abs=1e-6)


def test_c24_predict_still_reads_labels_and_refuses_odd_batches(tiny_model):
    model = tiny_model(3)
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    assert [p.target for p in tl.predict(model, TensorDataset(x, y))] == ["c0", "c1", "c2", "c0"]
    odd = DataLoader(TensorDataset(x, y, y), batch_size=2)
    with pytest.raises(ValueError, match=r"predict\(\): batch 0 is a list of 3 items; expected inputs, \(inputs,\) "
                                         r"or \(inputs, labels\)"):
        tl.predict(model, odd)


# ----------------------------------------------------------- 25 one long sentence pads a batch ---
def test_c25_one_long_sentence_no_longer_pads_the_batch_to_its_length():
    wv = _word_vectors()
    long = " ".join(["good", "movie"] * 5000)
    with pytest.warns(UserWarning, match=rf"1 sentence\(s\) have more than max_len={text.MAX_TOKENS} known tokens "
                                         r"\(the longest 10000\)"):
        ids = text.encode_ids(wv, ["bad phone", long])
    assert ids.shape == (2, text.MAX_TOKENS)
    assert torch.equal(ids[0, :2], text.encode_ids(wv, ["bad phone"])[0])
    # the kept part is the sentence's start: its mean vector is EmbeddingBag's mean over the first MAX_TOKENS ids
    first = torch.tensor([wv.index[w] for w in (["good", "movie"] * 5000)[:text.MAX_TOKENS]])
    assert torch.allclose(text.bag_model(wv).embedding(ids[1:]), wv.vectors[first].mean(0, keepdim=True))


def test_c25_max_len_none_keeps_every_token_and_short_batches_stay_narrow():
    wv = _word_vectors()
    assert text.encode_ids(wv, [" ".join(["good"] * 300)], max_len=None).shape == (1, 300)
    assert text.encode_ids(wv, ["good movie", "bad"]).shape == (2, 2)   # narrow: the longest sentence, no more
    with pytest.raises(ValueError, match=r"max_len must be an integer >= 1, got 0"):
        text.encode_ids(wv, ["good"], max_len=0)
