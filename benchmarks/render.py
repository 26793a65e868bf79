"""Turn saved benchmark numbers (docs/benchmarks.json) into docs/benchmarks.md.

The measuring sections return plain data; this module only formats it and
judges it against the targets (the ``*_verdict`` and ``*_kept`` functions,
unit-tested), so the document re-renders without re-measuring:

    .venv/bin/python -m benchmarks.render            # docs/benchmarks.json -> docs/benchmarks.md
"""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from tlwidgets.table import Column, Table

from .config import REPO

__all__ = [
    "FORMAT", "VERSION", "JSON_PATH", "DOC_PATH", "markdown_table", "fmt_ratio", "fmt_seconds", "pct",
    "lessons_verdict", "cached_verdict", "chart_verdict", "threads_kept", "omp_kept", "batch_kept",
    "channels_last_kept", "compile_kept", "render_section", "render_device", "render_doc", "load", "save",
    "merge_device", "write_doc", "render_sharing", "load_sharing", "readme_table", "write_readme",
    "test_breakdown", "load_durations",
]

FORMAT, VERSION = "tlwidgets-benchmarks", 1
JSON_PATH = REPO / "docs" / "benchmarks.json"
DOC_PATH = REPO / "docs" / "benchmarks.md"
#: the sharing measurement (scripts/measure_load.py, the classroom issue): its own run, rendered on this page too
LOAD_PATH = REPO / "docs" / "load.json"
README_PATH = REPO / "README.md"
#: seconds per test file of a measured `make test` (scripts/test_durations.py): where the test command's time goes
DURATIONS_PATH = REPO / "tests" / "file_durations.json"
#: where the README's lesson table lives: rendered from the same numbers as docs/benchmarks.md, never typed
README_BEGIN, README_END = "<!-- lesson-times:begin (python -m benchmarks.render) -->", "<!-- lesson-times:end -->"
DEVICE_ORDER = {"cpu": 0, "cuda": 1, "mps": 2}

# targets the document judges against
LESSONS_TARGET_S = 600        # all lessons in quick mode under 10 minutes on a 2-core CPU
CACHED_TARGET_RATIO = 10      # cached head training at least 10x faster per epoch
CHART_TARGET_OVERHEAD = 0.05  # the live chart costs under 5 % of a run
RECHECK_MARGIN = 1.1          # a variant must beat the default by 10 % before the document suggests a change


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------
def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, align: str | None = None) -> str:
    """A GitHub Markdown table of positional rows, drawn by the project's one table type
    (:class:`tlwidgets.table.Table`); ``align`` is one letter per column, ``l`` or ``r`` (default: text left,
    numbers right). Cells are shown as given (``str``): the sections format their numbers themselves."""
    if any(len(r) != len(headers) for r in rows):
        raise ValueError(f"every row needs one cell per header ({len(headers)}), got rows of "
                         f"{sorted({len(r) for r in rows})} cells")
    if align is not None and (len(align) != len(headers) or set(align) - {"l", "r"}):
        raise ValueError(f"align needs one letter, l or r, per column ({len(headers)}), got {align!r}")
    aligns = ["auto"] * len(headers) if align is None else ["right" if a == "r" else "left" for a in align]
    columns = [Column(str(i), label=str(h), fmt=str, align=a) for i, (h, a) in enumerate(zip(headers, aligns))]
    return Table([{str(i): v for i, v in enumerate(r)} for r in rows], columns, missing="None").to_markdown()


def fmt_ratio(ratio: float | None) -> str:
    """A speed ratio as "12.3x" (three significant figures at most), or "n/a" when missing."""
    if ratio is None or ratio <= 0:
        return "n/a"
    return f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def fmt_seconds(s: float | None) -> str:
    """Seconds for humans: 0.012 s, 3.4 s, 2 min 05 s; "-" for None."""
    if s is None:
        return "-"
    if s < 1:
        return f"{s:.3f} s"
    if s < 100:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    return f"{m} min {sec:02d} s"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


# ---------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------
def lessons_verdict(total_s: float, skipped: Sequence[str]) -> str:
    """Whether every lesson ran in quick mode in under 10 minutes together."""
    if total_s >= LESSONS_TARGET_S:
        return "not met"
    return "not decided: some lessons were skipped" if skipped else "met"


def cached_verdict(ratio: float | None) -> str:
    """Whether training on cached features is at least 10x faster per epoch than recomputing them."""
    return "met" if ratio and ratio >= CACHED_TARGET_RATIO else "NOT met"


def chart_verdict(worst_overhead: float, worst_draw: float, noise: float) -> tuple[bool, str]:
    """``(met, sentence)`` for the chart's 5 % budget.

    The chart's own drawing time is measured directly; the wall-clock
    difference also carries the machine's noise, so when the chart-off runs
    alone differ by more than the budget the wall clock cannot decide.
    """
    limit = CHART_TARGET_OVERHEAD
    if worst_draw >= limit:
        return False, f"**NOT met**: the chart spent {pct(worst_draw)} of a run drawing"
    if worst_overhead < limit:
        return True, f"**met**: {pct(worst_overhead)} by wall clock, {pct(worst_draw)} of the run spent drawing"
    if noise >= limit:
        return True, (f"**met by the chart's own drawing time** ({pct(worst_draw)} of the run); the wall-clock "
                      f"difference ({pct(worst_overhead)}) is not resolvable in this run, whose chart-off runs alone "
                      f"differ by {pct(noise)}: re-run on a quiet machine")
    return False, (f"**NOT met**: {pct(worst_overhead)} by wall clock although drawing took only {pct(worst_draw)}; "
                   "the cost is in the chart's per-batch bookkeeping")


