"""The instructor's dashboard: one cell to compare transfer-learning strategies live.

Pick a strategy, how many layer groups stay frozen, how many labelled images
per class, the learning rate and the number of epochs; press Train; watch the
live chart; press Stop whenever the point is made. Every run adds a row to a
results table, so runs sit side by side.

Why a thread: while ``fit`` runs in the cell that started it, the kernel
cannot process the Stop button's click. Training therefore runs in a
background thread, and everything it shows goes through widget state (label
values, the chart's PNG bytes), which ipywidgets 8 may update from any
thread; nothing is printed from the thread, so no output lands in the wrong
cell. ``train(block=True)`` / ``run_sync`` run in the calling thread instead,
for scripts, tests and papermill.

Replay mode feeds a logged run (``History.to_dict()``, or a log written by
:meth:`Dashboard.save_log`) through the same chart at a chosen speed, for
demos on machines too slow to train in front of an audience.
"""
from __future__ import annotations

import contextlib
import html
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import ipywidgets as widgets
import torch
import traitlets

from ..data import Task, check_n_per_class, mnist_target_task, pets_task, size_label
from ..freezing import freeze, max_frozen
from ..models import GroupedModel
from ..runlog import FORMAT as LOG_FORMAT
from ..runlog import history_dict, log_entry, read_log, write_log
from ..runlog import replay as replay_run
from ..runs import Recipe, freeze_boundary
from ..table import Column, Table
from ..training import Observer, StopFlag
from ..transfer import DEFAULT_LR, STRATEGIES, RunResult, build_model, default_fine_tune_frozen, run_recipe
from ..validate import check_float, check_int
from ._util import ErrorBox, is_headless, widget_bundle
from .freeze_slider import FreezeSlider
from .live_chart import LiveChart, progress_text

__all__ = ["Dashboard", "results_table", "model_outline", "yes_no", "STRATEGY_LABELS", "LOG_FORMAT"]

STRATEGY_LABELS = {"scratch": "from scratch", "feature_extraction": "feature extraction", "fine_tune": "fine-tune",
                   "choose": "choose FE or fine-tune on val"}
N_OPTIONS = (5, 10, 20, 50, 100, None)  # None = all labelled images
# the images-per-class a new dashboard starts at: what the shipped data holds for every class (the pet
# subset has 7-12 trainval photos for most breeds, 1-2 of them kept for validation)
DEFAULT_N_PER_CLASS = {"mnist": 20, "pets": 5}
TABLE_COLUMNS = ("strategy", "task", "n_per_class", "n_frozen", "trainable_params", "epochs", "steps", "fell_back",
                 "val_acc", "test_acc", "balanced_acc", "chance", "majority", "one_class", "seconds", "stopped")
EPOCHS_CONTROL_MAX = 100  # the epochs slider's range (set(num_epochs=...) widens it when asked for more)
ALL_LABEL = "all"  # the labels-per-class control's text (and value) for "every labelled image"


def yes_no(value: Any) -> str:
    """A table cell for a flag: "yes" / "no" (a raw ``True`` / ``False`` reads as code on a projector)."""
    return "yes" if value else "no"


def model_outline(task: Task, backbone: str = "efficientnet_lite0") -> GroupedModel:
    """The fine-tuned model's layer groups for ``task``, built on PyTorch's ``meta`` device: no weights.

    Why: the dashboard's freeze slider only shows which groups a run would freeze and how many parameters
    each holds; every run builds its own model. A ``meta`` model has the real structure and parameter
    counts (so the slider reads them as for any model) but allocates no memory and loads no checkpoint
    (the structure of :func:`~tlwidgets.transfer.build_model`'s fine-tune model, without its weights).
    """
    with torch.device("meta"):
        return build_model("scratch", task, backbone=backbone, scratch_arch="same")


