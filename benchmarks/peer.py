"""Section "peer": time to a cat-vs-dog test accuracy, the course's fastest path against the PyTorch
tutorial's recipe."""
from __future__ import annotations

import time

import torch
from tqdm import tqdm

from . import measure as m
from .config import Config, clear_decoded_images, count, fresh_cache


def course_fastest_path(cfg: Config) -> dict:
    """run_strategy('feature_extraction', pets cat_vs_dog at 128 px) from JPEGs to the target, extraction included."""
    from tlwidgets import StopFlag, pets_task, run_strategy

    clear_decoded_images()
    stop = StopFlag()
    with fresh_cache(cfg, "peer-course"):
        t0 = time.perf_counter()
        tta = m.TimeToAccuracy(cfg.target_acc, t0=t0, stop=stop)
        task = pets_task("cat_vs_dog", image_size=128)
        r = run_strategy("feature_extraction", task, num_epochs=20, device=cfg.device, seed=0, progress=False,
                         observers=[tta], stop=stop)
        total = time.perf_counter() - t0
    return {"seconds_to_target": tta.seconds, "points": tta.points, "best_acc": tta.best, "final_acc": r.test_acc,
            "epochs": len(r.history), "total_s": total, "n_test": count(task.test)}


def tutorial_recipe(cfg: Config, backbone: str) -> dict:
    """The PyTorch "Transfer Learning for Computer Vision" tutorial's fine-tuning recipe on our data.

    Whole network trained (no freezing), SGD lr=0.001 momentum=0.9, StepLR(step_size=7, gamma=0.1),
    batch 4, RandomResizedCrop(224) + RandomHorizontalFlip for training, Resize(256) + CenterCrop(224)
    for testing, every image through the whole network every epoch. Images are decoded once at 256 px
    (short side resized, centre square kept) instead of every epoch from JPEG, which only helps it.
    """
    from torchvision.transforms import v2

    from tlwidgets import StopFlag, build_backbone, evaluate, pets_task, replace_head
    from tlwidgets.data import TransformedDataset
    from tlwidgets.infra import seed_everything

    dev = cfg.device
    clear_decoded_images()
    seed_everything(0)
    stop = StopFlag()
    t0 = time.perf_counter()
    tta = m.TimeToAccuracy(cfg.target_acc, t0=t0, stop=stop, budget_s=cfg.peer_budget_s)
    task = pets_task("cat_vs_dog", image_size=256)
    train_tf = v2.Compose([v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()])
    train_loader = torch.utils.data.DataLoader(TransformedDataset(task.train, train_tf),
                                               batch_size=cfg.peer_batch_size, shuffle=True)
    test_loader = torch.utils.data.DataLoader(TransformedDataset(task.test, v2.CenterCrop(224)), batch_size=32)
    model = replace_head(build_backbone(backbone, pretrained=True), task.num_classes, task.classes).to(dev)
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)
    epochs_done, cut = 0, ""
    for epoch in range(cfg.peer_max_epochs):
        model.train()
        bar = tqdm(train_loader, desc=f"tutorial recipe ({backbone}) epoch {epoch + 1}", unit="batch", leave=False)
        for x, y in bar:
            x, y = x.to(dev), y.to(dev)
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            if time.perf_counter() - t0 > cfg.peer_budget_s:
                cut = f"time budget of {cfg.peer_budget_s:.0f} s spent in epoch {epoch + 1}, before its evaluation"
                break
        bar.close()
        if cut:
            break
        sched.step()
        acc = evaluate(model, test_loader, device=dev)["acc"]
        epochs_done += 1
        tta.on_epoch_end({"epoch": epoch, "val_acc": acc})
        tqdm.write(f"  tutorial recipe ({backbone}): epoch {epoch + 1} test acc {acc:.1%} at {tta.elapsed:.0f} s")
        if stop.is_set():
            cut = stop.reason
            break
    return {"seconds_to_target": tta.seconds, "points": tta.points, "best_acc": tta.best, "epochs": epochs_done,
            "total_s": time.perf_counter() - t0, "stopped": cut or f"{cfg.peer_max_epochs} epochs done",
            "backbone": backbone}


def measure(cfg: Config) -> dict:
    """Both sides' time to ``cfg.target_acc``; each peer's ratio to the course (a lower bound if it never got there)."""
    settings = {"target": cfg.target_acc, "peer_batch_size": cfg.peer_batch_size,
                "peer_max_epochs": cfg.peer_max_epochs, "peer_budget_s": cfg.peer_budget_s}
    if not cfg.has_pets:
        return {"measured": False, **settings}
    from tlwidgets import DataMissingError, build_backbone

    fast = course_fastest_path(cfg)
    peers = [tutorial_recipe(cfg, "efficientnet_lite0")]
    try:
        build_backbone("resnet18", pretrained=True)
        peers.append(tutorial_recipe(cfg, "resnet18"))
        resnet = "measured"
    except DataMissingError:
        resnet = "unavailable offline (weights not cached and download.pytorch.org unreachable)"
    for p in peers:
        p["ratio"], p["ratio_is_lower_bound"] = None, False
        if fast["seconds_to_target"]:
            p["ratio_is_lower_bound"] = p["seconds_to_target"] is None
            p["ratio"] = (p["total_s"] if p["ratio_is_lower_bound"] else p["seconds_to_target"]) \
                / fast["seconds_to_target"]
    return {"measured": True, **settings, "course": fast, "peers": peers, "resnet18": resnet}
