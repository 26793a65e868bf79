"""Which layers transfer: Yosinski et al. (2014) in small, cut sweeps, and probes on fixed features.

Why a module of its own: lessons 5 and 6 ask questions that are each answered by
many small trainings over several seeds ("how good is a network whose first
``n`` layers came from another task?", "how good is a linear head on the output
of group ``k``?"). Written in a notebook that would be pages of loops; here it is
a few tested functions, and the lessons stay thin.

- :func:`transplant` builds Yosinski's "AnB": the first ``n`` layer groups of a
  network trained on task A copied into a fresh network, frozen or not.
- :func:`yosinski_sweep` trains the paper's variants (base B, BnB, BnB+, AnB,
  AnB+) for every depth ``n`` and several seeds.
- :func:`pooled_cut_features` runs a frozen backbone once and keeps the
  globally pooled output of several group boundaries (a "cut sweep" then costs
  one forward pass).
- :func:`probe` trains a linear head on fixed features, choosing its epoch on a
  validation split and measuring the test split once.
- :class:`SeedResults` holds one row per (setting, seed) and summarises the
  spread with :func:`tlwidgets.metrics.seed_spread`.

Every training run here selects only on validation data (the epoch with the
best validation accuracy) and evaluates the test set once, at the end.
Core module: imports neither ipywidgets nor matplotlib.
"""
from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from .data import Task, dataset_labels, dataset_tensors
from .features import activation_cache, activation_key, cached_features, extract_features
from .freezing import freeze, unfreeze_all
from .inference import as_channels_last, inference_copy
from .infra import derive_seed, seed_everything, select_device
from .metrics import Metrics, Spread, seed_spread
from .models import GroupedModel, digit_cnn
from .pretrained import imagenet_class_groups
from .runs import Recipe, RunResult, check_equal_budgets, train_datasets
from .splits import stratified_split
from .validate import check_int

__all__ = ["VARIANTS", "transplant", "train_val", "train_and_test", "YOSINSKI_RECIPE", "PROBE_RECIPE",
           "SPECIALISE_RECIPE", "SeedResults", "yosinski_sweep", "pooled_cut_features", "CutFeatures", "probe",
           "probe_run", "probe_table",
           "zero_shot_table", "output_feature_sets",
           "specialise_top", "FeatureMaps", "feature_maps", "tail_features", "IMAGENET_NAMES_BREED"]

#: Yosinski et al.'s names: "B" = trained on task B; "nB" = first n layers copied, the rest retrained on B;
#: "+" = the copied layers are fine-tuned too (otherwise they stay frozen).
VARIANTS = ("base B", "BnB", "BnB+", "AnB", "AnB+")


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------
def transplant(source: GroupedModel, target: GroupedModel, n: int, *, frozen: bool = True) -> GroupedModel:
    """Copy the weights of ``source``'s first ``n`` layer groups into ``target`` (in place) and return it.

    With ``frozen=True`` those ``n`` groups are frozen (``tl.freeze(target, n)``:
    ``requires_grad_(False)`` and BatchNorm kept in eval mode); otherwise every
    group of ``target`` trains. Groups ``n..`` keep ``target``'s own (random)
    weights. The two networks must have the same architecture up to group ``n``.
    """
    if not isinstance(source, GroupedModel) or not isinstance(target, GroupedModel):
        raise TypeError(f"transplant() needs two GroupedModels, got {type(source).__name__} and "
                        f"{type(target).__name__}")
    try:
        n = check_int("n", n, min=0, max=target.num_groups - 1)   # NumPy integers welcome, as plain ints
    except ValueError:
        raise ValueError(f"n must be an integer in 0..{target.num_groups - 1} (the head is never copied), "
                         f"got {n!r}") from None
    if source.group_names[:n] != target.group_names[:n]:
        raise ValueError(f"the first {n} groups differ: {source.group_names[:n]} vs {target.group_names[:n]}")
    for name in target.group_names[:n]:
        try:
            target.groups[name].load_state_dict(copy.deepcopy(source.groups[name].state_dict()))
        except RuntimeError as exc:
            raise ValueError(f"group {name!r} has different shapes in source and target: {exc}") from None
    freeze(target, n if frozen else 0)
    return target