def threads_kept(rows: Sequence[dict], default: int) -> str:
    rates = {r["threads"]: r["img_s"] for r in rows}
    best = max(rates, key=lambda k: rates[k])
    out = f"threads: torch's default ({default}, one per core) kept"
    if rates[best] >= RECHECK_MARGIN * rates[default]:
        out += (f"; {best} was {rates[best] / rates[default]:.2f}x faster in this run (check on a quiet machine "
                "before changing it)")
    return out


def omp_kept(passive_vs_default: float) -> str:
    out = "OpenMP wait policy: the default (threads spin while waiting) kept"
    if passive_vs_default >= RECHECK_MARGIN:
        return out + (f"; PASSIVE was {passive_vs_default:.2f}x faster in this run: when other processes share the "
                      "cores (a loaded machine, parallel CI jobs) spinning threads steal each other's time slices, so "
                      "exporting `OMP_WAIT_POLICY=PASSIVE` there pays; check the quiet-machine row before making it a "
                      "default")
    return out + f" (PASSIVE: {passive_vs_default:.2f}x)"


def channels_last_kept(forward_gain: float, train_gain: float) -> str:
    return (f"channels_last for feature extraction on CPU: {forward_gain:.2f}x at 128 px → "
            + ("kept on in `extract_features`" if forward_gain >= 1.0 else
               "slower in this run; re-check before keeping it on in `extract_features`")
            + f"; for training steps {train_gain:.2f}x → "
            + ("`fit` trains CNNs in channels_last on the CPU (`tlwidgets.training.trains_channels_last`)"
               if train_gain >= 1.0 else "slower in this run; re-check before `fit` keeps training CNNs in it"))


def batch_kept(rows: Sequence[dict], default: int = 64) -> str:
    rates = {r["batch"]: r["img_s"] for r in rows}
    best = max(rates, key=lambda k: rates[k])
    out = (f"`extract_features` batch {default}: {rates.get(default, float('nan')):.1f} img/s; best here batch {best} "
           f"({rates[best]:.1f} img/s)")
    if rates[best] >= RECHECK_MARGIN * rates.get(default, 0):
        out += " (check on a quiet machine before changing the default)"
    return out


def compile_kept(compile_s: float, break_even_images: float | None, course_images: int = 1000) -> str:
    if not break_even_images or break_even_images > course_images:
        return (f"torch.compile not used by the course: compilation ({fmt_seconds(compile_s)}) costs more than the "
                f"course's feature extraction (about {course_images:,} images) saves")
    return (f"torch.compile not used by the course: it pays off after {break_even_images:,.0f} images; worth offering "
            "for full-size runs")


# ---------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------
def _lessons(d: dict, run: dict) -> str:
    if not d["lessons"]:
        return "No lessons found in `lessons/`: not measured."
    rows, skipped = [], []
    for r in d["lessons"]:
        note = (r.get("message") or "").splitlines()[0][:140] if r["status"] != "passed" and r.get("message") else ""
        if r["status"] == "skipped":
            skipped.append(r["lesson"])
        rows.append([r["lesson"], r["status"], f"{r['median_s']:.0f}", note or "-"])
    total = d["total_s"]
    rows.append(["**total**", "", f"**{total:.0f}**", "skipped lessons not included" if skipped else "-"])
    body = (f"Each lesson executed by papermill (`tlwidgets.course.run_lesson`, parameters `{d['params']}`) into a "
            f"temporary folder, {d['lesson_repeats']} pass(es), median; every pass starts from an empty feature "
            f"cache, like a fresh `make course`.\n\n"
            + markdown_table(["lesson", "status", "seconds", "note"], rows, align="llrl")
            + "\n\nTarget: all lessons in quick mode under 10 minutes together on a 2-core CPU: "
              f"**{lessons_verdict(total, skipped)}** ({fmt_seconds(total)}).")
    if skipped:
        body += f"\n\nSkipped for missing data (not timed): {', '.join(skipped)}."
    return body


def _tests(d: dict, run: dict) -> str:
    if not d["measured"]:
        return (f"`{d['command']}`: **not measured** ({d['why']}; run the benchmark with `--with-test-command` to "
                "time it).")
    return (markdown_table(["command", "seconds", "exit status", "pytest summary"],
                           [[f"`{d['command']}`", f"{d['seconds']:.0f}", d["returncode"], d["summary"]]],
                           align="lrrl")
            + "\n\nRun once, with an empty feature cache"
            + (f" ({d['detail']})." if d.get("detail") else "."))


