"""Record the runs the Voilà app replays: apps/logs/dogs_to_cats.json.

    TLLAB_DATA=../shared/datasets .venv/bin/python apps/record_demo_log.py   (~1-2 min on 2 CPU cores)

The same three runs as Lesson 6's script for the instructor (feature extraction, from scratch,
fine-tuning above group 8, all labelled images, 8 epochs at 128 px), through the same Dashboard,
saved with ``Dashboard.save_log``. Numbers in the log are what this machine measured.
"""
import sys
from pathlib import Path

from tlwidgets.widgets import Dashboard

OUT = Path(__file__).resolve().parent / "logs" / "dogs_to_cats.json"


def main(epochs: int = 8) -> int:
    dashboard = Dashboard(kind="pets", strategy="feature_extraction", n_per_class=None, num_epochs=epochs,
                          headless=True, seed=0)
    dashboard.run_sync(strategy="feature_extraction", n_per_class=None, num_epochs=epochs)
    dashboard.run_sync(strategy="scratch", n_per_class=None, num_epochs=epochs)
    dashboard.run_sync(strategy="fine_tune", n_per_class=None, num_epochs=epochs, n_frozen=8)
    dashboard.save_log(OUT)
    for row in dashboard.results:
        print(row)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
