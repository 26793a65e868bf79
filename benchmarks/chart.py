"""Section "chart": what the live chart costs a training run (off, headless, live without a browser)."""
from __future__ import annotations

import contextlib
import io
import time

from tqdm import tqdm

from .config import Config, count
from .measure import Timing, median

MODES = (("off", None), ("headless", True), ("live (no front end attached)", False))


def measure(cfg: Config) -> dict:
    """Median run time, draws and drawing time per chart mode, interleaved round by round."""
    from tlwidgets import fit, load_digit_model, mnist_target_task, replace_head
    from tlwidgets.infra import seed_everything
    from tlwidgets.widgets import LiveChart

    task = mnist_target_task(200, test_per_class=100)  # the shipped subset holds 100 a class
    loaders = task.loaders(32)
    train_loader, val_loader = loaders[0], loaders[1]
    # a run of the length a student watches (several seconds): the chart has a fixed cost per run (its
    # first and last frames), which a sub-second toy run would inflate into a percentage it never is in use
    epochs = 8 if cfg.quick else 20

    def run(headless: bool | None, num_epochs: int = epochs) -> tuple[float, int, float]:
        seed_everything(0)
        model = replace_head(load_digit_model(), task.num_classes, task.classes)
        chart = None if headless is None else LiveChart(title="benchmark", headless=headless)
        with contextlib.redirect_stdout(io.StringIO()):  # a headless chart prints its summary line
            t0 = time.perf_counter()
            fit(model, train_loader, val_loader, num_epochs=num_epochs, lr=1e-3, device=cfg.device, seed=0,
                progress=False, observers=[chart] if chart else [])
            seconds = time.perf_counter() - t0
        return seconds, (chart.draw_count if chart else 0), (chart.render_seconds if chart else 0.0)

    times: dict[str, list[float]] = {name: [] for name, _ in MODES}
    draws: dict[str, list[tuple[int, float]]] = {name: [] for name, _ in MODES}
    for _, headless in MODES:  # warm-up: first-touch allocations, kernel selection, matplotlib's font cache
        run(headless, 1)
    for _ in tqdm(range(cfg.repeats), desc="chart on/off", unit="round"):
        for name, headless in MODES:  # interleaved, so drifting machine load hits every mode alike
            seconds, n_draws, render = run(headless)
            times[name].append(seconds)
            draws[name].append((n_draws, render))
    off = median(times["off"])
    modes = []
    overheads, shares = [], []
    for name, _ in MODES:
        t = median(times[name])
        share = median([r / s for (_, r), s in zip(draws[name], times[name])])
        modes.append({"mode": name, "seconds": t, "ratio": t / off, "overhead": t / off - 1,
                      "draws": median([c for c, _ in draws[name]]), "draw_seconds": median([r for _, r in draws[name]]),
                      "draw_share": share, "runs_s": times[name]})
        if name != "off":
            overheads.append(t / off - 1)
            shares.append(share)
    return {"task": task.name, "n_train": count(task.train), "n_test": count(task.test), "epochs": epochs,
            "repeats": cfg.repeats, "modes": modes, "worst_overhead": max(overheads),
            "worst_draw_fraction": max(shares),
            "worst_single_draw_fraction": max(r / s for n, _ in MODES[1:] for (_, r), s in zip(draws[n], times[n])),
            "noise": Timing(times["off"]).spread}
