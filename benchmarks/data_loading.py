"""Section "data": loader throughput, and whether training waits on data."""
from __future__ import annotations

import torch
from tqdm import tqdm

from . import measure as m
from .config import Config, count, load_task


def measure(cfg: Config) -> dict:
    """img/s per (workers, augment) and, with photos, the data/compute split of full fine-tuning steps."""
    from tlwidgets import efficientnet_lite0, replace_head

    dev = cfg.device
    task = load_task(cfg, "cat_vs_dog")
    pin = cfg.cuda
    rows = []
    for w, aug in tqdm([(w, aug) for aug in (False, True) for w in (0, 2)], desc="data loading", unit="config"):
        if aug and task.augment is None:
            continue
        train_loader = task.loaders(32, augment=aug, num_workers=w, pin_memory=pin)[0]
        ips, t = m.loader_throughput(train_loader, passes=cfg.repeats, device=dev)
        rows.append({"workers": w, "pin_memory": pin, "augment": aug, "img_s": ips, "spread": t.spread,
                     "runs_s": t.runs})
    out = {"task": task.name, "n_train": count(task.train), "device": str(dev), "repeats": cfg.repeats,
           "cuda": cfg.cuda, "rows": rows, "wait": None}
    if not cfg.has_pets:
        return out
    # does training wait on data? A full fine-tuning step (every group trains), augmented batches
    model = replace_head(efficientnet_lite0(pretrained=True), task.num_classes, task.classes).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    max_batches = None if cfg.cuda else (3 if cfg.quick else 6)
    wait = []
    for w in (0, 2):
        loader = task.loaders(32, augment=True, num_workers=w, pin_memory=pin)[0]
        step(*[t.to(dev) for t in next(iter(loader))])  # warm-up
        wait.append({"workers": w, **m.data_wait(loader, step, device=dev, max_batches=max_batches)})
    out["wait"] = {"max_batches": max_batches, "rows": wait}
    return out
