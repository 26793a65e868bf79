"""The widgets' logic without a browser: set values from Python, check what the model, chart and table do.

The views' rendering and the clicks themselves are checked in a real JupyterLab by
tests/browser/test_widgets_browser.py.
"""
from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import tlwidgets as tl
from tlwidgets.chart_state import ChartState, Throttle, fast_run_note
from tlwidgets.freezing import freeze_report, max_frozen
from tlwidgets.training import History, Observer, Prediction
from tlwidgets.widgets import (
    Dashboard,
    DigitPad,
    FreezeSlider,
    LiveChart,
    confusion_view,
    gallery,
    is_headless,
    plot_features_2d,
    show_task,
)
from tlwidgets.widgets.confusion import confusion_cells
from tlwidgets.widgets.dashboard import history_dict, results_table, yes_no
from tlwidgets.widgets.digit_pad import DigitCanvas, centre_digit, pad_to_mnist, pen_stroke
from tlwidgets.widgets.freeze_slider import count_text, group_rows, groups_html
from tlwidgets.widgets.gallery import gallery_items, pca_2d
from tlwidgets.widgets.live_chart import progress_text, summary_text

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (conftest)


def small_digits(n):
    """The dashboard's default task shape (digits 5-9) with a small test split, for speed."""
    return tl.mnist_target_task(n, test_per_class=20)


def loaders(tiny_data, n=48, batch_size=8):
    train = DataLoader(tiny_data(n), batch_size=batch_size, shuffle=True)
    val = DataLoader(tiny_data(24, seed=2), batch_size=24)
    return train, val


class Spy(Observer):
    """Calls ``probe()`` at every batch and epoch end and keeps what it returned."""

    def __init__(self, probe):
        self.probe, self.seen = probe, []

    def on_batch_end(self, logs):
        self.seen.append(self.probe())

    def on_epoch_end(self, logs):
        self.seen.append(self.probe())


# ----------------------------------------------------------------------------- is_headless
def test_is_headless_argument_then_env_then_kernel(monkeypatch):
    monkeypatch.delenv("TLLAB_HEADLESS", raising=False)
    assert is_headless() is True  # plain pytest: no kernel, nobody watching
    assert is_headless(False) is False and is_headless(True) is True
    monkeypatch.setenv("TLLAB_HEADLESS", "0")
    assert is_headless() is False
    monkeypatch.setenv("TLLAB_HEADLESS", "1")
    assert is_headless() is True
    assert is_headless(False) is False  # the argument wins over the environment


# ----------------------------------------------------------------------------- FreezeSlider
def test_freeze_slider_value_freezes_exactly_the_first_groups():
    model = tl.digit_cnn(5)
    fs = FreezeSlider(model)
    assert fs.min == 0 and fs.max == max_frozen(model) == 3
    assert fs.value == 0  # shows the model's state; creating the slider changes nothing
    for n in (3, 1, 2, 0):
        fs.value = n
        trainable = total = 0
        for i, name in enumerate(model.group_names):
            for p in model.groups[name].parameters():
                assert p.requires_grad == (i >= n), (n, name)
                total += p.numel()
                trainable += p.numel() if i >= n else 0
        assert model.n_frozen == n
        assert fs.count_label.value.count(f"{trainable:,} / {total:,} parameters") == 1
        assert f"({trainable / total:.1%})" in fs.count_label.value
        states = [s for _, _, s in group_rows(fs.report)]
        assert states == ["frozen"] * n + ["trainable"] * (4 - n)
        assert fs.groups_view.value.count("data-state='frozen'") == n
    # BatchNorm of frozen groups stays in eval mode while training
    fs.value = 2
    model.train()
    assert not model.groups["conv1"][1].training and not model.groups["conv2"][1].training


def test_freeze_slider_refuses_out_of_range_repr_and_display():
    model = tl.digit_cnn(5)
    fs = FreezeSlider(model)
    fs.value = 3
    for bad in (99, -4):  # refused, not silently clamped: the model keeps its state
        with pytest.raises(ValueError, match=rf"value must be in 0\.\.3 .*got {bad}"):
            fs.value = bad
        assert fs.value == 3 and model.n_frozen == 3
    fs.value = 0
    assert fs.value == 0 and model.n_frozen == 0
    assert "digit_cnn" in repr(fs) and "0/3 groups frozen" in repr(fs)
    bundle = fs._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"] == repr(fs)  # what papermill / a front end without widgets shows


def test_freeze_slider_follows_tl_freeze_at_once():
    model = tl.digit_cnn(5)
    fs = FreezeSlider(model)
    tl.freeze(model, 2)  # called elsewhere, e.g. in a later cell: no refresh needed
    assert fs.value == 2 and fs.groups_view.value.count("data-state='frozen'") == 2
    assert count_text(freeze_report(model)) in fs.count_label.value
    tl.unfreeze_all(model)
    assert fs.value == 0 and "data-state='frozen'" not in fs.groups_view.value
    other = tl.digit_cnn(5)
    tl.freeze(other, 3)  # another model: this slider does not move
    assert fs.value == 0
    fs.close()
    tl.freeze(model, 1)  # a closed slider stops following
    assert fs.value == 0


