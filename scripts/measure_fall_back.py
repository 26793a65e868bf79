"""Fine-tuning vs feature extraction on the cat breeds with one step budget, and how often "choose" falls back.

    .venv/bin/python scripts/measure_fall_back.py                 # lesson 3's quick settings, seeds 0 and 1
    .venv/bin/python scripts/measure_fall_back.py --seeds 0 1 2 3 4 --epochs 10

Every arm runs the same :class:`tlwidgets.runs.Recipe` (``num_epochs`` epochs in all: a fine-tune spends half
of them on the head alone, then unfreezes above group ``--k``), so every arm takes the same optimiser steps.
"fine_tune" keeps its best *unfrozen* epoch; "choose" keeps the head-only model when it was better on
validation (``fell_back``). Writes ``docs/measurements/fall_back.json``: every run's row, the command line
and the machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tlwidgets as tl  # noqa: E402
from tlwidgets.infra import atomic_write  # noqa: E402

KEYS = ("strategy", "seed", "n_frozen", "steps", "epochs", "best_epoch", "best_unfrozen_epoch", "fell_back",
        "val_acc", "test_acc", "balanced_acc", "chance", "majority")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=10, help="the epoch budget of every arm (lesson 3 quick: 10)")
    ap.add_argument("--k", type=int, default=8, help="groups kept frozen when fine-tuning (lesson 3: 8)")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--out", default=str(REPO / "docs" / "measurements" / "fall_back.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows, t0 = [], time.perf_counter()
    for s in args.seeds:
        cats = tl.pets_task("cat_breeds", None, image_size=args.image_size, seed=s)
        for strategy in ("feature_extraction", "fine_tune", "choose"):
            r = tl.run_strategy(strategy, cats, n_frozen=None if strategy == "feature_extraction" else args.k,
                                num_epochs=args.epochs, device="cpu", seed=s, progress=False)
            rows.append({k: r.row()[k] for k in KEYS})
            print(rows[-1], flush=True)
    out = {"command": " ".join(["scripts/measure_fall_back.py", *(argv or sys.argv[1:])]),
           "machine": f"{platform.machine()}, {platform.python_version()}, torch {torch.__version__}",
           "seconds": round(time.perf_counter() - t0, 1), "runs": rows}
    atomic_write(Path(args.out), json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
