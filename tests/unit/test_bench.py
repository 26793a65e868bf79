"""The benchmarks: measurement helpers (medians, FLOP counts, time-to-accuracy) and the renderer that turns
saved numbers into docs/benchmarks.md with its verdicts (fast, CPU only)."""
from __future__ import annotations

import copy
import itertools
import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks import measure as bench
from benchmarks import render
from benchmarks.run import SECTIONS, parse_args
from tlwidgets.training import StopFlag


def fake_clock(step: float = 1.0):
    """A clock that advances by ``step`` every time it is read: timings become exact."""
    counter = itertools.count()
    return lambda: next(counter) * step


def test_time_runs_warms_up_untimed_and_reports_the_median():
    calls = []
    durations = iter([0.0, 5.0, 1.0, 3.0])  # warm-up, then three timed runs
    now = [0.0]

    def clock():
        return now[0]

    def fn():
        calls.append(1)
        now[0] += next(durations)

    t = bench.time_runs(fn, repeats=3, warmup=1, clock=clock)
    assert len(calls) == 4
    assert t.runs == [5.0, 1.0, 3.0]
    assert t.median == 3.0
    assert t.spread == pytest.approx((5 - 1) / 3)
    assert "median 3 s of 3 run(s)" in repr(t)


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True])
def test_time_runs_rejects_bad_repeats(repeats):
    with pytest.raises(ValueError, match="repeats"):
        bench.time_runs(lambda: None, repeats=repeats)


def test_empty_timing_has_no_median():
    with pytest.raises(ValueError, match="no runs"):
        _ = bench.Timing().median


def test_count_flops_counts_two_per_multiply_accumulate_including_grouped_convs():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),            # 8*3*9 MACs per output pixel, 8x8 pixels
        nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),   # depthwise: 8*1*9 MACs per pixel
        nn.BatchNorm2d(8), nn.ReLU(),                           # not counted
        nn.Flatten(), nn.Linear(8 * 8 * 8, 10),                 # 512*10 MACs
    )
    macs = 8 * 3 * 9 * 64 + 8 * 1 * 9 * 64 + 512 * 10
    model.train()
    assert bench.count_flops(model, (3, 8, 8)) == 2 * macs
    assert model.training, "count_flops must hand the model back in its mode"


def test_forward_step_leaves_the_callers_model_alone():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    step = bench.forward_step(model, batch_size=4, image_size=16, channels_last=True)
    t = bench.time_runs(step, repeats=2, clock=fake_clock(0.5))
    assert 4 / t.median == pytest.approx(4 / 0.5)
    assert len(t) == 2
    assert model.training
    assert model[0].weight.is_contiguous()
    with pytest.raises(ValueError, match="grad_mode"):
        bench.forward_step(model, batch_size=1, image_size=8, grad_mode="fast")


def test_forward_step_folded_runs_the_folded_copy_and_leaves_the_callers_model_alone():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten()).eval()
    seen = []
    step = bench.forward_step(model, batch_size=2, image_size=8, channels_last=True, folded=True)
    for m in step.__closure__ or ():
        if isinstance(m.cell_contents, nn.Module):
            seen.append(m.cell_contents)
    assert seen and not any(isinstance(x, nn.BatchNorm2d) for net in seen for x in net.modules())
    step()
    assert isinstance(model[1], nn.BatchNorm2d) and model[0].weight.is_contiguous()


def test_forward_step_uses_the_requested_grad_mode():
    model = nn.Linear(4, 2)
    seen = []
    model.register_forward_hook(
        lambda m, i, o: seen.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled())))
    x_model = nn.Sequential(nn.Flatten(), model)
    for mode in ("inference_mode", "no_grad", "grad"):
        bench.forward_step(x_model, batch_size=1, image_size=2, in_channels=1, grad_mode=mode)()
    assert seen == [(False, True), (False, False), (True, False)]


