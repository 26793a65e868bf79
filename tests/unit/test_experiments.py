"""tlwidgets.experiments: nested per-class subsets, time to accuracy, learning curves on cached activations."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from torch.utils.data import Subset, TensorDataset

import tlwidgets as tl
from tlwidgets import data, runs
from tlwidgets import experiments as ex
from tlwidgets.data import ImageTensorDataset, Task
from tlwidgets.training import History
from tlwidgets.transfer import digit_cut_model


# ------------------------------------------------------------------------------------ subsets ---
def test_per_class_indices_are_balanced_nested_and_seeded():
    labels = torch.tensor([0, 1, 2] * 10)
    small = ex.per_class_indices(labels, 2, seed=3)
    large = ex.per_class_indices(labels, 5, seed=3)
    assert torch.bincount(labels[small]).tolist() == [2, 2, 2]
    assert torch.bincount(labels[large]).tolist() == [5, 5, 5]
    assert set(small.tolist()) <= set(large.tolist())  # nested: the curve adds images, never swaps them
    assert not torch.equal(ex.per_class_indices(labels, 5, seed=4), large)
    assert torch.equal(ex.per_class_indices(labels, None), torch.arange(30))


def test_subset_task_holds_the_same_images_as_the_task_builder():
    """subset_task(pool, n) picks what mnist_target_task(n) picks, so results agree with the lessons' tasks."""
    pool = tl.mnist_target_task(None, test_per_class=10)
    direct = tl.mnist_target_task(7, test_per_class=10)
    sub = ex.subset_task(pool, 7)
    assert torch.equal(sub.train.tensors[0], direct.train.tensors[0])
    assert torch.equal(sub.train.tensors[1], direct.train.tensors[1])
    assert sub.test is pool.test and sub.val is pool.val and sub.n_per_class == 7
    assert sub.fingerprint != pool.fingerprint
    assert ex.subset_task(pool, 3).fingerprint != sub.fingerprint
    assert ex.subset_task(pool, None) is pool