def _forward(d: dict, run: dict) -> str:
    n, flops = d["matmul_n"], d["flops_per_image"]
    rows = [[r["image_size"], r["batch"], "on" if r["channels_last"] else "off",
             "folded" if r.get("folded") else "separate", f"{r['img_s']:.1f}",
             f"{r['ceiling_img_s']:.0f}", pct(r["of_ceiling"]), f"{r['spread']:.0%}"] for r in d["rows"]]
    cost = markdown_table(["image size", "FLOPs / image", "MACs / image"],
                          [[f"{s} px", f"{f / 1e9:.3f} G", f"{f / 2e9:.3f} G"] for s, f in flops.items()],
                          align="lrr")
    tf32 = (" Convolutions may use TF32 on this GPU (cuDNN's default) while the matmul is strict fp32, so the "
            "fraction can exceed what fp32 alone allows." if d["cuda"] else "")
    return (f"**Ceiling.** A {n}x{n} @ {n}x{n} fp32 matrix multiply on {d['device']} with {d['threads']} "
            f"thread(s) runs at **{d['matmul_flops'] / 1e9:.1f} GFLOP/s** (median of {len(d['matmul_gflops_runs'])}; "
            f"runs {', '.join(f'{g:.0f}' for g in d['matmul_gflops_runs'])} GFLOP/s). "
            "The model's cost is counted by `torch.utils.flop_counter.FlopCounterMode` on one image: convolutions "
            "(depthwise ones at their real cost) and matrix multiplies, 2 FLOPs per multiply-accumulate "
            "(MAC); BatchNorm, activations and pooling are not counted.\n\n" + cost +
            "\n\nCeiling img/s = matmul FLOP/s ÷ FLOPs per image. EfficientNet-Lite0 forward pass, eval mode, "
            f"`torch.inference_mode()`, random input, median of {d['repeats']} batches after one warm-up batch, "
            "channels_last off and on, and on with every BatchNorm folded into its convolution (what "
            "`extract_features` and `predict_proba` run: `tlwidgets.inference.inference_copy`), timed in "
            "alternation (spread = (max - min) / median):\n\n" +
            markdown_table(["px", "batch", "channels_last", "BatchNorm", "img/s", "ceiling img/s", "of ceiling",
                            "spread"], rows, align="rrllrrrr") +
            "\n\nDepthwise convolutions and 1x1 convolutions on small feature maps move more memory per FLOP than "
            "a large matmul, so a mobile network reaches a fraction of the matmul rate; the fraction says how "
            "much a faster kernel could still win, not a target." + tf32)


def _same_result(r: dict) -> str:
    if r["plain_acc"] == r["cached_acc"]:
        return "equal"
    gap = abs(r["plain_acc"] - r["cached_acc"])
    return f"differ by {gap:.2%} ({gap * r['n_test']:.0f} test image(s))"


def _cached(r: dict, run: dict) -> str:
    rows = [["recompute the frozen backbone every epoch", fmt_seconds(r["plain_epoch_s"]), "-",
             fmt_seconds(r["plain_total_s"]), f"{r['plain_acc']:.2%}"],
            ["cached features (extracted once)", fmt_seconds(r["cached_epoch_s"]), fmt_seconds(r["extract_s"]),
             fmt_seconds(r["cached_total_s"]), f"{r['cached_acc']:.2%}"]]
    return (f"Feature extraction on {r['task']}; `run_strategy('feature_extraction', task, "
            f"num_epochs={r['epochs']}, seed=0)` with `cache=False` and with `cache=True` (cold cache). An epoch "
            "is training plus the per-epoch test evaluation, as `fit` runs it; per-epoch times are the median "
            f"over the {r['epochs']} epochs.\n\n" +
            markdown_table(["path", "time per epoch", "one-off extraction", f"total, {r['epochs']} epochs",
                            "test accuracy"], rows, align="lrrrr") +
            f"\n\n**Cached is {fmt_ratio(r['ratio'])} faster per epoch** "
            f"(target ≥ {CACHED_TARGET_RATIO}x: {cached_verdict(r['ratio'])}). Test accuracies: {_same_result(r)}; "
            f"trained head weights differ by at most {r['max_weight_diff']:.2g} (channels_last extraction rounds "
            "differently from the plain forward pass; nothing else differs).")


def _boundary(d: dict, run: dict) -> str:
    rows = [[f"{r['boundary']} of {d['num_groups']}", f"{r['trainable_params']:,}",
             "x".join(map(str, r["feature_shape"])), fmt_seconds(r["plain_epoch_s"]), fmt_seconds(r["cached_epoch_s"]),
             fmt_ratio(r["ratio"]), fmt_seconds(r["extract_s"]), f"{r['plain_acc']:.2%} / {r['cached_acc']:.2%}"]
            for r in d["runs"]]
    return (f"Fine-tuning the top groups on {d['task']}: `run_strategy('fine_tune', task, "
            f"n_frozen=k, num_epochs={d['epochs']}, seed=0)` with the frozen prefix run on every image every "
            "epoch (`cache=False`, the frozen prefix needs no gradients but is still computed) against activations "
            "cached once at the freeze boundary (`cache=True`, cold cache). Time per epoch = median over epochs, "
            "test evaluation included.\n\n" +
            markdown_table(["frozen groups", "trainable params", "cached activation", "plain epoch",
                            "cached epoch", "ratio", "one-off extraction", "test acc plain / cached"],
                           rows, align="lrlrrrrr") +
            "\n\n" + " ".join(f"k={r['boundary']}: accuracies {_same_result(r)}, weights differ by at most "
                               f"{r['max_weight_diff']:.2g}." for r in d["runs"]))


