"""tlwidgets.training: fit's events and history, stopping and interruption, determinism, resume, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlwidgets import infra, training
from tlwidgets.freezing import freeze
from tlwidgets.training import Checkpoint, EarlyStopping, History, Observer, StopFlag, evaluate, fit

INFO_KEYS = {"num_epochs", "num_batches", "start_epoch", "metrics", "model_name"}
BATCH_KEYS = {"epoch", "batch", "loss", "acc", "size", "batch_loss", "batch_acc"}
EPOCH_KEYS = {"epoch", "loss", "acc", "val_loss", "val_acc", "seconds"}
END_KEYS = {"epochs_completed", "batches_completed", "stopped", "stop_reason", "seconds"}


class Recorder(Observer):
    """Records every event with a copy of its payload."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    def on_train_begin(self, info):
        self.events.append(("on_train_begin", dict(info)))

    def on_batch_end(self, logs):
        self.events.append(("on_batch_end", dict(logs)))

    def on_epoch_end(self, logs):
        self.events.append(("on_epoch_end", dict(logs)))

    def on_train_end(self, logs):
        self.events.append(("on_train_end", dict(logs)))

    def names(self):
        return [e for e, _ in self.events]

    def last(self, event):
        return [p for e, p in self.events if e == event][-1]


class AtBatch(Observer):
    """Does ``action()`` when the run's ``n``-th batch (1-based, over all epochs) has finished."""

    def __init__(self, n, action):
        self.n, self.action, self.seen = n, action, 0

    def on_batch_end(self, logs):
        self.seen += 1
        if self.seen == self.n:
            self.action()


class WeightSnapshots(Observer):
    """The model's weights after every finished batch."""

    def __init__(self, model):
        self.model, self.after = model, []

    def on_batch_end(self, logs):
        self.after.append([p.detach().clone() for p in self.model.parameters()])

    def matches(self, model, batch: int) -> bool:
        return all(torch.equal(a, b) for a, b in zip(self.after[batch - 1], model.parameters()))


def _loaders(tiny_data, n=48, batch_size=8):
    return (DataLoader(tiny_data(n), batch_size=batch_size, shuffle=True),
            DataLoader(tiny_data(24, seed=2), batch_size=16))


def _run(model, train, val=None, **kw):
    kw.setdefault("num_epochs", 3)
    kw.setdefault("lr", 1e-2)
    return fit(model, train, val, device="cpu", progress=False, **kw)


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _without_seconds(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


# ---------------------------------------------------------------------------- events and history ---
def test_observers_get_the_documented_events_in_order(tiny_model, tiny_data):
    rec = Recorder()
    train, val = _loaders(tiny_data)
    history = _run(tiny_model(), train, val, observers=[rec])
    names = rec.names()
    per_epoch = ["on_batch_end"] * 6 + ["on_epoch_end"]
    assert names == ["on_train_begin", *per_epoch * 3, "on_train_end"]
    info = rec.events[0][1]
    assert set(info) == INFO_KEYS
    assert info["num_epochs"] == 3 and info["num_batches"] == 6 and info["start_epoch"] == 0
    assert info["model_name"] == "tiny"
    batches = [p for e, p in rec.events if e == "on_batch_end"]
    assert all(set(b) == BATCH_KEYS for b in batches)
    assert [(b["epoch"], b["batch"]) for b in batches] == [(e, b) for e in range(3) for b in range(6)]
    assert all(b["size"] == 8 and 0 <= b["acc"] <= 1 and b["loss"] > 0 for b in batches)
    epochs = [p for e, p in rec.events if e == "on_epoch_end"]
    assert all(set(e) == EPOCH_KEYS for e in epochs) and [e["epoch"] for e in epochs] == [0, 1, 2]
    # the epoch's loss/acc are the running means at its last batch
    assert [e["loss"] for e in epochs] == [b["loss"] for b in batches if b["batch"] == 5]
    end = rec.last("on_train_end")
    assert set(end) == END_KEYS
    assert end == {**end, "epochs_completed": 3, "batches_completed": 18, "stopped": False, "stop_reason": ""}
    # the History is the same record
    assert history.epochs == epochs and history.batches == batches
    assert len(history) == 3 and history["val_acc"] == [e["val_acc"] for e in epochs]
    assert history.best("val_acc") == max(history["val_acc"]) and history.last == epochs[-1]
    assert not history.stopped and history.seconds == end["seconds"] > 0
    assert repr(history).startswith("History(3 epochs, 18 batches, loss=")


def test_history_keys_lengths_and_round_trip(tiny_model, tiny_data):
    train, val = _loaders(tiny_data)
    history = _run(tiny_model(), train, val, num_epochs=4)
    for key in ("loss", "acc", "val_loss", "val_acc", "seconds"):
        assert len(history[key]) == 4 and all(isinstance(v, float) for v in history[key])
    assert history["loss"][-1] < history["loss"][0]  # it learns
    again = History.from_dict(history.to_dict())
    assert again.to_dict() == history.to_dict()
    no_val = _run(tiny_model(), train, num_epochs=1)
    assert no_val["val_acc"] == [None] and no_val.best("val_acc") is None


def test_observers_may_implement_only_some_events(tiny_model, tiny_data):
    class OnlyEpochs:
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, logs):
            self.epochs.append(logs["epoch"])

    obs = OnlyEpochs()
    _run(tiny_model(), _loaders(tiny_data)[0], observers=[obs], num_epochs=2)
    assert obs.epochs == [0, 1]


