"""Two photo measurements the lessons quote, run outside the lessons (they cost minutes on a CPU).

    .venv/bin/python scripts/measure_photos.py augment   # fine-tuning the cat breeds with and without augmentation
    .venv/bin/python scripts/measure_photos.py augment --head-epochs 0 --seeds 0 1 2 --name augment_no_head_first
    .venv/bin/python scripts/measure_photos.py scratch   # EfficientNet-Lite0 from random weights on the cat breeds
    .venv/bin/python scripts/measure_photos.py scratch --sizes 128 --n-per-class 5 --epochs 20 --lrs 1e-3 3e-3 \
        --seeds 0 1 --name scratch_128_long   # the longer budget lesson 4 cannot afford in quick mode

Both run on whatever data the data-root rule finds (a fresh clone: the repo's ``datasets/``), at lesson 3's
quick-mode settings unless told otherwise, one run per seed, and write a JSON file into ``docs/measurements/``
(every run's row, the seed spread of each arm, the command line and the machine). Lesson 3 quotes the
augmentation result, lessons 2 and 4 the cost and accuracy of the same-architecture scratch baseline.

Why validation: whether augmentation goes into the recipe is a choice, so it is made on the validation split;
the test accuracy is written down too (each run reads it once) but plays no part in the choice.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tlwidgets as tl  # noqa: E402
from tlwidgets.experiments import subset_task  # noqa: E402
from tlwidgets.metrics import seed_spread  # noqa: E402

OUT = REPO / "docs" / "measurements"


def _spread(values) -> dict:
    s = seed_spread(values)
    return {"mean": round(s.mean, 4), "std": round(s.std, 4), "min": round(s.min, 4), "max": round(s.max, 4),
            "n": s.n}


def augment(args) -> dict:
    """Fine-tune above group ``k`` with and without ``augment=True``, same seeds, same epochs."""
    rows = []
    for s in args.seeds:
        cats = tl.pets_task("cat_breeds", None, image_size=args.image_size, seed=s)
        for aug in (False, True):
            t0 = time.perf_counter()
            r = tl.run_strategy("fine_tune", cats, n_frozen=args.k, num_epochs=args.epochs, augment=aug,
                                head_epochs=args.head_epochs, device="cpu", seed=s, progress=False)
            rows.append({"seed": s, "augment": aug, "val_acc": round(r.val_acc, 4), "best_epoch": r.best_epoch,
                         "test_acc": round(r.test_acc, 4), "balanced_acc": round(r.test.balanced_accuracy, 4),
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(rows[-1], flush=True)
    arms = {str(a): {"val_acc": _spread(r["val_acc"] for r in rows if r["augment"] == a),
                     "test_acc": _spread(r["test_acc"] for r in rows if r["augment"] == a),
                     "seconds": _spread(r["seconds"] for r in rows if r["augment"] == a)} for a in (False, True)}
    gaps = [next(r["val_acc"] for r in rows if r["seed"] == s and r["augment"])
            - next(r["val_acc"] for r in rows if r["seed"] == s and not r["augment"]) for s in args.seeds]
    spread = max(arms[a]["val_acc"]["max"] - arms[a]["val_acc"]["min"] for a in ("False", "True"))
    helps = min(gaps) > 0 and arms["True"]["val_acc"]["mean"] - arms["False"]["val_acc"]["mean"] > spread
    head = "head first (the recipe)" if args.head_epochs is None else f"head_epochs={args.head_epochs}"
    return {"what": f"fine-tune cat breeds above group {args.k}, {head}, {args.epochs} epochs, {args.image_size} px, "
                    "augment=False vs True (RandomResizedCrop scale 0.6-1 + horizontal flip)",
            "rows": rows, "arms": arms, "val_gap_per_seed": [round(g, 4) for g in gaps],
            "largest_seed_spread": round(spread, 4),
            "verdict": "helps beyond the seed spread" if helps else "no gain beyond the seed spread"}


def scratch(args) -> dict:
    """EfficientNet-Lite0 from random weights (``scratch_arch="same"``): accuracy and cost per size and epochs."""
    rows = []
    for size in args.sizes:
        for s in args.seeds:
            cats = tl.pets_task("cat_breeds", None, image_size=size, seed=s)
            if args.n_per_class is not None:   # equal photos per breed (the rarest breed caps it), seeded draw
                cats = subset_task(cats, args.n_per_class, seed=s)
            t0 = time.perf_counter()
            # a list of rates: each is trained, validation chooses one, only that one reads the test split
            r = tl.run_strategy("scratch", cats, scratch_arch="same", num_epochs=args.epochs, device="cpu", seed=s,
                                lr=args.lrs if args.lrs else None, progress=False)
            rows.append({"image_size": size, "seed": s, "n_per_class": args.n_per_class, "epochs": args.epochs,
                         "lr": r.lr, "selection": r.selection, "val_acc": round(r.val_acc, 4),
                         "best_epoch": r.best_epoch, "test_acc": round(r.test_acc, 4),
                         "balanced_acc": round(r.test.balanced_accuracy, 4), "one_class": r.single_class,
                         "epoch_s": round(min(r.history["seconds"]), 2),
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(rows[-1], flush=True)
    per = "all photos" if args.n_per_class is None else f"{args.n_per_class} photos per breed"
    lrs = "default lr" if not args.lrs else f"lr chosen on validation from {args.lrs}"
    return {"what": f"EfficientNet-Lite0 from random weights on the cat breeds, {per}, {args.epochs} epochs, {lrs}",
            "rows": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("augment", help="fine-tuning with and without augmentation")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    a.add_argument("--epochs", type=int, default=10)          # lesson 3 quick mode: pet_epochs
    a.add_argument("--image-size", type=int, default=128)     # lesson 3 quick mode
    a.add_argument("--k", type=int, default=8)
    a.add_argument("--head-epochs", type=int, default=None,
                   help="0: no head-first stage, so every kept epoch was trained (default: the recipe)")
    a.add_argument("--name", default="augment", help="output file docs/measurements/NAME.json")
    s = sub.add_parser("scratch", help="same-architecture scratch on the cat breeds")
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    s.add_argument("--epochs", type=int, default=10)
    s.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    s.add_argument("--n-per-class", type=int, default=None, help="photos per breed (default: all)")
    s.add_argument("--lrs", type=float, nargs="+", default=None, help="learning-rate candidates, chosen on val")
    s.add_argument("--name", default="scratch", help="output file docs/measurements/NAME.json")
    args = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    t0 = time.perf_counter()
    result = (augment if args.what == "augment" else scratch)(args)
    result.update({"command": "scripts/measure_photos.py " + " ".join(sys.argv[1:] if argv is None else argv),
                   "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
                   "data": os.environ.get("TLLAB_DATA") or "data-root rule (repo datasets/ on a fresh clone)",
                   "total_seconds": round(time.perf_counter() - t0, 1)})
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{args.name}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))
    print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
