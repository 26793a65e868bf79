"""tlwidgets.data: the data-root rule, offline failures, checksums, safe extraction and task builders."""
from __future__ import annotations

import gzip
import io
import shutil
import socket
import tarfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tlwidgets import data, inputs
from tlwidgets.data import ChecksumError, DataMissingError, Task

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # published; checked against torchvision


BUNDLED = data.REPO_DATASETS
MNIST_FILES = data.MNIST_SPEC.required


def _fake_mnist(root: Path) -> Path:
    """The four MNIST file names (empty): enough for the search rule, which only looks for them."""
    for rel in MNIST_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    return root


# ------------------------------------------------------------------------------ data-root rule ---
def test_candidate_roots_order_is_argument_env_repo_user_cache(tmp_path, env):
    arg, tl_data, xdg = tmp_path / "arg", tmp_path / "env", tmp_path / "xdg"
    env.set("TLLAB_DATA", tl_data)
    env.set("XDG_CACHE_HOME", xdg)
    user_cache = xdg / "tlwidgets" / "data"
    assert data.candidate_roots(arg) == [arg, tl_data, BUNDLED, user_cache]
    assert data.candidate_roots() == [tl_data, BUNDLED, user_cache]
    env.set("TLLAB_DATA", None)
    assert data.candidate_roots() == [BUNDLED, user_cache]
    # the same folder twice is searched once, at its first position
    env.set("TLLAB_DATA", BUNDLED)
    assert data.candidate_roots(BUNDLED) == [BUNDLED, user_cache]


def test_user_cache_defaults_to_home_cache(env):
    env.set("XDG_CACHE_HOME", None)
    assert data.user_cache_dir() == Path.home() / ".cache" / "tlwidgets" / "data"


def test_find_dataset_takes_the_first_root_that_holds_the_files(tmp_path, env):
    roots = env.empty_data_search_path()
    repo, user_cache = roots
    arg, tl_data = tmp_path / "arg", tmp_path / "env"
    for r in (arg, tl_data, repo, user_cache):
        _fake_mnist(r)
    env.set("TLLAB_DATA", tl_data)
    assert data.find_dataset(data.MNIST_SPEC, arg) == arg
    assert data.find_dataset(data.MNIST_SPEC) == tl_data
    shutil.rmtree(tl_data / "MNIST")  # TLLAB_DATA set but empty: fall through to the repo
    assert data.find_dataset(data.MNIST_SPEC) == repo
    shutil.rmtree(repo / "MNIST")
    assert data.find_dataset(data.MNIST_SPEC) == user_cache
    (user_cache / MNIST_FILES[2]).unlink()  # one file missing is as good as none
    with pytest.raises(DataMissingError, match="MNIST data not found"):
        data.find_dataset(data.MNIST_SPEC)


def test_mnist_task_reads_the_root_argument_before_the_bundled_subset(mnist_copy):
    # damage the copy: if the builder read the bundled files instead it would not notice
    (mnist_copy / MNIST_FILES[1]).write_bytes(b"\x00" * 100)
    with pytest.raises(ChecksumError) as info:
        data.mnist_task([0, 1], 2, root=mnist_copy)
    assert str(mnist_copy / MNIST_FILES[1]) in str(info.value)


# --------------------------------------------------------------------------- missing / offline ---
@pytest.mark.parametrize("builder, missing, fetch", [
    (lambda: data.mnist_source_task(5), list(MNIST_FILES), "python -m tlwidgets.data download mnist"),
    (lambda: data.mnist_target_task(5), list(MNIST_FILES), "python -m tlwidgets.data download mnist"),
    (lambda: data.pets_task("cat_breeds", 5), list(data.PETS_SPEC.required), "python -m tlwidgets.data download pets"),
], ids=["mnist_source_task", "mnist_target_task", "pets_task"])
def test_missing_data_fails_fast_naming_files_folders_and_fetch_command(env, builder, missing, fetch):
    roots = env.empty_data_search_path()
    t0 = time.perf_counter()
    with pytest.raises(DataMissingError) as info:
        builder()
    elapsed = time.perf_counter() - t0
    msg = str(info.value)
    assert elapsed < 10, f"took {elapsed:.1f} s"  # the limit; it takes well under 1 s
    assert isinstance(info.value, FileNotFoundError)  # `except FileNotFoundError` catches it too
    for rel in missing:
        assert rel in msg
    for root in roots:
        assert str(root) in msg
    assert "TLLAB_DATA" in msg
    assert fetch in msg