def train_val(task: Task, val_per_class: int, seed: int = 0, *, use_task_val: bool = True
              ) -> tuple[Dataset, Dataset]:
    """The task's training and validation sets.

    A task that already carries a validation split (``task.val``) uses it
    (unless ``use_task_val=False``); otherwise ``val_per_class`` samples of each
    class are carved from ``task.train`` with :func:`tlwidgets.splits.stratified_split`
    (seeded) -- the very split :func:`probe` carves from the same training
    features with the same seed, so a network and a probe compared seed by seed
    train and validate on the same images.
    """
    val = getattr(task, "val", None)
    if val is not None and use_task_val:
        return task.train, val
    labels = dataset_labels(task.train)
    tr, va = stratified_split(labels, val_per_class, seed=seed)
    return Subset(task.train, tr.tolist()), Subset(task.train, va.tolist())


def _stack(data: Dataset) -> TensorDataset:
    """A dataset as one (inputs, labels) TensorDataset (all in memory: the course's data is small)."""
    return data if isinstance(data, TensorDataset) else TensorDataset(*dataset_tensors(data))


def train_and_test(model: nn.Module, train: Dataset, val: Dataset, test: Dataset, num_classes: int, *,
                   num_epochs: int = 5, lr: float = 1e-3, batch_size: int = 32, seed: int = 0,
                   weight_decay: float = 0.0, device="cpu") -> tuple[Metrics, float]:
    """``(test metrics, best validation accuracy)`` of :func:`tlwidgets.runs.train_datasets`: the lessons' short form.

    Train, go back to the best-validation epoch, measure the test set once; the
    :class:`~tlwidgets.runs.RunResult` behind it is what every other helper returns.
    """
    r = train_datasets(model, (train, val, test), num_classes,
                       Recipe("scratch", lr=lr, num_epochs=num_epochs, batch_size=batch_size, seed=seed),
                       weight_decay=weight_decay, device=select_device(device))
    assert r.test is not None and r.val_acc is not None   # train_datasets always validates and tests
    return r.test, r.val_acc


# ---------------------------------------------------------------------------
# results over seeds
# ---------------------------------------------------------------------------
class SeedResults:
    """One row per (setting, seed): accuracy, balanced accuracy, chance, majority, validation accuracy.

    ``keys`` name the columns that identify a setting (e.g. ``("variant", "n")``);
    :meth:`spread` and :meth:`summary` aggregate over the seeds.
    """

    def __init__(self, keys: Sequence[str], rows: Iterable[Mapping] = ()):
        self.keys = tuple(keys)
        self.rows: list[dict] = [dict(r) for r in rows]
        self.results: list[RunResult] = []     # the runs added with add_run (models dropped)

    def add(self, metrics: Metrics, *, seed: int, val_acc: float | None = None, **setting) -> dict:
        missing = [k for k in self.keys if k not in setting]
        if missing:
            raise ValueError(f"a row needs the setting keys {self.keys}; missing {missing}")
        seed = check_int("seed", seed, min=0)   # a plain int in the row (np.int64 would break json later)
        row = {**setting, "seed": seed, "accuracy": metrics.accuracy,
               "balanced_accuracy": metrics.balanced_accuracy, "chance": metrics.chance,
               "majority": metrics.majority, "single_class": metrics.single_class, "val_acc": val_acc}
        self.rows.append(row)
        return row

    def add_run(self, result: RunResult, **setting) -> dict:
        """A row from a :class:`~tlwidgets.runs.RunResult` (kept in ``results``), its steps and best epoch too."""
        if result.test is None:
            raise ValueError(f"add_run needs a tested run; {result.name!r} has test=None")
        row = self.add(result.test, seed=result.seed, val_acc=result.val_acc, **setting)
        row.update(steps=result.steps, best_epoch=result.best_epoch, fell_back=result.fell_back)
        self.results.append(result)
        return row

    def values(self, metric: str = "accuracy", **where) -> list[float]:
        vals = [r[metric] for r in self.rows if all(r.get(k) == v for k, v in where.items())]
        if not vals:
            raise KeyError(f"no rows with {where}; settings present: {self.settings()}")
        return vals

    def spread(self, metric: str = "accuracy", **where) -> Spread:
        """:func:`seed_spread` of ``metric`` over the rows matching ``where`` (e.g. ``variant="AnB", n=2``)."""
        return seed_spread(self.values(metric, **where))

    def mean(self, metric: str = "accuracy", **where) -> float:
        return self.spread(metric, **where).mean

    def settings(self) -> list[tuple]:
        return list(dict.fromkeys(tuple(r[k] for k in self.keys) for r in self.rows))

    def summary(self, metrics: Sequence[str] = ("accuracy", "balanced_accuracy")) -> list[dict]:
        """One row per setting: mean, std, min and max of each metric over seeds, plus chance."""
        out = []
        for setting in self.settings():
            where = dict(zip(self.keys, setting))
            row = dict(where)
            for m in metrics:
                s = self.spread(m, **where)
                short = "acc" if m == "accuracy" else "bal_acc" if m == "balanced_accuracy" else m
                row.update({f"{short}_mean": s.mean, f"{short}_std": s.std, f"{short}_min": s.min,
                            f"{short}_max": s.max})
            row["seeds"] = len(self.values(**where))
            row["chance"] = self.values("chance", **where)[0]
            row["majority"] = self.values("majority", **where)[0]
            out.append(row)
        return out

    def to_dict(self) -> dict:
        return {"keys": list(self.keys), "rows": self.rows}

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        lines = [f"SeedResults({len(self.rows)} runs, {len(self.settings())} settings by {self.keys})"]
        for s in self.summary(("accuracy",)):
            name = ", ".join(f"{k}={s[k]}" for k in self.keys)
            lines.append(f"  {name}: acc {s['acc_mean']:.3f} ± {s['acc_std']:.3f} "
                         f"(min {s['acc_min']:.3f}, max {s['acc_max']:.3f}, {s['seeds']} seeds)")
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Yosinski et al. 2014, in small
# ---------------------------------------------------------------------------
#: the recipe of Yosinski's networks and of every variant (one budget for all; lesson 5 passes its num_epochs)
YOSINSKI_RECIPE = Recipe("scratch", lr=1e-3, num_epochs=5, batch_size=32, lr_decay=1.0)


