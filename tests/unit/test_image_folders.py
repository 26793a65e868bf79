"""Photos as an ImageFolder tree (lesson 9): the shipped pets and a student's own folder, split into train/val/test."""
from __future__ import annotations

import os

import pytest
from PIL import Image
from torchvision import datasets

from tlwidgets.data import DataMissingError
from tlwidgets.data.image_folders import SPLIT_FOLDERS, has_split_folders, pets_image_folder, split_image_folder
from tlwidgets.data.pets import read_pet_annotations
from tlwidgets.data.roots import PETS_SPEC, find_dataset


def _own_folder(root, counts):
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 20 % 255, 10, 10)).save(root / cls / f"{cls}_{i}.jpg")
    return root


def _files(tree):
    return {s: sorted(p.name for p in (tree / s).rglob("*.jpg")) for s in SPLIT_FOLDERS}


def test_own_folder_is_split_per_class_disjoint_and_reproducible(tmp_path):
    src = _own_folder(tmp_path / "mine", {"apple": 10, "pear": 5})
    tree = split_image_folder(src, tmp_path / "a", seed=3)
    files = _files(tree)
    assert sum(map(len, files.values())) == 15
    assert not (set(files["train"]) & set(files["val"]) or set(files["val"]) & set(files["test"])
                or set(files["train"]) & set(files["test"]))
    for split in SPLIT_FOLDERS:   # every class in every split: ImageFolder gives the same class list
        assert datasets.ImageFolder(tree / split).classes == ["apple", "pear"]
    assert _files(split_image_folder(src, tmp_path / "b", seed=3)) == files
    assert _files(split_image_folder(src, tmp_path / "c", seed=4)) != files
    linked = next((tree / "train" / "apple").iterdir())
    assert os.path.samefile(linked, src / "apple" / linked.name)   # a link, not a copy


def test_own_folder_with_its_own_split_is_used_as_is(tmp_path):
    for split in SPLIT_FOLDERS:
        _own_folder(tmp_path / "mine" / split, {"a": 1, "b": 1})
    assert has_split_folders(tmp_path / "mine")
    assert split_image_folder(tmp_path / "mine") == tmp_path / "mine"


@pytest.mark.parametrize("counts, needle", [({"only": 5}, "at least 2"), ({"a": 5, "b": 2}, "fewer than 3")])
def test_own_folder_that_cannot_be_split_is_refused_by_name(tmp_path, counts, needle):
    src = _own_folder(tmp_path / "mine", counts)
    with pytest.raises(ValueError, match=needle) as err:
        split_image_folder(src, tmp_path / "out")
    assert "mine" in str(err.value)


def test_missing_folder_and_bad_fractions_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="one sub-folder of photos per class"):
        split_image_folder(tmp_path / "nope")
    src = _own_folder(tmp_path / "mine", {"a": 4, "b": 4})
    with pytest.raises(ValueError, match="val_fraction"):
        split_image_folder(src, tmp_path / "out", val_fraction=1.5)


def test_pets_folder_follows_the_official_split_lists(tmp_path):
    try:
        root = find_dataset(PETS_SPEC)
    except DataMissingError as exc:
        pytest.skip(str(exc).splitlines()[0])
    tree = pets_image_folder("cat_vs_dog", 10, dest=tmp_path / "pets", seed=0)
    files = _files(tree)
    test_names, _, _ = read_pet_annotations(root, "test")
    assert files["test"] == sorted(test_names)
    assert len(files["train"]) == 20 and not set(files["train"]) & set(files["val"])
    assert datasets.ImageFolder(tree / "train").classes == ["cat", "dog"]
    # a second call finds the finished tree instead of rebuilding it
    assert pets_image_folder("cat_vs_dog", 10, dest=tmp_path / "pets", seed=0) == tree
