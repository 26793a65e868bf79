"""tlwidgets.runlog: the versioned run-log format, upgrading old logs, and replay through observers."""
from __future__ import annotations

import json

import pytest
from torch.utils.data import DataLoader

from tlwidgets import runlog
from tlwidgets.runs import Recipe
from tlwidgets.training import EVENTS, History, Observer, StopFlag, fit


class Recorder(Observer):
    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name in EVENTS:
            return lambda payload: self.events.append((name, dict(payload)))
        return super().__getattribute__(name)


@pytest.fixture(scope="module")
def logged():
    """A real two-epoch run: its History and the events fit emitted."""
    from tests.unit.conftest import _tiny_data, _tiny_model

    rec = Recorder()
    history = fit(_tiny_model(), DataLoader(_tiny_data(24), batch_size=8), DataLoader(_tiny_data(12, seed=2)),
                  num_epochs=2, lr=1e-2, device="cpu", progress=False, observers=[rec])
    return history, rec.events


def _runs(history):
    return [{"row": {"strategy": "scratch", "test_acc": 0.5}, "recipe": Recipe("scratch", num_epochs=2).as_dict(),
             "n_per_class": 5, "history": history.to_dict()}]


def test_write_then_read_is_the_same_runs_at_the_current_version(logged, tmp_path):
    history, _ = logged
    path = runlog.write_log(tmp_path / "sub" / "log.json", _runs(history), kind="mnist")
    raw = json.loads(path.read_text())
    assert raw["format"] == runlog.FORMAT and raw["version"] == runlog.VERSION == 4 and raw["kind"] == "mnist"
    back = runlog.read_log(path)
    assert back["runs"] == _runs(history)
    assert not list(tmp_path.glob("sub/.log.json.tmp-*"))


def test_a_version_1_log_gets_each_batchs_own_values_back(logged, tmp_path):
    history, _ = logged
    old = history.to_dict()
    for b in old["batches"]:
        del b["batch_loss"], b["batch_acc"]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps({"format": runlog.FORMAT, "version": 1, "runs": [{"row": {}, "history": old}]}))
    upgraded = runlog.read_log(path)["runs"][0]["history"]["batches"]
    for got, want in zip(upgraded, history.batches):
        assert got["batch_loss"] == pytest.approx(want["batch_loss"], rel=1e-6, abs=1e-9)
        assert got["batch_acc"] == pytest.approx(want["batch_acc"], abs=1e-9)


@pytest.mark.parametrize("version", [1, 2])
def test_an_old_logs_rows_say_n_frozen_after_reading(logged, tmp_path, version):
    history, _ = logged
    row = {"strategy": "fine_tune", "frozen_groups": 7, "test_acc": 0.5}   # the old name of the freeze boundary
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": runlog.FORMAT, "version": version,
                                "runs": [{"row": row, "history": history.to_dict()}]}))
    assert runlog.read_log(path)["runs"][0]["row"] == {"strategy": "fine_tune", "n_frozen": 7, "test_acc": 0.5}
    assert runlog.upgrade_row({"n_frozen": 2}) == {"n_frozen": 2}   # current rows pass unchanged


@pytest.mark.parametrize("content, words", [
    ({"epochs": []}, "not a dashboard log"),
    ({"format": runlog.FORMAT, "version": 5, "runs": []}, "version 5; this tlwidgets reads versions 1 to 4"),
    ({"format": runlog.FORMAT, "version": 2, "runs": [{"row": {}}]}, "lacks 'row' or 'history'"),
])
def test_reading_refuses_what_it_cannot_read(tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=words):
        runlog.read_log(path)