def yosinski_sweep(task_a: Task, task_b: Task, recipe: Recipe | None = None, *, depths: Sequence[int] = (1, 2, 3),
                   seeds: Sequence[int] = (0, 1, 2), make_net: Callable[[int], GroupedModel] = digit_cnn,
                   val_per_class: int = 20, variants: Sequence[str] = VARIANTS, device="cpu",
                   progress: bool = True, **recipe_fields) -> SeedResults:
    """The paper's experiment: for every seed, train A and B networks, then every variant at every depth.

    - base B: the B network itself;
    - BnB / AnB: first ``n`` groups copied from the B / A network and frozen, the rest re-initialised and
      trained on B (cheap: the frozen prefix runs once, its activations are reused);
    - BnB+ / AnB+: the same, but every group is fine-tuned on B.

    Every network (A, B and each variant) trains with one :class:`~tlwidgets.runs.Recipe` (``recipe``,
    default :data:`YOSINSKI_RECIPE`, and/or its fields as keywords: ``num_epochs=``, ``lr=``, ...), so every
    arm takes the same optimiser steps (checked); all use the same B training/validation split (stratified,
    ``val_per_class`` per class), keep their best validation epoch and are measured once on B's test set.
    Rows: ``variant``, ``n`` (0 for base B), seed, accuracy, balanced accuracy, chance, majority, val_acc,
    steps, best_epoch; ``results.results`` holds the :class:`~tlwidgets.runs.RunResult` of every B run.
    """
    from tqdm.auto import tqdm

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {VARIANTS}")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    base = replace(recipe if recipe is not None else YOSINSKI_RECIPE, **recipe_fields)
    probe_net = make_net(task_b.num_classes)
    bad = [n for n in depths
           if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n < probe_net.num_groups]
    if bad or not depths:
        raise ValueError(f"depths must be integers in 1..{probe_net.num_groups - 1} for {probe_net.name}, got "
                         f"{list(depths)}")
    depths = [int(n) for n in depths]
    dev = select_device(device)
    a_splits = tuple(_stack(d) for d in train_val(task_a, val_per_class, seed=0))
    b_train, b_val = (_stack(d) for d in train_val(task_b, val_per_class, seed=0))
    b_test = _stack(task_b.test)
    k = task_b.num_classes
    results = SeedResults(("variant", "n"))
    need_a = any(v.startswith("A") for v in variants)
    total = len(seeds) * (1 + need_a + len(depths) * sum(v != "base B" for v in variants))
    bar = tqdm(total=total, desc="Yosinski sweep", leave=False, disable=not progress)

    def train(factory, splits, r, variant, n, num_classes=k):
        seed_everything(derive_seed(r.seed, "weights", variant, n))   # the new layers' initial weights
        run = train_datasets(factory(), splits, num_classes, r, name=f"{variant} n={n}", task_name=task_b.name,
                             device=dev)
        bar.update()
        return run

    for s in seeds:
        r = replace(base, seed=s)
        nets = {}
        if need_a:
            nets["A"] = train(lambda: make_net(task_a.num_classes), (*a_splits, a_splits[1]), r, "A", 0,
                              task_a.num_classes).model
        b_run = train(lambda: make_net(k), (b_train, b_val, b_test), r, "base B", 0)
        nets["B"] = b_run.model
        if "base B" in variants:
            results.add_run(b_run, variant="base B", n=0)
        for n in depths:
            for src in ("B", "A"):
                source = nets.get(src)
                if source is None:
                    continue
                if f"{src}nB" in variants:   # frozen: train only the fresh top on cached activations
                    splits = tuple(extract_features(source, d, n, device=dev, batch_size=512, progress=False,
                                                    channels_last=False) for d in (b_train, b_val, b_test))
                    run = train(lambda net=source, n=n: transplant(net, make_net(k), n, frozen=True)[n:], splits,
                                replace(r, strategy="feature_extraction"), f"{src}nB", n)
                    results.add_run(run, variant=f"{src}nB", n=n)
                if f"{src}nB+" in variants:  # fine-tuned: everything trains on the images
                    run = train(lambda net=source, n=n: transplant(net, make_net(k), n, frozen=False),
                                (b_train, b_val, b_test), replace(r, strategy="fine_tune", head_epochs=0),
                                f"{src}nB+", n)
                    results.add_run(run, variant=f"{src}nB+", n=n)
    bar.close()
    check_equal_budgets(results.results, where="yosinski_sweep")
    for run in results.results:
        run.model = None      # the sweep keeps numbers, not models
    return results


