"""Reliability, round 2 (issue 12): each fault class fixed at its root, every member we could think of tried.

Test names carry the fault class: ``test_cNN_...`` where NN is the class number in issue 12
(01 caches keyed by content ... 11 command lines). ``scripts/reliability_table.py`` runs this
file, counts the cases per class and their outcomes, and writes ``docs/reliability.md``.
Everything here uses tiny photos, tiny models and the bundled MNIST subset, so the file runs
in seconds.
"""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import tlwidgets as tl
from tlwidgets import data, features, images, infra, inputs, models, pretrained, results, training
from tlwidgets.infra import ChecksumError, StorageError
from tlwidgets.validate import check_choice, check_float, check_int, check_path


# ----------------------------------------------------------------------------------- helpers ---
def _png(path: Path, rgb, size=(24, 20), noise_seed: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size[1], size[0], 3), np.uint8) + np.array(rgb, np.uint8)
    if noise_seed is not None:
        rng = np.random.default_rng(noise_seed)
        pixels = np.clip(pixels.astype(int) + rng.integers(-20, 20, pixels.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _photo_tree(root: Path, per_class: int = 4) -> Path:
    for c, rgb in (("cats", (200, 40, 40)), ("dogs", (40, 40, 200))):
        for i in range(per_class):
            _png(root / c / f"{c}_{i}.png", rgb, noise_seed=hash((c, i)) % 1000)
    return root


def _rgb_model(num_classes: int = 2, size: int = 32) -> models.GroupedModel:
    torch.manual_seed(0)
    groups = [("stem", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())),
              ("features", nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())),
              ("head", nn.Linear(16, num_classes))]
    return models.GroupedModel(groups, name="tiny_rgb", classes=[f"c{i}" for i in range(num_classes)],
                               mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), image_size=size)


def _grey_model(num_classes: int = 3) -> models.GroupedModel:
    torch.manual_seed(0)
    groups = [("stem", nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())),
              ("features", nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())),
              ("head", nn.Linear(16, num_classes))]
    return models.GroupedModel(groups, name="tiny_grey", classes=[f"c{i}" for i in range(num_classes)],
                               mean=(0.0,), std=(1.0,), image_size=8)