def _chart(d: dict, run: dict) -> str:
    rows = [[r["mode"], fmt_seconds(r["seconds"]), f"{r['ratio']:.3f}", pct(r["overhead"]), f"{r['draws']:.0f}",
             f"{r['draw_seconds']:.2f} s ({pct(r['draw_share'])})" if r["draws"] else "-"] for r in d["modes"]]
    _, verdict = chart_verdict(d["worst_overhead"], d["worst_draw_fraction"], d["noise"])
    return (f"`fit` of the digit CNN on {d['task']} ({d['n_train']} train / {d['n_test']} test images, "
            f"batch 32, {d['epochs']} epochs, every image through the network), with no chart, with "
            "`LiveChart(headless=True)` (keeps the history, draws one figure at the end) and with "
            "`LiveChart(headless=False)` (draws while training, throttled; no browser attached, so the PNG "
            f"bytes go to the widget unseen). Median of {d['repeats']} interleaved rounds after a one-epoch warm-up "
            "of each mode. The chart's own drawing time (`LiveChart.render_seconds`, median share of the run; "
            f"worst single run {pct(d['worst_single_draw_fraction'])}) measures the overhead directly; "
            "the wall-clock difference also carries the machine's run-to-run noise (here the chart-off runs "
            f"spread by {pct(d['noise'])}).\n\n" +
            markdown_table(["chart", "run time", "ratio to off", "overhead (wall)", "draws", "drawing time"],
                           rows, align="lrrrrr") +
            f"\n\nTarget: overhead under 5 %: {verdict}.")


def _data(d: dict, run: dict) -> str:
    rows = [[r["workers"], "yes" if r["pin_memory"] else "no", "yes" if r["augment"] else "no", f"{r['img_s']:,.0f}",
             f"{r['spread']:.0%}"] for r in d["rows"]]
    body = (f"Iterating `task.loaders(32, augment=..., num_workers=..., pin_memory=...)` over {d['task']} "
            f"({d['n_train']} train images, decoded once into memory), copying each batch to {d['device']}; one full "
            f"pass per run, worker start-up included (as `fit` sees it), median of {d['repeats']}.\n\n" +
            markdown_table(["workers", "pinned", "augmented", "img/s", "spread"], rows, align="rllrr"))
    wait = d.get("wait")
    if not wait:
        return body
    rows = [[r["workers"], r["batches"], fmt_seconds(r["data_s"]), fmt_seconds(r["compute_s"]),
             pct(r["wait_fraction"])] for r in wait["rows"]]
    body += ("\n\nDoes training wait on data? Full fine-tuning of EfficientNet-Lite0 at 128 px, batch 32, "
             f"augmented, on {d['device']}"
             + (f" (first {wait['max_batches']} batches)" if wait["max_batches"] else " (one epoch)") +
             "; data = waiting for the next batch and copying it to the device, compute = forward, backward "
             "and update, synchronised:\n\n" +
             markdown_table(["workers", "batches", "data", "compute", "waiting on data"], rows, align="rrrrr"))
    if not d["cuda"]:
        body += ("\n\nOn a CPU the loader and the model share the same cores, so worker processes cannot run "
                 "in parallel with compute for free; the GPU question is answered when the benchmark runs "
                 "with `--device cuda`.")
    return body


def _peers(d: dict, run: dict) -> str:
    if not d["measured"]:
        return "Oxford-IIIT Pet not found: **not measured** (set `TLLAB_DATA`)."
    names = {"course": "course: cached feature extraction (`run_strategy`)", "fastai": "fastai `fine_tune()`",
             "keras": "Keras 3 guide (torch backend)", "pytorch_tutorial": "PyTorch tutorial recipe"}
    rows, wins, missing, open_ = [], [], [], []
    decided = 0
    for race in d["races"]:
        metric = "accuracy" if race["metric"] == "accuracy" else "balanced accuracy"
        for name, a in race["arms"].items():
            if "error" in a:
                rows.append([race["race"], names.get(name, name), f"{pct(race['target'])} {metric}", "-", "-", "-",
                             a["error"]])
                missing.append(f"{names.get(name, name)} on {race['race']}")
                continue
            if a["seconds_to_target"] is not None:
                reached = fmt_seconds(a["seconds_to_target"])
            else:
                reached = f"not reached in {fmt_seconds(a['total_s'])}"
            if name == "course":
                ratio = "1x"
            elif a.get("ratio") is None:
                ratio = "n/a"
            elif a["ratio_is_lower_bound"]:
                ratio = f"> {fmt_ratio(a['ratio'])}"
                if a["ratio"] < 10:
                    open_.append(f"{names.get(name, name)} on {race['race']} (stopped by its budget at "
                                 f"{fmt_ratio(a['ratio'])}, best {pct(a['best'])})")
            else:
                ratio = fmt_ratio(a["ratio"])
                decided += 1
                if a["ratio"] < 10:
                    wins.append(f"{names.get(name, name)} on {race['race']} ({fmt_ratio(a['ratio'])})")
            rows.append([race["race"], names.get(name, name), f"{pct(race['target'])} {metric}", reached,
                         pct(a["best"]) if a["best"] is not None else "-", a["epochs"], ratio])
    verdict = ("Goal (the course's path at least 10x faster to the same test score than every peer): "
               + ("**undecided** where a peer's budget ended before it reached the target and before 10x the "
                  "course's time: " + "; ".join(open_) + " (a longer budget, `--peer-budget`, settles it). "
                  if open_ else "")
               + ("" if not decided else "**met** in every race decided." if not wins else
                  "**not met** against " + "; ".join(wins) +
                  ". Where a peer is within 10x, it is because it reaches the target in its first epochs while the "
                  "course's time is its whole run (decode, extract, 10 head epochs, choice on validation) — the "
                  "course arm is not stopped early.")
               + (" Not measured: " + "; ".join(missing) + "." if missing else ""))
    return ("Every arm starts from the same decoded photos of the course's split (decoding counted), the same "
            "EfficientNet-Lite0 ImageNet weights, the same image size and this machine, in one run. Peers are "
            "scored on the test photos after every epoch and stop at the target or after "
            f"{fmt_seconds(d['peer_budget_s'])} / {d['peer_max_epochs']} epochs; the course arm runs to its end and "
            "reads its test score once, so its time is an upper bound. The cat-breed target is the course's own "
            "test balanced accuracy. Recipes: `benchmarks/peers.py` (its docstring lists each recipe's settings).\n\n"
            + markdown_table(["race", "recipe", "target", "time to target", "best", "epochs", "peer / course"],
                             rows, align="llllrrl") + "\n\n" + verdict)


