"""Record the runs the Voilà app replays: apps/logs/dogs_to_cats.json.

    .venv/bin/python apps/record_demo_log.py   (a few minutes on 2 CPU cores)

Three runs with the course's current protocol (``run_strategy``: validation split, best epoch kept,
test read once; the rows carry validation, balanced accuracy, chance and majority): feature
extraction, from scratch, and fine-tuning above group 8, all labelled images, as many epochs as
the app's default run, at 128 px, on the photos a fresh clone ships (``datasets/``, the data-root
rule's default), through the same Dashboard the app shows, saved with ``Dashboard.save_log``.
Numbers in the log are what this machine measured; re-run it after a change to the protocol.
"""
import sys
from pathlib import Path

from tlwidgets.widgets import Dashboard

OUT = Path(__file__).resolve().parent / "logs" / "dogs_to_cats.json"


def main(epochs: int = 30) -> int:
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