def test_interleave_runs_cases_round_robin_and_drops_warmup_rounds():
    order = []
    cases = {"a": lambda: order.append("a"), "b": (lambda: order.append("setup-b"), lambda: order.append("b"))}
    timings = bench.interleave(cases, repeats=2, warmup=1, clock=fake_clock(1.0))
    assert order == ["a", "setup-b", "b"] * 3
    assert set(timings) == {"a", "b"}
    assert all(t.runs == [1.0, 1.0] for t in timings.values())
    with pytest.raises(ValueError):
        bench.interleave({}, repeats=1)


def test_train_step_leaves_the_callers_weights_alone():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    before = [p.detach().clone() for p in model.parameters()]
    step = bench.train_step(model, batch_size=4, image_size=8)
    step()
    step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        bench.train_step(model, batch_size=2, image_size=8)


def test_matmul_flop_rate_is_two_n_cubed_over_the_median():
    rate, t = bench.matmul_flop_rate(64, repeats=3, clock=fake_clock(0.25))
    assert rate == pytest.approx(2 * 64 ** 3 / 0.25)
    assert len(t) == 3


def test_time_to_accuracy_is_the_first_epoch_at_or_above_the_target():
    tta = bench.TimeToAccuracy(0.9, t0=0.0)
    tta.points = [(1.0, 0.5), (2.0, None), (3.0, 0.9), (4.0, 0.95)]
    assert tta.seconds == pytest.approx(3.0)
    tta.target = 0.99
    assert tta.seconds is None


def test_time_to_accuracy_stops_at_the_target_and_counts_from_t0():
    stop = StopFlag()
    tta = bench.TimeToAccuracy(0.9, t0=0.0, stop=stop, clock=fake_clock(10.0))
    tta.on_train_begin({})
    tta.on_epoch_end({"val_acc": 0.8})
    assert not stop.is_set()
    tta.on_epoch_end({"val_acc": 0.92})
    assert stop.is_set() and "90%" in stop.reason
    assert tta.seconds == pytest.approx(10.0)  # the clock's second reading (0 is the first)
    assert tta.best == 0.92


def test_time_to_accuracy_stops_when_the_budget_is_spent():
    stop = StopFlag()
    tta = bench.TimeToAccuracy(0.99, t0=0.0, stop=stop, budget_s=15.0, clock=fake_clock(10.0))
    tta.on_epoch_end({"val_acc": 0.5})      # at 0 s
    tta.on_epoch_end({"val_acc": 0.6})      # at 10 s
    assert not stop.is_set()
    tta.on_epoch_end({"val_acc": 0.7})      # at 20 s: over budget
    assert stop.is_set() and "budget" in stop.reason
    assert tta.seconds is None
    assert "not reached" in repr(tta)
    with pytest.raises(ValueError):
        bench.TimeToAccuracy(1.5)


def test_loader_throughput_counts_samples_per_second():
    loader = DataLoader(TensorDataset(torch.zeros(10, 2), torch.zeros(10)), batch_size=4)
    ips, t = bench.loader_throughput(loader, passes=3, clock=fake_clock(1.0))
    assert ips == 10.0
    assert t.runs == [1.0, 1.0, 1.0]


def test_data_wait_splits_data_and_compute_time():
    loader = DataLoader(TensorDataset(torch.zeros(6, 2), torch.zeros(6)), batch_size=2)
    seen = []
    d = bench.data_wait(loader, lambda x, y: seen.append(len(y)), max_batches=2, clock=fake_clock(1.0))
    assert seen == [2, 2]
    assert d["batches"] == 2 and d["images"] == 4
    assert d["data_s"] == 2.0 and d["compute_s"] == 2.0
    assert d["wait_fraction"] == 0.5


def test_machine_info_names_the_machine():
    info = bench.machine_info("cpu")
    assert info["cpu"] and info["logical_cores"] >= 1 and info["torch_threads"] >= 1
    assert info["torch"] == torch.__version__
    assert info["device"] == "cpu"
    assert info["date"][:2] == "20"