def _tuning(d: dict, run: dict) -> str:
    parts, kept = [], []
    if d.get("threads"):
        t = d["threads"]
        parts.append(f"**Threads** (`torch.set_num_threads`; {t['usable_cores']} usable cores), forward pass, "
                     "128 px, batch 32, channels_last:\n\n" + markdown_table(
                         ["threads", "img/s", "vs default"],
                         [[r["threads"], f"{r['img_s']:.1f}", f"{r['vs_default']:.2f}"] for r in t["rows"]],
                         align="rrr"))
        kept.append(threads_kept(t["rows"], t["default"]))
        one = next(r for r in t["rows"] if r["threads"] == 1)
        if one["vs_default"] > RECHECK_MARGIN:
            parts.append(f"One thread beat {t['default']} here: while other processes use the cores, OpenMP threads "
                         "that spin-wait at each layer's barrier lose their time slices to one another, so a team of "
                         "threads waits for its slowest member. On a quiet machine one thread per core wins.")
    if d.get("omp_wait_policy"):
        w = d["omp_wait_policy"]
        parts.append("**OpenMP wait policy** (`OMP_WAIT_POLICY`, read once per process: each variant in a fresh "
                     f"interpreter, alternating, median of {d['repeats']}), forward pass, 128 px, batch 32, "
                     "channels_last, default threads:\n\n" + markdown_table(
                         ["policy", "img/s", "vs default"],
                         [[r["policy"] if r["policy"] != "default" else f"as inherited ({w['inherited']})",
                           f"{r['img_s']:.1f}", f"{r['vs_default']:.2f}"] for r in w["rows"]], align="lrr"))
        kept.append(omp_kept(next(r["vs_default"] for r in w["rows"] if r["policy"] == "PASSIVE")))
    g = {r["mode"]: r for r in d["grad_modes"]}
    parts.append("**Inference mode**, forward pass, 128 px, batch 32, channels_last:\n\n" + markdown_table(
        ["mode", "img/s", "vs inference_mode"],
        [[k, f"{r['img_s']:.1f}", f"{r['vs_inference_mode']:.2f}"] for k, r in g.items()], align="lrr"))
    kept.append("`extract_features` keeps `torch.no_grad()` (its activations are used in autograd later, which "
                "inference tensors cannot be): no_grad runs at "
                f"{g['no_grad']['vs_inference_mode']:.2f}x the speed of inference_mode; "
                "`evaluate`/`predict` use `inference_mode`")
    cl = d["channels_last"]
    parts.append("**channels_last**, batch 32 (training = forward + backward + SGD step, every group trainable):"
                 "\n\n" + markdown_table(
                     ["px", "forward off", "forward on", "gain", "train off", "train on", "gain"],
                     [[r["image_size"], f"{r['forward_off']:.1f}", f"{r['forward_on']:.1f}", f"{r['forward_gain']:.2f}",
                       f"{r['train_off']:.1f}", f"{r['train_on']:.1f}", f"{r['train_gain']:.2f}"] for r in cl],
                     align="rrrrrrr"))
    kept.append(channels_last_kept(cl[0]["forward_gain"], cl[0]["train_gain"]))
    parts.append("**Batch size**, forward pass, 128 px, channels_last:\n\n" + markdown_table(
        ["batch", "img/s"], [[r["batch"], f"{r['img_s']:.1f}"] for r in d["batch"]], align="rr"))
    kept.append(batch_kept(d["batch"]))
    sizes = d["image_size"]
    parts.append("**Image size**, forward pass, batch 32, channels_last; accuracy = cat-vs-dog feature extraction, "
                 "10 epochs (full runs only):\n\n" + markdown_table(
                     ["px", "img/s", f"vs {sizes[0]['image_size']} px", "cat-vs-dog test acc"],
                     [[r["image_size"], f"{r['img_s']:.1f}", f"{r['vs_smallest']:.2f}", pct(r["cat_vs_dog_acc"])]
                      for r in sizes], align="rrrr"))
    kept.append("quick mode keeps 128 px: the speed/accuracy row above is the trade")
    c, dev = d.get("compile"), d["device"]
    if c:
        parts.append(f"**torch.compile** on {dev}, forward, 128 px, batch 32: eager {c['eager']:.1f} img/s, compiled "
                     f"{c['compiled']:.1f} img/s ({c['speedup']:.2f}x) after {fmt_seconds(c['compile_s'])} of "
                     "compilation; " + (f"pays off after about {c['break_even_images']:,.0f} images."
                                        if c["break_even_images"] else "never pays off here."))
        kept.append(compile_kept(c["compile_s"], c["break_even_images"]))
    else:
        parts.append(f"**torch.compile**: not measured on {dev} (pass `--compile`; on a CPU compiling takes minutes). "
                     + ("" if d["cuda"] else "Not measured on a GPU in this run: none was present."))
    return ("Each group of variants below is timed in alternation, round by round (median of "
            f"{d['repeats']} rounds after a warm-up round), so their ratios survive a change in machine load.\n\n"
            + "\n\n".join(parts) + "\n\n**What was kept**\n\n" + "\n".join(f"- {k}" for k in kept))