def test_progress_bar_counts_every_batch(tiny_model, tiny_data, capsys):
    bar = training.ProgressBar(desc="tiny", disable=False)
    fit(tiny_model(), _loaders(tiny_data)[0], num_epochs=2, device="cpu", progress=False, observers=[bar])
    assert bar.bar.n == bar.bar.total == 12
    assert "tiny" in capsys.readouterr().err


# --------------------------------------------------------------------------------- interruption ---
def _check_consistent_stop(model, history, rec, val, *, batches, epochs, reason):
    end = rec.last("on_train_end")
    assert end["stopped"] is True and end["stop_reason"].startswith(reason)
    assert end["batches_completed"] == len(history.batches) == batches
    assert end["epochs_completed"] == len(history.epochs) == epochs
    assert history.stopped and history.stop_reason == end["stop_reason"]
    assert rec.names()[-1] == "on_train_end" and rec.names().count("on_train_end") == 1
    assert not model.training  # left in eval mode, ready to use
    assert all(torch.isfinite(p).all() for p in model.parameters())
    result = evaluate(model, val)
    assert result["n"] == 24 and math.isfinite(result["loss"])


def test_stop_flag_set_mid_epoch_returns_at_once_with_a_consistent_history(tiny_model, tiny_data):
    stop, rec = StopFlag(), Recorder()
    train, val = _loaders(tiny_data)
    model = tiny_model()
    snaps = WeightSnapshots(model)
    history = _run(model, train, val, num_epochs=5,
                   observers=[rec, snaps, AtBatch(9, lambda: stop.set("Stop pressed")), stop])
    _check_consistent_stop(model, history, rec, val, batches=9, epochs=1, reason="Stop pressed")
    assert history.stop_reason == "Stop pressed" and "stopped: Stop pressed" in repr(history)
    assert rec.names().count("on_batch_end") == 9
    assert snaps.matches(model, 9) and not snaps.matches(model, 8)  # the weights of the last finished batch
    stop.clear()
    assert not stop.is_set() and repr(stop) == "StopFlag(clear)"


def test_stop_flag_set_from_another_thread_before_start_stops_after_one_batch(tiny_model, tiny_data):
    stop = StopFlag()
    stop.set()
    history = _run(tiny_model(), _loaders(tiny_data)[0], observers=[stop])
    assert len(history.batches) == 1 and history.stop_reason == "stop requested"


def test_keyboard_interrupt_mid_epoch_is_a_clean_stop(tiny_model, tiny_data):
    def ctrl_c():
        raise KeyboardInterrupt

    rec = Recorder()
    train, val = _loaders(tiny_data)
    model = tiny_model()
    snaps = WeightSnapshots(model)
    with pytest.warns(UserWarning, match="training interrupted: the model keeps the weights of the last finished "
                                         "batch"):
        history = _run(model, train, val, observers=[rec, snaps, AtBatch(10, ctrl_c)], num_epochs=5)
    _check_consistent_stop(model, history, rec, val, batches=10, epochs=1, reason="interrupted (KeyboardInterrupt)")
    assert snaps.matches(model, 10)