def test_markdown_table_aligns_numbers_right_and_escapes_pipes():
    table = render.markdown_table(["name", "n"], [["a|b", 1], ["c", 2.5]])
    lines = table.splitlines()
    assert lines[1] == "|---|---:|"
    assert lines[2] == "| a\\|b | 1 |"
    with pytest.raises(ValueError):
        render.markdown_table(["a", "b"], [[1]])


def test_formatting_helpers():
    assert render.fmt_ratio(15.0) == "15.0x"
    assert render.fmt_ratio(1.5) == "1.50x"
    assert render.fmt_ratio(500.0) == "500x"
    assert render.fmt_ratio(None) == "n/a"
    assert render.fmt_seconds(0.0123) == "0.012 s"
    assert render.fmt_seconds(125) == "2 min 05 s"
    assert render.fmt_seconds(None) == "-"
    assert render.pct(0.1234) == "12.3%" and render.pct(None) == "-"


# ---------------------------------------------------------------------------
# the renderer: verdicts at their thresholds, and the document from saved numbers
# ---------------------------------------------------------------------------
def test_lessons_verdict_needs_every_lesson_and_under_ten_minutes():
    assert render.lessons_verdict(599.0, []) == "met"
    assert render.lessons_verdict(600.0, []) == "not met"
    assert render.lessons_verdict(300.0, ["07_word_vectors"]).startswith("not decided")
    assert render.lessons_verdict(700.0, ["07_word_vectors"]) == "not met"


def test_cached_verdict_needs_ten_times_faster():
    assert render.cached_verdict(10.0) == "met"
    assert render.cached_verdict(9.99) == "NOT met"
    assert render.cached_verdict(None) == "NOT met"


@pytest.mark.parametrize("wall, draw, noise, met, words", [
    (0.02, 0.01, 0.50, True, "**met**: 2.0% by wall clock"),
    (0.15, 0.038, 0.387, True, "met by the chart's own drawing time"),     # noisy machine: drawing time decides
    (0.15, 0.038, 0.02, False, "per-batch bookkeeping"),                   # quiet machine: the wall clock decides
    (0.01, 0.05, 0.0, False, "spent 5.0% of a run drawing"),               # drawing alone breaks the budget
])
def test_chart_verdict_thresholds(wall, draw, noise, met, words):
    ok, text = render.chart_verdict(wall, draw, noise)
    assert ok is met
    assert words in text


def test_tuning_suggests_a_change_only_past_a_ten_percent_margin():
    rows = [{"threads": 1, "img_s": 100.0}, {"threads": 2, "img_s": 100.0}, {"threads": 4, "img_s": 109.0}]
    assert render.threads_kept(rows, 2).endswith("kept")
    rows[2]["img_s"] = 111.0
    assert "4 was 1.11x faster" in render.threads_kept(rows, 2)
    assert render.omp_kept(0.69).endswith("(PASSIVE: 0.69x)")
    assert "exporting `OMP_WAIT_POLICY=PASSIVE`" in render.omp_kept(1.2)
    batches = [{"batch": 32, "img_s": 352.5}, {"batch": 64, "img_s": 252.9}]
    assert "check on a quiet machine" in render.batch_kept(batches)
    assert "check" not in render.batch_kept([{"batch": 32, "img_s": 260.0}, {"batch": 64, "img_s": 252.9}])
    assert "kept on" in render.channels_last_kept(1.41, 1.82)
    assert "re-check" in render.channels_last_kept(0.95, 1.0)
    assert "`fit` trains CNNs in channels_last" in render.channels_last_kept(1.41, 1.82)
    assert "before `fit` keeps training CNNs in it" in render.channels_last_kept(1.41, 0.9)
    assert "costs more" in render.compile_kept(60.0, 5000.0)
    assert "pays off after 500 images" in render.compile_kept(1.0, 500.0)


def test_the_committed_document_is_the_rendering_of_the_committed_numbers():
    results = render.load(render.JSON_PATH)
    assert render.render_doc(results, render.load_sharing(), render.load_durations()) == \
        render.DOC_PATH.read_text(), \
        "docs/benchmarks.md is out of date: run `.venv/bin/python -m benchmarks.render`"
    sections = [s["key"] for s in results["devices"]["cpu"]["sections"]]
    assert sections == list(SECTIONS)