def test_freeze_slider_follows_freezing_by_hand_after_the_cell(monkeypatch):
    import tlwidgets.widgets.freeze_slider as fsmod

    class Events:  # a recording fake of IPython's event manager
        def __init__(self):
            self.registered = []

        def register(self, name, fn):
            self.registered.append((name, fn))

    shell = type("Shell", (), {"events": Events()})()
    monkeypatch.setattr(fsmod, "_HOOKED", False)
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)
    model = tl.digit_cnn(5)
    fs = FreezeSlider(model)
    FreezeSlider(tl.digit_cnn(5))  # a second slider does not register a second hook
    assert [name for name, _ in shell.events.registered] == ["post_run_cell"]
    for name in ("conv1", "conv2", "features"):  # the plain-PyTorch way
        model.groups[name].requires_grad_(False)
    assert fs.value == 0  # nothing told the slider yet: the cell is still running
    shell.events.registered[0][1](None)  # the cell finished
    assert fs.value == 3 and fs.groups_view.value.count("data-state='frozen'") == 3
    assert f"trainable: {5 * 128 + 5:,} /" in fs.count_label.value and "not a plain" not in fs.count_label.value
    fs.value = 1  # and dragging afterwards freezes through tl.freeze as usual
    assert [p.requires_grad for p in model.groups["conv2"].parameters()] == [True] * 4


def test_freeze_slider_names_a_freeze_that_is_not_the_first_n_groups():
    model = tl.digit_cnn(5)
    fs = FreezeSlider(model)
    model.groups["conv2"].requires_grad_(False)  # conv2 frozen, conv1 not
    fs.refresh()
    assert fs.value == 0 and "not a plain" in fs.count_label.value
    assert fs.groups_view.value.count("data-state='frozen'") == 1
    model.groups["conv1"].requires_grad_(False)
    model.head.weight.requires_grad_(False)  # the head half frozen
    fs.refresh()
    assert fs.value == 2 and "data-state='mixed'" in fs.groups_view.value and "not a plain" in fs.count_label.value


def test_freeze_slider_shows_accuracy_per_depth_from_results():
    from tlwidgets.widgets.freeze_slider import accuracy_by_depth

    model = tl.digit_cnn(5)
    rows = [{"strategy": "fine_tune", "n_frozen": 0, "val_acc": 0.90, "test_acc": 0.5},
            {"strategy": "fine_tune", "n_frozen": 0, "val_acc": 0.92, "test_acc": 0.5},
            {"strategy": "fine_tune", "n_frozen": 2, "val_acc": 0.95, "test_acc": 0.5},
            {"strategy": "feature_extraction", "n_frozen": 3, "val_acc": 0.85, "test_acc": 0.5},
            {"strategy": "scratch", "n_frozen": 0, "val_acc": 0.10, "test_acc": 0.5}]
    metric, by_depth = accuracy_by_depth(rows)
    assert metric == "val_acc" and by_depth == {0: [0.90, 0.92], 2: [0.95], 3: [0.85]}  # chosen on validation
    assert accuracy_by_depth([{k: v for k, v in r.items() if k != "val_acc"} for r in rows])[0] == "test_acc"
    fs = FreezeSlider(model)
    assert fs.accuracy_at() is None
    fs.show_results(rows)
    assert fs.accuracy_at(0) == pytest.approx(0.91) and fs.accuracy_at(1) is None
    assert "at 0 frozen: val_acc 91.0% (2 runs, 90.0%–92.0%)" in fs.accuracy_view.value
    fs.value = 2
    assert "at 2 frozen: val_acc 95.0% (1 run)" in fs.accuracy_view.value and "95.0% measured here" in repr(fs)
    fs.value = 1
    assert "at 1 frozen: not measured" in fs.accuracy_view.value
    assert re.search(r"data-depth='2' style='[^']*font-weight:bold", fs.accuracy_view.value)  # the best depth


def test_freeze_slider_takes_run_results():
    class Run:  # the RunResult interface the slider reads: row() and, when known, val_acc
        def __init__(self, n, acc):
            self.n_frozen, self.val_acc = n, acc

        def row(self):
            return {"strategy": "fine_tune", "n_frozen": self.n_frozen, "test_acc": 0.0}

    fs = FreezeSlider(tl.digit_cnn(5), results=[Run(1, 0.8), Run(1, 0.9)])
    assert fs.accuracy_at(1) == pytest.approx(0.85)
    with pytest.raises(TypeError, match="RunResult objects or dict rows"):
        fs.show_results([0.9])
    with pytest.raises(ValueError, match="metric must be one of"):
        fs.show_results([], metric="loss")


def test_freeze_slider_shows_errors_in_the_widget():
    model = tl.digit_cnn(5)
    fs = FreezeSlider(model, frozen_bn="sideways")  # freeze() will reject this mode
    fs.value = 2
    assert "frozen_bn must be one of" in fs.errors.widget.value
    assert fs.errors.widget.layout.display != "none"
    assert isinstance(fs.errors.error, ValueError)
    fs.frozen_bn = "eval"
    fs.value = 1  # a good change clears the message
    assert fs.errors.error is None and fs.errors.widget.value == ""
    assert model.n_frozen == 1