def test_exception_mid_epoch_is_raised_after_on_train_end(tiny_model, tiny_data):
    def boom():
        raise RuntimeError("observer exploded")

    rec = Recorder()
    train, val = _loaders(tiny_data)
    model = tiny_model()
    with pytest.raises(RuntimeError, match="observer exploded"):
        _run(model, train, val, observers=[rec, AtBatch(8, boom)], num_epochs=5)
    end = rec.last("on_train_end")
    assert end["stopped"] is True and end["stop_reason"] == "error: RuntimeError: observer exploded"
    assert end["batches_completed"] == 8 and end["epochs_completed"] == 1
    assert rec.names().count("on_batch_end") == 8 and rec.names()[-1] == "on_train_end"
    assert not model.training and math.isfinite(evaluate(model, val)["loss"])


def test_nan_inputs_stop_training_naming_the_batch(tiny_model, tiny_data):
    model = tiny_model()
    x, y = tiny_data().tensors
    bad = DataLoader(TensorDataset(torch.where(torch.arange(48).view(48, 1, 1, 1) == 20, torch.nan, x), y),
                     batch_size=8)
    rec = Recorder()
    with pytest.raises(ValueError, match=r"fit\(\): epoch 1: batch 3: 64 of 512 input values are NaN or infinite"):
        _run(model, bad, observers=[rec])
    assert rec.last("on_train_end")["batches_completed"] == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad batch never stepped


def test_exploding_learning_rate_gives_the_hint_too(tiny_model, tiny_data):
    with pytest.raises(FloatingPointError, match=r"loss became (nan|inf) at epoch \d+, batch \d+: the learning "
                                                 r"rate \(1e\+30\) is probably too high"):
        _run(tiny_model(), _loaders(tiny_data)[0], lr=1e30, optimizer="sgd", num_epochs=5)


# -------------------------------------------------------------------------------- determinism ---
def test_same_seed_gives_identical_histories_and_weights(tiny_model, tiny_data):
    runs = []
    for _ in range(2):
        model = tiny_model(seed=0, dropout=0.3)  # dropout and shuffling both draw random numbers
        train, val = _loaders(tiny_data)
        runs.append((_run(model, train, val, seed=7), model))
    (h1, m1), (h2, m2) = runs
    assert _without_seconds(h1.epochs) == _without_seconds(h2.epochs)
    assert h1.batches == h2.batches
    assert _same_weights(m1, m2)
    model = tiny_model(seed=0, dropout=0.3)
    h3 = _run(model, *_loaders(tiny_data), seed=8)
    assert [b["loss"] for b in h3.batches] != [b["loss"] for b in h1.batches]
    assert not _same_weights(model, m1)



def test_conv_models_train_in_channels_last_and_come_back_contiguous(tiny_model, tiny_data, monkeypatch):
    """fit() trains a CNN on the CPU in channels_last order (oneDNN's fast convolutions) and hands the weights back
    in the default order; the twin is the same run kept in the default order: the same batch losses (to 1e-4) and,
    after an epoch, outputs within 0.005 (not bit for bit: the summation order differs). A model without
    convolutions is left as it is."""
    decide, seen = training.trains_channels_last, []

    class Spy(nn.Module):
        def forward(self, x):             # training batches only (evaluate runs its own channels_last copy)
            if self.training:
                seen.append(x.is_contiguous(memory_format=torch.channels_last))
            return x

    fast = tiny_model(seed=0)
    fast.groups["block"].insert(0, Spy())      # 4 channels in: the order shows
    h_fast = _run(fast, *_loaders(tiny_data), seed=3, num_epochs=1, lr=1e-3)
    assert seen and all(seen)
    assert all(p.is_contiguous() for p in fast.parameters())
    monkeypatch.setattr(training, "trains_channels_last", lambda model, device: False)
    plain = tiny_model(seed=0)
    plain.groups["block"].insert(0, Spy())
    seen.clear()
    h_plain = _run(plain, *_loaders(tiny_data), seed=3, num_epochs=1, lr=1e-3)
    assert seen and not any(seen)
    np.testing.assert_allclose([b["loss"] for b in h_fast.batches], [b["loss"] for b in h_plain.batches], rtol=1e-4)
    x = tiny_data().tensors[0]        # compare what the models compute (one epoch: a conv bias before a BatchNorm
    with torch.no_grad():              # has no gradient but rounding, which Adam turns into steps of its own)
        torch.testing.assert_close(fast.eval()(x), plain.eval()(x), rtol=0, atol=5e-3)
    assert decide(fast, torch.device("cpu"))
    assert not decide(nn.Sequential(nn.Linear(3, 2)), torch.device("cpu"))
    assert not decide(fast, torch.device("meta"))