def test_rendering_follows_the_numbers_not_the_old_text(tmp_path):
    results = render.load(render.JSON_PATH)
    slow = copy.deepcopy(results)
    cached = next(s for s in slow["devices"]["cpu"]["sections"] if s["key"] == "cached")
    cached["data"]["ratio"] = 4.0
    lessons = next(s for s in slow["devices"]["cpu"]["sections"] if s["key"] == "lessons")
    lessons["data"]["lessons"][0]["status"] = "failed"
    lessons["data"]["lessons"][0]["median_s"] = 9.2      # not the saved number: the text must follow this one
    lessons["data"]["lessons"][0]["message"] = "CellExecutionError: boom\nmore"
    lessons["data"]["ok"] = False
    text = render.render_doc(slow)
    assert "**Cached is 4.00x faster per epoch** (target ≥ 10x: NOT met)" in text
    assert "### 1. Lessons in quick mode (FAILED)" in text
    assert "| failed | 9 | CellExecutionError: boom |" in text


def test_a_run_replaces_its_own_device_and_keeps_the_others(tmp_path):
    results = render.load(render.JSON_PATH)
    gpu = copy.deepcopy(results["devices"]["cpu"])
    gpu["machine"]["gpu"] = "NVIDIA H200"
    gpu["sections"] = [{"key": "forward", "error": "RuntimeError: out of memory"}]
    merged = render.merge_device(results, "cuda", gpu)
    path = tmp_path / "bench.json"
    render.save(merged, path)
    text = render.write_doc(render.load(path), tmp_path / "bench.md")
    assert text.index("benchmark:begin cpu") < text.index("## GPU: NVIDIA H200 (full mode)")
    assert "### 1. forward (FAILED)\n\n**failed**: `RuntimeError: out of memory`" in text
    assert render.render_device("cpu", merged["devices"]["cpu"]) in text


def test_the_readme_table_is_rendered_from_the_committed_numbers(tmp_path):
    results = render.load(render.JSON_PATH)
    readme = render.README_PATH.read_text()
    block = readme.split(render.README_BEGIN, 1)[1].split(render.README_END, 1)[0]
    assert block.strip() == render.readme_table(results).strip(), \
        "README's lesson table is out of date: run `.venv/bin/python -m benchmarks.render`"
    lessons = next(s for s in results["devices"]["cpu"]["sections"] if s["key"] == "lessons")["data"]["lessons"]
    for r in lessons:
        assert f"| {r['lesson']} | {r['status']} | {r['median_s']:.0f} |" in block
    other = tmp_path / "README.md"
    other.write_text("no markers here\n")
    assert not render.write_readme(results, other) and other.read_text() == "no markers here\n"


def test_the_readme_table_names_a_later_run_of_the_test_command():
    results = copy.deepcopy(render.load(render.JSON_PATH))
    sections = {s["key"]: s for s in results["devices"]["cpu"]["sections"]}
    stamp = {"date": "2030-01-02T03:04:05+00:00", "load_average": [0.5, 0.6, 0.7]}
    sections["tests"]["measured_in"] = stamp
    sections["lessons"]["measured_in"] = {"date": "2030-01-01T00:00:00+00:00", "load_average": [0.1, 0.2, 0.3]}
    assert "The test command's row is from a later run: 2030-01-02T03:04:05+00:00, load average at start " \
           "(0.5, 0.6, 0.7)." in render.readme_table(results)
    sections["tests"]["measured_in"] = sections["lessons"]["measured_in"]      # one run: nothing to say
    assert "later run" not in render.readme_table(results)