# ---------------------------------------------------------------------------
# cut sweeps: pooled activations at several group boundaries, in one pass
# ---------------------------------------------------------------------------
class CutFeatures:
    """Globally pooled activations of one task's train and test images at several group boundaries.

    ``train[b]`` / ``test[b]`` are ``(N, channels)`` tensors for boundary ``b``
    (the output of groups ``0..b-1``); ``names[b]`` is the last group run.
    """

    def __init__(self, boundaries, names, train, test, train_labels, test_labels, from_disk=False):
        self.boundaries, self.names = list(boundaries), dict(names)
        self.train, self.test = train, test
        self.train_labels, self.test_labels, self.from_disk = train_labels, test_labels, from_disk

    def __repr__(self) -> str:
        dims = ", ".join(f"{self.names[b]}→{self.train[b].shape[1]}" for b in self.boundaries)
        return (f"CutFeatures({len(self.train_labels)} train + {len(self.test_labels)} test; boundaries {dims}"
                f"{'; from disk cache' if self.from_disk else ''})")


@torch.no_grad()
def _pooled_pass(model: GroupedModel, data: Dataset, boundaries: Sequence[int], device, batch_size: int,
                 progress: bool, desc: str) -> tuple[dict, torch.Tensor]:
    from tqdm.auto import tqdm

    model.eval().to(device)
    feats: dict[int, list[torch.Tensor]] = {b: [] for b in boundaries}
    labels = []
    nhwc = device.type == "cpu"
    frozen = inference_copy(model[:max(boundaries)], channels_last=nhwc)    # BatchNorms folded, model untouched
    for x, y in tqdm(DataLoader(data, batch_size=batch_size), desc=desc, leave=False, disable=not progress):
        h = as_channels_last(x.to(device)) if nhwc else x.to(device)
        for i, group in enumerate(frozen):   # group by group, to keep the output of every cut on the way
            h = group(h)
            if i + 1 in feats:
                pooled = h.mean(dim=(2, 3)) if h.dim() == 4 else h.flatten(1)
                feats[i + 1].append(pooled.float().cpu())
        labels.append(torch.as_tensor(y))
    return {b: torch.cat(v) for b, v in feats.items()}, torch.cat(labels)