SECTIONS: dict[str, tuple[str, Callable[[dict, dict], str]]] = {
    "lessons": ("Lessons in quick mode", _lessons),
    "tests": ("The whole test command", _tests),
    "forward": ("Backbone forward pass against the hardware ceiling", _forward),
    "cached": ("Cached-feature head training against recomputing the backbone", _cached),
    "boundary": ("Freeze-boundary activation caching for fine-tuning", _boundary),
    "chart": ("Live chart overhead", _chart),
    "data": ("Data loading", _data),
    "peers": ("Against the peers: time to the same test score, same weights, data and image size", _peers),
    "tuning": ("Tuning", _tuning),
}


def section_ok(section: dict) -> bool:
    """A section failed when it raised, when a lesson failed, or when its target was missed badly enough to flag."""
    if "error" in section:
        return False
    data = section["data"]
    return data.get("ok", True) is not False


def render_section(section: dict, run: dict) -> tuple[str, str]:
    """``(title, body)`` of one saved section (``{"key", "data"}`` or ``{"key", "error"}``)."""
    key = section["key"]
    if "error" in section:
        return key, f"**failed**: `{section['error']}`"
    if key not in SECTIONS:
        return key, "saved by an older version of the benchmark that measured something else: re-run it"
    title, body = SECTIONS[key]
    return title, body(section["data"], run)


# ---------------------------------------------------------------------------
# the document
# ---------------------------------------------------------------------------
DOC_HEADER = """# Benchmarks

Generated by `make benchmark` (`.venv/bin/python -m benchmarks`; `--help` lists the options), which saves the
numbers to `docs/benchmarks.json` and renders this page from them (`.venv/bin/python -m benchmarks.render`
re-renders it without measuring). Do not edit by hand: each run replaces the section of the device it ran on and
keeps the others. Numbers are medians of several runs; ratios are taken within one run on one machine. Wall-clock
numbers depend on what else the machine is doing: the load average at the start and end of the run is recorded
with each section.
"""
BEGIN, END = "<!-- benchmark:begin {} -->", "<!-- benchmark:end {} -->"


def render_device(device: str, entry: dict) -> str:
    """One device's part of the document: the machine, then each section numbered in the order it ran."""
    info, run = entry["machine"], entry["run"]
    head = {"cpu": f"CPU: {info['cpu']}", "cuda": f"GPU: {info['gpu']}", "mps": "Apple MPS"}.get(device, device)
    load = " / ".join(str(tuple(la) if la is not None else None)
                      for la in (info["load_average"], entry["machine_end"]["load_average"]))
    machine = markdown_table(["", ""], [
        ["CPU", info["cpu"]], ["cores (logical / usable)", f"{info['logical_cores']} / {info['usable_cores']}"],
        ["torch threads", info["torch_threads"]], ["device", info["device"]], ["GPU", info["gpu"]],
        ["torch / torchvision / timm", f"{info['torch']} / {info['torchvision']} / {info['timm']}"],
        ["Python, OS", f"{info['python']}, {info['os']}"], ["date", info["date"]],
        ["load average at start / end (1, 5, 15 min)", load],
        ["mode", f"{run['mode']}, {run['repeats']} repeats per number, benchmark wall time "
                 f"{fmt_seconds(run['wall_s'])}"],
        ["data", "Oxford-IIIT Pet found" if run["has_pets"] else "Oxford-IIIT Pet not found: MNIST stands in"],
    ], align="ll")
    out = [BEGIN.format(device), f"## {head} ({run['mode']} mode)", "", machine, ""]
    if run.get("notes"):
        out += [f"> {n}" for n in run["notes"]] + [""]
    for i, section in enumerate(entry["sections"], 1):
        title, body = render_section(section, run)
        out += [f"### {i}. {title}" + ("" if section_ok(section) else " (FAILED)"), ""]
        if "measured_in" in section:
            m = section["measured_in"]
            out += [f"*Measured in a later run of this section alone (`--only`): {m['date']}, load average "
                    f"{tuple(m['load_average']) if m['load_average'] else None}, {fmt_seconds(m['wall_s'])}.*", ""]
        out += [body, ""]
    out.append(END.format(device))
    return "\n".join(out)