def test_seed_everything_seeds_python_numpy_and_torch():
    import random

    import numpy as np

    infra.seed_everything(3)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    infra.seed_everything(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_seed_torch_draws_what_torch_manual_seed_draws_and_defers_to_it_where_an_accelerator_exists(monkeypatch):
    infra.seed_torch(11)
    ours = (torch.rand(3), torch.randperm(9), torch.empty((), dtype=torch.int64).random_().item())
    torch.manual_seed(11)                       # the library twin
    theirs = (torch.rand(3), torch.randperm(9), torch.empty((), dtype=torch.int64).random_().item())
    torch.testing.assert_close(ours[:2], theirs[:2], rtol=0, atol=0)
    assert ours[2] == theirs[2]

    calls = []
    monkeypatch.setattr(infra, "_cpu_only", lambda: False)
    monkeypatch.setattr(infra.torch, "manual_seed", lambda s: calls.append(s))
    infra.seed_torch(5)
    assert calls == [5]                         # GPUs (and MPS) get their generators seeded too


# ----------------------------------------------------------------------- checkpoints and resume ---
def test_resume_after_interruption_continues_the_same_run(tiny_model, tiny_data, tmp_path):
    full = tiny_model(dropout=0.3)
    h_full = _run(full, *_loaders(tiny_data), num_epochs=3, checkpoint=tmp_path / "full.pt")

    ckpt = tmp_path / "run.pt"
    stop = StopFlag()
    first = tiny_model(dropout=0.3)
    h_first = _run(first, *_loaders(tiny_data), num_epochs=3, checkpoint=ckpt,
                   observers=[AtBatch(9, lambda: stop.set("class is over")), stop])
    assert h_first.stopped and len(h_first.epochs) == 1
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 0 and len(saved["history"]["epochs"]) == 1  # the last finished epoch only

    # next day, a fresh kernel: a new model object (different initial weights) resumes the run
    resumed = tiny_model(seed=123, dropout=0.3)
    rec = Recorder()
    h_resumed = _run(resumed, *_loaders(tiny_data), num_epochs=3, checkpoint=Checkpoint(ckpt, resume=True),
                     observers=[rec])
    assert rec.events[0][1]["start_epoch"] == 1
    assert [p["epoch"] for e, p in rec.events if e == "on_epoch_end"] == [1, 2]
    assert _same_weights(resumed, full)
    assert _without_seconds(h_resumed.epochs) == _without_seconds(h_full.epochs)
    assert h_resumed.batches == h_full.batches and not h_resumed.stopped


def test_two_stop_flags_are_refused(tiny_model, tiny_data):
    with pytest.raises(ValueError, match="observers hold 2 StopFlags; pass at most one"):
        _run(tiny_model(), _loaders(tiny_data)[0], observers=[StopFlag(), StopFlag()])


def test_resume_with_no_checkpoint_yet_starts_from_scratch(tiny_model, tiny_data, tmp_path):
    history = _run(tiny_model(), _loaders(tiny_data)[0], num_epochs=1,
                   checkpoint=Checkpoint(tmp_path / "new.pt", resume=True))
    assert len(history) == 1 and (tmp_path / "new.pt").exists()


def _disk_fills_up(fd, data):
    """What a full disk does to a write: part of the bytes land, then ENOSPC."""
    import errno
    import os

    os.write(fd, data[: len(data) // 2])
    raise OSError(errno.ENOSPC, "No space left on device")


def test_checkpoint_write_is_atomic(tiny_model, tiny_data, tmp_path, monkeypatch):
    ckpt = tmp_path / "run.pt"
    _run(tiny_model(), _loaders(tiny_data)[0], num_epochs=1, checkpoint=ckpt)
    good = ckpt.read_bytes()
    monkeypatch.setattr(infra, "_write_fully", _disk_fills_up)
    rec = Recorder()
    with pytest.raises(OSError, match=rf"cannot write {ckpt}: disk full"):
        _run(tiny_model(seed=5), _loaders(tiny_data)[0], num_epochs=2, checkpoint=ckpt, observers=[rec])
    assert rec.last("on_train_end")["stop_reason"].startswith(f"error: StorageError: cannot write {ckpt}: disk full")
    assert ckpt.read_bytes() == good  # the previous checkpoint is intact ...
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # ... and no temporary file is left
    monkeypatch.undo()
    assert torch.load(ckpt, weights_only=True)["epoch"] == 0


# ---------------------------------------------------------------------------------- bad arguments ---
@pytest.mark.parametrize("lr", [0, -1e-3, float("nan"), float("inf"), "0.01", None, True])
def test_bad_learning_rate_says_what_is_allowed(tiny_model, tiny_data, lr):
    with pytest.raises(ValueError, match=rf"lr must be a positive number \(e\.g\. 1e-3\), got {lr!r}"):
        _run(tiny_model(), _loaders(tiny_data)[0], lr=lr)


@pytest.mark.parametrize("num_epochs", [0, -2, 2.5, True])
def test_bad_num_epochs_says_what_is_allowed(tiny_model, tiny_data, num_epochs):
    with pytest.raises(ValueError, match=rf"num_epochs must be a positive integer, got {num_epochs!r}"):
        _run(tiny_model(), _loaders(tiny_data)[0], num_epochs=num_epochs)


def test_empty_training_set_is_refused(tiny_model):
    empty = DataLoader(TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="train_loader yields no batches: the training set is empty"):
        _run(tiny_model(), empty)
    with pytest.raises(ValueError, match="evaluate\\(\\) got an empty loader"):
        evaluate(tiny_model(), empty)


def test_unknown_optimizer_lists_the_choices(tiny_model, tiny_data):
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamw'; choose 'adam' or 'sgd'"):
        _run(tiny_model(), _loaders(tiny_data)[0], optimizer="adamw")


def test_model_with_nothing_trainable_is_refused(tiny_model, tiny_data):
    model = tiny_model()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match=r"the model has no trainable parameters: unfreeze at least the head"):
        _run(model, _loaders(tiny_data)[0])


def test_wrong_input_shape_says_what_was_given_and_what_the_model_takes(tiny_model):
    photos = DataLoader(TensorDataset(torch.zeros(8, 3, 8, 8), torch.zeros(8, dtype=torch.long)), batch_size=4)
    model = tiny_model()
    before = [p.clone() for p in model.parameters()]
    rec = Recorder()
    with pytest.raises(ValueError, match=r"tiny cannot take a batch of shape \(4, 3, 8, 8\): its first layer takes "
                                         r"1-channel images \(.*\)\. Does the data match the model"):
        _run(model, photos, observers=[rec])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())) and not model.training
    assert rec.last("on_train_end")["batches_completed"] == 0
    flat = torch.zeros(2, 64)
    with pytest.raises(ValueError, match=r"tiny\[3:\] cannot take a batch of shape \(2, 64\): its first layer takes "
                                         r"vectors of 16 features"):
        training.predict(model[3:], flat)
    with pytest.raises(ValueError, match=r"cannot take a batch of shape \(4, 3, 8, 8\)"):
        evaluate(model, photos)


