"""tlwidgets.runs: the one measurement protocol (Recipe, KeepBest, choose, test_once, RunResult) and its users."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import pkgutil

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import tlwidgets
import tlwidgets as tl
from tlwidgets import data, experiments, layer_transfer, runs
from tlwidgets.infra import SEED_PURPOSES, derive_seed
from tlwidgets.runs import KeepBest, Recipe, RunResult, check_equal_budgets, choose, test_once
from tlwidgets.training import History


# ------------------------------------------------------------------------------------------- seeds ---
def test_derive_seed_values_are_pinned():
    """The derivation is part of every recorded number: a change here changes the course's results."""
    assert derive_seed(0, "weights") == 62138630
    assert derive_seed(1, "weights") == 257351695
    assert derive_seed(0, "order", 3) == 1268340819
    assert derive_seed(0, "order", "head") == 680429782
    assert derive_seed(5, "samples", "text") == 2057448036
    assert derive_seed(0, "draw", "classes", 2) == 23843194


def test_derive_seed_is_sha256_of_seed_purpose_and_keys():
    """Hand-written derivation checked against hashlib directly (its library twin)."""
    for seed, purpose, keys in [(0, "weights", ()), (7, "order", (3,)), (123, "val_split", ("text", 2))]:
        text = "/".join([str(seed), purpose, *(repr(k) for k in keys)])
        want = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
        assert derive_seed(seed, purpose, *keys) == want


def test_derive_seed_separates_purposes_and_refuses_unknown_ones():
    values = {derive_seed(s, p, k) for s in range(5) for p in SEED_PURPOSES for k in range(5)}
    assert len(values) == 5 * len(SEED_PURPOSES) * 5          # no two (seed, purpose, key) collide here
    assert derive_seed(0, "weights") != derive_seed(0, "order")
    with pytest.raises(ValueError, match=r"purpose must be one of \('samples', .*got 'weight'"):
        derive_seed(0, "weight")
    with pytest.raises(ValueError, match="seed"):
        derive_seed(-1, "weights")


# ------------------------------------------------------------------------------------------ recipe ---
def test_recipe_budget_is_the_same_for_every_strategy():
    for n in (10, 25, 64, 300):
        budgets = {s: Recipe(s, num_epochs=6, batch_size=8, min_steps=20).steps(n) for s in tl.STRATEGIES}
        assert len(set(budgets.values())) == 1, budgets
    r = Recipe("fine_tune", num_epochs=6, batch_size=8)
    assert r.stages(16) == (3, 3) and r.steps(16) == 6 * 2          # head stage paid out of num_epochs
    assert Recipe("fine_tune", num_epochs=6, head_epochs=2).stages(16) == (2, 4)
    assert Recipe("scratch", num_epochs=6).stages(16) == (0, 6)
    # min_steps raises small sets' epochs; the head's share grows in proportion
    small = Recipe("fine_tune", num_epochs=4, batch_size=32, min_steps=12)
    assert small.epochs(10) == 12 and small.stages(10) == (6, 6) and small.steps(10) == 12