def test_subset_of_image_and_generic_datasets_keeps_labels():
    images = torch.randint(0, 255, (12, 3, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 1] * 6)
    ds = ImageTensorDataset(images, labels, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    task = Task("img", ["a", "b"], ds, ds, None, (3, 8, 8), "fp")
    sub = ex.subset_task(task, 2, seed=1)
    assert isinstance(sub.train, ImageTensorDataset) and len(sub.train) == 4
    assert sub.train.labels.tolist().count(0) == 2
    x, y = sub.train[0]
    assert x.dtype == torch.float32 and x.shape == (3, 8, 8)
    assert ds.images.shape[0] == 12  # the parent is untouched
    generic = Subset(TensorDataset(torch.zeros(6, 1), torch.tensor([0, 0, 0, 1, 1, 1])), [0, 1, 3, 4, 5])
    assert data.dataset_labels(generic).tolist() == [0, 0, 1, 1, 1]


# -------------------------------------------------------------------------------- time to target ---
def _history(accs, seconds=1.0):
    return History(epochs=[{"epoch": i, "loss": 1.0, "acc": a, "val_loss": 1.0, "val_acc": a, "seconds": seconds}
                           for i, a in enumerate(accs)])


def test_time_to_accuracy_sums_epochs_until_the_first_hit():
    h = _history([0.3, 0.6, 0.5, 0.9], seconds=2.0)
    assert ex.time_to_accuracy(h, 0.55) == pytest.approx(4.0)
    assert ex.time_to_accuracy(h, 0.3, setup_seconds=1.5) == pytest.approx(3.5)
    assert ex.time_to_accuracy(h, 0.95) is None
    assert ex.time_to_accuracy(h.to_dict(), 0.9) == pytest.approx(8.0)  # a logged run works the same
    with pytest.raises(ValueError, match="target"):
        ex.time_to_accuracy(h, 55)


def test_epochs_for_gives_small_sets_enough_steps():
    assert ex.epochs_for(10, 32, 5, min_steps=0) == 5
    assert ex.epochs_for(10, 32, 5, min_steps=40) == 40  # one batch per epoch
    assert ex.epochs_for(100, 32, 5, min_steps=40) == 10  # four batches per epoch
    assert ex.epochs_for(1000, 32, 5, min_steps=40) == 5


# -------------------------------------------------------------------------------- learning curve ---
@pytest.fixture(scope="module")
def digit_pool():
    return tl.mnist_target_task(12, test_per_class=20)


def test_learning_curve_runs_every_cell_and_reuses_one_forward_pass(digit_pool, monkeypatch):
    calls = []
    real = ex.cached_features

    def counting(model, task, n_frozen=None, **kw):
        calls.append(n_frozen)
        return real(model, task, n_frozen, **kw)

    monkeypatch.setattr(ex, "cached_features", counting)
    seen = []
    curve = ex.learning_curve(digit_pool, [3, None], seeds=(0, 1), num_epochs=2, n_frozen=1, on_run=seen.append)
    assert calls == [1]  # fine_tune (boundary 1), its head-first stage and feature extraction (2) share one pass
    assert len(curve.records) == len(seen) == 3 * 2 * 2
    assert curve.strategies == list(ex.TRAINED)
    for r in curve.records:
        assert isinstance(r, tl.RunResult) and r.model is None   # the curve keeps numbers, not models
        assert r.used_cache == (r.strategy != "scratch") and r.task_name == digit_pool.name
        assert 0.0 <= r.test_acc <= 1.0
        assert r.num_train == (15 if r.n_per_class == 3 else 60)
        assert r.n_frozen == {"scratch": 0, "feature_extraction": 2, "fine_tune": 1}[r.strategy]
        # one budget for every arm: 2 epochs (a fine-tune's head epoch counts); the epoch kept is the best on
        # validation, for fine-tuning the best unfrozen one (no silent fall-back)
        assert len(r.history) == 2 and r.steps == len(r.history.batches)
        stage = [e["val_acc"] for e in r.history.epochs if e.get("stage", "unfrozen") == "unfrozen"]
        assert r.val_acc == max(stage) and not r.fell_back
        assert r.best_unfrozen_epoch == (r.best_epoch if r.strategy == "fine_tune" else None)
        assert r.test.accuracy == r.test_acc and r.test.n == 100 and r.test.chance == 0.2
    table = curve.table()
    assert [row["n_per_class"] for row in table] == [3, "all"]
    assert table[0]["train_images"] == 15 and table[0]["chance"] == 0.2 and table[0]["majority"] == 0.2
    assert table[0]["scratch ±"] == round(curve.seed_spread("scratch", 3).std, 3)
    assert table[0]["fine_tune bal"] == round(curve.balanced("fine_tune", 3), 3)
    gaps = curve.gaps("fine_tune", "scratch", 3)
    assert len(gaps) == 2 and sum(gaps) / 2 == pytest.approx(curve.gap("fine_tune", "scratch", 3))
    mean = (curve.runs("scratch", 3)[0].test_acc + curve.runs("scratch", 3)[1].test_acc) / 2
    assert curve.accuracy("scratch", 3) == pytest.approx(mean)
    assert curve.gap("fine_tune", "scratch", None) == pytest.approx(
        curve.accuracy("fine_tune", None) - curve.accuracy("scratch", None))
    json.dumps(curve.to_dict())  # plain data
    assert "LearningCurve('MNIST digits 5-9', 12 runs)" in repr(curve)


def test_learning_curve_matches_a_hand_made_run(digit_pool):
    """The subset-of-cached-activations shortcut trains exactly what run_strategy would on the subset."""
    curve = ex.learning_curve(digit_pool, [4], ["feature_extraction"], num_epochs=3, seeds=(5,))
    sub = ex.subset_task(digit_pool, 4, seed=5)
    model = digit_cut_model(5, digit_pool.classes)
    feats = tl.cached_features(model, sub, 2, progress=False)
    ref = curve.records[0]
    assert ref.num_train == len(feats.train) == 20
    tl.seed_everything(tl.derive_seed(5, "weights"))  # the new head's initial weights follow the seed
    model = tl.replace_head(model, 5, digit_pool.classes)
    tl.freeze(model, 2)
    tail = model[2:]
    train_loader, val_loader, test_loader = feats.loaders(32)
    hist = tl.fit(tail, train_loader, val_loader, num_epochs=3, lr=3e-3, seed=tl.derive_seed(5, "order", "main"),
                  progress=False)
    assert hist["val_acc"] == pytest.approx(ref.history["val_acc"])
    assert ref.val_acc == pytest.approx(max(hist["val_acc"]))
    assert ref.trainable_params == sum(p.numel() for p in tail.parameters() if p.requires_grad)
    assert ref.arch == "digit_cnn@conv2" and ref.row()["n_frozen"] == 2 and ref.row()["num_train"] == 20


def test_track_false_evaluates_once_and_min_steps_adds_epochs(digit_pool):
    curve = ex.learning_curve(digit_pool, [2], ["scratch", "feature_extraction"], num_epochs=1, min_steps=4,
                              track=False)
    for r in curve.records:
        assert len(r.history) == 4  # 10 images = one batch per epoch -> 4 epochs for 4 steps
        assert r.history["val_acc"] == [None] * 4
        assert 0.0 <= r.test_acc <= 1.0
    assert ex.time_to_accuracy(curve.records[0].history, 0.01) is None
    rows = curve.time_table(0.5, 2)
    assert {row["epochs_to_target"] for row in rows} == {None}


def test_per_strategy_budgets_are_refused_and_time_table(digit_pool):
    with pytest.raises(ValueError, match=r"num_epochs=\{'fine_tune': 1, 'feature_extraction': 3\} gives the arms "
                                         "different settings"):
        ex.learning_curve(digit_pool, [None], ["feature_extraction", "fine_tune"],
                          num_epochs={"fine_tune": 1, "feature_extraction": 3})
    with pytest.raises(ValueError, match=r"lr=\{'feature_extraction': 0.01\} names \['feature_extraction'\], the "
                                         r"arms are \['feature_extraction', 'fine_tune'\]"):
        ex.learning_curve(digit_pool, [None], ["feature_extraction", "fine_tune"], lr={"feature_extraction": 1e-2})
    with pytest.raises(ValueError, match="lr=.*gives the arms different settings"):
        ex.learning_curve(digit_pool, [None], ["feature_extraction", "fine_tune"],
                          lr={"feature_extraction": 1e-2, "fine_tune": [1e-3, 1e-2]})
    curve = ex.learning_curve(digit_pool, [None], ["feature_extraction", "fine_tune"], num_epochs={"fine_tune": 3,
                              "feature_extraction": 3}, n_frozen=1)
    fe, ft = curve.runs("feature_extraction", None)[0], curve.runs("fine_tune", None)[0]
    assert len(fe.history) == len(ft.history) == 3 and fe.steps == ft.steps == 3 * 2   # 60 images, 2 batches
    assert [e["stage"] for e in ft.history.epochs] == ["head", "unfrozen", "unfrozen"]
    rows = curve.time_table(0.05, None)
    assert [r["strategy"] for r in rows] == ["feature_extraction", "fine_tune"]
    for r in rows:
        assert r["epochs_to_target"] == 1  # 5%: below chance, reached at once
        assert r["to_target_s"] >= r["setup_s"] > 0


def test_learning_curve_rejects_bad_grids(digit_pool):
    with pytest.raises(ValueError, match="sizes"):
        ex.learning_curve(digit_pool, [])
    with pytest.raises(ValueError, match="sizes"):
        ex.learning_curve(digit_pool, [0])
    with pytest.raises(ValueError, match="strategy"):
        ex.learning_curve(digit_pool, [2], ["linear_probe"])
    with pytest.raises(ValueError, match="n_frozen"):
        ex.learning_curve(digit_pool, [2], ["fine_tune"], n_frozen=3)


def test_a_curve_refuses_results_without_their_number_of_training_images():
    run = tl.RunResult(tl.Recipe("scratch"), "t", 5, None, History())   # num_train unknown
    with pytest.raises(ValueError, match=r"num_train.*records \[0\] have num_train=None"):
        ex.LearningCurve("t", [run], [5], num_classes=2)
    run.num_train = 10
    assert ex.LearningCurve("t", [run], [5], num_classes=2).num_train(5) == 10


def test_plot_draws_one_line_per_strategy_on_a_log_axis(digit_pool):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    curve = ex.learning_curve(digit_pool, [2, 6], ["scratch", "feature_extraction"], num_epochs=1,
                              seeds=(0, 1), track=False)
    from tlwidgets.widgets import plot_learning_curve

    fig = plot_learning_curve(curve)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [l.get_label() for l in ax.lines] == ["scratch", "feature extraction"]
    assert list(ax.lines[0].get_xdata()) == [2, 6]
    assert math.isclose(ax.lines[1].get_ydata()[1], curve.accuracy("feature_extraction", 6))
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_scratch_task_must_be_the_same_pool(digit_pool):
    other = tl.mnist_target_task(13, test_per_class=20)
    with pytest.raises(ValueError, match="scratch_task"):
        ex.learning_curve(digit_pool, [2], ["scratch"], scratch_task=other)
    same = tl.mnist_target_task(12, test_per_class=20)
    curve = ex.learning_curve(digit_pool, [2], ["scratch"], scratch_task=same, num_epochs=1)
    assert curve.records[0].num_train == 10



def test_learning_rate_is_chosen_on_validation_and_only_the_winner_is_tested(digit_pool, monkeypatch):
    """Candidate rates per strategy: each cell trains every rate, keeps the best on val, reads test once."""
    tested, pairs = [], []
    real = runs.metrics_on
    val_loader = torch.utils.data.DataLoader(digit_pool.val, batch_size=256)

    def recording(model, loader, num_classes, **kw):   # a recording fake around the one test read
        tested.append({"n": len(loader.dataset), "model": model})
        return real(model, loader, num_classes, **kw)

    monkeypatch.setattr(runs, "metrics_on", recording)
    rates = [1e-4, 1e-2]     # the same candidates for every arm
    curve = ex.learning_curve(digit_pool, [3, None], ["scratch", "fine_tune"], seeds=(0, 1), n_frozen=1,
                              num_epochs=2, head_epochs=1, track=[None], lr=rates,
                              on_run=lambda r: pairs.append((r, tested[-1])))
    assert len(tested) == len(curve.records) == len(pairs) == 2 * 2 * 2    # one test read per reported point
    assert {t["n"] for t in tested} == {len(digit_pool.test)}
    for r, test_read in pairs:
        assert [c["lr"] for c in r.selection] == rates
        best = max(r.selection, key=lambda c: c["val_acc"])
        assert r.lr == best["lr"] and r.val_acc == pytest.approx(best["val_acc"], abs=1e-4)
        assert r.row()["lr"] == r.lr
        if r.n_per_class == 3:      # untracked size: read on validation once, after the last epoch
            assert r.history["val_acc"] == [None] * len(r.history)
        else:
            assert r.val_acc >= max(r.history["val_acc"][-1:])
        if r.strategy == "scratch":  # the model tested is the one chosen: its val accuracy is the winner's
            assert real(test_read["model"], val_loader, 5).accuracy == pytest.approx(r.val_acc)
    assert {r.lr for r in curve.records} <= {1e-4, 1e-2}
    # one rate: nothing to choose, no selection; several rates need a validation split
    single = ex.learning_curve(digit_pool, [3], ["feature_extraction"], num_epochs=1, lr=[2e-3])
    assert single.records[0].selection == [] and single.records[0].lr == 2e-3
    no_val = dataclasses.replace(digit_pool, val=None, fingerprint=digit_pool.fingerprint + "-no-val")
    with pytest.raises(ValueError, match="validation"):
        ex.learning_curve(no_val, [3], ["scratch"], lr=[1e-3, 1e-2])
    with pytest.raises(ValueError, match="empty"):
        ex.learning_curve(digit_pool, [3], ["scratch"], lr=[])


def test_subsets_of_two_hand_built_tasks_get_different_cache_keys(tiny_data):
    """subset_task copies the task (dataclasses.replace: val kept) and keys it by the parent's content (issue 25)."""
    from tlwidgets.data import Task

    a = Task("hand", ["c0", "c1", "c2"], tiny_data(30, seed=1), tiny_data(9, seed=2), val=tiny_data(9, seed=3),
             val_note="by hand")
    b = Task("hand", ["c0", "c1", "c2"], tiny_data(30, seed=4), tiny_data(9, seed=2), val=tiny_data(9, seed=3))
    sa, sb = ex.subset_task(a, 2, seed=0), ex.subset_task(b, 2, seed=0)
    assert sa.fingerprint and sa.fingerprint != sb.fingerprint
    assert sa.val is a.val and sa.val_note == "by hand" and len(sa.train) == 6 and sa.n_per_class == 2


def test_resplit_draws_each_split_from_the_whole_pool_and_tests_on_the_rest(digit_pool, monkeypatch):
    """Repeated stratified splits: every (size, seed) trains on n per class drawn from train + val + test and is
    tested on exactly the images not drawn, the same ones for every arm of that seed (scratch on its own pixels)."""
    tested = []
    real = ex.test_once

    def recording(result, model, loader, num_classes, **kw):
        tested.append((result.name, result.seed, torch.cat([b[-1] for b in loader])))
        return real(result, model, loader, num_classes, **kw)

    monkeypatch.setattr(ex, "test_once", recording)
    curve = ex.learning_curve(digit_pool, [3], seeds=(0, 1), num_epochs=1, n_frozen=1, track=False, resplit=True)
    every = torch.cat([data.dataset_labels(d) for d in (digit_pool.train, digit_pool.val, digit_pool.test)])
    per_class = torch.bincount(every, minlength=5)
    for seed in (0, 1):
        drawn = ex.per_class_indices(every, 3, seed)
        rest = torch.tensor([i for i in range(len(every)) if i not in set(drawn.tolist())])
        labels = [lab for name, s, lab in tested if s == seed]
        assert len(labels) == 3                                   # scratch, feature extraction, fine-tuning
        for lab in labels:
            assert torch.equal(lab, every[rest])                  # the rest of the pool, in pool order
    assert not torch.equal(ex.per_class_indices(every, 3, 0), ex.per_class_indices(every, 3, 1))
    for r in curve.records:
        assert r.num_train == 15 and r.test.n == len(every) - 15
    assert curve.resplit and curve.test_counts(3) == {c: float(n - 3) for c, n in zip(digit_pool.classes,
                                                                                      per_class.tolist())}
    majority = sum(r.test.majority for r in curve.records) / len(curve.records)   # the test set changes per draw
    assert curve.baselines(3)["majority"] == pytest.approx(majority)


def test_resplit_refuses_what_it_cannot_honour(digit_pool):
    with pytest.raises(ValueError, match="track=False"):
        ex.learning_curve(digit_pool, [3], resplit=True)
    with pytest.raises(ValueError, match="None"):
        ex.learning_curve(digit_pool, [3, None], resplit=True, track=False)
    with pytest.raises(ValueError, match=r"lr=\(0.001, 0.01\).*give one of each"):
        ex.learning_curve(digit_pool, [3], ["feature_extraction"], resplit=True, track=False, lr=[1e-3, 1e-2])
    fewest = int(torch.bincount(torch.cat([data.dataset_labels(d) for d in
                                           (digit_pool.train, digit_pool.val, digit_pool.test)])).min())
    with pytest.raises(ValueError, match=f"largest size allowed is {fewest - 1}"):
        ex.learning_curve(digit_pool, [fewest], ["feature_extraction"], resplit=True, track=False)
    curve = ex.learning_curve(digit_pool, [3], ["feature_extraction"], num_epochs=1, track=False)
    assert not curve.resplit and curve.test_counts(3) == {c: 20 for c in digit_pool.classes}   # the fixed test set
