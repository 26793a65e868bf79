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
import secrets
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
WIDGET_ERROR_TEXTS = ("Loading widget...", "Error displaying widget", "Error rendering widget")


# --------------------------------------------------------------------------- files


def output_dir() -> Path:
    """``<repo>/test-output/browser`` (created on demand)."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "screenshot"
    return name[:150]


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save a PNG of the current viewport to ``test-output/browser/<name>.png``; returns the path."""
    stem = _safe_name(name)
    if stem.lower().endswith(".png"):
        stem = stem[:-4]
    path = output_dir() / f"{stem}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# --------------------------------------------------------------------------- kernel / notebook


def notebook_panel(page: Page) -> Locator:
    """Locator of the visible (current) notebook panel."""
    return page.locator(NOTEBOOK_PANEL).first


_KERNEL_STATUS_JS = """(panelSel) => {
  const panel = document.querySelector(panelSel);
  if (!panel) return null;
  // Status bar item "Python 3 (ipykernel) | Idle" of the current document.
  const sb = document.querySelector('#jp-main-statusbar .jp-StatusBar-TextItem[title^="Change kernel"]');
  if (sb && sb.innerText.includes('|')) {
    const parts = sb.innerText.split('|').map(x => x.trim());
    if (parts[0] === 'No Kernel') return 'no-kernel';
    return parts[parts.length - 1].toLowerCase();
  }
  // Fallback: toolbar kernel name + execution indicator.  The indicator alone is not
  // enough: it starts as "idle" before any kernel is attached.
  const kn = panel.querySelector('.jp-KernelName');
  const name = kn ? kn.innerText.trim() : '';
  if (!name || name === 'No Kernel') return 'no-kernel';
  const ind = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  return ind ? ind.dataset.status : null;
}"""


def kernel_status(page: Page) -> str | None:
    """Kernel status of the current notebook as JupyterLab shows it, lower-case:
    ``idle``, ``busy``, ``initializing``, ``connecting``, ``starting``, ``restarting``,
    ``unknown``, ``dead``, or ``no-kernel``; ``None`` when no notebook is shown."""
    return page.evaluate(_KERNEL_STATUS_JS, NOTEBOOK_PANEL)