def test_the_test_breakdown_sums_by_kind_and_lists_the_slowest_files():
    durations = {"_run": {"pytest": "3 passed in 9.00s", "fresh clone": "setup 5 s"},
                 "lessons/08_x.ipynb": 5.0, "lessons/solutions/08_x_solutions.ipynb": 2.0,
                 "tests/browser/test_hub.py": 1.5, "tests/unit/test_a.py": 0.5}
    text = render.test_breakdown(durations, top=2)
    assert "pytest `3 passed in 9.00s`; setup 5 s" in text
    for row in ("| lessons (nbval, each executed once) | 5 |", "| solutions (nbval) | 2 |",
                "| unit and notebook-format tests | 0 |", "| **all, summed over both workers** | **9** |",
                "| `lessons/08_x.ipynb` | 5 |"):
        assert row in text, row
    assert "test_hub" not in text.split("slowest files")[1]      # top=2: only the two slowest listed


def test_the_sharing_section_shows_the_quiet_and_the_shared_number():
    load = {"command": "python scripts/measure_load.py", "date": "d", "machine": {"cores": 2, "load_before": [0.1]},
            "runs": [{"lesson": "00", "concurrent": 1, "mode": "policy", "threads": 2, "seconds": 10.0,
                      "status": "passed"},
                     {"lesson": "00", "concurrent": 2, "mode": "policy", "threads": 1, "seconds": 15.0,
                      "status": "passed"}],
            "forward": [{"processes": 1, "mode": "policy", "threads": 2, "total": 90.0},
                        {"processes": 2, "mode": "policy", "threads": 1, "total": 135.0}]}
    text = render.render_sharing(load)
    assert "## Speed under sharing" in text
    assert "| 00 | policy | 1 | 2 | 15.0 s | 1.50x | passed |" in text.replace("15.00 s", "15.0 s")
    assert "| 2 | policy | 1 | 135.0 | 1.50x |" in text
    results = render.load(render.JSON_PATH)
    assert render.render_doc(results, load).endswith(text)
    assert "Speed under sharing" not in render.render_doc(results)