def render_sharing(load: dict) -> str:
    """Speed under sharing: the quiet number beside the shared one, from ``scripts/measure_load.py``'s JSON.

    Lessons: each lesson's wall time alone and with others running at once, threads inherited (torch's default,
    every kernel takes every core) or set by the course's thread policy; the forward pass: images per second of
    1, 2, 4 processes. Ratios are to the same mode alone, so they say what sharing costs."""
    m = load.get("machine", {})
    alone = {(r["mode"], r["lesson"]): r["seconds"] for r in load.get("runs", []) if r["concurrent"] == 1}
    rows = []
    for r in load.get("runs", []):
        base = alone.get((r["mode"], r["lesson"]))
        rows.append([r["lesson"], r["mode"], r["threads"], r["concurrent"], fmt_seconds(r["seconds"]),
                     fmt_ratio(r["seconds"] / base if base else None), r["status"]])
    unique: dict[tuple, list] = {}
    for row in rows:                      # one row per setting: the first of the kernels that ran it
        unique.setdefault(tuple(row[:4]), row)
    rows = list(unique.values())
    fwd = load.get("forward", [])
    single = {f["mode"]: f["total"] for f in fwd if f["processes"] == 1}
    frows = [[f["processes"], f["mode"], f["threads"], f"{f['total']:.1f}",
              fmt_ratio(f["total"] / single[f["mode"]] if single.get(f["mode"]) else None)] for f in fwd]
    return "\n".join([
        "## Speed under sharing (a classroom on one machine)", "",
        f"Measured by `{load.get('command', 'scripts/measure_load.py')}` on {m.get('cores', '?')} cores, "
        f"{load.get('date', '?')} (its own run; load average before it {m.get('load_before')}); details in "
        "`docs/load.md`. *inherited*: every process takes torch's default threads (all cores); *policy*: the "
        "course's thread policy (`tlwidgets.infra.apply_thread_policy`: cores / processes). With 4 at once, two "
        "kernels ran each lesson; the first of each is shown.", "",
        markdown_table(["lesson", "threads", "per kernel", "at once", "seconds", "vs alone", "status"], rows,
                       align="llrrrrl"), "",
        "EfficientNet-Lite0 forward pass, images per second summed over the processes (ratio: to one process "
        "alone in that mode):", "",
        markdown_table(["processes", "threads", "per process", "images/s", "vs one"], frows, align="rlrrr"), ""])


def test_breakdown(durations: dict, top: int = 10) -> str:
    """Where the test command's time goes: seconds summed per kind of test and the slowest files, from a
    measured run's JUnit XML (``tests/file_durations.json``, written by ``scripts/test_durations.py``)."""
    files = {k: float(v) for k, v in durations.items() if not k.startswith("_")}
    kinds = {"lessons (nbval, each executed once)": lambda k: k.startswith("lessons/") and "/solutions/" not in k,
             "solutions (nbval)": lambda k: k.startswith("lessons/solutions/"),
             "browser (Chromium: JupyterLab, Notebook 7, Voilà, book, hub)": lambda k: k.startswith("tests/browser/"),
             "unit and notebook-format tests": lambda k: k.startswith(("tests/unit/", "tests/notebooks/"))}
    total = sum(files.values())
    rows = [[name, f"{sum(v for k, v in files.items() if belongs(k)):.0f}"] for name, belongs in kinds.items()]
    rows.append(["**all, summed over both workers**", f"**{total:.0f}**"])
    run = durations.get("_run", {})
    head = ("Where the time goes, from the JUnit XML of the measured run (`tests/file_durations.json`, written by "
            "`scripts/test_durations.py`; the test command also starts the files in this order, longest first)"
            + (f": pytest `{run['pytest']}`" if run.get("pytest") else "")
            + (f"; {run['fresh clone']}" if run.get("fresh clone") else "") + ".")
    slowest = sorted(files.items(), key=lambda kv: -kv[1])[:top]
    return "\n".join([head, "", markdown_table(["tests", "seconds"], rows, align="lr"), "",
                      f"The {top} slowest files:", "",
                      markdown_table(["file", "seconds"], [[f"`{k}`", f"{v:.0f}"] for k, v in slowest], align="lr")])


def load_durations(path: str | os.PathLike = DURATIONS_PATH) -> dict | None:
    """``tests/file_durations.json`` when it exists."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def load_sharing(path: str | os.PathLike = LOAD_PATH) -> dict | None:
    """``docs/load.json`` when it exists (None otherwise: the page is rendered without the sharing section)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def render_doc(results: dict, sharing: dict | None = None, durations: dict | None = None) -> str:
    """The whole document from the saved results of every device (cpu first, then cuda, mps), then the
    test command's breakdown and the sharing measurement when given."""
    devices = sorted(results["devices"], key=lambda k: (DEVICE_ORDER.get(k, 3), k))
    text = DOC_HEADER + "\n" + "\n\n".join(render_device(k, results["devices"][k]) for k in devices) + "\n"
    if durations:
        text += "\n## The test command: where its time goes\n\n" + test_breakdown(durations) + "\n"
    return text + ("\n" + render_sharing(sharing) if sharing else "")


