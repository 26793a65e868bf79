"""Sections "cached" and "boundary": training on activations cached once against recomputing the frozen part."""
from __future__ import annotations

import time

from tqdm import tqdm

from .config import Config, count, fresh_cache, load_task, task_words
from .measure import median


def _max_weight_diff(a, b) -> float:
    diffs = [(p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()) if p.requires_grad]
    return max(diffs) if diffs else 0.0


def compare_paths(cfg: Config, task, strategy: str, k: int | None, epochs: int, label: str) -> dict:
    """Train the same strategy twice with the same seed: recomputing the frozen part every epoch, then on
    activations cached once at the freeze boundary (extraction timed on its own). Returns the numbers."""
    from tlwidgets import build_model, cached_features, freeze, run_strategy
    from tlwidgets.freezing import max_frozen

    dev = cfg.device
    kw: dict = dict(num_epochs=epochs, device=dev, seed=0, progress=False)
    if k is not None:
        kw["n_frozen"] = k
    with fresh_cache(cfg, label):
        plain = run_strategy(strategy, task, cache=False, **kw)
        model = build_model(strategy, task)
        boundary = max_frozen(model) if k is None else k  # feature extraction freezes every group below the head
        freeze(model, boundary)
        t0 = time.perf_counter()
        feats = cached_features(model, task, boundary, device=dev, progress=False)
        extract_s = time.perf_counter() - t0
        cached = run_strategy(strategy, task, cache=True, **kw)
    if not cached.used_cache or feats.from_disk:
        raise RuntimeError(f"{label}: the cached path did not run on freshly extracted activations")
    plain_epoch, cached_epoch = median(plain.history["seconds"]), median(cached.history["seconds"])
    return {
        "boundary": boundary, "epochs": epochs, "extract_s": extract_s,
        "plain_epoch_s": plain_epoch, "cached_epoch_s": cached_epoch,
        "plain_epochs_s": plain.history["seconds"], "cached_epochs_s": cached.history["seconds"],
        "ratio": plain_epoch / cached_epoch if cached_epoch else None,
        "plain_total_s": sum(plain.history["seconds"]), "cached_total_s": extract_s + sum(cached.history["seconds"]),
        "plain_acc": plain.test_acc, "cached_acc": cached.test_acc,
        "max_weight_diff": _max_weight_diff(plain.model, cached.model),
        "trainable_params": cached.trainable_params, "feature_shape": list(feats.train.tensors[0].shape[1:]),
        "n_train": count(task.train), "n_test": count(task.test),
    }


def measure_cached(cfg: Config) -> dict:
    """Feature extraction with and without the feature cache (section "cached")."""
    task = load_task(cfg, "cat_breeds")
    return {"task": task_words(cfg, task),
            **compare_paths(cfg, task, "feature_extraction", None, cfg.cached_epochs, "cached")}


def measure_boundary(cfg: Config) -> dict:
    """Fine-tuning above two freeze boundaries with and without activation caching (section "boundary")."""
    from tlwidgets import build_model
    from tlwidgets.freezing import max_frozen

    task = load_task(cfg, "cat_breeds")
    top = max_frozen(build_model("fine_tune", task))
    ks = [8, 6] if top == 9 else sorted({top - 1, max(1, top - 2)}, reverse=True)
    runs = [compare_paths(cfg, task, "fine_tune", k, cfg.boundary_epochs, f"boundary-{k}")
            for k in tqdm(ks, desc="freeze boundaries", unit="boundary")]
    return {"task": task_words(cfg, task), "epochs": cfg.boundary_epochs, "num_groups": top, "runs": runs}