def test_freeze_slider_is_a_widget_with_traits_to_observe_and_link():
    import ipywidgets as widgets
    import traitlets

    model = tl.digit_cnn(5)
    fs = FreezeSlider(model)
    assert isinstance(fs, widgets.VBox) and fs.widget is fs
    synced = {name for name in fs.trait_names(sync=True)}
    assert {"value", "min", "max", "disabled"} <= synced  # in the widget's state, so jslink works too
    seen = []  # a recording observer
    fs.observe(lambda change: seen.append((change["old"], change["new"])), names="value")
    fs.value = 2
    tl.freeze(model, 1)  # freezing from code moves the slider: observers hear it too
    assert seen == [(0, 2), (2, 1)]
    other = widgets.IntSlider(min=0, max=3)
    link = traitlets.link((fs, "value"), (other, "value"))
    assert other.value == 1
    other.value = 3  # the linked control drives the model
    assert fs.value == 3 and model.n_frozen == 3
    fs.value = np.int64(2)  # NumPy integers are integers
    assert other.value == 2 and model.n_frozen == 2
    link.unlink()
    with pytest.raises(TypeError, match="value"):
        fs.value = 2.0
    with pytest.raises(ValueError, match=r"max must be in 2\.\.3 .*got 1"):
        fs.max = 1  # below the current value: refused, not clamped
    fs.max = 2
    assert fs.max == 2 and model.n_frozen == 2
    with pytest.raises(ValueError, match=r"value must be in 0\.\.2"):
        fs.value = 3
    fs.disabled = True
    assert all(child.disabled for child in _widget_tree(fs) if isinstance(child, widgets.IntSlider))


def test_freeze_slider_shows_no_accuracy_box_until_runs_are_measured():
    fs = FreezeSlider(tl.digit_cnn(5))
    assert fs.accuracy_view.layout.display == "none"  # nothing measured: no lingering "no runs yet" text
    fs.show_results([{"strategy": "fine_tune", "n_frozen": 1, "val_acc": 0.8}])
    assert fs.accuracy_view.layout.display is None and "80.0%" in fs.accuracy_view.value
    fs.show_results([])
    assert fs.accuracy_view.layout.display == "none"


