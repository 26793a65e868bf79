"""Ship the Oxford-IIIT Pet subset in datasets/oxford-iiit-pet/ (torchvision's layout): a clone runs every lesson.

Two sources, one result:

    python scripts/build_pets_subset.py                       # from ../shared/datasets (verified copy)
    python scripts/build_pets_subset.py --shared DIR          # from another curated copy with its SHA256SUMS
    python scripts/build_pets_subset.py --full DIR            # rebuild from a full Oxford-IIIT Pet download

From the shared folder every file is verified against that folder's ``SHA256SUMS`` before it is copied
(a mismatch stops the build and names the file). A larger subset there is taken whole, so the lessons'
numbers follow it; the build refuses to let ``datasets/`` grow past 40 MB.

From a full download (``images/*.jpg`` + ``annotations/``), the file list fixed in the repo
(``datasets/oxford-iiit-pet/sources.csv`` and the three annotation lists) says which photos to take; each is
re-encoded as the shared subset was (RGB, longer side at most 256 px, Lanczos, JPEG quality 90), so the
result is the same photos with the same splits (bytes may differ with the Pillow version; the manifest is
rewritten from what was written).

Either way the script rewrites the ``oxford-iiit-pet/`` lines of ``datasets/SHA256SUMS`` and the pets
section of ``datasets/README.md`` (provenance from sources.csv, licence, citation).
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
from collections import Counter
from pathlib import Path

from dataset_manifest import DATASETS, REPO, read_sums, replace_section, sha256_file, update_sums

from tlwidgets.table import Column, Table

PREFIX = "oxford-iiit-pet/"
MAX_DATASETS_BYTES = 40 * 2**20
ANNOTATIONS = ("annotations/list.txt", "annotations/trainval.txt", "annotations/test.txt")
LONG_SIDE, QUALITY = 256, 90


class BuildError(RuntimeError):
    pass


def copy_verified(shared: Path, datasets: Path = DATASETS) -> list[Path]:
    """Copy every ``oxford-iiit-pet/`` file listed in ``shared/SHA256SUMS``, each checked before it is copied."""
    sums = {rel: d for rel, d in read_sums(shared / "SHA256SUMS").items() if rel.startswith(PREFIX)}
    if not sums:
        raise BuildError(f"{shared / 'SHA256SUMS'} lists no {PREFIX} files: is {shared} the shared datasets folder?")
    bad = [rel for rel, digest in sorted(sums.items())
           if not (shared / rel).is_file() or sha256_file(shared / rel) != digest]
    if bad:
        raise BuildError(f"{len(bad)} file(s) in {shared} are missing or do not match its SHA256SUMS, e.g. "
                         f"{bad[:3]}; nothing was copied")
    out = datasets / "oxford-iiit-pet"
    if out.exists():
        shutil.rmtree(out)
    written = []
    for rel in sorted(sums):
        dest = datasets / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / rel, dest)
        written.append(dest)
    return written


def rebuild_from_full(full: Path, datasets: Path = DATASETS) -> list[Path]:
    """Re-encode the photos named in the repo's fixed file list from a full Oxford-IIIT Pet download."""
    from PIL import Image, ImageOps

    out = datasets / "oxford-iiit-pet"
    listing = out / "sources.csv"
    if not listing.exists():
        raise BuildError(f"{listing} (the fixed file list) is missing: restore it from git first")
    rows = list(csv.DictReader(listing.open()))
    missing = [r["image"] for r in rows if not (full / "images" / f"{r['image']}.jpg").is_file()]
    if missing:
        raise BuildError(f"{full / 'images'} lacks {len(missing)} of the {len(rows)} photos, e.g. {missing[:3]}: "
                         "is it the full Oxford-IIIT Pet download (images.tar.gz extracted)?")
    written = [out / "sources.csv"] + [out / a for a in ANNOTATIONS]
    (out / "images").mkdir(parents=True, exist_ok=True)
    for r in rows:
        with Image.open(full / "images" / f"{r['image']}.jpg") as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            if max(im.size) > LONG_SIDE:
                scale = LONG_SIDE / max(im.size)
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                               Image.LANCZOS)
            dest = out / "images" / f"{r['image']}.jpg"
            im.save(dest, "JPEG", quality=QUALITY)
            written.append(dest)
    return written


