"""tlwidgets.features: cached activations give the same training as recomputing them, and are much faster."""
from __future__ import annotations

import copy
import errno
import os
import statistics
import time

import pytest
import torch

from tlwidgets import data, infra, models
from tlwidgets.data import ImageTensorDataset, Task
from tlwidgets.features import cached_features, extract_features, feature_cache_dir
from tlwidgets.freezing import freeze, max_frozen
from tlwidgets.training import fit
from tlwidgets.transfer import run_strategy


def _digit_task(n=20, test_per_class=10, seed=0, val_per_class=6):
    return data.mnist_target_task(n, test_per_class=test_per_class, root=data.REPO_DATASETS, seed=seed,
                                  val_per_class=val_per_class)


def _feature_extraction_case():
    """A real pretrained EfficientNet-Lite0 on a small pets task when the photos are there, else the digit CNN."""
    try:
        pets_root = data.find_dataset(data.PETS_SPEC)
    except data.DataMissingError:
        pets_root = None
    torch.manual_seed(0)
    if pets_root is not None:
        # quick mode's image size; few photos, so recomputing the backbone stays affordable in a unit test
        full = data.pets_task("cat_vs_dog", 8, image_size=128, root=pets_root)

        def every(k, split):   # a deterministic spread of a split, both classes
            keep = torch.arange(0, len(split), k)
            assert set(split.labels[keep].tolist()) == {0, 1}
            return ImageTensorDataset(split.images[keep], split.labels[keep], *split.normalization)

        # 18 of the 223 test photos and 26 of the 103 validation photos: recomputing runs the backbone over
        # the validation split every epoch, and the comparison needs a few photos, not all of them
        task = Task(full.name, full.classes, full.train, every(13, full.test), full.n_per_class, full.input_size,
                    full.fingerprint + "-every-13th-test-every-4th-val", val=every(4, full.val))
        model = models.efficientnet_lite0()
        label = "EfficientNet-Lite0, pets cat_vs_dog, 8/class, 128 px, 26 val photos"
        epochs, min_speedup = 2, 5.0
    else:
        task = _digit_task()
        model = models.load_digit_model()
        label = "digit CNN (0-4), MNIST 5-9, 20/class"
        epochs, min_speedup = 4, 1.3  # a 28 px backbone is cheap: caching saves less
    models.replace_head(model, task.num_classes, task.classes)
    freeze(model, max_frozen(model))
    return task, model, label, epochs, min_speedup


def test_cached_feature_training_equals_recomputing_and_is_faster(measurements):
    task, model, label, epochs, min_speedup = _feature_extraction_case()
    k = max_frozen(model)
    recomputed = copy.deepcopy(model)

    t0 = time.perf_counter()
    feats = cached_features(model, task, k, device="cpu", progress=False)
    extract_s = time.perf_counter() - t0
    h_cached = fit(model[k:], *feats.loaders(8)[:2], num_epochs=epochs, lr=1e-2, device="cpu", progress=False)
    h_recomputed = fit(recomputed, *task.loaders(8)[:2], num_epochs=epochs, lr=1e-2, device="cpu", progress=False)

    # the same training: same batches, same losses, same head (up to float rounding of the backbone pass)
    assert len(h_cached.batches) == len(h_recomputed.batches) == epochs * len(task.loaders(8)[0])
    assert [b["loss"] for b in h_cached.batches] == pytest.approx([b["loss"] for b in h_recomputed.batches],
                                                                  rel=1e-3, abs=1e-4)
    assert h_cached["val_loss"] == pytest.approx(h_recomputed["val_loss"], rel=1e-3, abs=1e-4)
    assert h_cached["val_acc"] == pytest.approx(h_recomputed["val_acc"], abs=1.01 / len(task.val))
    torch.testing.assert_close(model.head.weight, recomputed.head.weight, rtol=1e-3, atol=1e-4)
    assert h_cached["loss"][-1] < h_cached["loss"][0]  # and it learns
    assert h_cached.last["val_acc"] > 1 / task.num_classes
    # the frozen part really was frozen in both
    for name in model.group_names[:k]:
        assert all(torch.equal(a, b) for a, b in zip(model.groups[name].parameters(),
                                                     recomputed.groups[name].parameters()))

    # min over epochs: the estimate least disturbed by other processes on a shared machine
    cached_epoch, recomputed_epoch = min(h_cached["seconds"]), min(h_recomputed["seconds"])
    ratio = recomputed_epoch / cached_epoch
    measurements["cached_vs_recompute"] = {
        "case": label, "train_images": len(task.train), "test_images": len(task.test), "epochs": epochs,
        "extract_once_s": round(extract_s, 3), "cached_epoch_s": round(cached_epoch, 4),
        "recompute_epoch_s": round(recomputed_epoch, 3), "speedup_per_epoch": round(ratio, 1),
        "median_speedup_per_epoch": round(statistics.median(h_recomputed["seconds"])
                                          / statistics.median(h_cached["seconds"]), 1),
        "speedup_incl_extraction": round(epochs * recomputed_epoch / (extract_s + epochs * cached_epoch), 2)}
    assert ratio > min_speedup, measurements["cached_vs_recompute"]