def _loader(x, y, batch_size=4):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def _disk_fills_up(fd, blob):
    """What a full disk does to a write: part of the bytes land, then ENOSPC."""
    os.write(fd, blob[: len(blob) // 2])
    raise OSError(errno.ENOSPC, "No space left on device")


def _edit_in_place_same_size(path: Path) -> None:
    """Change pixels but keep the file's size and mtime: only the content tells."""
    st = path.stat()
    im = np.asarray(Image.open(path).convert("RGB")).copy()
    im[:, :] = 255 - im[:, :]
    buf = io.BytesIO()
    Image.fromarray(im).save(buf, format="PNG")
    blob = buf.getvalue()
    path.write_bytes(blob)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


# ================================================================ 01 caches keyed by content ===
def test_c01_digest_changes_with_content_even_when_size_and_mtime_do_not(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"x" * 1000)
    first = infra.file_digest(p)
    st = p.stat()
    p.write_bytes(b"y" * 1000)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    assert infra.file_digest(p) != first


def test_c01_digest_memo_is_reused_only_for_settled_files(tmp_path, monkeypatch):
    p = tmp_path / "old.bin"
    p.write_bytes(b"settled")
    old = time.time() - 60
    os.utime(p, (old, old))
    calls = []
    real = infra.sha256_file
    monkeypatch.setattr(infra, "sha256_file", lambda path, *a: calls.append(path) or real(path, *a))
    infra.file_digest(p)
    infra.file_digest(p)
    assert len(calls) == 1  # settled file: hashed once
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"just written")
    infra.file_digest(fresh)
    infra.file_digest(fresh)
    assert len(calls) == 3  # modified within the clock's resolution: hashed again (git's "racy" rule)


def test_c01_edited_photo_gives_new_pixels_in_the_same_kernel(tmp_path):
    root = _photo_tree(tmp_path / "photos")
    t1 = tl.folder_task(root, image_size=32, seed=0)
    target = root / "cats" / "cats_0.png"
    _edit_in_place_same_size(target)
    t2 = tl.folder_task(root, image_size=32, seed=0)
    assert t1.fingerprint != t2.fingerprint
    all1 = torch.cat([t1.train.images, t1.test.images])
    all2 = torch.cat([t2.train.images, t2.test.images])
    assert not torch.equal(all1, all2)


def test_c01_edited_photo_gives_new_features_also_after_a_restart(tmp_path):
    root = _photo_tree(tmp_path / "photos")
    model = _rgb_model()
    f1 = features.cached_features(model, tl.folder_task(root, image_size=32), progress=False)
    again = features.cached_features(model, tl.folder_task(root, image_size=32), progress=False)
    assert again.from_disk and torch.equal(again.train.tensors[0], f1.train.tensors[0])
    _edit_in_place_same_size(root / "dogs" / "dogs_1.png")
    f2 = features.cached_features(model, tl.folder_task(root, image_size=32), progress=False)  # same kernel
    assert not f2.from_disk and f2.key != f1.key
    assert not torch.equal(torch.cat([f1.train.tensors[0], f1.test.tensors[0]]),
                           torch.cat([f2.train.tensors[0], f2.test.tensors[0]]))
    infra.clear_digest_memo()  # a restart: nothing remembered in memory, the disk cache is all there is
    images.clear_decode_cache()
    f3 = features.cached_features(model, tl.folder_task(root, image_size=32), progress=False)
    assert f3.from_disk and f3.key == f2.key


def test_c01_mnist_files_replaced_under_a_root_without_checksums(tmp_path):
    root = tmp_path / "mnist-no-sums"
    shutil.copytree(data.REPO_DATASETS / "MNIST", root / "MNIST")  # no SHA256SUMS beside it
    t1 = data.mnist_task([0, 1], 3, test_per_class=2, root=root)
    path = root / "MNIST/raw/train-images-idx3-ubyte"
    blob = bytearray(path.read_bytes())
    st = path.stat()
    blob[16:16 + 784 * 200] = bytes(255 - b for b in blob[16:16 + 784 * 200])  # invert the first 200 digits
    path.write_bytes(bytes(blob))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    t2 = data.mnist_task([0, 1], 3, test_per_class=2, root=root)
    assert t1.fingerprint != t2.fingerprint
    assert not torch.equal(t1.train.tensors[0], t2.train.tensors[0])


def test_c01_same_bytes_under_another_name_hit_the_decode_cache(tmp_path):
    a = _png(tmp_path / "a.png", (10, 200, 10))
    b = tmp_path / "copy.png"
    shutil.copy(a, b)
    cache = images.DecodeCache()
    x = cache.get(a, 32)
    y = cache.get(b, 32)
    assert torch.equal(x, y) and cache.hits == 1 and cache.misses == 1


def test_c01_cache_key_cost_is_measured_and_small(pets_root, measurements):
    files = sorted((pets_root / "oxford-iiit-pet" / "images").glob("*.jpg"))
    total = sum(f.stat().st_size for f in files)
    infra.clear_digest_memo()
    t0 = time.perf_counter()
    cold = infra.files_digest(files)
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = infra.files_digest(files)
    warm_s = time.perf_counter() - t0
    assert cold == warm
    measurements["cache_key_cost"] = {"files": len(files), "mb": round(total / 2**20, 1),
                                      "cold_sha256_s": round(cold_s, 3), "warm_stat_only_s": round(warm_s, 4),
                                      "cold_mb_per_s": round(total / 2**20 / cold_s)}
    assert warm_s < cold_s


def test_c01_pets_fingerprint_follows_photo_content(pets_root, tmp_path):
    root = tmp_path / "pets"
    (root / "oxford-iiit-pet" / "images").mkdir(parents=True)
    shutil.copytree(pets_root / "oxford-iiit-pet" / "annotations", root / "oxford-iiit-pet" / "annotations")
    names = {}
    for split in ("trainval", "test"):
        lines = (root / "oxford-iiit-pet/annotations" / f"{split}.txt").read_text().splitlines()
        cats = [ln for ln in lines if ln.split()[2] == "1"][:6]
        dogs = [ln for ln in lines if ln.split()[2] == "2"][:6]
        (root / "oxford-iiit-pet/annotations" / f"{split}.txt").write_text("\n".join(cats + dogs) + "\n")
        names[split] = [ln.split()[0] for ln in cats + dogs]
    for n in names["trainval"] + names["test"]:
        shutil.copy(pets_root / "oxford-iiit-pet/images" / f"{n}.jpg", root / "oxford-iiit-pet/images")
    t1 = _quiet(data.pets_task, "cat_vs_dog", 2, image_size=32, root=root)
    photo = root / "oxford-iiit-pet/images" / f"{names['test'][0]}.jpg"
    Image.open(photo).convert("RGB").rotate(90).save(photo, format="JPEG")
    t2 = _quiet(data.pets_task, "cat_vs_dog", 2, image_size=32, root=root)
    assert t1.fingerprint != t2.fingerprint and not torch.equal(t1.test.images, t2.test.images)


# ====================================================================== 02 photos decoded right ===
def _decode_mean(source) -> list[float]:
    return np.asarray(images.decode_image(source)).reshape(-1, 3).mean(0).round().tolist()


def test_c02_16_bit_png_is_scaled_not_white(tmp_path):
    p = tmp_path / "grey16.png"
    Image.fromarray(np.full((10, 10), 32768, np.uint16)).save(p)
    assert Image.open(p).mode.startswith("I")
    assert _decode_mean(p) == [128.0, 128.0, 128.0]


def test_c02_32_bit_integer_image_with_16_bit_values(tmp_path):
    im = Image.fromarray(np.full((6, 6), 65535, np.int32), mode="I")
    assert _decode_mean(im) == [255.0, 255.0, 255.0]
    im = Image.fromarray(np.full((6, 6), 100, np.int32), mode="I")
    assert _decode_mean(im) == [100.0, 100.0, 100.0]


def test_c02_float_image_in_0_1(tmp_path):
    im = Image.fromarray(np.full((6, 6), 0.5, np.float32), mode="F")
    assert _decode_mean(im) == [128.0, 128.0, 128.0]


def test_c02_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((10, 20, 3), np.uint8)  # wide: 20 x 10, left half red
    pixels[:, :10] = (255, 0, 0)
    im = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": a phone portrait stored sideways
    p = tmp_path / "portrait.jpg"
    im.save(p, exif=exif, quality=95)
    upright = images.decode_image(p)
    assert upright.size == (10, 20)  # tall, as a viewer shows it
    arr = np.asarray(upright)
    assert arr[:5, :, 0].mean() > 200 and arr[-5:, :, 0].mean() < 60  # the red half is now on top


def test_c02_exif_orientation_reaches_the_task_tensors(tmp_path):
    root = _photo_tree(tmp_path / "photos")
    pixels = np.zeros((16, 32, 3), np.uint8)
    pixels[:, :16] = (255, 255, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(root / "cats" / "sideways.jpg", exif=exif, quality=95)
    ref = images.load_image(root / "cats" / "sideways.jpg", 32)
    task = tl.folder_task(root, image_size=32)
    stored = torch.cat([task.train.images, task.test.images])
    assert any(torch.equal(s, ref) for s in stored)
    assert ref[:, :12].float().mean() > 200 and ref[:, -12:].float().mean() < 60  # white on top, not left


def test_c02_palette_with_transparency_on_white(tmp_path):
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.info["transparency"] = 0  # index 0 (black) is transparent
    p = tmp_path / "pal.png"
    im.save(p, transparency=0)
    assert _decode_mean(p) == [255.0, 255.0, 255.0]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_c02_transparent_background_is_white_not_black(tmp_path, mode):
    size = (8, 8)
    im = Image.new(mode, size, (0, 0, 0, 0) if mode == "RGBA" else (0, 0))
    p = tmp_path / f"clear-{mode}.png"
    im.save(p)
    assert _decode_mean(p) == [255.0, 255.0, 255.0]


def test_c02_cmyk_jpeg_to_rgb(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(p, quality=100)  # pure cyan
    r, g, b = _decode_mean(p)
    assert r < 30 and g > 220 and b > 220


@pytest.mark.parametrize("mode, value, expected", [("L", 77, 77), ("1", 1, 255)])
def test_c02_greyscale_and_bilevel_to_rgb(tmp_path, mode, value, expected):
    p = tmp_path / f"{mode}.png"
    Image.new(mode, (8, 8), value).save(p)
    assert _decode_mean(p) == [expected] * 3


@pytest.mark.parametrize("content, reason", [
    (b"\xff\xd8\xff\xe0 truncated jpeg", "cannot be decoded as an image"),
    (b"hello, I am text", "cannot be decoded as an image"),
    (b"", "cannot be decoded as an image"),
])
def test_c02_unreadable_file_error_names_the_file(tmp_path, content, reason):
    p = tmp_path / "bad photo.jpg"
    p.write_bytes(content)
    with pytest.raises(images.ImageDecodeError, match=rf"^{p}: {reason}"):
        images.decode_image(p)
    with pytest.raises(ValueError, match=str(p)):
        pretrained.image_to_tensor(p, size=32, mean=(0.5,) * 3, std=(0.5,) * 3)


def test_c02_missing_file_is_named(tmp_path):
    with pytest.raises(images.ImageDecodeError, match=rf"{tmp_path / 'nope.png'}: no such image file"):
        images.decode_image(tmp_path / "nope.png")


@pytest.mark.parametrize("arr, message", [
    (np.full((8, 8, 3), 200.0), r"a float image array must hold values in \[0, 1\], got 200\.\.200"),
    (np.zeros((3, 8, 8), np.uint8), r"channels first\? use arr\.transpose\(1, 2, 0\)"),
    (np.full((8, 8), np.nan, np.float32), "NaN"),
    (np.zeros((8, 8), np.int64), "image arrays must be uint8"),
])
def test_c02_bad_arrays_are_refused_with_the_fix(arr, message):
    with pytest.raises(images.ImageDecodeError, match=message):
        images.decode_image(arr)


def test_c02_one_decoder_for_tasks_image_to_tensor_and_predictions(tmp_path):
    root = _photo_tree(tmp_path / "photos", 3)
    p = root / "cats" / "deep.png"
    Image.fromarray(np.full((20, 24), 20000, np.uint16)).save(p)  # a 16-bit greyscale photo
    ref = images.load_image(p, 32)
    assert 70 < ref.float().mean() < 90  # 20000/257 = 78, not 255
    task = tl.folder_task(root, image_size=32)
    assert any(torch.equal(s, ref) for s in torch.cat([task.train.images, task.test.images]))
    x = pretrained.image_to_tensor(p, _rgb_model())
    assert torch.allclose(x, (ref.float() / 255 - 0.5) / 0.5)
    seen = []
    model = _rgb_model()
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    tl.predict(model, str(p), k=1)
    assert torch.allclose(seen[0][0], x)


# ============================================================== 03 folder walking that leaks ===
def _all_images(task):
    return torch.cat([task.train.images, task.test.images])


def _n_photos(task) -> int:
    """Photos in all three splits (train, validation, test)."""
    return len(task.train) + len(task.val) + len(task.test)


def _split_overlap(task) -> int:
    """Photos found in more than one split (train / val / test): must be 0."""
    parts = [task.train.images, task.val.images, task.test.images]
    return sum(any(torch.equal(a, b) for other in parts[i + 1:] for b in other)
               for i, part in enumerate(parts) for a in part)


def test_c03_symlink_loop_adds_nothing(tmp_path):
    root = _photo_tree(tmp_path / "photos", 6)
    os.symlink(root / "cats", root / "cats" / "loop")  # cats/loop -> cats (a loop)
    os.symlink(root, root / "dogs" / "up")              # back to the top of the tree
    with pytest.warns(UserWarning, match=r"did not follow 2 symbolic link\(s\)"):
        task = tl.folder_task(root, image_size=32)
    assert _n_photos(task) == 12 and _split_overlap(task) == 0


def test_c03_link_out_of_the_tree_is_not_followed(tmp_path):
    root = _photo_tree(tmp_path / "photos", 3)
    outside = _photo_tree(tmp_path / "elsewhere", 5)
    os.symlink(outside / "cats", root / "cats" / "more")
    os.symlink(outside / "dogs", root / "birds")  # a whole class folder that is a link
    with pytest.warns(UserWarning, match="symbolic link"):
        task = tl.folder_task(root, image_size=32)
    assert task.classes == ["cats", "dogs"] and _n_photos(task) == 6


def test_c03_linked_file_is_not_followed(tmp_path):
    root = _photo_tree(tmp_path / "photos", 3)
    os.symlink(root / "dogs" / "dogs_0.png", root / "cats" / "really_a_dog.png")
    with pytest.warns(UserWarning, match=r"did not follow 1 symbolic link"):
        task = tl.folder_task(root, image_size=32)
    assert _n_photos(task) == 6


@pytest.mark.parametrize("hidden", [".ipynb_checkpoints", ".git", ".thumbnails"])
def test_c03_hidden_folders_are_skipped(tmp_path, hidden):
    root = _photo_tree(tmp_path / "photos", 3)
    for c in ("cats", "dogs"):
        (root / c / hidden).mkdir()
        for p in list((root / c).glob("*.png")):
            _png(root / c / hidden / f"{p.stem}-checkpoint.png", (0, 255, 0))
    (root / hidden).mkdir(exist_ok=True)
    _png(root / hidden / "x" / "a.png", (1, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task = tl.folder_task(root, image_size=32)
    assert task.classes == ["cats", "dogs"] and _n_photos(task) == 6


def test_c03_hidden_files_are_skipped(tmp_path):
    root = _photo_tree(tmp_path / "photos", 3)
    (root / "cats" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "cats" / "._cats_0.png").write_bytes(b"\0\5\26\7 AppleDouble")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even counted as unreadable
        task = tl.folder_task(root, image_size=32)
    assert _n_photos(task) == 6


def test_c03_duplicate_file_counts_once_and_is_never_in_both_splits(tmp_path):
    root = _photo_tree(tmp_path / "photos", 3)
    for i in range(5):
        shutil.copy(root / "cats" / "cats_0.png", root / "cats" / f"copy_{i}.png")
    with pytest.warns(UserWarning, match=r"ignored 5 duplicate photo\(s\)"):
        task = tl.folder_task(root, image_size=32)
    assert _n_photos(task) == 6 and _split_overlap(task) == 0


def test_c03_same_photo_in_two_classes_is_kept_once(tmp_path):
    root = _photo_tree(tmp_path / "photos", 3)
    shutil.copy(root / "cats" / "cats_1.png", root / "dogs" / "confusing.png")
    with pytest.warns(UserWarning, match=r"ignored 1 photo\(s\) filed under two classes.*kept in 'cats' only"):
        task = tl.folder_task(root, image_size=32)
    assert _n_photos(task) == 6 and _split_overlap(task) == 0


def test_c03_nested_folders_inside_a_class_are_included(tmp_path):
    root = _photo_tree(tmp_path / "photos", 3)
    _png(root / "cats" / "2024" / "summer" / "c.png", (220, 30, 30), noise_seed=7)
    task = tl.folder_task(root, image_size=32)
    assert _n_photos(task) == 7


def test_c03_issue_scenario_loop_multiplies_nothing_into_test(tmp_path):
    root = _photo_tree(tmp_path / "photos", 3)  # 6 files
    for c in ("cats", "dogs"):
        for k in range(3):
            os.symlink(root, root / c / f"loop{k}")
    with pytest.warns(UserWarning, match="symbolic link"):
        task = tl.folder_task(root, image_size=32)
    assert _n_photos(task) == 6 and _split_overlap(task) == 0


# ======================================================================== 04 sizes that make no sense ===
@pytest.mark.parametrize("n", [0, -1, -20])
def test_c04_folder_task_refuses_non_positive_n_per_class(tmp_path, n):
    root = _photo_tree(tmp_path / "photos", 3)
    with pytest.raises(ValueError, match=rf"n_per_class must be a positive number of labelled images, got {n}"):
        tl.folder_task(root, n, image_size=32)


@pytest.mark.parametrize("call", [
    lambda n: tl.mnist_target_task(n), lambda n: tl.pets_task("cat_breeds", n), lambda n: tl.mnist_source_task(n)])
@pytest.mark.parametrize("n", [0, -3])
def test_c04_every_task_builder_refuses_the_same_sizes(call, n):
    with pytest.raises(ValueError, match=rf"n_per_class must be a positive number of labelled images, got {n}"):
        call(n)


@pytest.mark.parametrize("n, error", [(2.5, TypeError), ("5", TypeError), (True, TypeError)])
def test_c04_non_integer_sizes_are_refused_by_name(tmp_path, n, error):
    root = _photo_tree(tmp_path / "photos", 3)
    with pytest.raises(error, match=r"n_per_class must be an integer"):
        tl.folder_task(root, n, image_size=32)
    with pytest.raises(error, match=r"n_per_class must be an integer"):
        tl.mnist_target_task(n)


def test_c04_numpy_sizes_are_accepted(tmp_path):
    root = _photo_tree(tmp_path / "photos", 4)
    task = tl.folder_task(root, np.int64(2), image_size=np.int32(32), seed=np.int64(1))
    assert len(task.train) == 4 and task.input_size == (3, 32, 32)
    assert len(tl.mnist_target_task(np.int64(3), test_per_class=np.int16(2)).train) == 15


@pytest.mark.parametrize("kw, message", [
    ({"test_per_class": 0}, r"test_per_class must be a positive number of labelled images, got 0"),
    ({"digits": [5, 5]}, r"digits must be distinct values in 0\.\.9, got \[5, 5\]"),
    ({"digits": [5.5, 6]}, r"digits must be distinct values in 0\.\.9, got \[5\.5, 6\]"),
    ({"digits": "56"}, r"digits must be distinct values in 0\.\.9 \(e\.g\. range\(5, 10\)\), got '56'"),
    ({"digits": []}, r"digits must be distinct values in 0\.\.9, got \[\]"),
])
def test_c04_mnist_sizes_and_digits(kw, message):
    with pytest.raises(ValueError, match=message):
        tl.mnist_task(**{"digits": [5, 6], "n_per_class": 2, **kw})


@pytest.mark.parametrize("size, message", [
    (16, "image_size must be at least 32 pixels, got 16"), (5000, "image_size must be at most 1024 pixels, got 5000"),
    (64.0, r"image_size must be an integer.*write 64 without the decimal point")])
def test_c04_image_sizes(tmp_path, size, message):
    root = _photo_tree(tmp_path / "photos", 3)
    with pytest.raises(ValueError, match=message):
        tl.folder_task(root, image_size=size)
    with pytest.raises(ValueError, match=message):
        tl.pets_task("cat_vs_dog", image_size=size)


@pytest.mark.parametrize("fraction", [0, 1, float("nan"), -0.2])
def test_c04_test_fraction(tmp_path, fraction):
    root = _photo_tree(tmp_path / "photos", 3)
    with pytest.raises(ValueError, match="test_fraction must be"):
        tl.folder_task(root, test_fraction=fraction)


# ====================================================== 05 checkpoints the package can read back ===
def test_c05_numpy_metadata_reads_back_as_plain_python(tmp_path):
    model = _grey_model()
    path = tmp_path / "ckpt.pt"
    meta = {"epoch": np.int64(3), "acc": np.float32(0.75), "best": np.bool_(True), "curve": np.arange(3),
            "where": tmp_path, "pair": (np.int32(1), 2), "tags": {"b", "a"},
            "nested": {"seeds": [np.int64(0), np.int64(1)], "lr": np.float64(1e-3)}, "t": torch.ones(2)}
    tl.save_checkpoint(path, model, **meta)
    ckpt = tl.load_checkpoint(path)
    assert ckpt["epoch"] == 3 and type(ckpt["epoch"]) is int
    assert type(ckpt["acc"]) is float and ckpt["best"] is True and ckpt["curve"] == [0, 1, 2]
    assert ckpt["where"] == str(tmp_path) and ckpt["pair"] == (1, 2) and ckpt["tags"] == ["a", "b"]
    assert ckpt["nested"] == {"seeds": [0, 1], "lr": 1e-3} and torch.equal(ckpt["t"], torch.ones(2))


def test_c05_unstorable_metadata_is_refused_before_writing(tmp_path):
    path = tmp_path / "ckpt.pt"
    with pytest.raises(TypeError, match=r"save_checkpoint\(hook=\.\.\.\) is a Generator"):
        tl.save_checkpoint(path, _grey_model(), hook=np.random.default_rng(0))
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_c05_training_checkpoint_resumes_through_the_safe_loader(tmp_path, tiny_data):
    ckpt = tmp_path / "run.pt"
    loader = DataLoader(tiny_data(24), batch_size=8)
    tl.fit(_grey_model(), loader, num_epochs=1, progress=False, device="cpu", checkpoint=ckpt)
    h = tl.fit(_grey_model(), loader, num_epochs=2, progress=False, device="cpu",
               checkpoint=training.Checkpoint(ckpt, resume=True))
    assert len(h) == 2


# =============================================================== 06 every write is atomic ===
def test_c06_results_survive_a_full_disk_and_later_records_work(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    tl.record("02_lesson", acc=0.9)
    before = (tmp_path / "02_lesson.json").read_bytes()
    with monkeypatch.context() as m:
        m.setattr(infra, "_write_fully", _disk_fills_up)
        with pytest.raises(StorageError, match=r"cannot write .*02_lesson\.json: disk full \(.* needed, .* free"):
            tl.record("02_lesson", loss=0.1)
    assert (tmp_path / "02_lesson.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["02_lesson.json"]  # no temporary file left
    tl.record("02_lesson", loss=0.2)
    assert json.loads((tmp_path / "02_lesson.json").read_text()) == {"acc": 0.9, "loss": 0.2}


def test_c06_damaged_results_file_is_kept_aside_and_recording_continues(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    (tmp_path / "03_x.json").write_text('{"acc": 0.9, "lo')
    with pytest.warns(UserWarning, match=r"03_x\.json is not valid JSON .*moved it to .*03_x\.json\.corrupt"):
        tl.record("03_x", acc=0.8)
    assert json.loads((tmp_path / "03_x.json").read_text()) == {"acc": 0.8}
    assert (tmp_path / "03_x.json.corrupt").read_text() == '{"acc": 0.9, "lo'


def test_c06_full_disk_is_refused_before_writing(tmp_path, monkeypatch):
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    monkeypatch.setattr(infra.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100, 99, 1))
    with pytest.raises(StorageError, match=rf"cannot write {target}: disk full \(2\.0 MB needed, 1 bytes free"):
        infra.atomic_write(target, b"x" * 2 * 2**20)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["big.bin"]


def test_c06_dashboard_log_write_is_atomic(tmp_path, monkeypatch):
    from tlwidgets.widgets import dashboard

    class Fake:
        kind, runs = "mnist", [{"row": {"a": 1}, "config": {}, "history": {"epochs": []}}]

    path = tmp_path / "log.json"
    dashboard.Dashboard.save_log(Fake(), path)
    good = path.read_bytes()
    monkeypatch.setattr(infra, "_write_fully", _disk_fills_up)
    with pytest.raises(StorageError, match="disk full"):
        dashboard.Dashboard.save_log(Fake(), path)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["log.json"]


def test_c06_feature_cache_write_failure_leaves_nothing(tmp_path, monkeypatch, isolated_cache):
    root = _photo_tree(tmp_path / "photos", 3)
    monkeypatch.setattr(infra, "_write_fully", _disk_fills_up)
    with pytest.raises(StorageError, match=r"cannot write .*features.*\.pt: disk full"):
        features.cached_features(_rgb_model(), tl.folder_task(root, image_size=32), progress=False)
    assert list((isolated_cache / "features").iterdir()) == []


ALLOWED_DIRECT_WRITES = {
    # file: why it may write without atomic_write
    "infra.py": "the atomic write itself, and its writability probe (an empty file, removed at once)",
    "course.py": "the writability probe of --out, and the kernel's stderr log stream",
    "bench.py": "measuring tool, moving out of the package (issue 11)",
}


def test_c06_no_module_writes_files_except_through_atomic_write():
    import re

    pkg = Path(tl.__file__).parent
    pattern = re.compile(r"\.write_text\(|\.write_bytes\(|open\([^)]*['\"][wa]b?['\"]|torch\.save\(|"
                         r"json\.dump\(|np\.save\(")
    offenders = []
    for path in sorted(pkg.rglob("*.py")):
        if path.name in ALLOWED_DIRECT_WRITES:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if pattern.search(code) and "BytesIO" not in code and "buf" not in code:
                offenders.append(f"{path.relative_to(pkg)}:{number}: {line.strip()}")
    assert offenders == []


# ====================================================================== 07 garbage in ===
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_c07_evaluate_refuses_non_finite_inputs(tiny_data, bad):
    x, y = tiny_data(8).tensors
    x = x.clone()
    x[3, 0, 2, 2] = bad
    with pytest.raises(ValueError, match=r"evaluate\(\): batch 1: 1 of 512 input values are NaN or infinite"):
        tl.evaluate(_grey_model(), _loader(x, y, 8))


def test_c07_predict_refuses_nan_tensor():
    x = torch.zeros(2, 1, 8, 8)
    x[1] = float("nan")
    with pytest.raises(ValueError, match=r"predict\(\): 64 of 128 input values are NaN"):
        tl.predict(_grey_model(), x)


def test_c07_finite_inputs_whose_sum_overflows_still_pass():
    """check_inputs tests one sum first; finite values large enough to overflow that sum (3e38 * 8 is inf in
    float32) are still finite, so the batch passes, while +inf and -inf that cancel to NaN in it are caught."""
    from tlwidgets.prediction import check_inputs

    big = torch.full((8, 1, 2, 2), 3e38)
    assert check_inputs(big, where="fit()") is big
    mixed = torch.zeros(4, 3)
    mixed[0, 0], mixed[1, 1] = float("inf"), -float("inf")
    with pytest.raises(ValueError, match=r"fit\(\): 2 of 12 input values are NaN or infinite"):
        check_inputs(mixed, where="fit()")


def test_c07_digit_drawing_in_0_255_is_rescaled_with_a_message():
    from tlwidgets.widgets.digit_pad import check_drawing as grid_from_image
    from tlwidgets.widgets.digit_pad import pad_to_mnist

    digit = np.zeros((28, 28), np.float32)
    digit[6:22, 12:16] = 1.0
    with pytest.warns(UserWarning, match=r"values run up to 255: read as 0\.\.255 pixels and divided by 255"):
        scaled = grid_from_image(digit * 255)
    assert np.allclose(scaled, grid_from_image(digit))
    with pytest.warns(UserWarning, match="divided by 255"):
        x = pad_to_mnist((digit * 255).astype(np.uint8))
    assert torch.allclose(x, pad_to_mnist(digit))


@pytest.mark.parametrize("bad, message", [(-1.0, r"must be in \[0, 1\] \(ink = 1\), got -1"),
                                          (300.0, r"in \[0, 1\] \(ink = 1\) or 0\.\.255, got 0\.\.300"),
                                          (float("nan"), "NaN")])
def test_c07_digit_drawing_out_of_any_range_is_refused(bad, message):
    from tlwidgets.widgets.digit_pad import check_drawing as grid_from_image

    digit = np.zeros((28, 28), np.float32)
    digit[5, 5] = bad
    with pytest.raises(ValueError, match=message):
        grid_from_image(digit)


def test_c07_digit_pad_set_image_uses_the_check():
    from tlwidgets.widgets.digit_pad import DigitPad

    pad = DigitPad()
    x = np.asarray(data.mnist_target_task(1, test_per_class=1).train.tensors[0][0, 0])
    img = np.clip(x * inputs.MNIST_STD + inputs.MNIST_MEAN, 0, 1)
    good = pad.set_image(img)
    with pytest.warns(UserWarning, match="divided by 255"):
        again = pad.set_image(img * 255)
    assert good == pytest.approx(again)


# ============================================================= 08 argument checks at the door ===
@pytest.mark.parametrize("point", [(28, 0), (0, -1), (float("nan"), 2), ("a", 1), (1, 2, 3)])
def test_c08_digit_pad_stroke_refuses_points_off_the_pad(point):
    from tlwidgets.widgets.digit_pad import DigitPad

    pad = DigitPad()
    with pytest.raises(ValueError, match=r"stroke points must be \(row, col\) pairs of numbers in 0\.\.27"):
        pad.stroke([(5, 5), point])
    assert not pad.grid.any()
    assert pad.stroke([(np.int64(7), np.int64(7)), (np.float32(9.5), 7)])  # NumPy numbers are fine



@pytest.fixture(scope="module")
def dash():
    """One dashboard for all setter cases: a refused setting leaves it unchanged, so they cannot interfere."""
    from tlwidgets.widgets.dashboard import Dashboard

    return Dashboard(kind="mnist", headless=True)


ARGUMENT_CASES = [
    # (what, call, exception type, message regex)
    ("misspelt backbone", lambda: tl.build_backbone("resnet19"), ValueError,
     r"unknown backbone 'resnet19'; choose one of .*; did you mean 'resnet18'\?"),
    ("misspelt backbone for a pets task", lambda: tl.pets_task("cat_vs_dog", backbone="efficientnet_lite"),
     ValueError, r"unknown backbone 'efficientnet_lite'.*did you mean 'efficientnet_lite0'"),
    ("misspelt backbone for normalisation", lambda: inputs.backbone_normalization("Resnet18"), ValueError,
     r"unknown backbone 'Resnet18'"),
    ("backbone not a string", lambda: tl.build_backbone(18), ValueError, r"unknown backbone 18 \(int\)"),
    ("device tpu", lambda: tl.select_device("tpu"), ValueError, r"unknown device 'tpu'; choose one of"),
    ("device gpu", lambda: tl.select_device("gpu"), ValueError, r"unknown device 'gpu'"),
    ("device index on cpu", lambda: tl.select_device("cpu:1"), ValueError, r"unknown device 'cpu:1'"),
    ("device as int", lambda: tl.select_device(0), ValueError, r"unknown device 0 \(int\)"),
    ("device cuda:x", lambda: tl.select_device("cuda:x"), ValueError, r"unknown device 'cuda:x'"),
    ("pets split", lambda: data.read_pet_annotations(".", "val"), ValueError,
     r"unknown split 'val'; choose one of \('trainval', 'test'\)"),
    ("pets kind", lambda: tl.pets_task("cats_vs_dogs"), ValueError,
     r"unknown pets task 'cats_vs_dogs'.*did you mean 'cat_vs_dog'"),
    ("negative seed", lambda: tl.seed_everything(-1), ValueError, r"seed must be an integer in 0\.\."),
    ("float seed", lambda: tl.seed_everything(1.5), TypeError, r"seed must be an integer .*got 1\.5 \(float\)"),
    ("seed for a task", lambda: tl.mnist_target_task(5, seed=-2), ValueError, r"seed must be an integer >= 0, got -2"),
    ("seed for fit", lambda: tl.fit(_grey_model(), _loader(torch.zeros(4, 1, 8, 8), torch.zeros(4).long()),
                                    seed="0", progress=False), TypeError, r"seed must be an integer"),
    ("freeze 2.0", lambda: tl.freeze(_grey_model(), 2.0), ValueError, r"n_frozen must be an integer, got 2\.0"),
    ("freeze out of range", lambda: tl.freeze(_grey_model(), np.int64(3)), ValueError,
     r"n_frozen=3 is out of range: tiny_grey has 3 groups, so 0\.\.2 can be frozen"),
    ("head with 1 class", lambda: tl.replace_head(_grey_model(), 1), ValueError,
     "num_classes must be at least 2, got 1"),
    ("head with 2.5 classes", lambda: tl.replace_head(_grey_model(), 2.5), TypeError,
     r"num_classes must be an integer, got 2\.5"),
    ("digit cnn 1 class", lambda: tl.digit_cnn(1), ValueError, "num_classes must be at least 2, got 1"),
    ("small cnn 0 classes", lambda: tl.small_cnn(0), ValueError, "num_classes must be at least 2, got 0"),
    ("small cnn bad size", lambda: tl.small_cnn(2, image_size=8), ValueError,
     r"image_size must be an integer in 16\.\.1024"),
    ("features boundary 1.5", lambda: features.extract_features(_grey_model(), TensorDataset(torch.zeros(2, 1, 8, 8),
                                                                                              torch.zeros(2)), 1.5),
     TypeError, r"n_frozen must be an integer, got 1\.5"),
    ("weight decay negative", lambda: tl.fit(_grey_model(), _loader(torch.zeros(4, 1, 8, 8), torch.zeros(4).long()),
                                             optimizer=training.Optimiser("adam", -1), progress=False), ValueError,
     r"weight_decay must be a number >= 0, got -1"),
    ("optimizer not a string", lambda: tl.fit(_grey_model(), _loader(torch.zeros(4, 1, 8, 8), torch.zeros(4).long()),
                                              optimizer=3, progress=False), ValueError, r"unknown optimizer 3"),
    ("predict k=0", lambda: tl.predict(_grey_model(), torch.zeros(1, 1, 8, 8), k=0), ValueError,
     r"k must be an integer >= 1, got 0"),
    ("confusion matrix 1 class", lambda: tl.confusion_matrix(_grey_model(), TensorDataset(torch.zeros(2, 1, 8, 8),
                                                                                         torch.zeros(2).long()),
                                                             num_classes=1), ValueError,
     r"num_classes must be an integer >= 2, got 1"),
    ("photo folder given as a number", lambda: tl.folder_task(42), TypeError,
     r"path must be a path \(str or pathlib\.Path\), got 42 \(int\)"),
    ("n_per_class 2.5, not a slice error", lambda: tl.mnist_target_task(2.5), TypeError,
     r"n_per_class must be an integer >= 1 \(or None for all\)|n_per_class must be an integer"),
    ("record() with a path as lesson name", lambda: tl.record("../../etc/x", acc=1), ValueError,
     r"lesson must be a lesson's file name without folders or suffix .*got '\.\./\.\./etc/x'"),
    ("photo folder that is a file", lambda: tl.folder_task(__file__), NotADirectoryError,
     r"photo folder .*test_fault_classes\.py is a file"),
    ("checkpoint path None", lambda: tl.load_checkpoint(None), TypeError, r"path must be a path"),
    ("build_backbone pretrained='yes'", lambda: tl.build_backbone("resnet18", pretrained="yes"), TypeError,
     r"pretrained must be True or False, got 'yes' \(str\)"),
]


@pytest.mark.parametrize("what, call, error, message", ARGUMENT_CASES, ids=[c[0] for c in ARGUMENT_CASES])
def test_c08_bad_arguments_are_refused_at_the_door(what, call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    text = str(info.value)
    assert "slice indices" not in text and "not all arguments converted" not in text


ACCEPTED_NUMPY = [
    ("freeze np.int64", lambda: tl.freeze(_grey_model(), np.int64(2)).n_frozen == 2),
    ("freeze np.int32", lambda: tl.freeze(_grey_model(), np.int32(1)).n_frozen == 1),
    ("replace_head np.int64", lambda: len(tl.replace_head(_grey_model(), np.int64(4)).classes) == 4),
    ("seed np.int64", lambda: tl.seed_everything(np.int64(3)) is None),
    ("fit np.int64 epochs, np.float32 lr", lambda: len(tl.fit(
        _grey_model(), _loader(torch.randn(8, 1, 8, 8), torch.arange(8) % 3), num_epochs=np.int64(2),
        lr=np.float32(1e-3), progress=False, device="cpu")) == 2),
    ("extract_features np.int64 boundary", lambda: features.extract_features(
        _grey_model(), TensorDataset(torch.zeros(2, 1, 8, 8), torch.zeros(2)), np.int64(1),
        progress=False).tensors[0].shape == (2, 4, 8, 8)),
    ("validate float np.float64", lambda: check_float("x", np.float64(0.5), min=0, max=1) == 0.5),
]


@pytest.mark.parametrize("what, call", ACCEPTED_NUMPY, ids=[c[0] for c in ACCEPTED_NUMPY])
def test_c08_numpy_numbers_are_accepted_where_python_ones_are(what, call):
    assert call()


def test_c08_validation_messages_name_argument_given_and_allowed(tmp_path):
    with pytest.raises(ValueError, match=r"^n must be an integer in 1\.\.5, got 9$"):
        check_int("n", 9, min=1, max=5)
    with pytest.raises(TypeError, match=r"^n must be an integer in 1\.\.5, got True \(bool\)$"):
        check_int("n", True, min=1, max=5)
    with pytest.raises(ValueError, match=r"^fraction must be a number in \(0, 1\), got 1$"):
        check_float("fraction", 1, min=0, max=1, min_open=True, max_open=True)
    with pytest.raises(ValueError, match=r"^unknown mode 'trian'; choose one of \('train', 'eval'\); did you mean"):
        check_choice("mode", "trian", ("train", "eval"))
    with pytest.raises(FileNotFoundError, match=rf"^folder: {tmp_path / 'x'} does not exist$"):
        check_path("folder", tmp_path / "x", must_exist=True)


def test_c08_freeze_slider_refuses_instead_of_clamping():
    from tlwidgets.widgets.freeze_slider import FreezeSlider

    model = tl.digit_cnn(5)
    fs = FreezeSlider(model)
    fs.value = np.int64(2)
    assert model.n_frozen == 2
    for bad, error in ((7, ValueError), (-1, ValueError), (1.5, TypeError)):
        with pytest.raises(error, match="value must be"):
            fs.value = bad
        assert fs.value == 2 and model.n_frozen == 2


@pytest.mark.parametrize("setting, message", [
    ({"lr": 5.0}, r"lr must be a number in \[1e-05, 0\.316"),
    ({"lr": 0}, r"lr must be a number in"),
    ({"num_epochs": 0}, r"num_epochs must be an integer >= 1, got 0"),
    ({"num_epochs": 2.5}, r"num_epochs must be an integer"),
    ({"n_per_class": -5}, r"n_per_class must be a positive number of labelled images, got -5"),
    ({"n_frozen": 9}, r"n_frozen must be in 0\.\.1"),
    ({"strategy": "transfer"}, r"unknown strategy 'transfer'"),
])
def test_c08_dashboard_setters_refuse_out_of_range(setting, message, dash):
    before = dash.config()
    with pytest.raises(ValueError, match=message):
        dash.set(**setting)
    assert dash.config() == before


# ============================================================ 09 common misuse explained ===
def test_c09_grayscale_pil_image_to_an_rgb_model():
    grey = Image.new("L", (40, 30), 128)
    x = pretrained.image_to_tensor(grey, _rgb_model())
    assert x.shape == (3, 32, 32) and torch.allclose(x[0], x[1])
    preds = tl.predict(_rgb_model(), grey, k=1)
    assert len(preds) == 1 and preds[0].label in ("c0", "c1")


def test_c09_one_channel_tensor_to_an_rgb_model_says_what_it_takes():
    with pytest.raises(ValueError, match=r"tiny_rgb cannot take a batch of shape \(1, 1, 32, 32\): its first layer "
                                         r"takes 3-channel images"):
        tl.predict(_rgb_model(), torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize("dtype, message", [
    (torch.uint8, r"inputs are uint8 \(raw pixels 0\.\.255\).*x\.float\(\) / 255"),
    (torch.float64, r"inputs are float64, the model's weights float32: convert with x\.float\(\)"),
    (torch.int64, r"inputs are int64; models take float32"),
])
def test_c09_wrong_input_dtypes_are_explained(dtype, message):
    x = torch.zeros(4, 1, 8, 8, dtype=dtype)
    y = torch.zeros(4, dtype=torch.long)
    for call in (lambda: tl.fit(_grey_model(), _loader(x, y), progress=False),
                 lambda: tl.evaluate(_grey_model(), _loader(x, y)),
                 lambda: tl.predict(_grey_model(), x)):
        with pytest.raises(TypeError, match=message):
            call()


def test_c09_float_labels_are_explained():
    x, y = torch.zeros(4, 1, 8, 8), torch.tensor([0.0, 1.0, 2.0, 1.0])
    with pytest.raises(TypeError, match=r"labels are float32 \(e\.g\. \[0\.0, 1\.0, 2\.0\]\).*y\.long\(\)"):
        tl.fit(_grey_model(), _loader(x, y), progress=False)
    with pytest.raises(TypeError, match=r"evaluate\(\): batch 1: labels are float32"):
        tl.evaluate(_grey_model(), _loader(x, y))


def test_c09_empty_batch_is_explained():
    with pytest.raises(ValueError, match=r"predict\(\): the batch is empty \(shape \(0, 1, 8, 8\)\)"):
        tl.predict(_grey_model(), torch.zeros(0, 1, 8, 8))


@pytest.mark.parametrize("where", ["fit", "evaluate"])
def test_c09_dataset_where_a_dataloader_is_expected(where, tiny_data):
    ds = tiny_data(8)
    call = (lambda: tl.fit(_grey_model(), ds, progress=False)) if where == "fit" else \
        (lambda: tl.evaluate(_grey_model(), ds))
    with pytest.raises(TypeError, match=rf"{where}\(\): .* is a TensorDataset \(a Dataset: one sample at a time\).*"
                                        r"wrap it: DataLoader\(dataset, batch_size=32"):
        call()


def test_c09_val_loader_that_is_a_dataset(tiny_data):
    with pytest.raises(TypeError, match=r"val_loader is a TensorDataset"):
        tl.fit(_grey_model(), DataLoader(tiny_data(8), batch_size=4), tiny_data(4), progress=False)


def _bn1d_model() -> models.GroupedModel:
    """BatchNorm on feature vectors: a batch of 1 gives it one value per channel, which it cannot train on."""
    torch.manual_seed(0)
    groups = [("stem", nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.ReLU())),
              ("head", nn.Linear(8, 3))]
    return models.GroupedModel(groups, name="bn1d", classes=["a", "b", "c"], mean=(0.0,), std=(1.0,), image_size=8)


def test_c09_last_batch_of_one_with_batchnorm_is_skipped_with_a_message(tiny_data):
    loader = DataLoader(tiny_data(9), batch_size=4)  # 4 + 4 + 1
    with pytest.warns(UserWarning, match=r"a training batch held 1 sample \(9 samples in all\); BatchNorm cannot "
                                         r"compute batch statistics from a single sample, so that batch is skipped"):
        h = tl.fit(_bn1d_model(), loader, num_epochs=2, progress=False, device="cpu")
    assert [b["size"] for b in h.batches] == [4, 4, 4, 4] and len(h) == 2


def test_c09_only_single_samples_with_batchnorm_is_refused(tiny_data):
    with pytest.raises(ValueError, match=r"every training batch held 1 sample: BatchNorm layers cannot compute"):
        _quiet(tl.fit, _bn1d_model(), DataLoader(tiny_data(3), batch_size=1), progress=False, device="cpu")


def test_c09_batch_of_one_is_fine_where_batchnorm_can_take_it(tiny_data):
    for model in (_grey_model(), _bn1d_model()):  # BatchNorm2d over 8x8 pixels; a frozen (eval) BatchNorm1d
        if model.name == "bn1d":
            tl.freeze(model, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            h = tl.fit(model, DataLoader(tiny_data(5), batch_size=4), num_epochs=1, progress=False, device="cpu")
        assert [b["size"] for b in h.batches] == [4, 1]


def test_c09_confusion_matrix_with_too_few_classes():
    model = _grey_model(3)
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([0.0, 0.0, 50.0]))  # always predicts class 2
    ds = TensorDataset(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"num_classes=2 is too few: the labels and predictions use classes 0\.\.2"):
        tl.confusion_matrix(model, ds, num_classes=2)
    assert tl.confusion_matrix(model, ds).shape == (3, 3)


def test_c09_model_built_for_other_inputs_than_the_task(tmp_path):
    task = tl.folder_task(_photo_tree(tmp_path / "photos", 3), image_size=32)
    with pytest.raises(ValueError, match=r"digit_cnn takes greyscale \(1-channel\) images, but task 'Photos in photos' "
                                         r"holds colour \(3-channel\) images of shape \(3, 32, 32\)"):
        features.cached_features(tl.load_digit_model(), task, progress=False)
    with pytest.raises(ValueError, match=r"takes greyscale \(1-channel\) images"):
        tl.run_strategy("feature_extraction", task, model=tl.load_digit_model(), progress=False, device="cpu")


def test_c09_wrong_type_to_predict():
    with pytest.raises(TypeError, match=r"predict\(\): expected a tensor batch, a Dataset, a DataLoader or photos"):
        tl.predict(_grey_model(), {"x": 1})


# =============================================================== 10 storage faults explained ===
def test_c10_unwritable_cache_names_the_variable_and_cache_false(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TLLAB_CACHE", str(blocker))
    task = tl.folder_task(_photo_tree(tmp_path / "photos", 3), image_size=32)
    with pytest.raises(StorageError, match=r"cache folder .*a-file/features is not writable .*Point \$TLLAB_CACHE "
                                           r"at a writable folder.*or pass cache=False"):
        features.cached_features(_rgb_model(), task, progress=False)
    assert not features.cached_features(_rgb_model(), task, cache=False, progress=False).from_disk


def test_c10_corrupt_dashboard_log_names_the_file(tmp_path):
    from tlwidgets.runlog import read_json as read_json_log
    from tlwidgets.widgets.dashboard import history_dict

    log = tmp_path / "run-log.json"
    log.write_text('{"format": "tlwidgets.dashboard-log", "runs": [')
    with pytest.raises(ValueError, match=rf"{log} is not a readable JSON log"):
        history_dict(log)
    log.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=rf"{log} is not a readable JSON log"):
        read_json_log(log)
    with pytest.raises(FileNotFoundError, match=rf"log file {tmp_path / 'nope.json'} does not exist"):
        history_dict(tmp_path / "nope.json")


def test_c10_bad_image_names_the_file_and_the_rest_loads(tmp_path):
    root = _photo_tree(tmp_path / "photos", 4)
    bad = root / "dogs" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.warns(UserWarning, match=rf"skipped 1 unreadable image file\(s\), e\.g\. {bad}: cannot be decoded "
                                         r"as an image .*; the other 8 loaded"):
        task = tl.folder_task(root, image_size=32)
    assert _n_photos(task) == 8


@pytest.mark.parametrize("damage", ["unsafe", "truncated", "empty", "text"])
def test_c10_bad_checkpoint_never_advises_weights_only_false(tmp_path, damage):
    path = tmp_path / "model.pt"
    if damage == "unsafe":
        torch.save({"state_dict": {}, "hook": np.random.default_rng(0)}, path)
    else:
        tl.save_checkpoint(path, _grey_model())
        blob = path.read_bytes()
        path.write_bytes({"truncated": blob[: len(blob) // 3], "empty": b"", "text": b"hello"}[damage])
    with pytest.raises(ChecksumError) as info:
        tl.load_checkpoint(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: cannot be read as a weights-only checkpoint") and "weights_only=False" not in msg
    assert msg.endswith("it is corrupt, truncated or unsafe")
    if damage == "unsafe":
        assert "unsafe to load" in msg and "it holds a numpy" in msg


def test_c10_resume_from_a_damaged_training_checkpoint(tmp_path, tiny_data):
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(ChecksumError, match=rf"{ckpt}: cannot be read as a weights-only checkpoint"):
        tl.fit(_grey_model(), DataLoader(tiny_data(8), batch_size=4), checkpoint=training.Checkpoint(ckpt, resume=True),
               progress=False)


# ====================================================================== 11 command lines ===
def _no_kernel(*a, **k):
    raise AssertionError("a kernel was started")


@pytest.mark.parametrize("argv, message", [
    (["--device", "tpu"], r"--device: unknown device 'tpu'; choose one of"),
    (["--device", "cuda:abc"], r"--device: unknown device 'cuda:abc'"),
    (["--seed", "-1"], r"--seed must be a non-negative integer, got -1"),
    (["--out", "FILE"], r"--out .* is not a writable folder"),
])
def test_c11_course_refuses_bad_options_before_any_kernel_starts(argv, message, monkeypatch, capsys, tmp_path):
    from tlwidgets import course

    (tmp_path / "FILE").write_text("a file, not a folder")
    argv = [str(tmp_path / "FILE" / "sub") if a == "FILE" else a for a in argv]
    monkeypatch.setattr(course, "run_lesson", _no_kernel)
    monkeypatch.setattr(course, "find_lessons", lambda *a, **k: _no_kernel())
    assert course.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and __import__("re").search(message, err), err


def test_c11_course_refuses_cuda_without_a_gpu_before_any_kernel(monkeypatch, capsys):
    from tlwidgets import course

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(course, "run_lesson", _no_kernel)
    assert course.main(["--device", "cuda"]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err


def test_c11_offline_download_is_a_message_not_a_traceback(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(data.roots, "network_available", lambda *a, **k: False)
    assert data.main(["download", "pets", "--root", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot download Oxford-IIIT Pet: no network connection") and "Traceback" not in err


def test_c11_download_into_an_unusable_root_is_a_message(monkeypatch, capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(data.roots, "network_available", lambda *a, **k: True)
    assert data.main(["download", "mnist", "--root", str(tmp_path / "file" / "sub")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "file/sub" in err and "Traceback" not in err