def load(path: str | os.PathLike = JSON_PATH) -> dict:
    """Saved results (an empty set when the file does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return {"format": FORMAT, "version": VERSION, "devices": {}}
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a benchmark results file (format={data.get('format')!r}, "
                         f"expected {FORMAT!r})")
    if data.get("version") != VERSION:
        raise ValueError(f"{path} has format version {data.get('version')!r}; this renderer reads version {VERSION}")
    return data


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def save(results: dict, path: str | os.PathLike = JSON_PATH) -> None:
    _write_atomic(Path(path), json.dumps(results, indent=1, default=str) + "\n")


def merge_device(results: dict, device: str, entry: dict, *, only: Sequence[str] | None = None) -> dict:
    """``results`` with ``device``'s entry replaced (other devices kept).

    With ``only`` (a run of some sections, ``--only``), just those sections are replaced inside the device's saved
    entry, in the order of :data:`SECTIONS`, each stamped with the machine and date of the run that measured it, so
    the page says which numbers come from a later run; the rest of the entry is kept as it was."""
    old = results.get("devices", {}).get(device)
    if only and old is not None:
        fresh = {s["key"]: {**s, "measured_in": {"date": entry["machine"]["date"],
                                                  "load_average": entry["machine"]["load_average"],
                                                  "wall_s": entry["run"]["wall_s"]}}
                 for s in entry["sections"]}
        kept = {s["key"]: s for s in old["sections"] if s["key"] in SECTIONS and s["key"] not in fresh}
        merged = {**kept, **fresh}
        entry = {**old, "sections": [merged[k] for k in SECTIONS if k in merged]}
    return {"format": FORMAT, "version": VERSION, "devices": {**results.get("devices", {}), device: entry}}


def write_doc(results: dict, path: str | os.PathLike = DOC_PATH, sharing_path: str | os.PathLike = LOAD_PATH,
              durations_path: str | os.PathLike = DURATIONS_PATH) -> str:
    text = render_doc(results, load_sharing(sharing_path), load_durations(durations_path))
    _write_atomic(Path(path), text)
    return text


def _measured_in(section: dict, entry: dict) -> dict:
    """Date and load average of the run that measured ``section``: its own (``--only``) or the device entry's."""
    return section.get("measured_in") or {"date": entry["machine"]["date"],
                                          "load_average": entry["machine"]["load_average"]}


def readme_table(results: dict) -> str:
    """The README's table: every lesson's quick-mode seconds and the whole test command, from the CPU entry of
    the saved results (the numbers docs/benchmarks.md shows), with the date and load of the run that measured them."""
    entry = results["devices"].get("cpu")
    if entry is None:
        return "No CPU benchmark has been run yet (`make benchmark`)."
    by_key = {s["key"]: s for s in entry["sections"]}
    lessons, tests = by_key.get("lessons", {}).get("data"), by_key.get("tests", {}).get("data")
    if not lessons:
        return "The lessons were not timed in the last CPU benchmark (`make benchmark`)."
    stamp = _measured_in(by_key["lessons"], entry)
    rows = [[r["lesson"], r["status"], f"{r['median_s']:.0f}"] for r in lessons["lessons"]]
    rows.append(["**all lessons, quick mode**", "", f"**{lessons['total_s']:.0f}**"])
    later = ""
    if tests and tests.get("measured"):
        rows.append([f"`{tests['command']}`", tests["summary"], f"{tests['seconds']:.0f}"])
        tests_stamp = _measured_in(by_key["tests"], entry)
        if tests_stamp["date"] != stamp["date"]:     # a run of the test command alone (--only tests)
            later = (f" The test command's row is from a later run: {tests_stamp['date']}, load average at start "
                     f"{tuple(tests_stamp['load_average'] or ())}.")
    return (f"Measured by `make benchmark` on {entry['machine']['cpu']} ({entry['machine']['usable_cores']} cores), "
            f"{stamp['date']}, load average at start {tuple(stamp['load_average'] or ())}; the same numbers as "
            f"[`docs/benchmarks.md`](docs/benchmarks.md).{later}\n\n"
            + markdown_table(["lesson", "status", "seconds"], rows, align="llr"))


def write_readme(results: dict, path: str | os.PathLike = README_PATH) -> bool:
    """Replace the README's lesson table (between its markers) with :func:`readme_table`; False when the README
    has no markers (nothing written)."""
    path = Path(path)
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    _write_atomic(path, head + README_BEGIN + "\n" + readme_table(results) + "\n" + README_END + tail)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Render docs/benchmarks.md from saved benchmark results (no measuring).")
    p.add_argument("json", nargs="?", default=str(JSON_PATH), help="results file (default docs/benchmarks.json)")
    p.add_argument("--out", default=str(DOC_PATH), help="Markdown file to write (default docs/benchmarks.md)")
    args = p.parse_args(argv)
    results = load(args.json)
    write_doc(results, args.out)
    print(f"wrote {args.out} from {args.json}" + (" and the README's lesson table" if write_readme(results) else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