def wait_for_kernel_idle(page: Page, timeout: float = KERNEL_TIMEOUT_MS, *, stable_ms: int = 500) -> None:
    """Wait until the current notebook has a kernel and it is ``idle``.

    ``timeout`` is in milliseconds (Playwright convention).  The status must stay
    ``idle`` for ``stable_ms`` so that a brief idle between two executions does not count.
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


def dismiss_dialogs(page: Page) -> int:
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


def _server_kernel_connected(server, name: str) -> bool:
    """Server-side check: a session for ``name`` exists and its kernel has a websocket."""
    try:
        sessions = server.api("api/sessions", timeout=5) or []
    except Exception:
        return True  # cannot tell: rely on the DOM
    for sess in sessions:
        if sess.get("path", "").lstrip("/") == name.lstrip("/"):
            kernel = sess.get("kernel") or {}
            return kernel.get("connections", 1) >= 1 and kernel.get("execution_state") not in ("starting", "dead")
    return False


def open_notebook(page: Page, server, name: str, *, timeout: float = NOTEBOOK_OPEN_TIMEOUT_MS) -> None:
    """Open ``name`` (path relative to the server root, e.g. ``"smoke.ipynb"`` or
    ``"lessons/01.ipynb"``) and wait until it is rendered, has a kernel, and the kernel is idle.

    Each call uses a fresh, uniquely named JupyterLab workspace, so tabs opened by
    earlier tests are not restored.  ``server`` is the ``jupyter_server`` fixture
    (needs ``.base_url``, ``.token``, ``.api``).  Note: the kernel is shared per
    notebook path on a server; see ``JupyterServer.shutdown_all_kernels``.
    """
    workspace = "t" + secrets.token_hex(6)
    url = f"{server.base_url}/lab/workspaces/{workspace}/tree/{quote(name)}?token={server.token}"
    page.goto(url, wait_until="domcontentloaded", timeout=timeout)
    panel = notebook_panel(page)
    panel.wait_for(state="visible", timeout=timeout)
    # Document context ready: the title starts with the basename, which JupyterLab shortens
    # ("widgets_demo… - …") when it is long, so compare a prefix; then cells rendered.
    basename = name.rsplit("/", 1)[-1]
    page.wait_for_function(
        "(n) => document.title.startsWith(n)", arg=basename[:10], timeout=timeout
    )
    panel.locator(".jp-Cell").first.wait_for(state="attached", timeout=timeout)
    # Kernel attached (not "No Kernel"), connected and idle; a dialog would block that.
    deadline = time.monotonic() + timeout / 1000.0
    idle_since: float | None = None
    status = None
    while True:
        dismiss_dialogs(page)
        status = kernel_status(page)
        now = time.monotonic()
        if status == "idle" and _server_kernel_connected(server, name):
            idle_since = idle_since or now
            if now - idle_since >= 0.75:
                break
        else:
            idle_since = None
        if now > deadline:
            raise TimeoutError(f"{name}: kernel not ready after opening (status {status!r})")
        page.wait_for_timeout(200)


def click_menu(page: Page, menu: str, item: str | re.Pattern, *, timeout: float = 30_000) -> None:
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


_CELLS_JS = """(panelSel) => {
  const panel = document.querySelector(panelSel);
  if (!panel) return [];
  return Array.from(panel.querySelectorAll('.jp-CodeCell')).map(c => {
    const p = c.querySelector('.jp-InputArea-prompt');
    const ed = c.querySelector('.cm-content');
    return {prompt: p ? p.innerText.trim() : '', empty: ed ? ed.innerText.trim() === '' : false,
            collapsed: !!c.querySelector('.jp-InputPlaceholder')};
  });
}"""

_EXECUTED = re.compile(r"^\[\d+\]:?$")


def code_cell_states(page: Page) -> list[dict]:
    """``[{"prompt": "[1]:", "empty": False}, ...]`` for every code cell of the current notebook
    (``[ ]:`` not run, ``[*]:`` queued/running, ``[n]:`` done)."""
    return page.evaluate(_CELLS_JS, NOTEBOOK_PANEL)


def code_cell_prompts(page: Page) -> list[str]:
    """Input prompts of all code cells of the current notebook, e.g. ``['[1]:', '[*]:']``."""
    return [c["prompt"] for c in code_cell_states(page)]


def _error_outputs(page: Page) -> list[str]:
    texts = notebook_panel(page).locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    ).all_inner_texts()
    return [t for t in texts if _TRACEBACK.search(t)]


_TRACEBACK = re.compile(r"Traceback|^\s*\w*(Error|Exception)\b", re.M)


_INDICATOR_JS = """(panelSel) => {
  const panel = document.querySelector(panelSel);
  const ind = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
  return ind ? (ind.dataset.status || '') : null;
}"""


def execution_indicator(page: Page) -> str | None:
    """``data-status`` of the current notebook's execution indicator (its toolbar's kernel circle), ``None``
    without one. JupyterLab counts there every execute request sent and not yet answered by the kernel's
    ``idle`` (the cells Run All queued, a collapsed one included): ``"busy"`` until the last is, then the
    kernel's status."""
    return page.evaluate(_INDICATOR_JS, NOTEBOOK_PANEL)


def _wait_for_queued_cells(page: Page, deadline: float, settle_s: float) -> None:
    """Wait until no cell Run All queued is still waiting or running, a collapsed one (no prompt) included."""
    if execution_indicator(page) is None:
        # no indicator: only a pause longer than the kernel's idle between two cells tells
        page.wait_for_timeout(settle_s * 1000)
        return
    while execution_indicator(page) == "busy":
        if time.monotonic() > deadline:
            raise TimeoutError("cells still queued or running (execution indicator busy) at the deadline")
        page.wait_for_timeout(100)


