"""The command line of ``python -m tlwidgets.data``: ``download`` a dataset, or show ``where`` data is found.

Why a module of its own: the error messages of every loader end with the
one command that fetches the data, and that command must work the same for
a student and in CI; it is kept apart from ``__main__.py`` so tests call
:func:`main` with arguments instead of spawning a process.
"""
from __future__ import annotations

import argparse
import sys

from ..infra import ChecksumError, DataMissingError
from .roots import DOWNLOADS, SPECS, candidate_roots, download

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tlwidgets.data",
                                     description="Data: where it lives, how it is checked, and the tasks the lessons "
                                                 "train on.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download", help="download a dataset (needs a network)")
    d.add_argument("name", choices=sorted(DOWNLOADS))
    d.add_argument("--root", default=None, help="target data root (default: user cache)")
    w = sub.add_parser("where", help="show the data-root search path and what each holds")
    w.add_argument("--root", default=None)
    args = parser.parse_args(argv)
    if args.cmd == "download":
        try:
            print(download(args.name, args.root))
        except (DataMissingError, ChecksumError, OSError, ValueError) as exc:  # expected: no traceback
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        for r in candidate_roots(args.root):
            have = [k for k, s in SPECS.items() if s.present_in(r)]
            print(f"{r}: {', '.join(have) or '-'}")
    return 0