def default_task_builder(kind: str, backbone: str = "efficientnet_lite0") -> Callable[[int | None], Task]:
    """The course's tasks: digits 5-9 (100 test images per class, what the shipped subset holds) or the
    cat-breeds photos at 128 px, normalised for ``backbone``."""
    if kind == "mnist":
        return lambda n: mnist_target_task(n, test_per_class=100)
    if kind == "pets":
        return lambda n: pets_task("cat_breeds", n, image_size=128, backbone=backbone)
    raise ValueError(f"kind must be 'mnist' or 'pets', got {kind!r}")


# --------------------------------------------------------------------------- logic (plain pytest)
def _n_label(n: int | None) -> str:
    return ALL_LABEL if n is None else str(n)


def _n_value(label: str) -> int | None:
    return None if label == ALL_LABEL else int(label)


def _run_label(number: int, row: dict) -> str:
    """'#2 fine-tune · all/class · test 0.713': how the replay control names a row of the table."""
    acc = row.get("test_acc")
    acc_text = f" · test {acc:.3f}" if isinstance(acc, (int, float)) and not isinstance(acc, bool) else ""
    strategy = STRATEGY_LABELS.get(row.get("strategy", ""), str(row.get("strategy")))
    return f"#{number} {strategy} · {row.get('n_per_class', '?')}/class{acc_text}"


def results_table(rows: list[dict]) -> Table:
    """The run list as a :class:`~tlwidgets.table.Table`: one row per run (``RunResult.row()``), numbered,
    the best test accuracy in bold, stopped runs marked (``data-stopped``, shaded) so a glance and a
    browser test both find them."""
    accs = [r["test_acc"] for r in rows if isinstance(r.get("test_acc"), (int, float))]
    best = max(accs) if accs else None
    special = {"strategy": Column("strategy", fmt=lambda s: STRATEGY_LABELS.get(s, str(s))),
               "test_acc": Column("test_acc", "test acc", emphasis=lambda v: v == best),
               "seconds": Column("seconds", fmt=".1f"),
               "one_class": Column("one_class", "one class", fmt=yes_no),
               "fell_back": Column("fell_back", "fell back", fmt=yes_no),
               "stopped": Column("stopped", fmt=yes_no)}
    columns = [Column("#")] + [special.get(c, Column(c, c.replace("_", " "))) for c in TABLE_COLUMNS]

    def row_attrs(row) -> dict[str, str]:
        stopped = bool(row.get("stopped"))
        attrs = {"class": "tl-run", "data-stopped": str(stopped).lower()}
        return {**attrs, "style": "background:#fff3e0"} if stopped else attrs

    return Table([{"#": i, **r} for i, r in enumerate(rows, 1)], columns, empty="no runs yet: press Train",
                 row_attrs=row_attrs, cell_style="padding:2px 8px",
                 html_attrs={"class": "tl-results", "style": "border-collapse:collapse;font-size:12px"})


class _StatusObserver(Observer):
    """Puts 'run 3 · fine-tune · 20/class · epoch 4/30 · ...' into the dashboard's status line."""

    def __init__(self, dashboard: Dashboard, prefix: str):
        self.d, self.prefix, self.num_epochs = dashboard, prefix, None

    def on_train_begin(self, info):
        self.num_epochs = info["num_epochs"]
        self.d._set_status(f"{self.prefix} · training: {progress_text(None, self.num_epochs)}")

    def on_epoch_end(self, logs):
        self.d._set_status(f"{self.prefix} · training: {progress_text(logs, self.num_epochs)}")


