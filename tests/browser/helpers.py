"""Helpers for driving JupyterLab 4 + ipywidgets in a real Chromium (Playwright sync API).

Everything here talks to the page through the DOM only (JupyterLab 4 does not
expose ``window.jupyterapp``).  The server side lives in ``conftest.py``
(:class:`JupyterServer`, fixture ``jupyter_server``).

Typical use from a test::

    from .helpers import open_notebook, run_all_cells, screenshot, assert_no_widget_errors

    def test_x(jupyter_server, browser_page):
        page = browser_page
        open_notebook(page, jupyter_server, "smoke.ipynb")
        run_all_cells(page)
        page.locator(".widget-slider").first.wait_for()
        assert_no_widget_errors(page)
        screenshot(page, "x-after-run")
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Locator, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT_DIR = REPO_ROOT / "test-output" / "browser"

# Default timeouts (milliseconds).  The CI box has 2 slow cores: be generous.
KERNEL_TIMEOUT_MS = 180_000
NOTEBOOK_OPEN_TIMEOUT_MS = 120_000
RUN_ALL_TIMEOUT_MS = 300_000

# CSS selectors for JupyterLab 4.x
NOTEBOOK_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden):not(.p-mod-hidden)"
EXECUTION_INDICATOR = ".jp-Notebook-ExecutionIndicator"
CODE_CELL = ".jp-CodeCell"
INPUT_PROMPT = ".jp-InputArea-prompt"
WIDGET_ERROR_TEXTS = ("Loading widget...", "Error displaying widget", "Error rendering widget")


# --------------------------------------------------------------------------- files


def output_dir() -> Path:
    """``<repo>/test-output/browser`` (created on demand)."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "screenshot"
    return name[:150]


def screenshot(page: "Page", name: str, *, full_page: bool = False) -> Path:
    """Save a PNG of the current viewport to ``test-output/browser/<name>.png``; returns the path."""
    stem = _safe_name(name)
    if stem.lower().endswith(".png"):
        stem = stem[:-4]
    path = output_dir() / f"{stem}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# --------------------------------------------------------------------------- kernel / notebook


def notebook_panel(page: "Page") -> "Locator":
    """Locator of the visible (current) notebook panel."""
    return page.locator(NOTEBOOK_PANEL).first


def kernel_status(page: "Page") -> str | None:
    """``data-status`` of the current notebook's execution indicator (idle, busy, starting, ...)."""
    ind = notebook_panel(page).locator(EXECUTION_INDICATOR).first
    if ind.count() == 0:
        ind = page.locator(EXECUTION_INDICATOR).first
    if ind.count() == 0:
        return None
    return ind.get_attribute("data-status")


def wait_for_kernel_idle(page: "Page", timeout: float = KERNEL_TIMEOUT_MS, *, stable_ms: int = 500) -> None:
    """Wait until the current notebook's kernel indicator says ``idle``.

    ``timeout`` is in milliseconds (Playwright convention).  The status must stay
    ``idle`` for ``stable_ms`` so that a brief idle between two executions (or
    before the first execute request reaches the kernel) does not count.
    """
    deadline = time.monotonic() + timeout / 1000.0
    idle_since: float | None = None
    last = None
    while True:
        try:
            last = kernel_status(page)
        except Exception:  # page navigating / element re-rendered: just retry
            last = None
        now = time.monotonic()
        if last == "idle":
            if idle_since is None:
                idle_since = now
            if (now - idle_since) * 1000 >= stable_ms:
                return
        else:
            idle_since = None
            if last == "dead":
                raise AssertionError("kernel is dead")
        if now > deadline:
            raise TimeoutError(f"kernel not idle after {timeout / 1000:.0f} s (last status: {last!r})")
        page.wait_for_timeout(100)


def dismiss_dialogs(page: "Page") -> int:
    """Close any modal JupyterLab dialog (e.g. kernel selection) by pressing its default button."""
    closed = 0
    for _ in range(5):
        dlg = page.locator(".jp-Dialog")
        if dlg.count() == 0 or not dlg.first.is_visible():
            break
        accept = dlg.first.locator(".jp-Dialog-button.jp-mod-accept")
        if accept.count():
            accept.first.click()
        else:
            page.keyboard.press("Escape")
        closed += 1
        page.wait_for_timeout(300)
    return closed


def open_notebook(page: "Page", server, name: str, *, timeout: float = NOTEBOOK_OPEN_TIMEOUT_MS) -> None:
    """Open ``name`` (path relative to the server root) in JupyterLab's single-document
    tree URL and wait until the notebook is rendered and its kernel is idle.

    ``server`` is the object returned by the ``jupyter_server`` fixture (it needs
    ``.base_url`` and ``.token``).
    """
    url = f"{server.base_url}/lab/tree/{quote(name)}?token={server.token}"
    page.goto(url, wait_until="domcontentloaded", timeout=timeout)
    panel = notebook_panel(page)
    panel.wait_for(state="visible", timeout=timeout)
    # Cells rendered (a notebook always has at least one cell)
    panel.locator(".jp-Cell").first.wait_for(state="attached", timeout=timeout)
    # Kernel started and idle; a "select kernel" dialog would block that.
    deadline = time.monotonic() + timeout / 1000.0
    while True:
        dismiss_dialogs(page)
        status = kernel_status(page)
        if status == "idle":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: kernel not idle after opening (status {status!r})")
        page.wait_for_timeout(250)
    wait_for_kernel_idle(page, timeout=timeout)
    # The document title is the notebook name once the context is ready.
    page.wait_for_function("() => document.title && document.title !== 'JupyterLab'", timeout=timeout)


