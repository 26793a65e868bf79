"""Shared by the dataset builders in scripts/: the SHA256SUMS manifest and the README sections of datasets/.

Each builder owns a prefix of ``datasets/SHA256SUMS`` (``MNIST/``, ``oxford-iiit-pet/``, ``text/``) and a
marked section of ``datasets/README.md``; rewriting one never touches the others.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO / "datasets"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def read_sums(path: Path) -> dict[str, str]:
    """``relative path -> sha256`` from a ``sha256sum``-style file (missing file: empty)."""
    sums: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                digest, rel = line.split(maxsplit=1)
                sums[rel.lstrip("*").strip()] = digest
    return sums


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_sums(prefix: str, files: list[Path], sums_path: Path = DATASETS / "SHA256SUMS") -> int:
    """Replace every ``prefix`` entry of the manifest by the sha256 of ``files`` (paths under datasets/)."""
    sums = {rel: d for rel, d in read_sums(sums_path).items() if not rel.startswith(prefix)}
    for f in files:
        sums[f.relative_to(sums_path.parent).as_posix()] = sha256_file(f)
    _write_atomic(sums_path, "".join(f"{sums[rel]}  {rel}\n" for rel in sorted(sums)))
    return len(files)


def replace_section(name: str, body: str, readme: Path = DATASETS / "README.md") -> None:
    """Put ``body`` between ``<!-- name:begin -->`` and ``<!-- name:end -->`` (appended when absent)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = readme.read_text() if readme.exists() else "# Bundled data\n"
    block = f"{begin}\n{body.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    _write_atomic(readme, text)