# --------------------------------------------------------------------------- view
class Dashboard(widgets.VBox):
    """``Dashboard(kind="mnist")``: strategy, freezing, labels per class, lr, epochs, Train/Stop, live chart, results.

    A widget in its own right (an ``ipywidgets.VBox``) with synced traits other code can ``observe`` or
    ``link``: ``running`` (a run or replay is in progress) and ``n_runs`` (rows in the table). Its parts
    are widgets too: :attr:`freeze_slider` (a :class:`FreezeSlider`, traits ``value`` / ``max``),
    :attr:`chart` (a :class:`LiveChart`), and the controls ``strategy``, ``n_per_class``, ``lr``,
    ``epochs``, ``replay_run``.

    ``task_builder(n_per_class)`` returns the :class:`~tlwidgets.data.Task`
    to train on (``None`` = all labelled images); by default the course's
    digits 5-9 task (``kind="mnist"``) or cat breeds (``kind="pets"``). The
    freeze slider shows the layer groups of that task's model (a weightless outline,
    :func:`model_outline`) and applies to fine-tuning only: "from scratch" trains
    every group, feature extraction only the head.
    Replay plays any run of the table (the ``replay_run`` control, or :meth:`replay` with a run number).
    Python methods drive it without a browser: :meth:`train`, :meth:`stop`,
    :meth:`wait`, :meth:`run_sync`, :meth:`replay`, :meth:`save_log`,
    :meth:`load_log`; :attr:`results` holds one row per run.

    Args:
        task_builder: ``n_per_class -> Task`` (default: the course's task of ``kind``).
        kind: ``"mnist"`` (digits 5-9) or ``"pets"`` (cat breeds): the default task and its log's kind.
        strategy: the strategy selected at first (one of ``tlwidgets.transfer.STRATEGIES``).
        n_per_class: labelled images per class selected at first (None: all; ``"default"``: the kind's default).
        n_options: the choices of the labels-per-class control.
        lr: the learning rate at first (None: the strategy's default).
        num_epochs: epochs selected at first.
        batch_size: training batch size.
        backbone: the pretrained model for photo tasks.
        seed: the seed of every run.
        headless: draw static figures instead of widgets (None: decide from the environment).
        title: shown above the controls.
    """

    running = traitlets.Bool(False, help="a run or a replay is in progress").tag(sync=True)
    n_runs = traitlets.Int(0, help="runs in the results table (trained here or loaded)").tag(sync=True)

    def __init__(self, task_builder: Callable[[int | None], Task] | None = None, *, kind: str = "mnist",
                 strategy: str = "fine_tune", n_per_class: int | None | str = "default",
                 n_options: Sequence[int | None] = N_OPTIONS,
                 lr: float | None = None, num_epochs: int = 10, batch_size: int = 32,
                 backbone: str = "efficientnet_lite0", seed: int = 0, headless: bool | None = None,
                 title: str | None = None):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
        self.kind = kind
        if isinstance(n_per_class, str):
            if n_per_class != "default":
                raise ValueError(f"n_per_class must be a positive integer, None (all) or 'default', "
                                 f"got {n_per_class!r}")
            n_per_class = DEFAULT_N_PER_CLASS.get(kind, 20)
        self.task_builder = task_builder if task_builder is not None else default_task_builder(kind, backbone)
        self.batch_size, self.backbone, self.seed = batch_size, backbone, seed
        self.headless = is_headless(headless)
        self._tasks: dict = {}
        self._runs: list[dict] = []          # runlog.log_entry per run (trained or loaded)
        self.run_results: list[RunResult] = []
        self.last_result: RunResult | None = None
        self.last_error: BaseException | None = None
        self._stop = StopFlag()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None

        n_options = list(n_options)
        if n_per_class not in n_options:
            n_options.append(n_per_class)
        n_options = sorted({n for n in n_options if n is not None}) + ([None] if None in n_options else [])
        template_task = self._task(n_per_class)
        self.template_model = model_outline(template_task, backbone)
        self._ft_frozen = default_fine_tune_frozen(self.template_model)
        freeze(self.template_model, self._ft_frozen)

        # -- controls
        style = {"description_width": "110px"}
        self.strategy = widgets.Dropdown(options=[(STRATEGY_LABELS[s], s) for s in STRATEGIES], value=strategy,
                                         description="strategy", style=style)
        # values are what the control shows ("all" for None): a Dropdown whose value is None shows nothing
        self.n_per_class = widgets.Dropdown(options=[_n_label(n) for n in n_options], value=_n_label(n_per_class),
                                            description="images / class", style=style)
        self.lr = widgets.FloatLogSlider(value=lr if lr is not None else DEFAULT_LR[strategy], base=10, min=-5,
                                         max=-0.5, step=0.1, description="learning rate", readout_format=".1e",
                                         style=style)
        self.epochs = widgets.IntSlider(value=num_epochs, min=1, max=max(EPOCHS_CONTROL_MAX, num_epochs),
                                        description="epochs", style=style)
        self.freeze_slider = FreezeSlider(self.template_model, description="frozen groups")
        small = widgets.Layout(width="110px")
        self.train_button = widgets.Button(description="Train", button_style="success", icon="play", layout=small)
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                          layout=small)
        # "history" is an icon in Font Awesome 4 (JupyterLab) and 5 (Voila) alike ("repeat" is 4 only)
        self.replay_button = widgets.Button(description="Replay", icon="history", disabled=True, layout=small,
                                            tooltip="show the chosen run again, without training")
        self.replay_run = widgets.Dropdown(options=[], description="run", disabled=True,
                                           style={"description_width": "30px"}, layout=widgets.Layout(width="340px"))
        self.replay_run.add_class("tl-replay-run")
        self.replay_speed = widgets.FloatSlider(value=0.5, min=0.05, max=3.0, step=0.05, description="s / epoch",
                                                style=style, layout=widgets.Layout(width="360px"))
        for name, b in (("train", self.train_button), ("stop", self.stop_button), ("replay", self.replay_button)):
            b.add_class(f"tl-{name}-button")
        self.status = widgets.HTML("ready")
        self.status.add_class("tl-dashboard-status")
        self.table = widgets.HTML(results_table([]).to_html())
        self.table.add_class("tl-dashboard-results")
        self.errors = ErrorBox()
        # 640 x 256 px: beside the controls on a 1280 x 800 projector, above the fold
        self.chart = LiveChart(title, headless=self.headless, auto_display=False, display_final=False,
                               figsize=(8.0, 3.2), dpi=80)

        header = widgets.HTML(f"<b>{html.escape(title or 'Transfer learning dashboard')}</b> "
                              f"<span style='color:#666'>({html.escape(template_task.name)})</span>")
        controls = widgets.VBox([self.strategy, self.n_per_class, self.lr, self.epochs,
                                 widgets.HBox([self.train_button, self.stop_button, self.replay_button]),
                                 self.replay_run, self.replay_speed], layout=widgets.Layout(min_width="370px"))
        # headless (the course runner, nbval, a static book page) nobody watches the live chart: each run shows
        # its chart as one static figure instead, so the box holds no empty chart image
        top = [controls] if self.headless else [controls, self.chart]
        # on a 1280 x 800 projector: controls and chart side by side, then the results table, all above the
        # fold; the freeze slider's group list (long for an ImageNet model) comes last
        super().__init__([header, widgets.HBox(top), self.status, self.errors.widget, self.table,
                          self.freeze_slider])
        self.add_class("tl-dashboard")

        self.strategy.observe(self.errors.guard(self._on_strategy, "strategy"), names="value")
        self.freeze_slider.observe(self._remember_frozen, names="value")
        self.train_button.on_click(self.errors.guard(lambda _b: self.train(block=False), "train"))
        self.stop_button.on_click(self.errors.guard(lambda _b: self.stop(), "stop"))
        self.replay_button.on_click(self.errors.guard(lambda _b: self.replay(self.replay_run.value,
                                                                             self.replay_speed.value,
                                                                             block=False), "replay"))
        self._on_strategy({"new": strategy, "old": None}, set_lr=False)

    # -- tasks and settings ------------------------------------------------------------
    def _task(self, n: int | None) -> Task:
        if n not in self._tasks:
            self._tasks[n] = self.task_builder(n)
        return self._tasks[n]

    def _remember_frozen(self, change) -> None:
        if self.strategy.value in ("fine_tune", "choose"):
            self._ft_frozen = change["new"]

    def _on_strategy(self, change, set_lr: bool = True) -> None:
        """Show what each strategy freezes (:func:`tlwidgets.runs.freeze_boundary`); only fine-tuning (and
        choosing between it and feature extraction) lets you choose, and never 'head only'."""
        s, slider, top = change["new"], self.freeze_slider, max_frozen(self.template_model)
        if s in ("fine_tune", "choose"):
            target = min(self._ft_frozen, top - 1)
            slider.value = target  # first the value, then the range: a clamp would overwrite the memory
            slider.max = top - 1
            slider.disabled = False
        else:
            slider.max = top
            slider.value = freeze_boundary(s, self.template_model)
            slider.disabled = True
        if set_lr:
            self.lr.value = DEFAULT_LR[s]

    @property
    def selected_n_per_class(self) -> int | None:
        """The labelled images per class the next run uses (None: all), read from the control, which shows
        its choice as text ("all", "10")."""
        return _n_value(self.n_per_class.value)

    def config(self) -> Recipe:
        """The :class:`~tlwidgets.runs.Recipe` the next run will use (what the controls show; the number of
        labelled images per class is the data, :attr:`selected_n_per_class`). One epoch budget for every strategy:
        a fine-tune's head stage is paid out of it."""
        strategy = self.strategy.value
        return Recipe(strategy, lr=float(self.lr.value), num_epochs=int(self.epochs.value),
                      n_frozen=int(self.freeze_slider.value) if strategy in ("fine_tune", "choose") else None,
                      batch_size=self.batch_size, seed=self.seed, backbone=self.backbone)

    def set(self, *, strategy: str | None = None, n_per_class: int | None | str = "keep", lr: float | None = None,
            num_epochs: int | None = None, n_frozen: int | None = None) -> Dashboard:
        """Set controls from Python, in dependency order (strategy first: it resets lr and the freeze range).

        Args:
            strategy: one of ``STRATEGIES`` (None: unchanged).
            n_per_class: one of the control's options, None for all (``"keep"``: unchanged).
            lr: the learning rate (None: unchanged).
            num_epochs: epochs to train (None: unchanged).
            n_frozen: frozen layer groups for fine-tuning (None: unchanged).
        """
        if strategy is not None:
            if strategy not in STRATEGIES:
                raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
            self.strategy.value = strategy
        if n_per_class != "keep":
            label = _n_label(check_n_per_class(n_per_class))
            if label not in self.n_per_class.options:
                self.n_per_class.options = list(self.n_per_class.options) + [label]
            self.n_per_class.value = label
        if lr is not None:  # refused outside the slider's range instead of silently clamped
            lr = check_float("lr", lr, min=10 ** self.lr.min, max=10 ** self.lr.max)
            self.lr.value = lr
        if num_epochs is not None:
            num_epochs = check_int("num_epochs", num_epochs, min=1)
            if num_epochs > self.epochs.max:
                self.epochs.max = num_epochs
            self.epochs.value = num_epochs
        if n_frozen is not None:
            if self.strategy.value not in ("fine_tune", "choose"):
                raise ValueError(f"n_frozen applies to strategy='fine_tune' or 'choose' only, not "
                                 f"{self.strategy.value!r}")
            n_frozen = check_int("n_frozen", n_frozen)
            if not 0 <= n_frozen <= self.freeze_slider.max:
                raise ValueError(f"n_frozen must be in 0..{self.freeze_slider.max} for fine-tuning "
                                 f"{self.template_model.name} (freezing every group but the head is feature "
                                 "extraction)")
            self.freeze_slider.value = n_frozen
        return self

    # -- running -------------------------------------------------------------------------
    @property
    def widget(self) -> Dashboard:
        """The dashboard itself (it is a widget); kept so code that embeds ``.widget`` in a layout still works."""
        return self

    def _set_status(self, text: str) -> None:
        self.status.value = html.escape(text)

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.train_button.disabled = running
        self.replay_button.disabled = self.replay_run.disabled = running or not self._runs
        self.stop_button.disabled = not running

    def _start(self) -> None:
        with self._lock:
            if self.running:
                raise RuntimeError("a run is in progress: stop() it or wait() for it first")
            self.running = True
        self._stop.clear()
        self.errors.clear()
        self.last_error = None
        self._set_running(True)

    @overload
    def train(self, block: Literal[True]) -> RunResult: ...

    @overload
    def train(self, block: Literal[False] = ...) -> None: ...

    def train(self, block: bool = False) -> RunResult | None:
        """Start a run with the current settings; ``block=True`` trains in this thread and returns the RunResult."""
        self._start()
        recipe, n_per_class = self.config(), self.selected_n_per_class
        if block:
            return self._run(recipe, n_per_class)
        self._thread = threading.Thread(target=self._run_in_background, args=(recipe, n_per_class),
                                        name="tlwidgets-dashboard", daemon=True)
        self._thread.start()
        return None

    def run_sync(self, **settings: Any) -> RunResult:
        """``set(**settings)`` then ``train(block=True)``: one run, start to finish, for scripts and papermill.

        Headless, nobody sees the widgets, so the run's chart (one PNG) and its
        summary line are put into the cell's output instead.
        """
        self.set(**settings)
        result = self.train(block=True)
        if self.headless:
            from IPython.display import Image, display

            if self.chart.png is not None:
                display(Image(data=self.chart.png, format="png"))
            print(f"{result!r}\n  {self.chart.summary}")
        return result

    def _run_in_background(self, recipe: Recipe, n_per_class: int | None) -> None:
        """The thread's target: a failure is already shown in the widget and kept in ``last_error`` (``wait``
        re-raises it), so nothing is left to raise in a thread nobody joins."""
        with contextlib.suppress(Exception):
            self._run(recipe, n_per_class)

    def _run(self, recipe: Recipe, n_per_class: int | None) -> RunResult:
        """One run of ``recipe``; a failure is shown in the error box, kept in ``last_error`` and raised."""
        k = len(self._runs) + 1
        per = size_label(n_per_class)
        prefix = f"run {k} · {STRATEGY_LABELS[recipe.strategy]} · {per}/class"
        try:
            self._set_status(f"{prefix} · preparing (data, model, cached features) ...")
            task = self._task(n_per_class)
            result = run_recipe(recipe, task, stop=self._stop, progress=False,
                                observers=[self.chart, _StatusObserver(self, prefix)])
            h = result.history
            with self._lock:
                self.run_results.append(result)
                self.last_result = result
                self._runs.append(log_entry(result, n_per_class))
                self._runs_changed()
            if h.stopped:
                self._set_status(f"{prefix} · stopped after {len(h)}/{recipe.num_epochs} epochs "
                                 f"({h.stop_reason}) · test_acc {result.test_acc:.3f}")
            else:
                self._set_status(f"{prefix} · done: {len(h)} epochs in {result.seconds:.1f} s · "
                                 f"test_acc {result.test_acc:.3f}")
            return result
        except Exception as exc:  # noqa: BLE001 - shown in the widget, kept, and re-raised when blocking
            self.last_error = exc
            self.errors.show(exc, prefix)
            self._set_status(f"{prefix} · failed: {type(exc).__name__}")
            raise
        finally:
            self._set_running(False)

    def stop(self, reason: str = "stopped by user") -> None:
        """Ask the run in progress (training or replay) to stop after the current batch."""
        self._stop.set(reason)
        if self.running:
            self._set_status(f"{html.unescape(self.status.value)} · stopping ...")

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """Block until the background run ends; return its result (re-raise its error, if it failed)."""
        t = self._thread
        if t is not None:
            t.join(timeout)
            if t.is_alive():
                raise TimeoutError(f"the run is still going after {timeout} s")
        if self.last_error is not None:
            raise self.last_error
        return self.last_result

    # -- replay ---------------------------------------------------------------------------
    def replay(self, source: object = None, seconds_per_epoch: float = 0.5, *, block: bool = True) -> LiveChart:
        """Play a logged run through the chart (no training); ``source=None`` replays the last run.

        ``source``: the number of a row of the table (1 = the first run, as the
        table's "#" column and the ``replay_run`` control number them), a
        History, ``History.to_dict()``, a RunResult, an entry of :attr:`runs`,
        or the path of a JSON file (a dashboard log: its last run; or a History
        dict). ``seconds_per_epoch=0`` plays as fast as drawing allows. Stop
        works during a replay too.
        """
        seconds_per_epoch = check_float("seconds_per_epoch", seconds_per_epoch, min=0)
        if source is None:
            if not self._runs:
                raise ValueError("nothing to replay yet: train a run, load_log(path), or pass a History")
            source = self._runs[-1]
        elif isinstance(source, int) and not isinstance(source, bool):
            if not 1 <= source <= len(self._runs):
                raise ValueError(f"source must be a run number in 1..{len(self._runs)} (the table's # column), "
                                 f"got {source}")
            source = self._runs[source - 1]
        hist, recipe = history_dict(source)
        if not hist.get("epochs") and not hist.get("batches"):
            raise ValueError("the logged run has no finished batch or epoch to replay")
        self._start()
        if block:   # a blocking call raises what went wrong (also shown in the widget and kept in last_error)
            self._replay(hist, recipe, seconds_per_epoch)
            if self.last_error is not None:
                raise self.last_error
            return self.chart
        self._thread = threading.Thread(target=self._replay, args=(hist, recipe, seconds_per_epoch),
                                        name="tlwidgets-replay", daemon=True)
        self._thread.start()
        return self.chart

    def _sleep(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while not self._stop.is_set():
            left = end - time.perf_counter()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def _replay(self, hist: dict, recipe: dict, seconds_per_epoch: float) -> None:
        try:
            prefix = "replay (no training)"
            shown = replay_run({"history": hist, "recipe": recipe}, [self.chart, _StatusObserver(self, prefix)],
                               seconds_per_epoch=seconds_per_epoch, stop=self._stop, sleep=self._sleep)
            self._set_status(f"{prefix}: {'stopped at' if shown.interrupted else 'showed'} "
                             f"{shown.end['epochs_completed']} of {shown.logged_epochs} logged epochs")
        except Exception as exc:  # noqa: BLE001 - shown in the widget and kept
            self.last_error = exc
            self.errors.show(exc, "replay")
        finally:
            self._set_running(False)

    # -- results and logs --------------------------------------------------------------------
    @property
    def results(self) -> list[dict]:
        """One ``RunResult.row()`` per run, trained here or loaded from a log, in order."""
        return [dict(r["row"]) for r in self._runs]

    @property
    def runs(self) -> list[dict]:
        """Every run as ``{"row", "recipe", "n_per_class", "history"}`` (plain data; what :meth:`save_log` writes)."""
        return [dict(r) for r in self._runs]

    def save_log(self, path: str | os.PathLike[str]) -> Path:
        """Write all runs (rows, settings, full histories) as a run log (:mod:`tlwidgets.runlog`); replayable later."""
        return write_log(path, self.runs, kind=self.kind)

    def load_log(self, path: str | os.PathLike[str]) -> int:
        """Append the runs of a log written by :meth:`save_log` to the table (for replay); returns how many."""
        runs = read_log(path)["runs"]
        with self._lock:
            self._runs.extend(runs)
            self._runs_changed()
        self._set_running(self.running)
        return len(runs)

    def _runs_changed(self) -> None:
        """Show the run list everywhere it appears: the table, the replay choice (newest selected), the
        accuracy per freeze depth beside the slider, and the ``n_runs`` trait."""
        rows = self.results
        self.table.value = results_table(rows).to_html()
        self.replay_run.options = [(_run_label(i, r), i) for i, r in enumerate(rows, 1)]
        self.replay_run.value = len(rows) if rows else None
        self.freeze_slider.show_results(rows)
        self.n_runs = len(rows)

    # -- display -------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return widget_bundle(super(), repr(self), **kwargs)

    def __repr__(self) -> str:
        state = "running" if self.running else "idle"
        c = self.config()
        return (f"Dashboard({self.kind}: next {c.strategy}, {size_label(self.selected_n_per_class)}/class, "
                f"lr={c.lrs[0]:.1e}, {c.num_epochs} epochs; {len(self._runs)} runs; {state})")
