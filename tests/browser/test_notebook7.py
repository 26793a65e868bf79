"""The widget kit in Jupyter Notebook 7 (not only JupyterLab): slider, chart and dashboard render and respond.

Notebook: tests/browser/notebooks/widgets_demo.ipynb (the one test_widgets_browser.py runs in
JupyterLab; cells: 2 FreezeSlider, 3 Dashboard(mnist, scratch, 30 epochs), 4 DigitPad, 5 fit with
a LiveChart). One Notebook 7 server for the module, on a private copy of the notebooks.
Screenshots: test-output/browser/notebook7-*.png.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import (
    assert_no_widget_errors,
    cell_output,
    console_errors,
    run_all_cells,
    screenshot,
    wait_for_text,
    wait_until,
)
from .servers import free_port, jupyter_env, start

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOK = "widgets_demo.ipynb"
SLIDER_CELL, DASHBOARD_CELL, FIT_CELL = 2, 3, 5
COUNT = re.compile(r"trainable: ([\d,]+) / ([\d,]+) parameters")
SETTINGS = {  # every cell rendered (no windowing), no autosave, no news: as the JupyterLab tests
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


@pytest.fixture(scope="module")
def notebook7(browser_prerequisites, tmp_path_factory):
    pytest.importorskip("notebook", reason="Notebook 7 is not installed: pip install -e '.[dev]'")
    import notebook

    assert int(notebook.__version__.split(".")[0]) >= 7, notebook.__version__
    work = tmp_path_factory.mktemp("notebook7")
    root = work / "root"
    shutil.copytree(os.path.join(HERE, "notebooks"), root)
    settings = work / "settings"
    for rel, content in SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(content))
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyter", "notebook", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.terminals_enabled=False"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    env = jupyter_env(work, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(work / "ws"))
    server = start("notebook7", cmd, cwd=root, env=env, log_dir=work, port=port)
    server.extra["token"] = token
    try:
        # as `make lab` does before opening the lessons: sign the notebooks, so they open trusted; while the server
        # starts (it reads the signatures only when a notebook is opened)
        subprocess.run([sys.executable, "-m", "jupyter", "trust", *map(str, root.glob("*.ipynb"))], env=env,
                       check=True, capture_output=True, timeout=120)
        server.wait_http(f"/api/status?token={token}", ok=(200,))
        yield server
    finally:
        server.stop()


def test_widgets_render_and_respond_in_notebook7(notebook7, offline_page):
    page = offline_page
    t0 = time.monotonic()
    page.goto(f"{notebook7.base_url}/notebooks/{NOTEBOOK}?token={notebook7.extra['token']}",
              wait_until="domcontentloaded")
    # Notebook 7's own shell (not JupyterLab's): one notebook per tab, its own menu bar
    page.locator("#main-panel .jp-NotebookPanel").first.wait_for(state="visible", timeout=120_000)
    assert page.locator("#jp-main-dock-panel").count() == 0, "this is JupyterLab, not Notebook 7"
    wait_until(lambda: page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count(), 120,
                "the kernel never became idle", page)
    run_all_cells(page)
    print(f"\n[timing] notebook 7: open + run all: {time.monotonic() - t0:.1f} s")
    assert_no_widget_errors(page, reprs=("FreezeSlider(", "Dashboard(", "DigitPad(", "LiveChart("))

    # ---- the freeze slider: ArrowRight freezes one group, the count follows
    out = cell_output(page, SLIDER_CELL)
    slider = out.locator(".tl-freeze-slider").first
    count = out.locator(".tl-freeze-count").first
    before = wait_for_text(count, COUNT)
    # Notebook 7 keeps arrow keys for its own shortcuts, so drag the handle with the mouse, a third along
    track = slider.locator(".noUi-target").first.bounding_box()
    handle = slider.locator(".noUi-handle").first.bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * 0.4, handle["y"] + handle["height"] / 2, steps=8)
    page.mouse.up()
    after = wait_until(lambda: (t := count.inner_text().strip()) != before and COUNT.search(t) and t, 60,
                        "the trainable count did not change", page)
    # the notebook's last cell froze 3 groups with tl.freeze (the slider follows it); dragging to 40 % of the
    # track unfreezes some again, so more parameters train
    assert int(COUNT.search(after).group(1).replace(",", "")) > int(COUNT.search(before).group(1).replace(",", ""))
    frozen = int(slider.locator(".widget-readout").first.inner_text().strip())
    assert 1 <= frozen < 3
    wait_until(lambda: out.locator("tr[data-state='frozen']").count() == frozen, 30, "group table not updated", page)
    slider.scroll_into_view_if_needed()
    screenshot(page, "notebook7-freeze-slider")

    # ---- the inline chart of an ordinary fit() drew a real image
    img = cell_output(page, FIT_CELL).locator("img.tl-live-chart-image").first
    img.wait_for(state="visible", timeout=60_000)
    assert img.evaluate("el => el.naturalWidth") > 100

    # ---- the dashboard trains, the chart redraws, Stop stops, the table gains a row
    dash = cell_output(page, DASHBOARD_CELL)
    train, stop = dash.locator("button.tl-train-button").first, dash.locator("button.tl-stop-button").first
    status, chart = dash.locator(".tl-dashboard-status").first, dash.locator("img.tl-live-chart-image").first
    src0 = chart.get_attribute("src")
    train.click()
    wait_for_text(status, re.compile(r"epoch ([2-9]|\d\d)/30"), timeout=180_000)
    wait_until(lambda: chart.get_attribute("src") not in (None, "", src0), 30, "the chart did not redraw", page)
    stop.click()
    wait_for_text(status, re.compile(r"stopped after \d+/30 epochs"), timeout=60_000)
    rows = dash.locator(".tl-dashboard-results tr.tl-run")
    wait_until(lambda: rows.count() == 1, 30, "no results row", page)
    assert rows.first.get_attribute("data-stopped") == "true" and "from scratch" in rows.first.inner_text()
    dash.scroll_into_view_if_needed()
    screenshot(page, "notebook7-dashboard-stopped")
    assert not page.external_requests, f"Notebook 7 asked the network for {page.external_requests}"
    assert page.get_by_text("Not Trusted", exact=True).count() == 0, "the signed notebook opened untrusted"
    assert not console_errors(page), console_errors(page)
    print(f"[timing] notebook 7 test total: {time.monotonic() - t0:.1f} s")


def test_make_lab_signs_the_lessons_and_runs_as_root():
    """`make lab` as root (a container, a VM image) needs --allow-root; lessons open trusted once signed."""
    makefile = (Path(HERE).parents[1] / "Makefile").read_text()
    recipe = re.search(r"^lab:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "no lab target in the Makefile"
    lines = recipe.group(1)
    assert "jupyter trust lessons/*.ipynb lessons/solutions/*.ipynb" in lines
    assert "$(if $(filter 0,$(shell id -u)),--allow-root)" in lines
    assert lines.index("jupyter trust") < lines.index("jupyter lab")