def test_replay_emits_what_fit_emitted(logged):
    history, live = logged
    rec = Recorder()
    sleeps = []
    shown = runlog.replay(history, [rec], seconds_per_epoch=0.6, sleep=sleeps.append)
    assert [e for e, _ in rec.events] == [e for e, _ in live]
    assert [p for e, p in rec.events if e in ("on_batch_end", "on_epoch_end")] == \
        [p for e, p in live if e in ("on_batch_end", "on_epoch_end")]
    assert sleeps == pytest.approx([0.2] * 6)  # 3 batches per epoch, 0.6 s per epoch
    assert not shown.interrupted and shown.logged_epochs == 2
    assert rec.events[-1][1]["epochs_completed"] == 2 and rec.events[-1][1]["stopped"] is False


def test_a_stopped_replay_still_ends_the_run(logged, tmp_path):
    history, _ = logged
    path = runlog.write_log(tmp_path / "log.json", _runs(history))
    stop, rec = StopFlag(), Recorder()

    def sleep(seconds):
        if sum(e == "on_batch_end" for e, _ in rec.events) == 4:
            stop.set("stopped by user")

    shown = runlog.replay(path, [rec], stop=stop, sleep=sleep)
    names = [e for e, _ in rec.events]
    assert names == ["on_train_begin", *["on_batch_end"] * 3, "on_epoch_end", "on_batch_end", "on_train_end"]
    assert shown.interrupted and shown.end == {**shown.end, "stopped": True, "stop_reason": "stopped by user",
                                               "epochs_completed": 1, "batches_completed": 4}


def test_replay_needs_something_to_replay():
    with pytest.raises(TypeError, match="cannot replay int"):
        runlog.replay(42, [])
    with pytest.raises(ValueError, match="no finished batch or epoch"):
        runlog.replay(History(), [])
    with pytest.raises(ValueError, match="seconds_per_epoch must be >= 0"):
        runlog.replay(History(), [], seconds_per_epoch=-1)


def test_the_events_log_and_chart_state_are_core_modules():
    """Run logs, replay and the chart's state import neither ipywidgets nor matplotlib (they run headless,
    in scripts and in the dashboard's thread); checked in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import sys, tlwidgets.training, tlwidgets.runlog, tlwidgets.chart_state; "
            "print(sorted(m for m in ('ipywidgets', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_shipped_demo_log_loads_with_a_recipe_per_run():
    """The shipped log is version 3 (a config dict per run): it reads as recipes, rows unchanged."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "apps" / "logs" / "dogs_to_cats.json"
    raw = json.loads(path.read_text())
    runs = runlog.read_log(path)["runs"]
    assert [r["row"] for r in runs] == [r["row"] for r in raw["runs"]]   # nothing to rename
    assert [r["row"]["n_frozen"] for r in raw["runs"]] == [9, 0, 8]
    recipes = [Recipe.from_dict(r["recipe"]) for r in runs]
    assert [r.strategy for r in recipes] == [r["config"]["strategy"] for r in raw["runs"]]
    assert [r.num_epochs for r in recipes] == [r["config"]["num_epochs"] for r in raw["runs"]]
    assert [r["n_per_class"] for r in runs] == [r["config"]["n_per_class"] for r in raw["runs"]]


def test_a_version_3_config_becomes_a_recipe(logged, tmp_path):
    history, _ = logged
    entry = {"row": {"strategy": "fine_tune", "n_frozen": 1, "test_acc": 0.5}, "history": history.to_dict(),
             "config": {"strategy": "fine_tune", "n_per_class": 20, "lr": 1e-3, "num_epochs": 4, "n_frozen": 1,
                        "batch_size": 16, "seed": 3}}
    up = runlog.upgrade_entry(entry)
    assert Recipe.from_dict(up["recipe"]) == Recipe("fine_tune", lr=1e-3, num_epochs=4, n_frozen=1, batch_size=16,
                                                    seed=3)
    assert up["n_per_class"] == 20 and set(up) == {"row", "recipe", "n_per_class", "history"}
    hist, recipe = runlog.history_dict(entry)
    assert recipe["num_epochs"] == 4 and hist["epochs"] == history.to_dict()["epochs"]