def pooled_cut_features(model: GroupedModel, task: Task, boundaries: Sequence[int], *, device="auto",
                        batch_size: int = 64, cache: bool = True, progress: bool = True) -> CutFeatures:
    """Run ``model`` once over ``task``'s train and test images; keep the pooled output at each boundary.

    A boundary ``b`` is the output of groups ``0..b-1`` (as in ``tl.cached_features(model, task, b)``),
    averaged over its spatial positions ("global average pooling"), so every cut gives one vector per image.
    Results are cached on disk by the package's one activation cache (:func:`tlwidgets.features.activation_cache`,
    keyed by the weights, the boundaries and ``task.cache_key``).
    """
    boundaries = sorted(set(int(b) for b in boundaries))
    if not boundaries or boundaries[0] < 1 or boundaries[-1] > model.num_groups - 1:
        raise ValueError(f"boundaries must lie in 1..{model.num_groups - 1} for {model.name}, got {boundaries}")
    names = {b: model.group_names[b - 1] for b in boundaries}
    dev = select_device(device)
    key = activation_key(model, boundaries[-1], task, "pooled", boundaries)

    def compute() -> dict:
        train, ytr = _pooled_pass(model, task.train, boundaries, dev, batch_size, progress, f"{model.name}: train cuts")
        test, yte = _pooled_pass(model, task.test, boundaries, dev, batch_size, progress, f"{model.name}: test cuts")
        return {"train": {str(b): v for b, v in train.items()}, "test": {str(b): v for b, v in test.items()},
                "train_labels": ytr, "test_labels": yte}

    blob, from_disk = activation_cache(f"{model.name}-pooled-{key}", compute, cache=cache)
    return CutFeatures(boundaries, names, {int(k): v for k, v in blob["train"].items()},
                       {int(k): v for k, v in blob["test"].items()}, blob["train_labels"], blob["test_labels"],
                       from_disk=from_disk)


# ---------------------------------------------------------------------------
# linear probes on fixed features
# ---------------------------------------------------------------------------
#: the linear probe's recipe: a new head on fixed features, 30 epochs at 1e-2
PROBE_RECIPE = Recipe("feature_extraction", lr=1e-2, num_epochs=30, batch_size=32)


def probe_run(features: tuple, num_classes: int, recipe: Recipe | None = None, *, val_per_class: int = 2,
              weight_decay: float = 1e-4, n_per_class: int | None = None, device="cpu", name: str = "probe",
              **recipe_fields) -> RunResult:
    """A linear head on fixed features ``(train_x, train_y, test_x, test_y)``: the feature-extraction measurement.

    The recipe's seed draws the validation split (``val_per_class`` per class,
    carved from the training features), optionally ``n_per_class`` training
    samples per class from the rest, and the head's initialisation. Features
    are standardised with the training mean and std. The epoch is chosen on
    validation; the test set is measured once (:func:`tlwidgets.runs.train_datasets`).
    """
    r = replace(recipe if recipe is not None else PROBE_RECIPE, **recipe_fields)
    train_x, train_y, test_x, test_y = features
    train_x, test_x = train_x.flatten(1).float(), test_x.flatten(1).float()
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError(f"features and labels differ in length: train {len(train_x)} vs {len(train_y)}, "
                         f"test {len(test_x)} vs {len(test_y)}")
    tr, va = stratified_split(train_y, val_per_class, seed=r.seed)
    if n_per_class is not None:
        gen = torch.Generator().manual_seed(derive_seed(r.seed, "samples", "probe"))
        keep = []
        for c in torch.unique(train_y[tr]).tolist():
            idx = tr[train_y[tr] == c]
            keep.append(idx[torch.randperm(len(idx), generator=gen)[:n_per_class]])
        tr = torch.cat(keep).sort().values
    mean, std = train_x[tr].mean(0), train_x[tr].std(0).clamp_min(1e-6)
    norm = lambda x: (x - mean) / std  # noqa: E731
    seed_everything(derive_seed(r.seed, "weights"))
    head = nn.Linear(train_x.shape[1], num_classes)
    return train_datasets(head, (TensorDataset(norm(train_x[tr]), train_y[tr]),
                                 TensorDataset(norm(train_x[va]), train_y[va]), TensorDataset(norm(test_x), test_y)),
                          num_classes, r, name=name, weight_decay=weight_decay, device=select_device(device))


def probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
          num_classes: int, *, seed: int = 0, device="cpu", **probe_kw) -> tuple[Metrics, float]:
    """``(test metrics, best val acc)`` of :func:`probe_run` (the lessons' short form); ``probe_kw`` are its
    options and recipe fields (``val_per_class``, ``n_per_class``, ``weight_decay``, ``num_epochs``, ``lr``, ...)."""
    r = probe_run((train_x, train_y, test_x, test_y), num_classes, seed=seed, device=device, **probe_kw)
    assert r.test is not None and r.val_acc is not None
    return r.test, r.val_acc


def probe_table(feature_sets: Mapping[str, tuple], num_classes: int, seeds: Sequence[int], *, key: str = "features",
                results: SeedResults | None = None, progress: bool = True, **probe_kw) -> SeedResults:
    """:func:`probe_run` for every named feature set ``name -> (train_x, train_y, test_x, test_y)`` and seed.

    Every set and seed trains with the same recipe (one budget per training-set size, checked)."""
    from tqdm.auto import tqdm

    results = results if results is not None else SeedResults((key,))
    jobs = [(name, s) for name in feature_sets for s in seeds]
    for name, s in tqdm(jobs, desc="linear probes", leave=False, disable=not progress):
        run = probe_run(feature_sets[name], num_classes, seed=s, name=name, **probe_kw)
        run.model = None
        results.add_run(run, **{key: name})
    check_equal_budgets(results.results, where="probe_table")
    return results


# ---------------------------------------------------------------------------
# dogs -> cats: what the ImageNet model already knows, and sources that know only dogs
# ---------------------------------------------------------------------------
#: The cat breeds of Oxford-IIIT Pet that ImageNet-1k names (as a class of its own) and the class that names them.
IMAGENET_NAMES_BREED = {"Persian": "Persian cat", "Siamese": "Siamese cat", "Egyptian Mau": "Egyptian cat"}


def zero_shot_table(logits: torch.Tensor, labels: torch.Tensor, breeds: Sequence[str],
                    imagenet_names: Sequence[str]) -> list[dict]:
    """Per breed: the ImageNet label most often ranked first, how often, and how often any domestic-cat class is.

    ``logits`` are the untouched 1,000-way outputs for photos of the breeds (``labels`` index ``breeds``).
    No training at all: this is what the source model "already knows" about each target class.
    """
    if logits.shape[1] != len(imagenet_names):
        raise ValueError(f"logits have {logits.shape[1]} outputs, but {len(imagenet_names)} ImageNet names given")
    cats = set(imagenet_class_groups(imagenet_names)["cats"])
    dogs = set(imagenet_class_groups(imagenet_names)["dogs"])
    top1 = logits.argmax(1)
    rows = []
    for c, breed in enumerate(breeds):
        mine = top1[labels == c]
        if len(mine) == 0:
            continue
        counts = torch.bincount(mine, minlength=logits.shape[1])
        best = int(counts.argmax())
        named = IMAGENET_NAMES_BREED.get(breed)
        rows.append({"breed": breed, "photos": len(mine), "most frequent ImageNet label": imagenet_names[best],
                     "rate": counts[best].item() / len(mine),
                     "any cat class": sum(int(counts[i]) for i in cats) / len(mine),
                     "any dog class": sum(int(counts[i]) for i in dogs) / len(mine),
                     "ImageNet names it": named or "-",
                     "named correctly": (counts[imagenet_names.index(named)].item() / len(mine)) if named else None})
    return rows