def test_count_text_format():
    model = tl.digit_cnn(5)
    report = tl.freeze(model, 3)
    head = sum(p.numel() for p in model.head.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert count_text(report) == f"trainable: {head:,} / {total:,} parameters ({head / total:.1%})"
    assert "head" in groups_html(report) and groups_html(report).count("<tr ") == 4


# ----------------------------------------------------------------------------- LiveChart
def test_chart_state_plots_each_batchs_own_values_recovered_or_given():
    values = [(2.0, 0.2, 8), (1.0, 0.5, 8), (0.5, 1.0, 4)]  # (loss, acc, size) of three batches
    old, new = ChartState(span=1), ChartState(span=1)  # span 1 = no smoothing: the exact batch values
    for state in (old, new):
        state.begin({"num_epochs": 2, "num_batches": 3})
    seen = loss_sum = correct = 0
    for b, (loss, acc, size) in enumerate(values):
        seen += size
        loss_sum += loss * size
        correct += acc * size
        logs = {"epoch": 1, "batch": b, "loss": loss_sum / seen, "acc": correct / seen, "size": size}
        old.add_batch(logs)  # a version-1 log: running means only
        new.add_batch({**logs, "batch_loss": loss, "batch_acc": acc})  # what fit emits now
    for state in (old, new):
        assert state.batch_x == pytest.approx([1 + 1 / 3, 1 + 2 / 3, 2.0])
        assert state.batch_loss == pytest.approx([v[0] for v in values])
        assert state.batch_acc == pytest.approx([v[1] for v in values])
        assert state.loss_top == 2.5  # nice_ceiling(2.0 * 1.05)
    smooth = ChartState()
    smooth.begin({"num_epochs": 1, "num_batches": 40})  # default span 10: a smoothed value lies between old and new
    smooth.add_batch({"epoch": 0, "batch": 0, "loss": 2.0, "acc": 0.0, "size": 1, "batch_loss": 2.0, "batch_acc": 0})
    smooth.add_batch({"epoch": 0, "batch": 1, "loss": 1.0, "acc": 0.0, "size": 1, "batch_loss": 0.0, "batch_acc": 0})
    assert 0.0 < smooth.batch_loss[-1] < 2.0
    smooth.add_epoch({"epoch": 0, "loss": 1.0, "acc": 0.0, "val_loss": None, "val_acc": None})
    assert smooth.val_x == [] and smooth.epoch_x == [1] and len(smooth.records) == 1
    smooth.begin({"num_epochs": 3, "num_batches": 2})
    assert smooth.batch_count == 0 and smooth.records == [] and smooth.loss_top is None


def test_throttle_with_an_injected_clock():
    now = [0.0]
    t = Throttle(min_interval=0.5, max_overhead=0.1, clock=lambda: now[0])
    assert t.due()  # the first frame of a run
    t.drawn(ended_at=0.0, frame_seconds=0.01)  # cheap frame: min_interval rules
    now[0] = 0.49
    assert not t.due()
    now[0] = 0.5
    assert t.due()
    t.drawn(ended_at=0.5, frame_seconds=0.2)  # costly frame: waits 0.2 / 0.1 = 2 s
    now[0] = 2.4
    assert not t.due()
    now[0] = 2.5
    assert t.due()
    now[0] = 1.0
    t.reset()
    assert t.due()  # a new run draws its first batch at once
    with pytest.raises(ValueError, match="max_overhead"):
        Throttle(max_overhead=0)
    with pytest.raises(ValueError, match="min_interval"):
        Throttle(min_interval=-1)


def test_a_run_over_in_well_under_a_second_says_it_shows_the_finished_curve():
    assert fast_run_note({"seconds": 0.042}) == "finished in 42 ms, too fast to watch live: this is the finished curve"
    assert fast_run_note({"seconds": 3.0}) == "" and fast_run_note(None) == ""
    chart = LiveChart(headless=False, auto_display=False)
    replayed = History.from_dict({"epochs": [{"epoch": 0, "loss": 1.0, "acc": 0.5, "val_loss": None,
                                              "val_acc": None, "seconds": 0.01}],
                                  "batches": [{"epoch": 0, "batch": 0, "loss": 1.0, "acc": 0.5, "size": 4}],
                                  "seconds": 0.01})
    from tlwidgets.runlog import replay

    replay(replayed, [chart])
    assert chart.status.value.endswith("too fast to watch live: this is the finished curve")
    assert chart.image.value == chart.png and chart.draw_count >= 2


def test_summary_and_progress_text():
    rec = [{"epoch": 0, "loss": 1.0, "acc": 0.5, "val_loss": 1.2, "val_acc": 0.4},
           {"epoch": 1, "loss": 0.5, "acc": 0.8, "val_loss": 0.7, "val_acc": 0.75}]
    text = summary_text(rec, {"stopped": True, "stop_reason": "stopped by user", "seconds": 3.21})
    assert text == ("2 epochs · final loss 0.500 · acc 0.800 · val_loss 0.700 · val_acc 0.750 · 3.2 s · "
                    "stopped: stopped by user")
    assert summary_text([], {"stopped": False, "seconds": 0.1}).startswith("no finished epoch")
    assert progress_text(rec[1], 10).startswith("epoch 2/10 · loss 0.500")


def test_live_chart_records_every_epoch_of_a_real_fit(tiny_model, tiny_data):
    train, val = loaders(tiny_data)
    chart = LiveChart(title="tiny", headless=False, auto_display=False)
    history = tl.fit(tiny_model(), train, val, num_epochs=4, lr=1e-2, observers=[chart], progress=False)
    assert chart.records == history.epochs and len(chart.records) == 4
    assert chart.batch_count == len(history.batches) == 4 * len(train)
    assert chart.num_epochs == 4 and chart.end_logs["epochs_completed"] == 4
    assert chart.draw_count >= 2  # the axes at the first batch, the final state at the end
    assert chart.png.startswith(PNG_MAGIC) and chart.image.value == chart.png
    xlim = chart.renderer.ax_loss.get_xlim()
    assert xlim == (0, 4) and chart.renderer.ax_acc.get_ylim() == (0, 1.01)
    assert "4 epochs" in chart.status.value and "val_acc" in chart.status.value
    assert "4 epochs recorded" in repr(chart)


def test_live_chart_is_a_widget_whose_traits_follow_the_run(tiny_model, tiny_data):
    import ipywidgets as widgets

    train, val = loaders(tiny_data)
    chart = LiveChart(title="tiny", headless=False, auto_display=False)
    assert isinstance(chart, widgets.VBox) and chart.widget is chart and chart.image in chart.children
    assert {"num_epochs", "epochs_recorded", "finished"} <= set(chart.trait_names(sync=True))
    assert chart.num_epochs is None and not chart.finished
    seen = []  # a recording observer
    chart.observe(lambda change: seen.append((change["name"], change["new"])),
                  names=["num_epochs", "epochs_recorded", "finished"])
    tl.fit(tiny_model(), train, val, num_epochs=2, lr=1e-2, observers=[chart], progress=False)
    assert seen == [("num_epochs", 2), ("epochs_recorded", 1), ("epochs_recorded", 2), ("finished", True)]


def test_chart_text_is_at_least_11_pixels_at_any_dpi():
    """A projector shows the chart at its natural size: 8 pt at 80 dpi was under 9 px, unreadable at the back."""
    from tlwidgets.widgets.chart_render import MIN_TEXT_PX, ChartRenderer

    assert MIN_TEXT_PX >= 11
    for dpi in (60, 80, 120):
        r = ChartRenderer(dpi=dpi)
        r.figure.canvas.draw()
        for ax in (r.ax_loss, r.ax_acc):
            labels = ax.get_xticklabels() + ax.get_yticklabels() + [ax.xaxis.label, ax.title]
            labels += ax.get_legend().get_texts() if ax.get_legend() else []
            assert labels and all(t.get_fontsize() * dpi / 72 >= 11 for t in labels), dpi


def test_live_chart_headless_draws_once_and_leaves_one_png(tiny_model, tiny_data):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    try:
        train, val = loaders(tiny_data)
        chart = LiveChart(headless=True)
        spy = Spy(lambda: chart.draw_count)
        with capture_output() as cap:
            tl.fit(tiny_model(), train, val, num_epochs=3, lr=1e-2, observers=[chart, spy], progress=False)
    finally:
        InteractiveShell.clear_instance()
    assert shell is not None
    assert spy.seen and set(spy.seen) == {0}  # nothing drawn while training
    assert chart.draw_count == 1 and len(chart.records) == 3
    pngs = [o for o in cap.outputs if "image/png" in o.data]
    assert len(cap.outputs) == 1 and len(pngs) == 1
    data = pngs[0].data["image/png"]
    assert (data if isinstance(data, bytes) else __import__("base64").b64decode(data)).startswith(PNG_MAGIC)
    assert cap.stdout.count("LiveChart: 3 epochs · final loss") == 1
    assert chart.image.value == b""  # the widget was never touched


def test_live_chart_throttles_redraws():
    chart = LiveChart(headless=False, auto_display=False, min_interval=0.1, max_overhead=1.0)
    n = 400
    t0 = time.perf_counter()
    chart.on_train_begin({"num_epochs": 2, "num_batches": n // 2, "start_epoch": 0})
    for i in range(n):
        chart.on_batch_end({"epoch": i // (n // 2), "batch": i % (n // 2), "loss": 1.0 / (1 + i), "acc": 0.5,
                            "size": 4})
        time.sleep(0.002)
    elapsed = time.perf_counter() - t0
    draws = chart.draw_count - 1  # the constructor drew the empty axes once
    assert 2 <= draws <= elapsed / 0.1 + 2, (draws, elapsed)
    assert chart.batch_count == n and len(chart.state.batch_x) == n  # every point kept, only drawing is throttled

    # the cost rule: after a frame costing t, the next one waits t / max_overhead
    costly = LiveChart(headless=False, auto_display=False, min_interval=0.0, max_overhead=0.1)
    costly.on_train_begin({"num_epochs": 1, "num_batches": 10_000, "start_epoch": 0})
    t0 = time.perf_counter()
    for i in range(5000):
        costly.on_batch_end({"epoch": 0, "batch": i, "loss": 1.0, "acc": 0.5, "size": 1})
        time.sleep(0.0003)
    elapsed = time.perf_counter() - t0
    log = [entry for entry in costly.draw_log if entry[0] >= t0]
    assert len(log) >= 2
    for (t_a, c_a, frame_a), (t_b, _, _) in zip(log, log[1:]):
        assert t_b - t_a >= c_a + frame_a / 0.1 - 1e-3
    assert sum(frame for _, _, frame in log) <= 0.1 * elapsed + log[-1][2] + 1e-3


# ----------------------------------------------------------------------------- Dashboard
@pytest.fixture
def dash():
    return Dashboard(small_digits, kind="mnist", n_per_class=10, num_epochs=2, headless=True)


def _widget_tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _widget_tree(child)


def test_headless_dashboard_holds_no_empty_chart_image(dash):
    """Headless (course runner, nbval, the book) each run shows one static figure; an empty chart image in the
    saved widget state would be a blank box on the book page. Watched, the live chart is part of the box."""
    import ipywidgets as widgets

    assert not any(isinstance(w, widgets.Image) for w in _widget_tree(dash.widget))
    watched = Dashboard(small_digits, kind="mnist", n_per_class=10, num_epochs=2, headless=False)
    assert watched.chart.image in list(_widget_tree(watched.widget))


def test_dashboard_strategy_controls(dash):
    fs, top = dash.freeze_slider, max_frozen(dash.template_model)
    assert dash.strategy.value == "fine_tune" and not fs.disabled
    assert fs.max == top - 1  # freezing all but the head is feature extraction, not fine-tuning
    dash.freeze_slider.value = 1
    dash.strategy.value = "feature_extraction"
    assert fs.disabled and fs.value == top and dash.config().n_frozen is None
    assert dash.lr.value == pytest.approx(tl.transfer.DEFAULT_LR["feature_extraction"])
    dash.strategy.value = "scratch"
    assert fs.disabled and fs.value == 0
    dash.strategy.value = "fine_tune"
    assert fs.value == 1 and dash.config().n_frozen == 1  # the fine-tune choice is remembered
    with pytest.raises(ValueError, match="n_frozen must be in"):
        dash.set(n_frozen=top)
    dash.strategy.value = "choose"           # choose FE or fine-tuning on val: the fine-tune boundary applies
    assert not fs.disabled and dash.config().n_frozen == 1 and dash.config().strategy == "choose"
    dash.strategy.value = "fine_tune"
    dash.set(n_per_class=None, num_epochs=150, lr=3e-4)
    c = dash.config()
    assert isinstance(c, tl.Recipe) and dash.selected_n_per_class is None and dash.n_per_class.value == "all"
    assert c.num_epochs == 150 and c.lr == pytest.approx((3e-4,)) and c.steps(100) == 150 * 4
    assert "idle" in repr(dash)


def test_dashboard_train_blocking_adds_result_rows(dash, tmp_path, capsys):
    r1 = dash.run_sync(strategy="fine_tune", n_frozen=1, num_epochs=2)
    printed = capsys.readouterr().out
    # headless: summary in the output; one budget of 2 epochs: the head's, then the unfrozen one the chart watched
    assert repr(r1) in printed and "1 epoch · final loss" in printed
    assert isinstance(r1, tl.RunResult) and r1.n_frozen == 1 and len(r1.history) == 2
    assert [e["stage"] for e in r1.history.epochs] == ["head", "unfrozen"] and "fell_back" in r1.row()
    r2 = dash.run_sync(strategy="feature_extraction", num_epochs=3)
    rows = dash.results
    assert [r["strategy"] for r in rows] == ["fine_tune", "feature_extraction"]
    assert rows[0] == r1.row() and rows[1]["epochs"] == 3 and rows[1]["stopped"] is False
    assert dash.table.value.count("<tr class='tl-run'") == 2
    assert f"{r2.test_acc:.3f}" in dash.table.value
    assert "done" in dash.status.value and not dash.running
    assert not dash.train_button.disabled and dash.stop_button.disabled and not dash.replay_button.disabled
    assert len(dash.chart.records) == 3  # the chart watched the last run

    log = dash.save_log(tmp_path / "runs.json")
    data = json.loads(log.read_text())
    assert data["format"] == "tlwidgets.dashboard-log" and len(data["runs"]) == 2
    other = Dashboard(small_digits, n_per_class=10, headless=True)
    assert other.load_log(log) == 2 and other.results == rows
    chart = other.replay(None, seconds_per_epoch=0)  # replays the last loaded run
    assert chart.records == r2.history.epochs


def test_dashboard_stop_during_background_training():
    dash = Dashboard(small_digits, n_per_class=50, strategy="scratch", num_epochs=30, headless=True)
    assert dash.train(block=False) is None
    assert dash.running and dash.train_button.disabled and not dash.stop_button.disabled
    with pytest.raises(RuntimeError, match="in progress"):
        dash.train()
    deadline = time.monotonic() + 60
    while not dash.chart.records and time.monotonic() < deadline:
        time.sleep(0.02)
    assert dash.chart.records, "no epoch finished within 60 s"
    dash.stop()
    result = dash.wait(timeout=60)
    h = result.history
    assert h.stopped and h.stop_reason == "stopped by user" and len(h) < 30
    end = dash.chart.end_logs
    assert end["stopped"] and len(h.batches) == end["batches_completed"]
    assert [b["epoch"] for b in h.batches] == sorted(b["epoch"] for b in h.batches)
    assert len(h.epochs) == end["epochs_completed"]
    assert dash.results[-1]["stopped"] is True and "data-stopped='true'" in dash.table.value
    assert "stopped after" in dash.status.value and not dash.running and not dash.train_button.disabled


def test_dashboard_replay_drives_the_chart_without_training(dash):
    n_ep, n_b = 5, 3
    hist = History()
    for e in range(n_ep):
        for b in range(n_b):
            hist.on_batch_end({"epoch": e, "batch": b, "loss": 1.0 / (1 + e + b / n_b), "acc": 0.2 + 0.1 * e,
                               "size": 8})
        hist.on_epoch_end({"epoch": e, "loss": 1.0 / (1 + e), "acc": 0.2 + 0.1 * e, "val_loss": 1.1 / (1 + e),
                           "val_acc": 0.15 + 0.1 * e, "seconds": 1.0})
    hist.on_train_end({"stopped": False, "stop_reason": "", "seconds": 5.0})
    live = Dashboard(small_digits, n_per_class=10, headless=False)
    t0 = time.perf_counter()
    chart = live.replay(hist.to_dict(), seconds_per_epoch=0.1)
    assert time.perf_counter() - t0 >= 0.4  # the speed is honoured
    assert chart.records == hist.epochs and chart.batch_count == n_ep * n_b
    assert chart.end_logs["batches_completed"] == n_ep * n_b and chart.draw_count >= 2
    assert live.results == [] and live.run_results == []  # no training, no rows
    assert "replay" in live.status.value

    # Stop works during a background replay
    live.replay(hist, seconds_per_epoch=0.5, block=False)
    time.sleep(0.6)
    live.stop()
    live.wait(timeout=10)
    assert 0 < len(chart.records) < n_ep and chart.end_logs["stopped"]

    with pytest.raises(ValueError, match="nothing to replay"):
        dash.replay()
    with pytest.raises(TypeError, match="cannot replay"):
        history_dict(42)


def test_dashboard_shows_training_errors_and_wait_reraises():
    def builder(n):
        if n == 5:
            raise ValueError("no such task for 5 images")
        return small_digits(n)

    dash = Dashboard(builder, n_per_class=10, headless=True)
    dash.set(n_per_class=5)
    dash.train(block=False)
    with pytest.raises(ValueError, match="no such task"):
        dash.wait(timeout=30)
    assert "no such task for 5 images" in dash.errors.widget.value
    assert "failed" in dash.status.value and not dash.running and dash.results == []


def test_dashboard_is_a_widget_with_running_and_n_runs_traits(dash):
    import ipywidgets as widgets

    assert isinstance(dash, widgets.VBox) and dash.widget is dash
    bundle = dash._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.model_id
    assert data["text/plain"] == repr(dash)
    assert {"running", "n_runs"} <= set(dash.trait_names(sync=True))
    seen = []  # a recording observer of both traits
    dash.observe(lambda change: seen.append((change["name"], change["new"])), names=["running", "n_runs"])
    dash.run_sync(strategy="feature_extraction", num_epochs=1)
    assert seen == [("running", True), ("n_runs", 1), ("running", False)]
    # the slider is observed through its own trait: the fine-tune choice is remembered without reaching inside
    dash.set(strategy="fine_tune", n_frozen=1)
    assert dash.config().n_frozen == 1


def test_dashboard_slider_groups_come_from_a_weightless_outline(dash):
    """The slider shows a model's groups; building (and loading) a real model only for that would cost memory
    and seconds: the outline lives on PyTorch's meta device, with the real parameter counts."""
    outline = dash.template_model
    assert all(p.device.type == "meta" for p in outline.parameters())
    real = tl.build_model("fine_tune", small_digits(10))
    assert outline.group_names == real.group_names
    assert [r[:2] for r in freeze_report(outline).groups] == [r[:2] for r in freeze_report(real).groups]


def test_dashboard_images_per_class_control_shows_all_as_a_value(dash):
    dash.set(n_per_class=None)
    assert dash.n_per_class.value == "all" and dash.n_per_class.index is not None  # a None value shows blank
    assert dash.selected_n_per_class is None
    dash.set(n_per_class=7)  # not an option yet: added, and shown
    assert dash.n_per_class.value == "7" and dash.selected_n_per_class == 7


def test_dashboard_replays_any_row_and_shows_accuracy_per_depth(dash):
    first = dash.run_sync(strategy="fine_tune", n_frozen=1, num_epochs=2)
    dash.run_sync(strategy="feature_extraction", num_epochs=3)
    assert [v for _, v in dash.replay_run.options] == [1, 2] and dash.replay_run.value == 2
    assert dash.replay_run.options[0][0].startswith("#1 fine-tune · 10/class · test ")
    dash.replay(1, seconds_per_epoch=0)
    assert dash.chart.records == first.history.epochs  # the first row, not the last
    dash.replay_run.value = 1
    dash.replay_button.click()  # what the button does: the chosen row
    dash.wait(timeout=30)
    assert len(dash.chart.records) == 2 and "showed 2 of 2" in dash.status.value
    with pytest.raises(ValueError, match=r"source must be a run number in 1\.\.2"):
        dash.replay(3)
    view = dash.freeze_slider.accuracy_view
    assert view.layout.display is None and "data-depth='1'" in view.value  # measured depths beside the slider
    assert dash.freeze_slider.accuracy_at(1) == pytest.approx(first.val_acc)


def test_results_table_marks_best_and_stopped():
    rows = [{"strategy": "scratch", "test_acc": 0.5, "stopped": False, "trainable_params": 1234},
            {"strategy": "fine_tune", "test_acc": 0.9, "stopped": True}]
    out = results_table(rows).to_html()
    assert "<b>0.900</b>" in out and "<b>0.500</b>" not in out
    assert "from scratch" in out and "fine-tune" in out and "1,234" in out
    assert out.count("data-stopped='true'") == 1 and out.count("<tr class='tl-run'") == 2
    assert ">True<" not in out and ">False<" not in out and ">yes<" in out and ">no<" in out  # flags in words
    assert yes_no(np.bool_(True)) == "yes" and yes_no(False) == "no"
    assert "| 2 | fine-tune |" in results_table(rows).to_markdown()   # the same rows for a document
    assert "no runs yet" in results_table([]).to_html() and "tl-run" not in results_table([]).to_html()


# ----------------------------------------------------------------------------- gallery, confusion, features
def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_gallery_marks_mistakes_in_red():
    images = torch.randn(5, 1, 28, 28)
    classes = ["5", "6", "7"]
    preds = [Prediction([("5", 0.9), ("6", 0.1)], "5"), Prediction([("6", 0.6), ("5", 0.4)], "7"),
             Prediction([("7", 0.55)], "7"), Prediction([("5", 0.7)], "6"), Prediction([("6", 0.99)], "6")]
    fig = gallery(images, preds, classes, ncols=3, mean=(0.1307,), std=(0.3081,))
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 5 and len(fig.axes) == 6  # one spare tile, switched off
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "5 (90%) / 5" and titles[1] == "6 (60%) / 7"
    wrong = [ax.title.get_color() == "#c62828" for ax in axes]
    assert wrong == [False, True, False, True, False]
    for ax, w in zip(axes, wrong):
        assert ax.spines["left"].get_visible() == w
        if w:
            assert ax.spines["top"].get_edgecolor()[:3] == pytest.approx((0xc6 / 255, 0x28 / 255, 0x28 / 255))
    assert "2 of 5 wrong" in fig._suptitle.get_text()


def test_gallery_items_from_probabilities_and_a_dataset():
    probs = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    ds = torch.utils.data.TensorDataset(torch.rand(3, 1, 8, 8), torch.tensor([1, 1, 0]))
    items = gallery_items(ds, probs, ["cat", "dog"])
    assert [(i.pred, i.true, i.correct) for i in items] == [("dog", "dog", True), ("cat", "dog", False),
                                                              ("dog", "cat", False)]
    assert items[0].confidence == pytest.approx(0.9) and items[0].image.shape == (8, 8)
    uint8 = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    items = gallery_items(uint8, torch.tensor([0, 1]), ["a", "b"], labels=[0, 0])
    assert items[1].title == "b / a" and items[0].image.shape == (8, 8, 3) and items[0].image.max() <= 1


def test_confusion_view_shows_counts():
    cm = torch.tensor([[5, 1], [2, 7]])
    fig = confusion_view(cm, ["cat", "dog"])
    ax = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells == {(0, 0): "5", (0, 1): "1", (1, 0): "2", (1, 1): "7"}
    assert "80.0%" in ax.get_title()  # (5 + 7) / 15
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    values, texts = confusion_cells(cm, normalize=True)
    assert texts == [["83%", "17%"], ["22%", "78%"]] and values[1, 1] == pytest.approx(7 / 9)
    with pytest.raises(ValueError, match="square"):
        confusion_cells(torch.zeros(2, 3))


def test_show_task_grid():
    task = small_digits(5)
    fig = show_task(task, n_per_class=3)
    assert len(fig.axes) == 15 and all(ax.images for ax in fig.axes)
    assert [fig.axes[3 * c].get_ylabel() for c in range(5)] == task.classes
    img = fig.axes[0].images[0].get_array()
    assert img.min() >= 0 and img.max() <= 1 and img.max() > 0.5  # un-normalised to visible ink


def test_pca_2d_keeps_planar_geometry_and_rng_state():
    gen = torch.Generator().manual_seed(0)
    plane = torch.randn(60, 2, generator=gen) * torch.tensor([3.0, 1.0])
    basis, _ = torch.linalg.qr(torch.randn(10, 2, generator=gen))
    feats = plane @ basis.T + 5.0  # a 2-D cloud embedded in 10-D, shifted
    state = torch.get_rng_state()
    proj, (v1, v2) = pca_2d(feats)
    assert torch.equal(state, torch.get_rng_state())
    exact = "donot_use_mm_for_euclid_dist"  # the matmul shortcut loses ~1e-3 near zero distances in float32
    assert torch.cdist(proj, proj, compute_mode=exact).allclose(torch.cdist(plane, plane, compute_mode=exact), atol=1e-4)
    assert v1 + v2 == pytest.approx(1.0, abs=1e-4) and v1 > v2
    labels = torch.arange(60) % 3
    fig = plot_features_2d(feats, labels, ["a", "b", "c"], title="before")
    ax = fig.axes[0]
    assert len(ax.collections) == 3 and sum(len(c.get_offsets()) for c in ax.collections) == 60
    assert ax.get_title() == "before" and [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]


# ----------------------------------------------------------------------------- DigitPad
def test_pen_stroke_paints_a_soft_line_and_erases():
    g = pen_stroke(np.zeros((28, 28), np.float32), [(5, 10), (20, 10)], radius=1.5)
    assert g.dtype == np.float32 and g.min() == 0.0 and g.max() == 1.0
    assert (g[5:21, 9:12] == 1.0).all()  # within radius - 0.5 of the path: full ink
    assert g[12, 12] == pytest.approx(0.0) and (g[12, 11] == 1.0) and g[:3].sum() == 0  # ends are round
    assert 0 < pen_stroke(np.zeros((28, 28)), [(14, 14)], radius=1.2)[15, 15] < 1  # a dot has soft edges
    again = pen_stroke(g, [(5, 10), (20, 10)], radius=0.5)
    assert (again >= g).all()  # ink only ever increases
    erased = pen_stroke(g, [(12, 10)], radius=1.0, erase=True)
    assert erased[12, 10] == 0.0 and erased[5, 10] == 1.0
    corner = np.zeros((28, 28), np.float32)
    corner[0:8, 0:3] = 1.0  # a stroke in the top-left corner
    x = centre_digit(corner)
    assert x.shape == (28, 28) and 0 <= x.min() and x.max() <= 1.0
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    cy, cx = float((x * ys).sum() / x.sum()), float((x * xs).sum() / x.sum())
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1  # centred by mass, as MNIST was
    assert 18 <= len(torch.nonzero(x.sum(1) > 0.05)) <= 22  # scaled to fill a 20-pixel box
    assert torch.allclose(pad_to_mnist(corner, 0.5, 0.25)[0, 0], (x - 0.5) / 0.25)


def test_digit_pad_recognises_real_digits_and_drawn_strokes():
    from tlwidgets.inputs import MNIST_MEAN, MNIST_STD

    pad = DigitPad()
    assert isinstance(pad.canvas, DigitCanvas) and "tl-digit-pad" in pad.canvas._dom_classes
    assert "draw something" in pad.prediction.value and not pad.grid.any()
    task = tl.mnist_source_task(5, test_per_class=6)
    right = 0
    for x, y in task.test:
        probs = pad.set_image((x[0] * MNIST_STD + MNIST_MEAN).clamp(0, 1))
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        right += max(probs, key=probs.get) == task.classes[int(y)]
    assert right >= 0.8 * len(task.test), f"{right}/{len(task.test)} digits recognised through the pad"
    pad.clear()
    assert not pad.grid.any() and pad.canvas.pixels == [0] * 784 and "draw something" in pad.prediction.value
    one = pad.stroke([(4, 14), (23, 14)])  # a vertical drag
    assert max(one, key=one.get) == "1" and "1</span>" in pad.prediction.value
    assert pad.bars.value.count("tl-digit-probs") == 1 and "pixels inked" in repr(pad)
    pad.clear()
    zero = pad.stroke([(14 + 8 * np.sin(a), 14 + 6 * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 40)])
    assert max(zero, key=zero.get) == "0"
    image, x = pad.image(), pad.input_tensor()
    assert image.shape == (28, 28) and 0 <= image.min() and image.max() <= 1  # 28x28 in 0-1
    assert x.shape == (1, 1, 28, 28) and torch.allclose(x[0, 0], (image - MNIST_MEAN) / MNIST_STD)
    with torch.no_grad():  # what the pad shows is what the model gives for that tensor
        p = pad.model(x).softmax(1)[0]
    assert p.tolist() == pytest.approx(list(zero.values()), abs=1e-6)


def test_digit_pad_follows_the_canvas_like_a_browser_would():
    pad = DigitPad(pen="marker")
    assert pad.canvas.pen_radius == 2.2
    pad.pen.value = "fine"
    assert pad.canvas.pen_radius == 1.0
    pad.mode.value = "erase"
    assert pad.canvas.mode == "erase"  # the canvas's JavaScript reads this
    bitmap = (pen_stroke(np.zeros((28, 28)), [(4, 14), (23, 14)]) * 255).round().astype(int)
    pad.canvas.pixels = bitmap.ravel().tolist()  # what the front end sends after a drag
    assert "1</span>" in pad.prediction.value and pad.grid[10, 14] == 1.0
    pad.pen.value = "marker"
    pad.stroke([(4, 14), (23, 14)])  # erase mode with a wider pen: the stroke is gone again
    assert "draw something" in pad.prediction.value
    pad.clear_button.click()
    assert not pad.grid.any()
    with pytest.raises(ValueError, match="28x28"):
        pad.set_image(np.zeros((14, 14)))
    with pytest.raises(ValueError, match="pen must be one of"):
        DigitPad(pad.model, pen="brush")