def test_labels_beyond_the_head_ask_for_a_new_head(tiny_model, tiny_data):
    x, y = tiny_data(16, num_classes=5).tensors  # a 5-class task, a 3-class head
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    with pytest.raises(ValueError, match=r"label 4 does not fit a model with 3 outputs \(labels must be 0\.\.2\); "
                                         r"give the model a head for this task: replace_head\(model, "):
        _run(tiny_model(), loader)
    with pytest.raises(ValueError, match="label -1 does not fit a model with 3 outputs"):
        evaluate(tiny_model(), DataLoader(TensorDataset(x[:2], torch.tensor([0, -1])), batch_size=2))


# ---------------------------------------------------------------------- per-group learning rates ---
def test_lr_decay_gives_earlier_groups_smaller_learning_rates(tiny_model, tiny_data, tmp_path):
    model = tiny_model()
    freeze(model, 1)
    groups = training.layerwise_lr_groups(model, 0.1, 0.5)
    assert [(g["name"], g["lr"]) for g in groups] == [("block", 0.025), ("features", 0.05), ("head", 0.1)]
    _run(model, _loaders(tiny_data)[0], num_epochs=1, lr=0.1, lr_decay=0.5, checkpoint=tmp_path / "c.pt")
    used = torch.load(tmp_path / "c.pt", weights_only=True)["optimizer"]["param_groups"]
    assert [(g["name"], g["lr"]) for g in used] == [("block", 0.025), ("features", 0.05), ("head", 0.1)]
    plain = training.layerwise_lr_groups(model, 0.1)
    assert {g["lr"] for g in plain} == {0.1}