def output_feature_sets(head: nn.Module, features: CutFeatures, boundary: int,
                        imagenet_names: Sequence[str]) -> dict[str, tuple]:
    """Feature sets for probes built from an ImageNet model's own outputs: the 118 dog-class logits, the 5
    cat-class logits, all 1,000 logits, and the penultimate features themselves.

    A head on the dog logits describes each cat as a mix of dog breeds: "dog knowledge, literally".
    """
    groups = imagenet_class_groups(imagenet_names)
    with torch.no_grad():
        tr, te = head(features.train[boundary]), head(features.test[boundary])
    ytr, yte = features.train_labels, features.test_labels
    return {"118 dog-class outputs": (tr[:, groups["dogs"]], ytr, te[:, groups["dogs"]], yte),
            "5 cat-class outputs": (tr[:, groups["cats"]], ytr, te[:, groups["cats"]], yte),
            "all 1,000 outputs": (tr, ytr, te, yte),
            "penultimate features (1,280)": (features.train[boundary], ytr, features.test[boundary], yte)}


def specialise_top(model: GroupedModel, maps: FeatureMaps, start: int, num_classes: int, recipe: Recipe | None = None,
                   *, val_per_class: int = 2, device="cpu", **recipe_fields) -> RunResult:
    """Fine-tune groups ``start..`` of a copy of ``model`` (with a new head) on activation maps cached at ``start``.

    This is fine-tuning the top of a network (everything below ``start`` frozen) at the cost of training a
    small network: the frozen part ran once. The recipe (default :data:`SPECIALISE_RECIPE`; fields as keywords:
    ``num_epochs=``, ``lr=``, ``lr_decay=``, ``seed=``) gives the head ``lr`` and each pretrained group below
    it ``lr_decay`` times the rate of the group above (discriminative rates); the epoch is chosen on validation
    (``val_per_class`` per class carved from the training maps) and the source task's test maps are read once.
    Returns the :class:`~tlwidgets.runs.RunResult`; its ``model`` is the fine-tuned tail.
    """
    from .models import replace_head

    r = replace(recipe if recipe is not None else SPECIALISE_RECIPE, **recipe_fields)
    tail = copy.deepcopy(model[start:])
    unfreeze_all(tail)
    seed_everything(derive_seed(r.seed, "weights"))
    replace_head(tail, num_classes)
    x, y = maps.train
    tr, va = stratified_split(y, val_per_class, seed=r.seed)
    return train_datasets(tail, (TensorDataset(x[tr], y[tr]), TensorDataset(x[va], y[va]), TensorDataset(*maps.test)),
                          num_classes, r, name=f"fine-tune from group {start}", device=select_device(device))


#: fine-tuning the top of ImageNet on dog breeds (lesson 6): 8 epochs, head at 1e-3, each group below x0.3
SPECIALISE_RECIPE = Recipe("fine_tune", lr=1e-3, num_epochs=8, lr_decay=0.3, head_epochs=0)


class FeatureMaps:
    """Un-pooled activations of a task's train and test images at one boundary.

    Returns ``train = (x, y)`` and ``test = (x, y)``.
    """

    def __init__(self, train: tuple, test: tuple, boundary: int):
        self.train, self.test, self.boundary = train, test, boundary

    def __repr__(self) -> str:
        return (f"FeatureMaps(boundary {self.boundary}: {len(self.train[1])} train + {len(self.test[1])} test, "
                f"shape {tuple(self.train[0].shape[1:])})")


def feature_maps(model: GroupedModel, task: Task, boundary: int, *, device="auto", progress: bool = True
                 ) -> FeatureMaps:
    """The cached activations at ``boundary`` (via ``tl.cached_features``), as plain tensors."""
    fs = cached_features(model, task, boundary, device=device, progress=progress)
    return FeatureMaps(tuple(fs.train.tensors), tuple(fs.test.tensors), boundary)


@torch.no_grad()
def tail_features(tail: GroupedModel, maps: FeatureMaps, *, device="cpu") -> tuple:
    """Run a tail (all but its head) over cached maps: ``(train_x, train_y, test_x, test_y)`` for :func:`probe`."""
    tail.eval().to(device)
    body = inference_copy(tail[:-1])      # BatchNorms folded; the tail itself is untouched

    def run(x):
        return torch.cat([body(x[i:i + 256].to(device)).flatten(1).cpu() for i in range(0, len(x), 256)])
    return run(maps.train[0]), maps.train[1], run(maps.test[0]), maps.test[1]