def test_features_are_cached_on_disk_and_reused(isolated_cache):
    task = _digit_task(5, 4)
    model = models.load_digit_model()
    first = cached_features(model, task, progress=False)
    files = list(feature_cache_dir().glob("*.pt"))
    assert feature_cache_dir() == isolated_cache / "features"
    assert [f.name for f in files] == [f"digit_cnn-3-{first.key}.pt"] and not first.from_disk
    second = cached_features(model, task, progress=False)
    assert second.from_disk and second.key == first.key and second.n_frozen == 3
    for a, b in zip(first.train.tensors + first.val.tensors + first.test.tensors,
                    second.train.tensors + second.val.tensors + second.test.tensors):
        assert torch.equal(a, b)
    assert first.train.tensors[0].shape == (25, 128) and len(second.test) == 20 and len(second.val) == 30
    assert repr(second) == "FeatureSet(group boundary 3, 25 train + 30 val + 20 test, shape (128,), disk cache)"
    # training the head does not invalidate the cache: the key covers the frozen groups only
    with torch.no_grad():
        model.head.weight.mul_(2)
    assert cached_features(model, task, progress=False).from_disk
    # changing a frozen group, the boundary or the task does
    assert not cached_features(model, task, 2, progress=False).from_disk
    assert not cached_features(model, _digit_task(5, 4, seed=1), progress=False).from_disk
    with torch.no_grad():
        model.groups["conv1"][0].bias.add_(0.01)
    changed = cached_features(model, task, progress=False)
    assert not changed.from_disk and changed.key != first.key
    assert len(list(feature_cache_dir().glob("*.pt"))) == 4


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong content"])
def test_damaged_cache_file_is_recomputed_not_trusted(damage):
    task = _digit_task(4, 3)
    model = models.load_digit_model()
    good = cached_features(model, task, progress=False)
    path = feature_cache_dir() / f"digit_cnn-3-{good.key}.pt"
    blob = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    elif damage == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"something": "else"}, path)
    again = cached_features(model, task, progress=False)
    assert not again.from_disk
    assert torch.equal(again.train.tensors[0], good.train.tensors[0])
    assert cached_features(model, task, progress=False).from_disk  # rewritten, whole


def test_cache_false_writes_nothing():
    model = models.load_digit_model()
    feats = cached_features(model, _digit_task(3, 2), cache=False, progress=False)
    assert not feats.from_disk and not feature_cache_dir().exists()


def test_failed_cache_write_leaves_no_partial_file(monkeypatch):
    def failing_write(fd, data):  # the disk fills up half-way through writing
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(infra, "_write_fully", failing_write)
    with pytest.raises(OSError, match="disk full"):
        cached_features(models.load_digit_model(), _digit_task(3, 2), progress=False)
    assert list(feature_cache_dir().iterdir()) == []


def test_extract_features_checks_the_boundary_and_restores_the_model():
    model = models.load_digit_model().train()
    task = _digit_task(3, 2)
    with pytest.raises(ValueError, match=r"n_frozen must be in 1\.\.3 for digit_cnn, got 0"):
        extract_features(model, task.train, 0, progress=False)
    with pytest.raises(ValueError, match=r"n_frozen must be in 1\.\.3 for digit_cnn, got 4"):
        extract_features(model, task.train, 4, progress=False)
    out = extract_features(model, task.loaders(4, shuffle=False)[0], 2, device="cpu", progress=False)
    assert out.tensors[0].shape == (15, 32, 7, 7) and torch.equal(out.tensors[1], task.train.tensors[1])
    assert model.training and all(p.is_contiguous() for p in model.parameters())
    with torch.no_grad():
        torch.testing.assert_close(out.tensors[0], model.eval()[:2](task.train.tensors[0]))