def click_menu(page: "Page", menu: str, item: str | re.Pattern, *, timeout: float = 30_000) -> None:
    """Click ``menu`` in the main menu bar, then the entry whose label is ``item``
    (exact text, or a regex), e.g. ``click_menu(page, "Run", "Run All Cells")``."""
    page.keyboard.press("Escape")  # close any open menu/completer
    page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^\s*{re.escape(menu)}\s*$")).first.click()
    pattern = item if isinstance(item, re.Pattern) else re.compile(rf"^\s*{re.escape(item)}\s*$")
    entry = page.locator(".lm-Menu:not(.lm-MenuBar) .lm-Menu-item:not(.lm-mod-disabled)").filter(
        has=page.locator(".lm-Menu-itemLabel", has_text=pattern)
    ).first
    entry.wait_for(state="visible", timeout=timeout)
    entry.click()


def code_cell_prompts(page: "Page") -> list[str]:
    """Texts of the input prompts of all code cells of the current notebook, e.g. ``['[1]:', '[*]:']``."""
    return notebook_panel(page).locator(f"{CODE_CELL} {INPUT_PROMPT}").all_inner_texts()


def wait_for_all_cells_executed(page: "Page", timeout: float = RUN_ALL_TIMEOUT_MS) -> None:
    """Wait until every non-empty code cell shows an execution count (``[n]:``) and the kernel is idle."""
    deadline = time.monotonic() + timeout / 1000.0
    pattern = re.compile(r"^\[\d+\]:?$")
    while True:
        prompts = [p.strip() for p in code_cell_prompts(page)]
        if prompts and all(pattern.match(p) for p in prompts):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"cells not executed after {timeout / 1000:.0f} s; prompts: {prompts}")
        page.wait_for_timeout(200)
    wait_for_kernel_idle(page, timeout=max(1000.0, (deadline - time.monotonic()) * 1000))


def run_all_cells(page: "Page", *, timeout: float = RUN_ALL_TIMEOUT_MS, wait: bool = True) -> None:
    """Menu *Run > Run All Cells* on the current notebook; by default waits until every code
    cell has an execution count and the kernel is idle again.

    Note: a cell that raises stops the run; the remaining cells keep ``[ ]:`` and this
    times out.  Check ``page.locator('.jp-OutputArea-output[data-mime-type*="error"]')``
    when debugging.
    """
    notebook_panel(page).locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    click_menu(page, "Run", "Run All Cells")
    if wait:
        # Wait for at least one cell to have been picked up (prompt changes), then for all.
        wait_for_all_cells_executed(page, timeout=timeout)


def restart_kernel_and_clear(page: "Page", *, timeout: float = KERNEL_TIMEOUT_MS) -> None:
    """Menu *Kernel > Restart Kernel and Clear Outputs of All Cells...* (accepting the dialog)."""
    click_menu(page, "Kernel", re.compile(r"^\s*Restart Kernel and Clear Outputs of All Cells"))
    dlg = page.locator(".jp-Dialog")
    try:
        dlg.first.wait_for(state="visible", timeout=10_000)
        dlg.first.locator(".jp-Dialog-button.jp-mod-accept").first.click()
    except Exception:
        pass  # no confirmation dialog configured
    page.wait_for_timeout(500)
    wait_for_kernel_idle(page, timeout=timeout)


# --------------------------------------------------------------------------- widgets


def widget_error_texts(page: "Page") -> list[str]:
    """Widget placeholder / error texts currently visible in the notebook (should be empty)."""
    body = notebook_panel(page).inner_text()
    return [t for t in WIDGET_ERROR_TEXTS if t in body]


def assert_no_widget_errors(page: "Page", *, reprs: tuple[str, ...] = ()) -> None:
    """Assert no "Loading widget..." / "Error displaying widget" text, no widget text repr
    (``IntSlider(value=...``, ``VBox(children=...`` or any of ``reprs``) and no
    Python traceback in the outputs of the current notebook."""
    panel = notebook_panel(page)
    body = panel.inner_text()
    bad = [t for t in WIDGET_ERROR_TEXTS if t in body]
    assert not bad, f"widget failed to render: {bad}"
    outputs_text = "\n".join(panel.locator(".jp-OutputArea-output").all_inner_texts())
    default_reprs = ("IntSlider(value=", "VBox(children=", "HBox(children=", "Button(description=", "Label(value=")
    shown = [r for r in (*default_reprs, *reprs) if r in outputs_text]
    assert not shown, f"widget shown as plain-text repr instead of rendered: {shown}"
    errors = panel.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
                           '.jp-OutputArea-output[data-mime-type*="error"]')
    tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
    assert not tracebacks, "error output in notebook:\n" + "\n---\n".join(tracebacks)


def wait_for_text(locator: "Locator", expected: str | re.Pattern, timeout: float = 60_000) -> str:
    """Poll ``locator.inner_text()`` until it equals (str) / matches (pattern) ``expected``; returns it."""
    deadline = time.monotonic() + timeout / 1000.0
    text = None
    while True:
        try:
            text = locator.inner_text(timeout=2_000).strip()
        except Exception:
            text = None
        if text is not None:
            if isinstance(expected, str) and text == expected:
                return text
            if isinstance(expected, re.Pattern) and expected.search(text):
                return text
        if time.monotonic() > deadline:
            raise AssertionError(f"text {text!r} never became {expected!r} within {timeout / 1000:.0f} s")
        locator.page.wait_for_timeout(100)


def cell_output(page: "Page", index: int) -> "Locator":
    """Output area of the ``index``-th cell (0-based, counting all cells incl. markdown)."""
    return notebook_panel(page).locator(".jp-Cell").nth(index).locator(".jp-OutputArea")
