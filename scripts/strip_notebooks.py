"""Store lesson notebooks without outputs, except the cells marked ``keep_output``.

Why not plain ``nbstripout``: it honours ``keep_output`` for outputs but also
clears those cells' execution counts, and nbval then fails with "Unrun
reference cell has outputs". This script strips everything else with
nbstripout's own function and numbers the kept cells 1, 2, ... so nbval
compares them.

    python scripts/strip_notebooks.py                 # strip lessons/ and lessons/solutions/ in place
    python scripts/strip_notebooks.py --check         # exit 1 (and say which) if a notebook is not stripped
    python scripts/strip_notebooks.py --refresh FILE  # run FILE in quick mode (papermill) and store the
                                                      # new outputs of its keep_output cells, then strip

Used by ``make strip``, the pre-commit hook and tests/notebooks.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbstripout import strip_output

REPO = Path(__file__).resolve().parent.parent
DEFAULT_GLOBS = ("lessons/*.ipynb", "lessons/solutions/*.ipynb")


def is_kept(cell) -> bool:
    return cell.cell_type == "code" and bool(cell.get("metadata", {}).get("keep_output", False))


def stripped(nb):
    """A copy of ``nb`` as it should be committed."""
    nb = strip_output(copy.deepcopy(nb), keep_output=False, keep_count=False, keep_id=True)
    count = 0
    for cell in nb.cells:
        if is_kept(cell):
            count += 1
            cell.execution_count = count
            for out in cell.get("outputs", []):
                if "execution_count" in out:
                    out["execution_count"] = count
    return nb


def refresh(path: Path) -> None:
    """Execute ``path`` in quick mode and copy the outputs of its keep_output cells into it."""
    import papermill as pm

    os.environ.update({"TLLAB_HEADLESS": "1", "MPLBACKEND": "Agg"})   # the kernel inherits them
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        pm.execute_notebook(str(path), str(out), parameters={"quick": True}, kernel_name="python3",
                            cwd=str(path.parent), progress_bar=False)
        ran = nbformat.read(out, as_version=4)
    ran_code = [c for c in ran.cells
                if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]
    own_code = [c for c in nb.cells if c.cell_type == "code"]
    if len(ran_code) != len(own_code):
        raise SystemExit(f"{path}: executed copy has {len(ran_code)} code cells, the notebook {len(own_code)}")
    for mine, theirs in zip(own_code, ran_code):
        if is_kept(mine):
            mine.outputs = theirs.outputs
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: lessons/ and lessons/solutions/)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook needs stripping")
    parser.add_argument("--refresh", action="store_true",
                        help="re-run the notebooks in quick mode first and store new outputs of keep_output cells")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(p for g in DEFAULT_GLOBS for p in REPO.glob(g))
    dirty = []
    for path in paths:
        if args.refresh:
            refresh(path)
        nb = nbformat.read(path, as_version=4)
        clean = stripped(nb)
        if clean == nb:
            continue
        dirty.append(path)
        if not args.check:
            nbformat.write(clean, path)
    for path in dirty:
        print(f"{'not stripped' if args.check else 'stripped'}: {path}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