@pytest.mark.parametrize("decay", [0, -0.5, 1.5])
def test_bad_lr_decay_says_what_is_allowed(tiny_model, tiny_data, decay):
    with pytest.raises(ValueError, match=rf"lr_decay must be in \(0, 1\], got {decay}"):
        _run(tiny_model(), _loaders(tiny_data)[0], lr_decay=decay)


# ------------------------------------------------------------------------------------- devices ---
def test_select_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert infra.select_device("auto") == torch.device("cpu")
    assert infra.select_device(None) == torch.device("cpu")
    assert infra.select_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device='cuda' was asked for but no CUDA GPU is available; "
                                         "use device='auto' or 'cpu'"):
        infra.select_device("cuda")
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        infra.select_device("cuda:1")
    with pytest.raises(ValueError, match="device='mps' was asked for but Apple's MPS is not available"):
        infra.select_device("mps")
    with pytest.raises(ValueError, match=r"unknown device 'tpu'; choose one of \('auto', 'cpu', 'cuda', 'mps'\)"):
        infra.select_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert infra.select_device("auto") == torch.device("cuda")


def test_fit_on_unavailable_cuda_fails_before_touching_the_model(tiny_model, tiny_data, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        fit(tiny_model(), _loaders(tiny_data)[0], device="cuda", progress=False)


# ---------------------------------------------------------------------- evaluate / predict / cm ---
def test_evaluate_predict_and_confusion_matrix_agree(tiny_model, tiny_data):
    model = tiny_model()
    train, val = _loaders(tiny_data)
    _run(model, train, num_epochs=5)
    model.train()
    result = evaluate(model, val)
    assert model.training  # evaluate restores the mode it found
    cm = training.confusion_matrix(model, val)
    assert cm.shape == (3, 3) and cm.sum() == result["n"] == 24
    assert cm.diag().sum().item() / 24 == pytest.approx(result["acc"])
    preds = training.predict(model, val.dataset, k=2)
    assert len(preds) == 24 and all(len(p.top) == 2 for p in preds)
    assert sum(p.correct for p in preds) == cm.diag().sum().item()
    assert all(p.label in model.classes and p.target in model.classes for p in preds)
    assert all(p.top[0][1] >= p.top[1][1] for p in preds) and 0 < preds[0].confidence <= 1
    single = training.predict(model, val.dataset.tensors[0][0], k=10)
    assert len(single) == 1 and len(single[0].top) == 3 and single[0].target is None
    assert sum(prob for _, prob in single[0].top) == pytest.approx(1.0)
    assert repr(single[0]).startswith("Prediction(c")
    with pytest.raises(ValueError, match="2 class names for a model with 3 outputs"):
        training.predict(model, val.dataset, classes=["a", "b"])


def test_early_stopping_sets_the_flag_after_patience_epochs():
    stop = StopFlag()
    early = EarlyStopping(stop, monitor="val_acc", patience=2)
    early.on_train_begin({})
    for value in (0.5, 0.6, 0.6):
        early.on_epoch_end({"val_acc": value})
        assert not stop.is_set()
    early.on_epoch_end({"val_acc": 0.55})
    assert stop.is_set() and stop.reason == "early stopping: val_acc did not improve for 2 epochs"
    with pytest.raises(ValueError, match="patience must be at least 1 epoch, got 0"):
        EarlyStopping(stop, patience=0)
    with pytest.raises(ValueError, match="mode must be 'max' or 'min', got 'up'"):
        EarlyStopping(stop, mode="up")


def test_early_stopping_inside_fit_stops_at_an_epoch_boundary(tiny_model, tiny_data):
    stop = StopFlag()
    train, val = _loaders(tiny_data)
    early = EarlyStopping(stop, monitor="val_loss", mode="min", patience=1, min_delta=100.0)
    history = _run(tiny_model(), train, val, num_epochs=10, observers=[early, stop])
    assert len(history.epochs) == 2 and len(history.batches) == 12
    assert history.stopped and history.stop_reason.startswith("early stopping: val_loss")


# ------------------------------------------------------------------------- events in one place ---
def test_raw_batch_values_sit_beside_the_running_means(tiny_model, tiny_data):
    rec = Recorder()
    _run(tiny_model(), _loaders(tiny_data)[0], observers=[rec], num_epochs=2)
    batches = [p for e, p in rec.events if e == "on_batch_end"]
    for epoch in (0, 1):
        seen = loss_sum = correct = 0.0
        for b in (b for b in batches if b["epoch"] == epoch):
            seen += b["size"]
            loss_sum += b["batch_loss"] * b["size"]
            correct += b["batch_acc"] * b["size"]
            assert b["loss"] == pytest.approx(loss_sum / seen) and b["acc"] == pytest.approx(correct / seen)
    assert len({b["batch_loss"] for b in batches}) > 1  # each batch's own value, not the running mean again


def test_any_observer_can_stop_the_run_by_raising_stop_training(tiny_model, tiny_data):
    def stop_now():
        raise training.StopTraining("target reached")

    rec_before, rec_after = Recorder(), Recorder()
    train, val = _loaders(tiny_data)
    model = tiny_model()
    history = _run(model, train, val, num_epochs=5, observers=[rec_before, AtBatch(9, stop_now), rec_after])
    _check_consistent_stop(model, history, rec_before, val, batches=9, epochs=1, reason="target reached")
    assert rec_after.names().count("on_batch_end") == 9  # the observers after it still saw batch 9


def test_stop_training_at_an_epoch_end_stops_at_that_boundary(tiny_model, tiny_data):
    class StopAfterTwoEpochs(Observer):
        def on_epoch_end(self, logs):
            if logs["epoch"] == 1:
                raise training.StopTraining()

    history = _run(tiny_model(), _loaders(tiny_data)[0], num_epochs=5, observers=[StopAfterTwoEpochs()])
    assert len(history) == 2 and len(history.batches) == 12
    assert history.stopped and history.stop_reason == "stopped by an observer"


def test_misspelt_observer_methods_are_warned_about(tiny_model, tiny_data):
    class Typo(Observer):
        def __init__(self):
            self.calls = 0

        def on_epoch_ends(self, logs):  # never called: the event is on_epoch_end
            self.calls += 1

        def on_msg(self, callback):  # a widget's own on_* method: not a typo of an event
            pass

    typo = Typo()
    with pytest.warns(UserWarning, match=r"Typo\.on_epoch_ends is not a training event .* did you mean "
                                         r"on_epoch_end\?") as caught:
        _run(tiny_model(), _loaders(tiny_data)[0], num_epochs=1, observers=[typo])
    assert typo.calls == 0
    assert not any("on_msg" in str(w.message) for w in caught)


def test_events_are_dispatched_only_by_name_from_the_event_list():
    rec = Recorder()
    events = training.Events([rec], StopFlag())
    for name in training.EVENTS:
        events.emit(name, {"epoch": 0})
    assert rec.names() == list(training.EVENTS)
    with pytest.raises(ValueError, match="unknown training event 'on_epoch_begin'"):
        events.emit("on_epoch_begin", {})


def test_early_stopping_without_a_flag_raises_stop_training(tiny_model, tiny_data):
    early = EarlyStopping(monitor="loss", mode="min", patience=1, min_delta=10.0)  # nothing improves by 10
    history = _run(tiny_model(), _loaders(tiny_data)[0], num_epochs=5, observers=[early])
    assert len(history) == 2 and history.stop_reason == "early stopping: loss did not improve for 1 epochs"