def test_load_refuses_other_files_and_versions(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a benchmark results file"):
        render.load(path)
    path.write_text(json.dumps({"format": render.FORMAT, "version": 99, "devices": {}}))
    with pytest.raises(ValueError, match="version 99"):
        render.load(path)
    assert render.load(tmp_path / "missing.json")["devices"] == {}


def test_command_line_keeps_its_options():
    args = parse_args(["--quick", "--only", "chart", "forward", "--device", "cpu"])
    assert args.quick and args.only == ["chart", "forward"] and args.device == "cpu"
    assert args.json.endswith("benchmarks.json") and args.out.endswith("benchmarks.md")


def test_the_measuring_tools_are_not_part_of_the_installed_package():
    import importlib.util

    import tomllib

    assert importlib.util.find_spec("tlwidgets.bench") is None
    packaged = tomllib.loads((render.REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert packaged["include"] == ["tlwidgets*"]


# ---------------------------------------------------------------------------------------------------------------
# the peer race (benchmarks/peers.py): its clock, its verdict, and a run of some sections merged into the page
# ---------------------------------------------------------------------------------------------------------------
def test_peer_score_stops_at_the_target_or_the_budget_and_reads_the_first_epoch_at_target(monkeypatch):
    from benchmarks import peers

    ticks = iter([0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    monkeypatch.setattr(peers.time, "perf_counter", lambda: next(ticks))
    s = peers.Score(target=0.9, budget_s=100.0)
    assert not s.add(0.5) and not s.add(0.85)
    assert s.add(0.91) and s.stopped == "reached 90.0%"
    assert s.seconds_to_target == 30.0 and s.result()["best"] == 0.91
    late = peers.Score(target=0.9, budget_s=15.0, t0=0.0)
    ticks2 = iter([5.0, 16.0])
    monkeypatch.setattr(peers.time, "perf_counter", lambda: next(ticks2))
    assert not late.add(0.2) and late.add(0.3)
    assert late.stopped.startswith("time budget") and late.seconds_to_target is None


def _peers_data(fastai_seconds, keras_seconds):
    def arm(seconds, total=100.0, best=0.93):
        return {"seconds_to_target": seconds, "points": [[seconds or total, best]], "best": best, "epochs": 2,
                "total_s": total, "stopped": "x", "ratio": (seconds or total) / 2.0,
                "ratio_is_lower_bound": seconds is None}
    course = {"seconds_to_target": 2.0, "points": [[2.0, 0.95]], "best": 0.95, "epochs": 1, "total_s": 2.0,
              "stopped": "x", "final": 0.95}
    race = {"race": "cat_vs_dog @ 128 px", "kind": "cat_vs_dog", "metric": "accuracy", "target": 0.9,
            "image_size": 128, "arms": {"course": course, "fastai": arm(fastai_seconds), "keras": arm(keras_seconds),
                                        "pytorch_tutorial": {"arm": "pytorch_tutorial", "error": "not installed"}}}
    return {"measured": True, "target_acc": 0.9, "peer_budget_s": 240, "peer_max_epochs": 8,
            "tutorial_batch_size": 4, "races": [race]}


def test_peer_verdict_names_every_peer_within_ten_times_and_marks_lower_bounds():
    text = render.SECTIONS["peers"][1](_peers_data(fastai_seconds=30.0, keras_seconds=None), {})
    assert "**met** in every race decided." in text and "| > 50.0x |" in text and "| 15.0x |" in text
    assert "undecided" not in text
    assert "Not measured: PyTorch tutorial recipe on cat_vs_dog @ 128 px." in text
    close = render.SECTIONS["peers"][1](_peers_data(fastai_seconds=8.0, keras_seconds=None), {})
    assert "**not met** against fastai `fine_tune()` on cat_vs_dog @ 128 px (4.00x)" in close
    assert "not installed" in close
    short = _peers_data(fastai_seconds=30.0, keras_seconds=None)
    short["races"][0]["arms"]["keras"]["ratio"] = 4.0   # its budget ended at 4x the course's time
    assert "**undecided**" in render.SECTIONS["peers"][1](short, {})


def test_a_run_of_some_sections_replaces_only_those_and_says_when_they_were_measured():
    results = render.load(render.JSON_PATH)
    entry = copy.deepcopy(results["devices"]["cpu"])
    entry["machine"]["date"] = "2030-01-01T00:00:00+00:00"
    entry["run"]["wall_s"] = 12.0
    entry["sections"] = [{"key": "chart", "data": next(s for s in results["devices"]["cpu"]["sections"]
                                                       if s["key"] == "chart")["data"]}]
    merged = render.merge_device(results, "cpu", entry, only=["chart"])
    keys = [s["key"] for s in merged["devices"]["cpu"]["sections"]]
    assert keys == [k for k in SECTIONS if k in keys] and "forward" in keys and "chart" in keys
    text = render.render_device("cpu", merged["devices"]["cpu"])
    later = [line for line in text.splitlines() if line.startswith("*Measured in a later run of this section alone")]
    assert any("2030-01-01" in line for line in later) and len(later) == sum(
        "measured_in" in s for s in merged["devices"]["cpu"]["sections"])


def test_the_test_command_section_keeps_the_fresh_clone_split(tmp_path):
    """The whole test command is timed as given; the fresh-clone script's setup/test split is kept and shown."""
    import types

    from benchmarks import suite

    script = ("printf '%s\\n' '==== 3 passed, 1 skipped in 9.50s ====' "
              "'fresh clone: setup 5 s, make test after setup 10 s, total 15 s, exit 0'")
    cfg = types.SimpleNamespace(with_test_command=True, skip_tests=False, test_command=script, tmp=tmp_path)
    data = suite.measure(cfg)
    assert data["measured"] and data["returncode"] == 0 and data["summary"] == "3 passed, 1 skipped in 9.50s"
    assert data["detail"] == "setup 5 s, make test after setup 10 s, total 15 s, exit 0"
    text = render._tests(data, {})
    assert "(setup 5 s, make test after setup 10 s, total 15 s, exit 0)." in text
    off = suite.measure(types.SimpleNamespace(with_test_command=False, skip_tests=True, test_command="make test"))
    assert not off["measured"] and "--skip-tests" in render._tests(off, {})