def test_pets_missing_message_gives_the_download_page(env):
    env.empty_data_search_path()
    with pytest.raises(DataMissingError, match=r"https://www\.robots\.ox\.ac\.uk/~vgg/data/pets/"):
        data.pets_task("cat_vs_dog")


@pytest.mark.parametrize("name, host", [("mnist", "ossci-datasets.s3.amazonaws.com"),
                                        ("pets", "thor.robots.ox.ac.uk")])
def test_download_offline_fails_in_seconds_and_writes_nothing(tmp_path, monkeypatch, name, host):
    probed = []
    monkeypatch.setattr(data.roots, "network_available", lambda h, *a, **k: probed.append(h) or False)
    target = tmp_path / "target"
    t0 = time.perf_counter()
    with pytest.raises(DataMissingError) as info:
        data.download(name, target)
    assert time.perf_counter() - t0 < 10
    msg = str(info.value)
    assert probed == [host]
    assert f"no network connection to {host}" in msg
    assert str(target) in msg and "TLLAB_DATA" in msg
    assert "https://" in msg  # where the files come from
    for rel in data.SPECS[name].required:
        assert rel in msg
    assert not target.exists() or not any(target.rglob("*"))


def test_download_interrupted_midway_leaves_no_partial_file(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    monkeypatch.setattr(data.roots, "network_available", lambda *a, **k: True)
    calls = []

    def flaky_download(url, folder, md5=None):
        calls.append(url)
        if len(calls) == 2:
            (Path(folder) / "half-written.gz").write_bytes(b"\x1f\x8b partial")
            raise ConnectionResetError("connection reset by peer")
        (Path(folder) / Path(url).name).write_bytes(b"\x1f\x8b whole file")

    monkeypatch.setattr(tvu, "download_url", flaky_download)
    target = tmp_path / "target"
    with pytest.raises(ConnectionResetError, match="connection reset"):
        data.download("mnist", target)
    assert len(calls) == 2
    assert list(target.rglob("*")) == []  # the temporary folder went with the failure


def test_download_assembles_mnist_atomically_and_torchvision_reads_it(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    monkeypatch.setattr(data.roots, "network_available", lambda *a, **k: True)

    def fake_download(url, folder, md5=None):  # serve the bundled files, gzipped like the real ones
        name = Path(url).name
        raw = (BUNDLED / "MNIST" / "raw" / name.removesuffix(".gz")).read_bytes()
        (Path(folder) / name).write_bytes(gzip.compress(raw))

    monkeypatch.setattr(tvu, "download_url", fake_download)
    target = tmp_path / "target"
    assert data.download("mnist", target) == target
    assert sorted(p.name for p in target.iterdir()) == ["MNIST"]  # no .partial- folder left
    task = data.mnist_task([3, 4], 5, root=target)
    assert len(task.train) == 10
    # already present: no probe, no download
    monkeypatch.setattr(data.roots, "network_available", lambda *a, **k: pytest.fail("probed although present"))
    assert data.download("mnist", target) == target


def test_download_unknown_name_lists_choices(tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar10'; choose one of \['mnist', 'pets'\]"):
        data.download("cifar10", tmp_path)


def test_network_probe_gives_up_within_its_timeout_even_if_dns_hangs(monkeypatch):
    release = threading.Event()

    def hanging_connect(address, timeout=None):  # a resolver that never answers
        release.wait(30)
        raise OSError("resolver timed out")

    monkeypatch.setattr(socket, "create_connection", hanging_connect)
    t0 = time.perf_counter()
    try:
        assert data.network_available("example.invalid", timeout=0.5) is False
        assert time.perf_counter() - t0 < 2
    finally:
        release.set()


def test_network_probe_false_on_refused_connection(monkeypatch):
    seen = {}

    def refuse(address, timeout=None):
        seen.update(address=address, timeout=timeout)
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert data.network_available("download.example", 443) is False
    assert seen == {"address": ("download.example", 443), "timeout": 3.0}


def test_where_command_lists_each_root_and_what_it_holds(env, capsys, tmp_path):
    repo, user_cache = env.empty_data_search_path()
    _fake_mnist(repo)
    assert data.main(["where", "--root", str(tmp_path / "nothing")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{tmp_path / 'nothing'}: -", f"{repo}: mnist", f"{user_cache}: -"]


# ---------------------------------------------------------------------------------- checksums ---
def test_intact_copy_verifies_every_listed_file(mnist_copy):
    assert data.verify_checksums(mnist_copy, "MNIST/raw/") == 4
    task = data.mnist_task([0, 1], 3, root=mnist_copy)
    assert len(task.train) == 6


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_idx_file_is_named_with_its_expected_sha256(mnist_copy, damage):
    rel = "MNIST/raw/t10k-images-idx3-ubyte"
    expected = data.read_manifest(mnist_copy)[rel]
    path = mnist_copy / rel
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[5000] ^= 0xFF
    else:
        blob = blob[: len(blob) // 3]
    path.write_bytes(bytes(blob))
    with pytest.raises(ChecksumError) as info:
        data.mnist_task(range(5), 4, root=mnist_copy)
    msg = str(info.value)
    assert msg.startswith(f"{path}: sha256 is {data.sha256_file(path)}, expected {expected}")
    assert "SHA256SUMS" in msg and "fetch it again" in msg
    assert isinstance(info.value, ValueError)


def test_checksum_of_an_altered_photo_is_checked_on_demand(tmp_path):
    img = tmp_path / "oxford-iiit-pet" / "images" / "Bengal_1.jpg"
    img.parent.mkdir(parents=True)
    img.write_bytes(b"jpeg bytes")
    good = data.sha256_file(img)
    (tmp_path / "SHA256SUMS").write_text(f"{good}  oxford-iiit-pet/images/Bengal_1.jpg\n"
                                         f"{'0' * 64}  oxford-iiit-pet/images/absent.jpg\n")
    assert data.verify_checksums(tmp_path, "oxford-iiit-pet/") == 1  # absent files are the loader's business
    img.write_bytes(b"jpeg bytes, edited")
    with pytest.raises(ChecksumError, match=rf"Bengal_1\.jpg: sha256 is [0-9a-f]{{64}}, expected {good}"):
        data.verify_checksums(tmp_path, "oxford-iiit-pet/", only=["oxford-iiit-pet/images/Bengal_1.jpg"])


# ------------------------------------------------------------------------------ safe extraction ---
def _tar(path: Path, members: list[tuple[str, str]]) -> Path:
    """members: (name, kind) with kind 'file', 'symlink' or 'hardlink'."""
    with tarfile.open(path, "w") as tar:
        for name, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                payload = f"contents of {name}".encode()
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = "/etc/passwd"
                tar.addfile(info)
    return path


def test_safe_extract_extracts_a_clean_archive(tmp_path):
    archive = _tar(tmp_path / "ok.tar", [("images/a.jpg", "file"), ("annotations/list.txt", "file")])
    dest = tmp_path / "out"
    dest.mkdir()
    data.safe_extract(archive, dest)
    assert (dest / "images" / "a.jpg").read_text() == "contents of images/a.jpg"


@pytest.mark.parametrize("evil, kind", [
    ("../escaped.txt", "file"),
    ("images/../../escaped.txt", "file"),
    ("/tmp/tllab-absolute-escape.txt", "file"),
    ("images/passwd-link", "symlink"),
    ("images/passwd-hardlink", "hardlink"),
])
def test_safe_extract_refuses_members_that_leave_the_folder_or_are_links(tmp_path, evil, kind):
    archive = _tar(tmp_path / "evil.tar", [("images/first.jpg", "file"), (evil, kind)])
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(ValueError) as info:
        data.safe_extract(archive, dest)
    msg = str(info.value)
    assert f"refusing to extract {evil!r}" in msg and "unsafe" in msg and str(archive) in msg
    assert list(dest.rglob("*")) == []  # checked before anything is written, the good member included
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/tllab-absolute-escape.txt").exists()


# -------------------------------------------------------------------------------- MNIST tasks ---
def _labels(ds) -> torch.Tensor:
    return ds.tensors[1]


def test_mnist_source_task_classes_counts_and_fixed_test_set():
    task = data.mnist_source_task(12, root=BUNDLED)
    assert task.classes == ["0", "1", "2", "3", "4"] and task.num_classes == 5
    assert task.input_size == (1, 28, 28) and task.n_per_class == 12
    assert torch.bincount(_labels(task.train)).tolist() == [12] * 5
    assert torch.bincount(_labels(task.test)).tolist() == [100] * 5  # the subset's whole 0-4 test split
    x, _ = task.train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert abs(task.train.tensors[0].mean().item()) < 0.3  # normalised with MNIST's mean/std
    small = data.mnist_source_task(12, test_per_class=7, root=BUNDLED)
    assert torch.bincount(_labels(small.test)).tolist() == [7] * 5
    assert repr(task) == ("Task('MNIST digits 0-4': 5 classes, 60 train (12 per class), 250 val (50 per class, "
                          "seed 0), 500 test, input (1, 28, 28))")
    # the validation split is carved from the training file, disjoint from the training images
    assert torch.bincount(_labels(task.val)).tolist() == [50] * 5
    train_x, val_x = task.train.tensors[0].flatten(1), task.val.tensors[0].flatten(1)
    assert not (torch.cdist(train_x, val_x) == 0).any()


def test_mnist_target_task_renumbers_digits_5_to_9_as_0_to_4():
    task = data.mnist_target_task(6, root=BUNDLED)
    assert task.classes == ["5", "6", "7", "8", "9"]
    assert torch.bincount(_labels(task.train)).tolist() == [6] * 5
    # find every training image among the raw digits and check its original label is 5 + new label
    raw_images, raw_labels = data.mnist_tensors(str(BUNDLED), True)
    pixels = (task.train.tensors[0].squeeze(1) * inputs.MNIST_STD + inputs.MNIST_MEAN) * 255
    pixels = pixels.round().to(torch.uint8)
    for img, label in zip(pixels, _labels(task.train)):
        match = torch.nonzero((raw_images == img).flatten(1).all(1)).flatten()
        assert len(match) >= 1
        assert {int(raw_labels[i]) for i in match} == {5 + int(label)}


def test_mnist_task_arbitrary_digits_keep_their_order():
    task = data.mnist_task([7, 1], 3, test_per_class=2, root=BUNDLED)
    assert task.classes == ["7", "1"] and task.name == "MNIST digits [7, 1]"
    assert sorted(_labels(task.train).tolist()) == [0, 0, 0, 1, 1, 1]


def test_mnist_task_is_deterministic_by_seed():
    a = data.mnist_target_task(5, root=BUNDLED, seed=3)
    b = data.mnist_target_task(5, root=BUNDLED, seed=3)
    c = data.mnist_target_task(5, root=BUNDLED, seed=4)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0]) and a.fingerprint == b.fingerprint
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0]) and a.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 16


@pytest.mark.parametrize("n", [0, -3])
def test_zero_or_negative_labelled_images_is_refused(n):
    with pytest.raises(ValueError, match=rf"n_per_class must be a positive number of labelled images, got {n}"):
        data.mnist_source_task(n, root=BUNDLED)


@pytest.mark.parametrize("digits, shown", [([3, 12], r"\[3, 12\]"), ([], r"\[\]"), ([1, 1], r"\[1, 1\]"),
                                           ([-1], r"\[-1\]")])
def test_unknown_or_repeated_digits_are_refused(digits, shown):
    with pytest.raises(ValueError, match=rf"digits must be distinct values in 0\.\.9, got {shown}"):
        data.mnist_task(digits, 5, root=BUNDLED)


def test_more_images_than_exist_warns_and_uses_all():
    with pytest.warns(UserWarning, match="asked for 450 images of class 0, only 350 exist; using all"):
        task = data.mnist_task([0], 450, root=BUNDLED)
    assert len(task.train) == 350 and len(task.val) == 50   # 400 in the file, 50 of them set aside to validate


def test_mnist_task_has_no_augmentation_to_ask_for():
    task = data.mnist_source_task(2, root=BUNDLED)
    with pytest.raises(ValueError, match="task 'MNIST digits 0-4' has no augmentation; use augment=False"):
        task.loaders(augment=True)
    train, val, test = task.loaders(batch_size=4)
    assert len(train) == 3 and test.batch_size == val.batch_size == 256


# --------------------------------------------------------------------------------- pets tasks ---
@pytest.mark.parametrize("kind, message", [
    ("horses", r"unknown pets task 'horses'; choose one of \('cat_vs_dog', 'cat_breeds', 'dog_breeds'\)"),
    ("Cat_vs_dog", r"unknown pets task 'Cat_vs_dog'"),
])
def test_unknown_pets_kind_is_refused(kind, message):
    with pytest.raises(ValueError, match=message):
        data.pets_task(kind)


def test_tiny_pets_image_size_is_refused():
    with pytest.raises(ValueError, match="image_size must be at least 32 pixels, got 16"):
        data.pets_task("cat_vs_dog", image_size=16)


@pytest.mark.parametrize("kind, num_classes, example", [("cat_vs_dog", 2, "dog"), ("cat_breeds", 12, "Bengal"),
                                                        ("dog_breeds", 25, "Beagle")])
def test_pets_tasks_have_the_right_classes(pets_root, kind, num_classes, example):
    task = data.pets_task(kind, 2, image_size=64, root=pets_root)
    assert task.num_classes == num_classes and example in task.classes
    assert torch.bincount(task.train.labels, minlength=num_classes).tolist() == [2] * num_classes
    assert set(task.test.labels.tolist()) == set(range(num_classes))  # every class in the fixed test set
    assert task.input_size == (3, 64, 64)
    raw = task.train.raw_image(0)
    assert raw.dtype == torch.uint8 and raw.shape == (3, 64, 64)
    x, y = task.train[0]
    assert x.dtype == torch.float32 and x.shape == (3, 64, 64) and -2.2 < x.min() < x.max() < 2.7
    if kind == "cat_vs_dog":
        assert task.classes == ["cat", "dog"]


def test_cat_and_dog_breeds_are_disjoint_and_cover_all_37(pets_root):
    cats = data.pets_task("cat_breeds", 1, image_size=32, root=pets_root).classes
    dogs = data.pets_task("dog_breeds", 1, image_size=32, root=pets_root).classes
    assert not set(cats) & set(dogs) and len(set(cats) | set(dogs)) == 37


def test_pets_task_is_deterministic_by_seed(pets_root):
    a = data.pets_task("cat_vs_dog", 3, image_size=48, root=pets_root, seed=0)
    b = data.pets_task("cat_vs_dog", 3, image_size=48, root=pets_root, seed=0)
    c = data.pets_task("cat_vs_dog", 3, image_size=48, root=pets_root, seed=1)
    assert torch.equal(a.train.images, b.train.images) and a.fingerprint == b.fingerprint
    assert not torch.equal(a.train.images, c.train.images) and a.fingerprint != c.fingerprint
    assert a.augment is not None
    train, val, _ = a.loaders(batch_size=6, augment=True)
    assert not torch.equal(a.val.images, c.val.images) and "seed 0" in repr(a)
    x, _ = next(iter(train))
    assert x.shape == (6, 3, 48, 48)


# ------------------------------------------------------------------------------- your photos ---
def _photo_folder(root: Path, classes: dict[str, tuple[int, int, int]], per_class: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, color in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            noise = rng.integers(-30, 30, size=(40, 48, 3))
            pixels = np.clip(np.array(color) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{name}_{i}.png")
    return root


def test_folder_task_skips_unreadable_photos_with_a_counting_warning(tmp_path):
    root = _photo_folder(tmp_path / "photos", {"red": (220, 30, 30), "green": (30, 220, 30)}, 4)
    (root / "red" / "broken.png").write_bytes(b"not a png at all")
    (root / "green" / "half.png").write_bytes((root / "green" / "green_0.png").read_bytes()[:60])
    (root / "green" / "notes.txt").write_text("not an image: ignored, not counted")
    for _ in range(2):  # every call warns, not just the first one in a process
        with pytest.warns(UserWarning, match=r"skipped 2 unreadable image file\(s\)"):
            task = data.folder_task(root, image_size=32)
    assert task.classes == ["green", "red"] and task.input_size == (3, 32, 32)
    # 4 readable each: 1 test (30 %), then 1 of the other 3 to validate (20 %, at least 1), 2 to train
    assert len(task.train) == 4 and len(task.val) == 2 and len(task.test) == 2
    for ds in (task.train, task.val, task.test):
        for i in range(len(ds)):
            r, g, _ = ds.raw_image(i).float().mean((1, 2)).tolist()
            assert (g > r) == (ds.labels[i].item() == 0)  # label 0 is "green": the images match their folder


def test_folder_task_n_per_class_and_split_are_reproducible(tmp_path):
    root = _photo_folder(tmp_path / "photos", {"a": (200, 200, 0), "b": (0, 0, 200), "c": (90, 90, 90)}, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing unreadable here: no warning at all
        t1 = data.folder_task(root, 2, image_size=32, seed=5)
        t2 = data.folder_task(root, 2, image_size=32, seed=5)
    assert torch.bincount(t1.train.labels).tolist() == [2, 2, 2]
    assert torch.bincount(t1.test.labels).tolist() == [2, 2, 2]  # round(5 * 0.3)
    assert torch.equal(t1.train.images, t2.train.images) and t1.fingerprint == t2.fingerprint


def test_one_class_folder_is_refused(tmp_path):
    root = _photo_folder(tmp_path / "photos", {"only": (10, 10, 10)}, 3)
    with pytest.raises(ValueError, match=r"has 1 class folder\(s\) \['only'\]; a classifier needs at least 2"):
        data.folder_task(root)


def test_class_with_a_single_readable_photo_is_refused(tmp_path):
    root = _photo_folder(tmp_path / "photos", {"cats": (10, 10, 10), "dogs": (200, 10, 10)}, 3)
    for p in sorted((root / "dogs").iterdir())[1:]:
        p.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipped 2"), \
            pytest.raises(ValueError, match=r"class folder 'dogs' has 1 readable image\(s\); each class needs at least 3"):
        data.folder_task(root)


def test_missing_or_empty_photo_folder_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; make it with one sub-folder per class"):
        data.folder_task(tmp_path / "nope")
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no class sub-folders with images"):
        data.folder_task(tmp_path / "empty")


@pytest.mark.parametrize("fraction", [0, 1, 1.5])
def test_folder_task_test_fraction_must_be_between_0_and_1(tmp_path, fraction):
    root = _photo_folder(tmp_path / "photos", {"a": (1, 2, 3), "b": (3, 2, 1)}, 2)
    with pytest.raises(ValueError, match=f"test_fraction must be between 0 and 1, got {fraction}"):
        data.folder_task(root, test_fraction=fraction)


def test_photo_tasks_are_normalised_for_their_backbone(pets_root):
    """Same photos, the pixels scaled the way each backbone was trained; cached features must not mix them."""
    lite = data.pets_task("cat_vs_dog", 2, image_size=32, root=pets_root)
    resnet = data.pets_task("cat_vs_dog", 2, image_size=32, root=pets_root, backbone="resnet18")
    assert lite.train.normalization == ((0.5,) * 3, (0.5,) * 3)
    assert resnet.train.normalization == (IMAGENET_MEAN, IMAGENET_STD)
    assert torch.equal(lite.train.images, resnet.train.images) and lite.fingerprint != resnet.fingerprint
    raw = lite.train.raw_image(0).float() / 255
    assert torch.allclose(lite.train[0][0], (raw - 0.5) / 0.5)
    assert torch.allclose(resnet.train[0][0],
                          (raw - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1))
    assert (lite.kind, lite.normalization) == ("photos", lite.train.normalization)
    assert resnet.normalization == resnet.train.normalization  # the task says what its pixels were scaled with


# ---------------------------------------------------------------------- kind and normalisation ---
def test_tasks_say_what_their_inputs_are_and_how_they_were_normalised(tmp_path):
    """Code that picks a model or draws the images asks the task (``kind``), never its input size."""
    from tlwidgets.experiments import subset_task
    from tlwidgets.transfer import build_model

    digits = data.mnist_target_task(4, test_per_class=2, root=BUNDLED)
    assert digits.kind == "digits" and digits.normalization == ((inputs.MNIST_MEAN,), (inputs.MNIST_STD,))
    pixels = digits.train.tensors[0] * inputs.MNIST_STD + inputs.MNIST_MEAN
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6  # undoing the stated normalisation gives 0..1
    few = subset_task(digits, 2)
    assert (few.kind, few.normalization) == (digits.kind, digits.normalization)
    assert build_model("scratch", few).name.startswith("digit_cnn")  # chosen by kind, kept through the subset
    root = _photo_folder(tmp_path / "photos", {"a": (200, 30, 30), "b": (30, 30, 200)}, 4)
    photos = data.folder_task(root, image_size=32, backbone="resnet18")
    assert photos.kind == "photos" and photos.normalization == (IMAGENET_MEAN, IMAGENET_STD)
    # a task built by hand is "custom" unless it says otherwise; the same 1x28x28 tensors as digits do not
    # make it one
    x = torch.zeros(4, 1, 28, 28)
    hand = data.Task("by hand", ["a", "b"], torch.utils.data.TensorDataset(x, torch.tensor([0, 1, 0, 1])),
                     torch.utils.data.TensorDataset(x, torch.tensor([0, 1, 0, 1])), input_size=(1, 28, 28))
    assert hand.kind == "custom" and hand.normalization is None
    assert build_model("scratch", hand).name == "small_cnn"
    with pytest.raises(ValueError, match=r"unknown task kind 'digit'; choose one of \('digits', 'photos', "
                                         r"'custom'\); did you mean 'digits'\?"):
        data.Task("typo", ["a"], hand.train, hand.test, kind="digit")


def test_domain_converters_keep_labels_and_change_only_the_form(tiny_data):
    from torch.utils.data import TensorDataset

    from tlwidgets.data import ImageTensorDataset, as_digits, as_photos
    from tlwidgets.inputs import MNIST_MEAN, MNIST_STD

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


def test_converted_tasks_keep_val_and_every_field_the_conversion_does_not_change():
    """as_photos / as_digits copy the task with dataclasses.replace: val (and its note) survive (issue 21, 25)."""
    from tlwidgets.data import as_digits, as_photos

    task = data.mnist_target_task(3, test_per_class=2, root=data.REPO_DATASETS, val_per_class=4)
    assert task.val is not None
    photos = as_photos(task, image_size=32)
    assert len(photos.val) == len(task.val) == 20 and photos.val_note == task.val_note
    assert torch.equal(data.dataset_labels(photos.val), data.dataset_labels(task.val))
    assert photos.n_per_class == 3 and photos.classes == task.classes and photos.kind == "photos"
    assert photos.normalization == inputs.backbone_normalization("efficientnet_lite0") == photos.train.normalization
    digits = as_digits(photos)
    assert len(digits.val) == 20 and digits.kind == "digits" and digits.normalization == inputs.MNIST_NORMALIZATION
    assert digits.val.tensors[0].shape[1:] == (1, 28, 28) and digits.fingerprint not in ("", photos.fingerprint)
    # a hand-built task without val converts too, and keeps none
    bare = Task("bare", task.classes, task.train, task.test, input_size=(1, 28, 28), kind="digits")
    assert as_photos(bare, image_size=32).val is None and as_photos(bare, image_size=32).fingerprint
    # the augmentation of the source domain does not apply to the new one
    augmented = Task("aug", task.classes, task.train, task.test, input_size=(1, 28, 28), augment=lambda x: x)
    assert as_photos(augmented, image_size=32).augment is None


def test_one_label_reader_for_every_kind_of_dataset():
    from torch.utils.data import Subset, TensorDataset

    from tlwidgets.data import ImageTensorDataset

    x = torch.zeros(5, 1, 2, 2)
    y = torch.tensor([2, 0, 1, 1, 0])
    photos = ImageTensorDataset(torch.zeros(5, 3, 2, 2, dtype=torch.uint8), y, (0.5,) * 3, (0.5,) * 3)

    class Targets(torch.utils.data.Dataset):   # torchvision's datasets keep a ``targets`` tensor
        targets = y

        def __len__(self):
            return 5

        def __getitem__(self, i):
            raise AssertionError("the reader must not touch the images")

    class Generic(torch.utils.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return x[i], int(y[i])

    for ds in (TensorDataset(x, y), photos, Targets(), Generic()):
        assert data.dataset_labels(ds).tolist() == [2, 0, 1, 1, 0], type(ds).__name__
        assert data.dataset_labels(Subset(ds, [4, 0])).tolist() == [0, 2]
    xs, ys = data.dataset_tensors(Generic())
    assert xs.shape == (5, 1, 2, 2) and ys.tolist() == [2, 0, 1, 1, 0] and ys.dtype == torch.long


def test_a_hand_built_task_takes_its_normalisation_from_its_photo_datasets():
    """``Task.normalization`` is what the model check reads; a hand-built photo task must not leave it empty."""
    from tlwidgets.data import ImageTensorDataset

    photos = ImageTensorDataset(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]), (0.5,) * 3, (0.25,) * 3)
    assert Task("t", ["a", "b"], photos, photos).normalization == ((0.5,) * 3, (0.25,) * 3)
    given = Task("t", ["a", "b"], photos, photos, normalization=((0,) * 3, (1,) * 3))
    assert given.normalization == ((0.0,) * 3, (1.0,) * 3)   # an explicit one wins, as floats
    from torch.utils.data import TensorDataset

    plain = TensorDataset(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]))
    assert Task("t", ["a", "b"], plain, plain).normalization is None

