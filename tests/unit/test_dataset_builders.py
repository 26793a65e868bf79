"""scripts/build_pets_subset.py: a verified copy, a refusal on any altered file, and the rebuild from a full download."""
from __future__ import annotations

import csv
import importlib.util
import shutil
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
_spec = importlib.util.spec_from_file_location("build_pets_subset", REPO / "scripts" / "build_pets_subset.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
import dataset_manifest  # noqa: E402  (scripts/ is not a package)

SHIPPED = REPO / "datasets" / "oxford-iiit-pet"


def _fake_shared(tmp_path: Path, names=("Abyssinian_1", "Bengal_1")) -> Path:
    """A curated folder with a few real shipped photos, the annotation lists and its own SHA256SUMS."""
    shared = tmp_path / "shared"
    files = [f"oxford-iiit-pet/images/{n}.jpg" for n in names] + \
            [f"oxford-iiit-pet/{a}" for a in build.ANNOTATIONS] + ["oxford-iiit-pet/sources.csv"]
    for rel in files:
        (shared / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / "datasets" / rel, shared / rel)
    dataset_manifest.update_sums("oxford-iiit-pet/", [shared / rel for rel in files], shared / "SHA256SUMS")
    return shared


def test_copy_is_verified_and_writes_manifest_and_readme(tmp_path):
    shared, out = _fake_shared(tmp_path), tmp_path / "datasets"
    out.mkdir()
    (out / "SHA256SUMS").write_text("00ff  MNIST/raw/keep-me\n")
    assert build.main(["--shared", str(shared), "--datasets", str(out)]) == 0
    sums = dataset_manifest.read_sums(out / "SHA256SUMS")
    assert sums["MNIST/raw/keep-me"] == "00ff"  # other datasets' lines are left alone
    assert sums["oxford-iiit-pet/images/Bengal_1.jpg"] == dataset_manifest.sha256_file(SHIPPED / "images/Bengal_1.jpg")
    readme = (out / "README.md").read_text()
    assert "CC BY-SA 4.0" in readme and "Parkhi" in readme and "<!-- pets:begin -->" in readme
    assert build.main(["--shared", str(shared), "--datasets", str(out)]) == 0  # idempotent: one section
    assert (out / "README.md").read_text().count("<!-- pets:begin -->") == 1


def test_an_altered_file_stops_the_build_and_copies_nothing(tmp_path, capsys):
    shared, out = _fake_shared(tmp_path), tmp_path / "datasets"
    out.mkdir()
    with open(shared / "oxford-iiit-pet/images/Bengal_1.jpg", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00")
    assert build.main(["--shared", str(shared), "--datasets", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Bengal_1.jpg" in err and "nothing was copied" in err
    assert not (out / "oxford-iiit-pet").exists()


def test_rebuild_from_a_full_download_takes_the_fixed_file_list(tmp_path):
    full, out = tmp_path / "full", tmp_path / "datasets"
    rows = list(csv.DictReader((SHIPPED / "sources.csv").open()))[:3]
    (out / "oxford-iiit-pet" / "annotations").mkdir(parents=True)
    with (out / "oxford-iiit-pet" / "sources.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=rows[0].keys())
        w.writeheader()
        w.writerows(rows)
    for a in build.ANNOTATIONS:
        shutil.copyfile(SHIPPED / a, out / "oxford-iiit-pet" / a)
    (full / "images").mkdir(parents=True)
    for r in rows:  # a "full-size" original: 600 px wide, as Oxford's photos are
        Image.new("RGB", (600, 400), (200, 10, 10)).save(full / "images" / f"{r['image']}.jpg")
    assert build.main(["--full", str(full), "--datasets", str(out)]) == 0
    for r in rows:
        with Image.open(out / "oxford-iiit-pet" / "images" / f"{r['image']}.jpg") as im:
            assert im.size == (256, 171) and im.mode == "RGB"
    assert len(dataset_manifest.read_sums(out / "SHA256SUMS")) == 3 + 1 + len(build.ANNOTATIONS)


def test_rebuild_names_the_photos_a_partial_download_lacks(tmp_path, capsys):
    (tmp_path / "full" / "images").mkdir(parents=True)
    out = tmp_path / "datasets"
    shutil.copytree(SHIPPED, out / "oxford-iiit-pet", ignore=shutil.ignore_patterns("images"))
    assert build.main(["--full", str(tmp_path / "full"), "--datasets", str(out)]) == 1
    assert "lacks 740 of the 740 photos" in capsys.readouterr().err


def test_the_shipped_subset_matches_the_manifest_and_the_size_budget():
    sums = dataset_manifest.read_sums(REPO / "datasets" / "SHA256SUMS")
    pets = {rel for rel in sums if rel.startswith("oxford-iiit-pet/")}
    on_disk = {p.relative_to(REPO / "datasets").as_posix() for p in SHIPPED.rglob("*") if p.is_file()}
    assert pets == on_disk and sum(rel.endswith(".jpg") for rel in pets) >= 740
    assert build.datasets_bytes() <= build.MAX_DATASETS_BYTES
