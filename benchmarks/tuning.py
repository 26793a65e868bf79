"""Section "tuning": knobs that could make the course faster, each set of variants timed in alternation."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from tqdm import tqdm

from . import measure as m
from .config import REPO, Config, fresh_cache

_OMP_CHILD = """
import json, sys
sys.path.insert(0, {repo!r})
from benchmarks import measure
from tlwidgets import efficientnet_lite0
step = measure.forward_step(efficientnet_lite0(), batch_size=32, image_size=128, channels_last=True)
t = measure.time_runs(step, repeats={repeats}, warmup=1)
print(json.dumps({{"img_s": 32 / t.median}}))
"""


def omp_wait_policy(cfg: Config) -> dict[str, float]:
    """Forward img/s with the OpenMP wait policy as the environment leaves it and with PASSIVE, each in
    fresh interpreters (the policy cannot change inside a running process), alternating."""
    code = _OMP_CHILD.format(repo=str(REPO), repeats=cfg.repeats)
    results: dict[str, list[float]] = {"default": [], "PASSIVE": []}
    for _ in tqdm(range(cfg.repeats), desc="OpenMP wait policy", unit="round"):
        for name, runs in results.items():
            env = dict(os.environ)
            if name == "PASSIVE":
                env["OMP_WAIT_POLICY"] = "PASSIVE"
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                 check=True, timeout=900).stdout
            runs.append(json.loads(out.strip().splitlines()[-1])["img_s"])
    return {name: m.median(v) for name, v in results.items()}


def measure(cfg: Config) -> dict:
    """img/s per variant of threads, OpenMP wait policy, grad mode, channels_last, batch, image size, compile."""
    from tlwidgets import efficientnet_lite0

    dev = cfg.device
    model = efficientnet_lite0(pretrained=True)
    data: dict = {"repeats": cfg.repeats, "device": str(dev), "cuda": cfg.cuda, "quick": cfg.quick}

    def fwd(**kw) -> Callable[[], None]:
        kw.setdefault("batch_size", 32)
        kw.setdefault("image_size", 128)
        kw.setdefault("channels_last", True)
        return m.forward_step(model, device=dev, **kw)

    def rates(cases: dict, per_call: Callable) -> dict:
        """images/s per case from interleaved timings; ``per_call`` maps a case to its batch size."""
        timings = m.interleave(cases, repeats=cfg.repeats, device=dev)
        return {k: per_call(k) / t.median for k, t in timings.items()}

    if dev.type == "cpu":  # threads: a GPU run is not limited by them
        orig = torch.get_num_threads()
        step = fwd()
        try:
            t = rates({n: (lambda n=n: torch.set_num_threads(n), step) for n in sorted({1, orig, 2 * orig})},
                      lambda n: 32)
        finally:
            torch.set_num_threads(orig)
        data["threads"] = {"usable_cores": m.machine_info(dev)["usable_cores"], "default": orig,
                           "rows": [{"threads": n, "img_s": v, "vs_default": v / t[orig]} for n, v in t.items()]}
        # OpenMP wait policy: fixed when a process starts, so each variant runs in a fresh interpreter
        w = omp_wait_policy(cfg)
        data["omp_wait_policy"] = {"inherited": os.environ.get("OMP_WAIT_POLICY") or "unset",
                                   "rows": [{"policy": k, "img_s": v, "vs_default": v / w["default"]}
                                            for k, v in w.items()]}
    g = rates({name: fwd(grad_mode=name) for name in m.GRAD_MODES}, lambda _: 32)
    data["grad_modes"] = [{"mode": k, "img_s": v, "vs_inference_mode": v / g["inference_mode"]} for k, v in g.items()]

    rows = []
    for s in tqdm([128] if cfg.quick else [128, 224], desc="channels_last", unit="size"):
        cases = {("forward", cl): fwd(image_size=s, channels_last=cl) for cl in (False, True)}
        cases.update({("train", cl): m.train_step(model, batch_size=32, image_size=s, channels_last=cl, device=dev)
                      for cl in (False, True)})
        r = rates(cases, lambda _: 32)
        rows.append({"image_size": s, "forward_off": r["forward", False], "forward_on": r["forward", True],
                     "forward_gain": r["forward", True] / r["forward", False], "train_off": r["train", False],
                     "train_on": r["train", True], "train_gain": r["train", True] / r["train", False]})
    data["channels_last"] = rows

    b = rates({n: fwd(batch_size=n) for n in ([16, 32, 64] if cfg.quick else [8, 16, 32, 64, 128])}, lambda n: n)
    data["batch"] = [{"batch": n, "img_s": v} for n, v in b.items()]

    # image size: speed, and (full runs with pets) what it costs in accuracy
    sizes = [96, 128, 160] if cfg.quick else [96, 128, 160, 224]
    speed = rates({s: fwd(image_size=s) for s in sizes}, lambda _: 32)
    size_rows = []
    for s in tqdm(sizes, desc="image size accuracy", unit="size", disable=cfg.quick or not cfg.has_pets):
        acc = None
        if cfg.has_pets and not cfg.quick:
            from tlwidgets import pets_task, run_strategy

            with fresh_cache(cfg, f"size-{s}"):
                acc = run_strategy("feature_extraction", pets_task("cat_vs_dog", image_size=s), num_epochs=10,
                                   device=dev, seed=0, progress=False).test_acc
        size_rows.append({"image_size": s, "img_s": speed[s], "vs_smallest": speed[s] / speed[sizes[0]],
                          "cat_vs_dog_acc": acc})
    data["image_size"] = size_rows

    data["compile"] = None
    if cfg.compile or cfg.cuda:
        eager_step = fwd(channels_last=False)
        compiled = torch.compile(model.eval().to(dev))  # the section's last use of `model`
        x = torch.randn(32, 3, 128, 128, device=dev)

        def compiled_step() -> None:
            with torch.inference_mode():
                compiled(x)

        t0 = time.perf_counter()
        compiled_step()  # the first call compiles
        m.synchronize(dev)
        compile_s = time.perf_counter() - t0
        r = rates({"eager": eager_step, "compiled": compiled_step}, lambda _: 32)
        gain = 1 / r["eager"] - 1 / r["compiled"]
        data["compile"] = {"eager": r["eager"], "compiled": r["compiled"], "speedup": r["compiled"] / r["eager"],
                           "compile_s": compile_s, "break_even_images": compile_s / gain if gain > 0 else None}
    return data