def test_recipe_resolves_defaults_and_checks_its_fields():
    assert Recipe("scratch").lr == (runs.DEFAULT_LR["scratch"],)
    assert Recipe("fine_tune").decay == 0.5 and Recipe("fine_tune", lr_decay=1.0).decay == 1.0
    grid = Recipe("fine_tune", n_frozen=[0, 1], lr=[1e-3, 1e-2]).candidates()
    assert [(c.n_frozen, c.lr) for c in grid] == [(0, (1e-3,)), (0, (1e-2,)), (1, (1e-3,)), (1, (1e-2,))]
    assert Recipe.from_dict(Recipe("choose", lr=[1e-3, 3e-3], seed=4).as_dict()) == Recipe("choose", lr=[1e-3, 3e-3],
                                                                                            seed=4)
    with pytest.raises(ValueError, match="unknown strategy 'linear'"):
        Recipe("linear")
    with pytest.raises(ValueError, match="num_epochs must be an integer >= 1, got 0"):
        Recipe(num_epochs=0)
    with pytest.raises(ValueError, match=r"head_epochs must be in 0..num_epochs-1 = 0..4 .* got 5"):
        Recipe("fine_tune", num_epochs=5, head_epochs=5)
    with pytest.raises(ValueError, match="lr is an empty list"):
        Recipe(lr=[])
    with pytest.raises(ValueError, match=r"unknown keys \['epochs'\]"):
        Recipe.from_dict({"epochs": 3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        Recipe().seed = 3  # type: ignore[misc]


def test_recipe_stores_plain_python_numbers_and_checks_every_candidate():
    r = Recipe("fine_tune", n_frozen=[np.int64(0), 1], lr=(np.float32(0.5), 1), num_epochs=np.int64(4),
               seed=np.int32(7), lr_decay=np.float64(0.5))
    assert json.loads(json.dumps(r.as_dict())) == r.as_dict()
    assert type(r.seed) is int and type(r.num_epochs) is int and [type(v) for v in r.lrs] == [float, float]
    assert r.n_frozen == (0, 1) and all(type(k) is int for k in r.n_frozen)
    with pytest.raises(ValueError, match=r"lr\[2\]: lr must be a positive number"):
        Recipe(lr=[1e-3, 1e-2, float("nan")])
    with pytest.raises(ValueError, match=r"n_frozen\[1\]: n_frozen must be an integer"):
        Recipe("fine_tune", n_frozen=[1, 1.5])
    with pytest.raises(ValueError, match=r"lr_decay must be a number in \(0, 1\], got 2"):
        Recipe("fine_tune", lr_decay=2)
    with pytest.raises(ValueError, match=r"seed must be an integer in 0\.\."):
        Recipe(seed=-1)
    with pytest.raises(TypeError, match=r"augment must be True or False, got 'no'"):
        Recipe(augment="no")
    assert runs.check_recipe_fields({"num_epochs": np.int64(3)}, label=" for 'scratch'") == {"num_epochs": 3}
    with pytest.raises(ValueError, match=r"num_epochs for 'scratch' must be an integer >= 1, got 0"):
        runs.check_recipe_fields({"num_epochs": 0}, label=" for 'scratch'")
    with pytest.raises(ValueError, match=r"unknown recipe field\(s\) \['epochs'\]"):
        runs.check_recipe_fields({"epochs": 3})


# ------------------------------------------------------------------------------ keep-best / choose ---
def test_keep_best_counts_epochs_from_one_over_the_whole_run_and_keeps_the_earlier_of_equals():
    model = nn.Linear(2, 2)
    keep = KeepBest(model, offset=2, start=(0.6, 2))   # two head epochs before, the head reached 0.6
    for epoch, acc in enumerate([0.5, 0.8, 0.8, 0.7]):
        with torch.no_grad():
            model.weight.fill_(epoch)
        keep.on_epoch_end({"epoch": epoch, "val_acc": acc})
    keep.restore()
    assert (keep.best, keep.best_epoch) == (0.8, 4) and torch.all(model.weight == 1)   # 2 head + 2nd epoch
    assert (keep.own_best, keep.own_epoch) == (0.8, 4)
    fallback = KeepBest(model, offset=2, start=(0.9, 1))
    fallback.on_epoch_end({"epoch": 0, "val_acc": 0.9})
    assert fallback.best_epoch == 1 and fallback.own_epoch == 3    # a tie does not replace the start


def _result(name, val_acc, val_loss=None, steps=4):
    hist = History([{"epoch": 0, "val_acc": val_acc, "val_loss": val_loss}])
    return RunResult(Recipe("scratch"), "t", 5, 10, hist, val_acc=val_acc, best_epoch=1, steps=steps, name=name)


def test_choose_takes_the_best_validation_accuracy_then_the_lower_loss_then_the_first_listed():
    a, b, c = _result("a", 0.7), _result("b", 0.8), _result("c", 0.8)
    assert choose([a, b, c]) is b and [s["strategy"] for s in b.selection] == ["a", "b", "c"]
    d, e = _result("d", 0.8, val_loss=0.5), _result("e", 0.8, val_loss=0.4)
    assert choose([d, e]) is e
    single = _result("s", None)
    assert choose([single]) is single and single.selection == []
    with pytest.raises(ValueError, match="needs every candidate's val_acc"):
        choose([single, a])
    with pytest.raises(ValueError, match="no candidates"):
        choose([])


def test_test_once_refuses_a_second_reading():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    loader = torch.utils.data.DataLoader(TensorDataset(torch.randn(6, 4), torch.tensor([0, 1] * 3)), batch_size=3)
    r = test_once(_result("r", 0.5), model, loader, 2)
    assert r.test is not None and r.test.n == 6 and r.test_acc == r.test.accuracy
    with pytest.raises(ValueError, match="already tested; the test split is read once"):
        test_once(r, model, loader, 2)


def test_unequal_budgets_are_refused_by_name():
    same = [_result("scratch", 0.5, steps=8), _result("feature_extraction", 0.6, steps=8)]
    check_equal_budgets(same, where="test")
    with pytest.raises(ValueError, match=r"learning_curve: unequal budgets at 10 training images, seed 0: "
                                         r"\[\('fe', 6\), \('scratch', 8\)\]"):
        check_equal_budgets([_result("scratch", 0.5, steps=8), _result("fe", 0.6, steps=6)], where="learning_curve")


# ------------------------------------------------------------------------ the protocol's callers ---
@pytest.fixture(scope="module")
def digits():
    return data.mnist_target_task(6, test_per_class=6, val_per_class=4, root=data.REPO_DATASETS)


@pytest.fixture(scope="module")
def tiny_runs(digits):
    """Done-when: run_strategy, a one-size learning_curve, yosinski_sweep and train_bag_model on tiny data."""
    kw = dict(num_epochs=4, batch_size=16, device="cpu")
    out = {s: tl.run_strategy(s, digits, n_frozen=1 if s in ("fine_tune", "choose") else None, progress=False,
                              **kw) for s in tl.STRATEGIES}
    curve = experiments.learning_curve(digits, [3], seeds=(0,), n_frozen=1, **kw)
    out.update({f"curve {r.name}": r for r in curve.records})
    src = data.mnist_source_task(6, test_per_class=4, val_per_class=4, root=data.REPO_DATASETS)
    sweep = layer_transfer.yosinski_sweep(src, digits, depths=(1,), seeds=(0,), val_per_class=2, progress=False,
                                          num_epochs=3, batch_size=16)
    out.update({f"sweep {r.name}": r for r in sweep.results})
    wv = tl.load_word_vectors()
    text = tl.text_task(4, seed=0)
    vocab = wv.subset({tok for s in (text.train, text.val, text.test) for toks in s.tokens for tok in toks})
    for init, freeze in (("pretrained", True), ("pretrained", False), ("random", False)):
        run = tl.train_bag_model(tl.bag_model(vocab, init=init, freeze=freeze), vocab, text, num_epochs=3,
                                 batch_size=4)
        out[f"text {run.name}"] = run
    return out


def test_every_helper_returns_run_results_with_one_best_epoch_convention(tiny_runs):
    assert len(tiny_runs) == 4 + 3 + 5 + 3
    for name, r in tiny_runs.items():
        assert isinstance(r, RunResult), name
        assert isinstance(r.recipe, Recipe) and r.test is not None and r.val_acc is not None, name
        # epochs counted from 1 over the whole run: the kept epoch's logged val_acc is the run's val_acc
        assert 1 <= r.best_epoch <= len(r.history), name
        assert r.history.epochs[r.best_epoch - 1]["val_acc"] == pytest.approx(r.val_acc), name
        assert r.steps == len(r.history.batches) > 0, name
        row = r.row()
        assert {"fell_back", "steps", "best_epoch", "best_unfrozen_epoch"} <= set(row), name


def test_arms_of_each_comparison_take_the_same_optimiser_steps(tiny_runs):
    groups = {"run_strategy": [r for n, r in tiny_runs.items() if n in tl.STRATEGIES],
              "learning_curve": [r for n, r in tiny_runs.items() if n.startswith("curve")],
              "yosinski_sweep": [r for n, r in tiny_runs.items() if n.startswith("sweep")],
              "text": [r for n, r in tiny_runs.items() if n.startswith("text")]}
    for helper, arms in groups.items():
        assert len({r.steps for r in arms}) == 1, (helper, [(r.name, r.steps) for r in arms])
        check_equal_budgets(arms, where=helper)
    assert groups["run_strategy"][0].steps == 4 * 2          # 30 images in batches of 16, 4 epochs


def test_a_strategy_table_gives_every_arm_one_recipe(digits):
    from tlwidgets.transfer import compare_strategies
    table = compare_strategies(digits, num_epochs=3, batch_size=16, n_frozen=1, min_steps=8, device="cpu")
    assert [r.strategy for r in table] == ["scratch", "feature_extraction", "fine_tune"]
    assert {r.steps for r in table} == {8} and {r.recipe.min_steps for r in table} == {8}   # 2 batches x 4 epochs
    assert [r.lr for r in table] == [runs.DEFAULT_LR[s] for s in ("scratch", "feature_extraction", "fine_tune")]
    same = compare_strategies(digits, ["feature_extraction", "fine_tune"], num_epochs=2, lr=[1e-3, 3e-3],
                              n_frozen=1, batch_size=16, device="cpu")
    assert [[c["lr"] for c in r.selection] for r in same] == [[1e-3, 3e-3]] * 2


def test_fine_tuning_reports_its_unfrozen_epoch_and_only_choose_falls_back(tiny_runs):
    ft, ch = tiny_runs["fine_tune"], tiny_runs["choose"]
    assert [e["stage"] for e in ft.history.epochs] == ["head", "head", "unfrozen", "unfrozen"]
    assert not ft.fell_back and ft.best_epoch == ft.best_unfrozen_epoch > 2
    head_best = max(e["val_acc"] for e in ch.history.epochs[:2])
    unfrozen_best = max(e["val_acc"] for e in ch.history.epochs[2:])
    assert ch.fell_back == (head_best >= unfrozen_best)
    assert ch.best_unfrozen_epoch > 2 and (ch.best_epoch <= 2) == ch.fell_back
    assert tiny_runs["feature_extraction"].best_unfrozen_epoch is None


@pytest.mark.parametrize("lr, cache", [((1e-3, 3e-3), True), ((3e-3,), False), ((3.0,), True)])
def test_a_choose_run_carries_the_fine_tune_result_of_the_same_training(digits, lr, cache):
    """run_strategy("choose").fine_tuned is what run_strategy("fine_tune") with the same recipe gives: the same
    learning rate chosen, epoch kept, validation and test readings and weights, from one training. lr=3.0
    wrecks the unfrozen epochs, so "choose" falls back to the head-only model while fine_tuned does not."""
    kw = dict(n_frozen=1, num_epochs=4, batch_size=16, lr=lr, device="cpu", progress=False, cache=cache)
    ch = tl.run_strategy("choose", digits, **kw)
    ft = tl.run_strategy("fine_tune", digits, **kw)
    twin = ch.fine_tuned
    assert twin is not None and twin.strategy == "fine_tune" and not twin.fell_back
    assert (twin.lr, twin.val_acc, twin.best_epoch, twin.best_unfrozen_epoch, twin.steps) == \
        (ft.lr, ft.val_acc, ft.best_epoch, ft.best_unfrozen_epoch, ft.steps)
    assert twin.test == ft.test and [c["lr"] for c in twin.selection] == [c["lr"] for c in ft.selection]
    for (name, a), b in zip(twin.model.state_dict().items(), ft.model.state_dict().values()):
        assert torch.equal(a, b), name
    if lr == (3.0,):
        assert ch.fell_back and ch.best_epoch <= 2 and twin.best_epoch > 2
    assert ft.fine_tuned is None and tl.run_strategy("scratch", digits, **{**kw, "n_frozen": None}).fine_tuned is None


def test_a_stopped_run_is_exempt_from_the_budget_check_and_says_so(digits):
    stop = tl.StopFlag()
    stop.set("pressed")
    r = tl.run_strategy("fine_tune", digits, n_frozen=1, num_epochs=4, batch_size=16, device="cpu", progress=False,
                        stop=stop)
    assert r.history.stopped and r.steps < Recipe("fine_tune", num_epochs=4, batch_size=16).steps(30)
    r.num_train, r.recipe = 10, dataclasses.replace(r.recipe, seed=0)   # beside a full run of the same size
    check_equal_budgets([r, _result("x", 0.5, steps=8)], where="test")


# ----------------------------------------------------------------------- package-wide guarantees ---
#: functions that still take more than 12 parameters (reported, not hidden): none left
_KNOWN_WIDE: set[str] = set()


def _package_functions():
    for info in pkgutil.walk_packages(tlwidgets.__path__, "tlwidgets."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if inspect.isfunction(obj) and obj.__module__ == mod.__name__:
                yield f"{mod.__name__}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__ == mod.__name__:
                for mname, m in vars(obj).items():
                    m = m.__func__ if isinstance(m, (staticmethod, classmethod)) else m
                    if inspect.isfunction(m) and m.__code__.co_filename != "<string>":   # not dataclass-made
                        yield f"{mod.__name__}.{name}.{mname}", m


def test_no_package_function_takes_more_than_twelve_parameters():
    wide = {q: len([p for p in inspect.signature(f).parameters if p not in ("self", "cls")])
            for q, f in _package_functions()}
    assert len(wide) > 300      # the walk saw the package
    too_many = {q: n for q, n in wide.items() if n > 12 and q not in _KNOWN_WIDE}
    assert not too_many, too_many


def test_one_keep_best_one_choose_one_result_type():
    """The duplicates the protocol replaced are gone."""
    from tlwidgets import text, transfer
    for mod, names in ((transfer, ["BestOnValidation"]),
                       (layer_transfer, ["BestOnValidation", "predict_labels"]),
                       (text, ["_KeepBest", "BagRun", "LinearHead"])):
        assert not [n for n in names if hasattr(mod, n)], mod.__name__
    observers = [q for q, f in _package_functions() if q.endswith(".on_epoch_end")]
    keepers = [q for q in observers if "Best" in q or "Keep" in q]
    assert keepers == ["tlwidgets.runs.KeepBest.on_epoch_end"]