@pytest.mark.parametrize("n_frozen", [1])
def test_fine_tuning_on_boundary_activations_trains_the_same_parameters(n_frozen):
    task = _digit_task(8, 5)
    kw = dict(n_frozen=n_frozen, num_epochs=2, batch_size=8, device="cpu", progress=False, seed=3)
    cached = run_strategy("fine_tune", task, **kw)
    plain = run_strategy("fine_tune", task, cache=False, **kw)
    assert cached.used_cache and not plain.used_cache
    assert cached.n_frozen == plain.n_frozen == n_frozen
    start = models.load_digit_model()
    for i, name in enumerate(cached.model.group_names[:-1]):
        same_as_start = all(torch.equal(a, b) for a, b in zip(cached.model.groups[name].state_dict().values(),
                                                              start.groups[name].state_dict().values()))
        assert same_as_start == (i < n_frozen), name  # frozen groups untouched, the rest trained
    # Same run up to float rounding (the cached pass uses channels_last). A conv bias right before a
    # BatchNorm has a zero gradient, and Adam turns rounding noise there into steps of size ~lr, so
    # weights are compared to lr * steps, and the function the model computes much more tightly.
    steps = len(cached.history.batches)
    for (name, a), b in zip(cached.model.state_dict().items(), plain.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-3 * steps, msg=name, check_dtype=True)
    with torch.no_grad():
        x = task.test.tensors[0]
        torch.testing.assert_close(cached.model(x), plain.model(x), rtol=1e-3, atol=1e-2)
    assert [b["loss"] for b in cached.history.batches] == pytest.approx(
        [b["loss"] for b in plain.history.batches], rel=1e-4)
    assert cached.test_acc == plain.test_acc


# ------------------------------------------------------------------- hand-built tasks (issue 25) ---
def _hand_built(tiny_data, seed: int, name: str = "hand-built") -> Task:
    """A ``Task(...)`` as a student builds one: no fingerprint."""
    return Task(name, ["c0", "c1", "c2"], tiny_data(24, seed=seed), tiny_data(12, seed=seed + 100),
                input_size=(1, 8, 8))


def test_two_hand_built_tasks_never_share_a_feature_cache_entry(tiny_model, tiny_data):
    """The cache key comes from the content when a task has no fingerprint, never from an empty string."""
    model = tiny_model()
    a, b = _hand_built(tiny_data, 1), _hand_built(tiny_data, 2)   # same name, classes and sizes; other images
    assert a.fingerprint == b.fingerprint == "" and a.cache_key != b.cache_key and a.cache_key
    fa = cached_features(model, a, progress=False)
    fb = cached_features(model, b, progress=False)
    assert not fb.from_disk and fa.key != fb.key
    assert torch.equal(fb.train.tensors[0], extract_features(model, b.train, progress=False).tensors[0])
    assert not torch.equal(fa.train.tensors[0], fb.train.tensors[0])
    # the same content, built again by hand (another session), is the same entry
    again = cached_features(model, _hand_built(tiny_data, 1, name="renamed"), progress=False)
    assert again.from_disk and again.key == fa.key
    # a changed label is a changed task
    c = _hand_built(tiny_data, 1)
    c.train.tensors[1][0] = (c.train.tensors[1][0] + 1) % 3
    assert c.cache_key != a.cache_key and not cached_features(model, c, progress=False).from_disk


def test_the_content_key_reads_every_kind_of_dataset(tiny_data):
    from torch.utils.data import Subset

    base = tiny_data(12, seed=3)
    photos = ImageTensorDataset(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.arange(4) % 2, (0.5,) * 3, (0.5,) * 3)

    class Listed(torch.utils.data.Dataset):   # a map-style dataset with no tensors to read at once
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.full((1, 2, 2), float(i)), i % 2

    digests = {data.dataset_digest(d) for d in (base, Subset(base, [0, 1]), Subset(base, [1, 0]), photos, Listed())}
    assert len(digests) == 5 and all(len(d) == 16 for d in digests)
    assert data.dataset_digest(tiny_data(12, seed=3)) == data.dataset_digest(base)   # content, not identity
    other = ImageTensorDataset(photos.images, photos.labels, (0.0,) * 3, (1.0,) * 3)
    assert data.dataset_digest(other) != data.dataset_digest(photos)   # another normalisation: other inputs


def test_pooled_cut_features_use_the_one_cache_with_its_checks(tiny_model, tiny_data, monkeypatch, isolated_cache):
    """layer_transfer's cut features go through features.activation_cache: content keys, writability check."""
    from tlwidgets.layer_transfer import pooled_cut_features

    model = tiny_model()
    a, b = _hand_built(tiny_data, 1), _hand_built(tiny_data, 2)
    ca = pooled_cut_features(model, a, [1, 2], progress=False)
    cb = pooled_cut_features(model, b, [1, 2], progress=False)
    assert not cb.from_disk and not torch.equal(ca.train[2], cb.train[2])
    assert pooled_cut_features(model, a, [1, 2], progress=False).from_disk
    assert sorted(p.name.split("-")[1] for p in feature_cache_dir().glob("*.pt")) == ["pooled", "pooled"]
    blocker = isolated_cache / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv(infra.CACHE_ENV, str(blocker))
    with pytest.raises(infra.StorageError, match=r"cache folder .*not-a-folder.* is not writable .*cache=False"):
        pooled_cut_features(model, a, [1, 2], progress=False)
    assert not pooled_cut_features(model, a, [1, 2], cache=False, progress=False).from_disk
