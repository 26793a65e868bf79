"""tlwidgets.layer_transfer: transplanting layers, the Yosinski sweep, pooled cut features, probes.

Tiny models and generated data only (the tiny four-group model of conftest), so the whole file
runs in a few seconds; the lessons run the real experiments.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tlwidgets.data import Task
from tlwidgets.layer_transfer import (
    VARIANTS,
    SeedResults,
    as_digits,
    as_photos,
    imagenet_class_groups,
    pooled_cut_features,
    probe,
    probe_table,
    train_and_test,
    train_val,
    transplant,
    yosinski_sweep,
)
from tlwidgets.metrics import classification_metrics
from tlwidgets.models import imagenet_classes


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _task(tiny_data, name="t", n=60, seed=1, classes=3):
    x, y = tiny_data(n + 30, classes, seed=seed).tensors
    train, test = TensorDataset(x[:n], y[:n]), TensorDataset(x[n:], y[n:])
    return Task(name, [f"c{i}" for i in range(classes)], train, test, None, (1, 8, 8), f"{name}-{seed}-{n}")


def test_transplant_copies_the_first_n_groups_and_freezes_them(tiny_model):
    source, target = tiny_model(seed=1), tiny_model(seed=2)
    fresh_head = target.head.weight.detach().clone()
    out = transplant(source, target, 2, frozen=True)
    assert out is target
    for name in ("stem", "block"):
        for (k, a), b in zip(source.groups[name].state_dict().items(), target.groups[name].state_dict().values()):
            assert torch.equal(a, b), k
        assert not any(p.requires_grad for p in target.groups[name].parameters())
    assert torch.equal(target.head.weight, fresh_head)            # the upper groups keep their own weights
    assert not torch.equal(target.groups["features"][2].weight, source.groups["features"][2].weight)
    assert all(p.requires_grad for g in ("features", "head") for p in target.groups[g].parameters())
    assert target.n_frozen == 2
    target.train()
    assert not target.groups["stem"][1].training                  # frozen BatchNorm stays in eval mode
    # the copy is a copy: training the target never moves the source
    target.groups["stem"][0].weight.data.add_(1.0)
    assert not torch.equal(target.groups["stem"][0].weight, source.groups["stem"][0].weight)


def test_transplant_fine_tuned_variant_leaves_everything_trainable(tiny_model):
    target = transplant(tiny_model(seed=1), tiny_model(seed=2), 3, frozen=False)
    assert target.n_frozen == 0 and all(p.requires_grad for p in target.parameters())


def test_transplant_refuses_bad_depths_and_architectures(tiny_model):
    a, b = tiny_model(), tiny_model()
    for n in (-1, 4, 1.5, True):
        with pytest.raises(ValueError, match="n must be"):
            transplant(a, b, n)
    with pytest.raises(TypeError, match="GroupedModel"):
        transplant(nn.Linear(2, 2), b, 1)
    other = tiny_model(num_classes=3)
    other.groups["stem"] = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU())
    with pytest.raises(ValueError, match="different shapes"):
        transplant(a, other, 1)


def test_train_val_carves_a_stratified_validation_split_or_uses_the_tasks(tiny_data):
    task = _task(tiny_data)
    train, val = train_val(task, 4, seed=0)
    assert len(val) == 12 and len(train) == 48
    assert torch.bincount(torch.stack([val[i][1] for i in range(len(val))])).tolist() == [4, 4, 4]
    assert train_val(task, 4, seed=0)[1].indices == val.indices       # seeded: the same split again
    assert train_val(task, 4, seed=1)[1].indices != val.indices
    task.val = tiny_data(9, 3, seed=5)
    assert train_val(task, 4)[1] is task.val
    assert train_val(task, 4, seed=0, use_task_val=False)[1].indices == val.indices


def test_train_and_test_learns_a_learnable_task_and_reports_test_metrics(tiny_model, tiny_data):
    model = tiny_model()
    x, y = tiny_data(105, 3, seed=1).tensors      # one set of class prototypes, three disjoint parts
    parts = [TensorDataset(x[a:b], y[a:b]) for a, b in ((0, 60), (60, 75), (75, 105))]
    metrics, val_acc = train_and_test(model, *parts, 3, num_epochs=8, lr=1e-2)
    assert metrics.n == 30 and metrics.chance == pytest.approx(1 / 3)
    assert metrics.accuracy > 0.6 and val_acc > 0.6


def test_seed_results_summarise_the_spread_per_setting():
    res = SeedResults(("variant", "n"))
    y = torch.tensor([0, 1, 1, 1])
    for s, pred in enumerate(([0, 1, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1])):
        res.add(classification_metrics(y, torch.tensor(pred), 2), seed=s, variant="AnB", n=1)
    res.add(classification_metrics(y, y, 2), seed=0, variant="base B", n=0)
    assert res.values(variant="AnB", n=1) == [1.0, 0.75, 0.75]
    spread = res.spread(variant="AnB", n=1)
    assert spread.min == 0.75 and spread.max == 1.0 and spread.n == 3
    rows = res.summary()
    assert [(r["variant"], r["n"], r["seeds"]) for r in rows] == [("AnB", 1, 3), ("base B", 0, 1)]
    assert rows[0]["bal_acc_min"] == 0.5 and rows[0]["majority"] == 0.75
    assert res.rows[2]["single_class"] is True
    with pytest.raises(KeyError, match="no rows"):
        res.values(variant="BnB")
    with pytest.raises(ValueError, match="missing"):
        res.add(classification_metrics(y, y, 2), seed=0, variant="x")
    assert "AnB" in repr(res) and "3 seeds" in repr(res)


def test_yosinski_sweep_trains_every_variant_at_every_depth(tiny_model, tiny_data):
    task_a = _task(tiny_data, "A", seed=1)
    task_b = _task(tiny_data, "B", seed=7)
    res = yosinski_sweep(task_a, task_b, depths=(1, 3), seeds=(0, 1), make_net=lambda k: tiny_model(k),
                         num_epochs=3, val_per_class=4, progress=False, lr=1e-2)
    assert set(res.settings()) == {("base B", 0)} | {(v, n) for v in VARIANTS[1:] for n in (1, 3)}
    assert len(res) == 2 * (1 + 4 * 2)
    assert all(0 <= r["accuracy"] <= 1 and r["val_acc"] is not None for r in res.rows)
    # one budget for every variant (the frozen ones train fewer parameters, not fewer steps)
    assert len({r.steps for r in res.results}) == 1 and len(res.results) == len(res)
    # the sweep is a pure function of its seeds
    again = yosinski_sweep(task_a, task_b, depths=(1, 3), seeds=(0, 1), make_net=lambda k: tiny_model(k),
                           num_epochs=3, val_per_class=4, progress=False, lr=1e-2)
    assert [r["accuracy"] for r in again.rows] == [r["accuracy"] for r in res.rows]


def test_yosinski_sweep_refuses_bad_arguments(tiny_model, tiny_data):
    t = _task(tiny_data)
    make = lambda k: tiny_model(k)  # noqa: E731
    with pytest.raises(ValueError, match="depths"):
        yosinski_sweep(t, t, depths=(0,), make_net=make, progress=False)
    with pytest.raises(ValueError, match="depths"):
        yosinski_sweep(t, t, depths=(4,), make_net=make, progress=False)
    with pytest.raises(ValueError, match="unknown variants"):
        yosinski_sweep(t, t, variants=("CnB",), make_net=make, progress=False)
    with pytest.raises(ValueError, match="seeds"):
        yosinski_sweep(t, t, seeds=(), make_net=make, progress=False)


def test_pooled_cut_features_pool_each_boundary_in_one_pass_and_cache(tiny_model, tiny_data, isolated_cache):
    model, task = tiny_model(), _task(tiny_data)
    cuts = pooled_cut_features(model, task, [1, 2, 3], device="cpu", progress=False)
    x = task.train.tensors[0][:5]
    with torch.no_grad():
        model.eval()
        assert torch.allclose(cuts.train[1][:5], model[:1](x).mean(dim=(2, 3)), atol=1e-6)
        assert torch.allclose(cuts.train[2][:5], model[:2](x).mean(dim=(2, 3)), atol=1e-6)
        assert torch.allclose(cuts.train[3][:5], model[:3](x), atol=1e-6)   # already a vector: kept as is
    assert cuts.names == {1: "stem", 2: "block", 3: "features"} and not cuts.from_disk
    assert torch.equal(cuts.test_labels, task.test.tensors[1])
    again = pooled_cut_features(model, task, [3, 2, 1], device="cpu", progress=False)
    assert again.from_disk and torch.equal(again.test[2], cuts.test[2])
    with pytest.raises(ValueError, match="boundaries"):
        pooled_cut_features(model, task, [4], progress=False)


def test_probe_separates_separable_features_and_the_seed_changes_the_split():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    x = torch.randn(90, 10, generator=gen) + 3 * nn.functional.one_hot(y, 10).float()
    yt = torch.arange(30) % 3
    xt = torch.randn(30, 10, generator=gen) + 3 * nn.functional.one_hot(yt, 10).float()
    m0, v0 = probe(x, y, xt, yt, 3, seed=0, val_per_class=5)
    assert m0.accuracy > 0.85 and v0 > 0.8
    noise = torch.randn(90, 10, generator=gen)
    m_noise, _ = probe(noise, y, torch.randn(30, 10, generator=gen), yt, 3, seed=0, val_per_class=5)
    assert m_noise.accuracy < m0.accuracy
    few, _ = probe(x, y, xt, yt, 3, seed=0, val_per_class=5, n_per_class=2)
    assert few.n == 30
    table = probe_table({"signal": (x, y, xt, yt), "noise": (noise, y, xt, yt)}, 3, seeds=(0, 1), progress=False,
                        val_per_class=5)
    assert table.settings() == [("signal",), ("noise",)]
    assert table.mean(features="signal") > table.mean(features="noise")
    with pytest.raises(ValueError, match="differ in length"):
        probe(x, y[:10], xt, yt, 3)


def test_domain_converters_keep_labels_and_change_only_the_form(tiny_data):
    from tlwidgets.data import MNIST_MEAN, MNIST_STD, ImageTensorDataset
    digits = torch.rand(6, 1, 28, 28)
    d = TensorDataset((digits - MNIST_MEAN) / MNIST_STD, torch.arange(6) % 2)
    task = Task("digits", ["a", "b"], d, d, None, (1, 28, 28), "fp")
    photos = as_photos(task, image_size=32)
    x, y = photos.train[0]
    assert x.shape == (3, 32, 32) and int(y) == 0 and photos.input_size == (3, 32, 32)
    assert photos.fingerprint != task.fingerprint
    assert as_digits(photos).train.tensors[0].shape == (6, 1, 28, 28)
    # grey -> photo -> grey at 28 px: the same picture, up to uint8 rounding
    back = as_digits(as_photos(task, image_size=28)).train.tensors[0]
    assert torch.allclose(back, d.tensors[0], atol=1.0 / 255 / MNIST_STD)
    with pytest.raises(TypeError, match="photo task"):
        as_digits(task)
    assert isinstance(photos.train, ImageTensorDataset)


def test_imagenet_class_groups_are_the_118_dogs_and_5_cats():
    groups = imagenet_class_groups(imagenet_classes())
    names = imagenet_classes()
    assert len(groups["dogs"]) == 118 and [names[i] for i in groups["cats"]] == [
        "tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    with pytest.raises(ValueError, match="1000"):
        imagenet_class_groups(names[:10])
    with pytest.raises(ValueError, match="standard order"):
        imagenet_class_groups(list(reversed(names)))


# ------------------------------------------------------------------------------------ dogs -> cats ---
def test_zero_shot_table_names_the_most_frequent_label_per_breed():
    from tlwidgets.layer_transfer import zero_shot_table
    names = imagenet_classes()
    logits = torch.zeros(6, 1000)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    for i, cls in enumerate([283, 283, 281, 151, 151, 281]):   # Persian, Persian, tabby | Chihuahua x2, tabby
        logits[i, cls] = 5.0
    rows = zero_shot_table(logits, labels, ["Persian", "Bengal"], names)
    assert rows[0]["most frequent ImageNet label"] == "Persian cat" and rows[0]["rate"] == pytest.approx(2 / 3)
    assert rows[0]["any cat class"] == 1.0 and rows[0]["named correctly"] == pytest.approx(2 / 3)
    assert rows[1]["most frequent ImageNet label"] == "Chihuahua" and rows[1]["any dog class"] == pytest.approx(2 / 3)
    assert rows[1]["ImageNet names it"] == "-" and rows[1]["named correctly"] is None
    with pytest.raises(ValueError, match="outputs"):
        zero_shot_table(logits[:, :10], labels, ["Persian", "Bengal"], names)


def test_output_feature_sets_slice_the_dog_and_cat_logits():
    from tlwidgets.layer_transfer import CutFeatures, output_feature_sets
    head = nn.Linear(8, 1000)
    feats = CutFeatures([3], {3: "features"}, {3: torch.randn(5, 8)}, {3: torch.randn(4, 8)},
                        torch.arange(5) % 2, torch.arange(4) % 2)
    sets = output_feature_sets(head, feats, 3, imagenet_classes())
    dogs_tr, ytr, dogs_te, _ = sets["118 dog-class outputs"]
    assert dogs_tr.shape == (5, 118) and dogs_te.shape == (4, 118) and torch.equal(ytr, feats.train_labels)
    with torch.no_grad():
        assert torch.allclose(dogs_tr, head(feats.train[3])[:, 151:269])
        assert torch.allclose(sets["5 cat-class outputs"][0], head(feats.train[3])[:, 281:286])
    assert sets["all 1,000 outputs"][0].shape == (5, 1000)
    assert sets["penultimate features (1,280)"][0] is feats.train[3]


def test_specialise_top_trains_a_copy_of_the_top_and_tail_features_run_it(tiny_model, tiny_data):
    from tlwidgets.layer_transfer import FeatureMaps, specialise_top, tail_features
    model = tiny_model(seed=3).eval()
    x, y = tiny_data(90, 3, seed=1).tensors
    with torch.no_grad():
        maps = FeatureMaps((model[:2](x[:60]), y[:60]), (model[:2](x[60:]), y[60:]), 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = specialise_top(model, maps, 2, 3, num_epochs=5, val_per_class=4, lr=1e-2)
    tail, metrics, val_acc = run.model, run.test, run.val_acc
    assert run.steps == len(run.history.batches) and 1 <= run.best_epoch <= 5
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())   # the source is untouched
    assert tail.group_names == ["features", "head"] and metrics.n == 30 and 0 <= val_acc <= 1
    assert not torch.equal(tail.groups["features"][2].weight, model.groups["features"][2].weight)
    tr_x, tr_y, te_x, te_y = tail_features(tail, maps)
    assert tr_x.shape == (60, 16) and te_x.shape == (30, 16) and torch.equal(te_y, y[60:])
    assert "boundary 2" in repr(maps)