def provenance(rows: list[dict]) -> str:
    """The README section: what is here, where every photo came from, licence and citation."""
    counts = Counter((r["breed"], r["species"], r["split"]) for r in rows)
    breeds = sorted({(r["breed"], r["species"]) for r in rows}, key=lambda b: b[0].lower())
    repos = Counter((r["source_repo"], r["source_commit"]) for r in rows)
    species = Counter(r["species"] for r in rows)
    splits = Counter(r["split"] for r in rows)
    lines = [
        "## `oxford-iiit-pet/` — a curated subset of the Oxford-IIIT Pet photos (torchvision layout)",
        "",
        f"{len(rows)} photos of all {len(breeds)} breeds ({species['1']} cat, {species['2']} dog photos): "
        f"{splits['trainval']} `trainval`, {splits['test']} `test`, with the official-format annotation lists "
        "`annotations/{list,trainval,test}.txt`, so `torchvision.datasets.OxfordIIITPet(root, download=False)` "
        "reads them. Built by `python scripts/build_pets_subset.py` (verified copy of `../shared/datasets`, or a "
        "rebuild from a full download with `--full DIR`).",
        "",
        "- **Original**: https://www.robots.ox.ac.uk/~vgg/data/pets/ (Visual Geometry Group, University of Oxford; "
        "IIIT Hyderabad).",
        "- **Citation**: O. M. Parkhi, A. Vedaldi, A. Zisserman, C. V. Jawahar, \"Cats and Dogs\", *IEEE Conference "
        "on Computer Vision and Pattern Recognition (CVPR)*, 2012.",
        "- **Licence**: Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0). The copyright of "
        "the photos stays with their owners. This subset is an adaptation shared under the same licence.",
        "- **Changes**: each photo decoded, converted to RGB, shrunk so that its longer side is at most 256 px "
        "(Lanczos), saved as JPEG quality 90 under its original name. At most 100 photos per breed; 34 breeds have "
        "10–21. Split: Abyssinian, Bengal and american_bulldog follow the official split; for the other 34 "
        "breeds the first 70 % by image number are `trainval`, the rest `test` (their official split lists were "
        "not available), so `test` is not the official test split for those breeds.",
        "- **Provenance of every photo**: `oxford-iiit-pet/sources.csv` (source repository, commit, path, git blob "
        "id, original format and size, new size, split and the rule that assigned it). Source repositories:",
        "",
        Table([{"repository": f"github.com/{repo}", "commit": f"`{commit[:12]}`", "photos": n}
               for (repo, commit), n in repos.most_common()],
              [Column("repository", align="left"), Column("commit", align="left"), Column("photos", fmt=str)]
              ).to_markdown(),
        "",
        Table([{"breed": breed, "species": "cat" if sp == "1" else "dog", "trainval": counts[(breed, sp, "trainval")],
                "test": counts[(breed, sp, "test")]} for breed, sp in breeds],
              [Column("breed", align="left"), Column("species", align="left"), Column("trainval", fmt=str),
               Column("test", fmt=str)]).to_markdown(),
    ]
    return "\n".join(lines)


def datasets_bytes(datasets: Path = DATASETS) -> int:
    return sum(p.stat().st_size for p in datasets.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "datasets",
                     help="curated datasets folder with SHA256SUMS (default: ../shared/datasets)")
    src.add_argument("--full", type=Path, help="a full Oxford-IIIT Pet download (images/, annotations/)")
    parser.add_argument("--datasets", type=Path, default=DATASETS,
                        help="where to write (default: the repo's datasets/)")
    args = parser.parse_args(argv)
    out = args.datasets / "oxford-iiit-pet"
    try:
        if args.full is not None:
            written = rebuild_from_full(args.full, args.datasets)
        else:
            if not (args.shared / "SHA256SUMS").is_file():
                raise BuildError(f"{args.shared / 'SHA256SUMS'} not found: pass --shared DIR or --full DIR")
            written = copy_verified(args.shared, args.datasets)
        size = datasets_bytes(args.datasets)
        if size > MAX_DATASETS_BYTES:
            raise BuildError(f"datasets/ would hold {size / 2**20:.1f} MB, over the 40 MB budget: "
                             "ship a smaller subset")
        update_sums(PREFIX, written, args.datasets / "SHA256SUMS")
        rows = list(csv.DictReader((out / "sources.csv").open()))
        replace_section("pets", provenance(rows), args.datasets / "README.md")
    except BuildError as exc:
        print(f"build_pets_subset: {exc}", file=sys.stderr)
        return 1
    images = sum(1 for p in written if p.suffix == ".jpg")
    print(f"wrote {len(written)} files ({images} photos) to {out}; "
          f"datasets/ now {size / 2**20:.1f} MB; SHA256SUMS and README.md updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