def wait_for_all_cells_executed(page: Page, timeout: float = RUN_ALL_TIMEOUT_MS, *, settle_s: float = 3.0) -> str:
    """Wait until execution has stopped (no ``[*]`` prompt, kernel idle; when a cell's input is collapsed, as
    that cell shows no prompt, until the notebook's execution indicator has no request left, or for ``settle_s``
    more without an indicator).

    Returns ``"done"`` when every non-empty code cell has an execution count,
    ``"none"`` when no cell ran at all.  Raises ``AssertionError`` (with the error
    output) when the run stopped half-way, e.g. because a cell raised.
    """
    deadline = time.monotonic() + timeout / 1000.0
    stopped_since: float | None = None
    cells: list[dict] = []
    while True:
        # a cell whose input is collapsed (a lesson's hidden closing assertions) shows no prompt: it is judged by
        # the kernel going idle and by its error output, like every cell, below
        states = code_cell_states(page)
        cells = [c for c in states if not c["empty"] and not c.get("collapsed")]
        prompts = [c["prompt"] for c in cells]
        if all(_EXECUTED.match(p) for p in prompts):
            wait_for_kernel_idle(page, timeout=max(1000.0, (deadline - time.monotonic()) * 1000))
            if any(c.get("collapsed") for c in states):
                # a collapsed last cell may still be queued or running, and no prompt says so: the execution
                # indicator does (Run All sent every cell's request at once). Without a collapsed cell, every
                # prompt has its number only once its cell's reply came back (a running or queued cell shows
                # [*]), so there is nothing to wait for.
                _wait_for_queued_cells(page, deadline, settle_s)
                wait_for_kernel_idle(page, timeout=max(1000.0, (deadline - time.monotonic()) * 1000))
            errors = _error_outputs(page)
            if errors:
                raise AssertionError("a cell raised:\n" + "\n---\n".join(errors))
            return "done"
        now = time.monotonic()
        running = any("*" in p for p in prompts)
        if not running and kernel_status(page) == "idle":
            stopped_since = stopped_since or now
            if now - stopped_since >= settle_s:
                if not any(_EXECUTED.match(p) for p in prompts):
                    return "none"
                errors = _error_outputs(page)
                raise AssertionError(
                    f"notebook run stopped before the end; prompts: {prompts}\n" + "\n---\n".join(errors)
                )
        else:
            stopped_since = None
        if now > deadline:
            raise TimeoutError(f"cells not executed after {timeout / 1000:.0f} s; prompts: {prompts}")
        page.wait_for_timeout(200)


def clear_all_outputs(page: Page) -> None:
    """Menu *Edit > Clear Outputs of All Cells* (also resets the ``[n]`` prompts)."""
    click_menu(page, "Edit", "Clear Outputs of All Cells")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not any(_EXECUTED.match(p) for p in code_cell_prompts(page)):
            return
        page.wait_for_timeout(100)
    raise TimeoutError(f"outputs not cleared; prompts: {code_cell_prompts(page)}")


def run_all_cells(page: Page, *, timeout: float = RUN_ALL_TIMEOUT_MS, wait: bool = True) -> None:
    """Clear all outputs, then menu *Run > Run All Cells* on the current notebook; by default
    waits until every non-empty code cell has an execution count and the kernel is idle.

    Clearing first makes "every cell has ``[n]``" mean "ran now", not "ran before".
    Raises ``AssertionError`` with the traceback text if a cell raised (the run stops there).
    """
    wait_for_kernel_idle(page)
    clear_all_outputs(page)
    for attempt in range(2):
        click_menu(page, "Run", "Run All Cells")
        if not wait:
            return
        if wait_for_all_cells_executed(page, timeout=timeout) == "done":
            return
        # Nothing ran at all (e.g. the kernel was not attached yet): safe to retry once.
    raise AssertionError(f"Run All Cells executed nothing; prompts: {code_cell_prompts(page)}")


