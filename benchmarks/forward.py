"""Section "forward": the backbone's forward pass against this machine's matmul ceiling."""
from __future__ import annotations

import torch
from tqdm import tqdm

from . import measure as m
from .config import Config


def measure(cfg: Config) -> dict:
    """FLOP/s of a large matmul, FLOPs per image, and img/s per (size, batch, channels_last)."""
    from tlwidgets import efficientnet_lite0

    dev = cfg.device
    n = 8192 if cfg.cuda else 2048
    rate, mt = m.matmul_flop_rate(n, repeats=max(5, cfg.repeats), device=dev)
    model = efficientnet_lite0(pretrained=True)
    sizes = [128, 224]
    flops = {s: m.count_flops(model, (3, s, s), device=dev) for s in sizes}
    rows = []
    for s, b in tqdm([(s, b) for s in sizes for b in cfg.forward_batches], desc="forward pass", unit="config"):
        # channels_last off/on, then on with BatchNorms folded (what extract_features and predict_proba run),
        # interleaved, so a change in machine load cannot masquerade as a layout or folding effect
        variants = {"plain": (False, False), "channels_last": (True, False), "folded": (True, True)}
        cases = {name: m.forward_step(model, batch_size=b, image_size=s, channels_last=cl, folded=fold, device=dev)
                 for name, (cl, fold) in variants.items()}
        ceiling = rate / flops[s]
        for name, t in m.interleave(cases, repeats=cfg.repeats, device=dev).items():
            cl, fold = variants[name]
            ips = b / t.median
            rows.append({"image_size": s, "batch": b, "channels_last": cl, "folded": fold, "img_s": ips,
                         "ceiling_img_s": ceiling, "of_ceiling": ips / ceiling, "spread": t.spread,
                         "runs_s": t.runs})
    return {"matmul_n": n, "device": str(dev), "threads": torch.get_num_threads(), "matmul_flops": rate,
            "matmul_gflops_runs": [2 * n ** 3 / r / 1e9 for r in mt.runs], "flops_per_image": flops,
            "repeats": cfg.repeats, "cuda": cfg.cuda, "rows": rows}