def restart_kernel_and_clear(page: Page, *, timeout: float = KERNEL_TIMEOUT_MS) -> None:
    """Menu *Kernel > Restart Kernel and Clear Outputs of All Cells...* (accepting the dialog)."""
    click_menu(page, "Kernel", re.compile(r"^\s*Restart Kernel and Clear Outputs of All Cells"))
    dlg = page.locator(".jp-Dialog")
    try:
        dlg.first.wait_for(state="visible", timeout=10_000)
        dlg.first.locator(".jp-Dialog-button.jp-mod-accept").first.click()
    except Exception:
        pass  # no confirmation dialog configured
    page.wait_for_timeout(1000)
    wait_for_kernel_idle(page, timeout=timeout)


# --------------------------------------------------------------------------- widgets


def widget_error_texts(page: Page) -> list[str]:
    """Widget placeholder / error texts currently visible in the notebook (should be empty)."""
    body = notebook_panel(page).inner_text()
    return [t for t in WIDGET_ERROR_TEXTS if t in body]


def assert_no_widget_errors(page: Page, *, reprs: tuple[str, ...] = ()) -> None:
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
    tracebacks = _error_outputs(page)
    assert not tracebacks, "error output in notebook:\n" + "\n---\n".join(tracebacks)


def wait_for_text(locator: Locator, expected: str | re.Pattern, timeout: float = 60_000) -> str:
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


# console errors that come from a dependency's own bug, not from the course, each with where it is tracked;
# anything else a page logs as an error fails the suite that saw it
KNOWN_UPSTREAM_ERRORS = {
    # Notebook 7.6's keyboard-shortcuts plugin reads registry.plugins[id].schema on a settings change of a
    # plugin that registry does not hold yet (a race in notebook_core, any notebook, no extension needed):
    # https://github.com/jupyter/notebook/issues/7862 (open)
    "Cannot read properties of undefined (reading 'schema')": "jupyter/notebook#7862",
}


def console_errors(page: Page) -> list[str]:
    """The page's console errors and uncaught exceptions (``browser_page`` records them), less the known
    upstream ones of :data:`KNOWN_UPSTREAM_ERRORS`."""
    log = getattr(page, "console_messages_log", [])
    return [m for m in log if m.startswith(("[error]", "[pageerror]"))
            and not any(known in m for known in KNOWN_UPSTREAM_ERRORS)]


def assert_clean_console(page: Page) -> None:
    """Every suite's last word: no console error (beyond :data:`KNOWN_UPSTREAM_ERRORS`) and, for a page cut
    off from the network (``offline_page``), no request to another host."""
    errors = console_errors(page)
    assert not errors, f"console errors: {errors}"
    external = getattr(page, "external_requests", None)
    assert not external, f"the page asked the network for {external}"


def wait_until(fn, timeout_s: float, what: str, page: Page | None = None, *, poll_ms: int = 200):
    """Poll ``fn()`` until it returns something truthy and return that; fail with ``what`` after ``timeout_s``.

    For conditions no single locator expresses (a row count, an attribute that changed, two buttons' states
    at once). An exception from ``fn`` counts as "not yet": widgets re-render between two calls. With a
    ``page`` the wait yields to Playwright's event loop, so the page keeps processing while we wait.
    """
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as exc:  # element re-rendered between two calls: retry
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if page is not None:
            page.wait_for_timeout(poll_ms)
        else:
            time.sleep(poll_ms / 1000)
    raise AssertionError(f"{what} (last: {last!r}) within {timeout_s:.0f} s")


def cell_output(page: Page, index: int) -> Locator:
    """Output area of the ``index``-th cell (0-based, counting all cells incl. markdown)."""
    return notebook_panel(page).locator(".jp-Cell").nth(index).locator(".jp-OutputArea")
