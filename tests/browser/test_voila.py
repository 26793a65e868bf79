"""The instructor's app (`make demo`): apps/dogs_to_cats.ipynb served by Voilà, driven in Chromium.

One Voilà server for the module, started as `make demo` starts it: from apps/, so
apps/voila.json applies, and the test checks in Voilà's log that its idle-kernel culling is
active with the shipped times. (Watching a cull live would need a short timeout, and Voilà runs
the notebook in the page's kernel before the page connects: on a loaded 2-core machine a 12 s
timeout culled a page that was still loading; 300 s, as shipped, does not.) The browser is offline: every request to a host other than 127.0.0.1 is aborted.
Screenshots: test-output/browser/voila-*.png.
"""
from __future__ import annotations

import json
import re
import sys
import time

import pytest

from tlwidgets.widgets.dashboard import TABLE_COLUMNS

from .helpers import REPO_ROOT, screenshot, wait_for_text, wait_until
from .servers import free_port, jupyter_env, start

APPS = REPO_ROOT / "apps"
APP = "dogs_to_cats.ipynb"
LOG = APPS / "logs" / "dogs_to_cats.json"


@pytest.fixture(scope="module")
def voila(browser_prerequisites, tmp_path_factory):
    pytest.importorskip("voila", reason="voila is not installed: pip install -e '.[dev]'")
    from tlwidgets.course import missing_data_message

    missing = missing_data_message(["pets"])
    if missing:
        pytest.skip(missing.splitlines()[0])
    work = tmp_path_factory.mktemp("voila")
    port = free_port()
    cmd = [sys.executable, "-m", "voila", APP, f"--port={port}", "--Voila.port_retries=0"]
    server = start("voila", cmd, cwd=APPS, env=jupyter_env(work), log_dir=work, port=port)
    try:
        server.wait_http("/voila/no-such-page", ok=(403, 404))  # up; "/" itself would start a kernel
        yield server
    finally:
        server.stop()


def test_voila_config_culls_idle_kernels():
    config = json.loads((APPS / "voila.json").read_text())
    cull = config["MappingKernelManager"]
    assert 0 < cull["cull_idle_timeout"] <= 600 and cull["cull_interval"] > 0 and not cull["cull_connected"]
    assert config["VoilaConfiguration"]["strip_sources"] is True
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and f"voila {APP}" in makefile


def test_app_trains_stops_replays_without_code(voila, offline_page):
    t0 = time.monotonic()
    logged = json.loads(LOG.read_text())["runs"]
    page, external = offline_page, offline_page.external_requests
    page.goto(voila.base_url + "/", wait_until="domcontentloaded", timeout=180_000)
    dash = page.locator(".tl-dashboard").first
    dash.wait_for(state="visible", timeout=180_000)
    print(f"\n[timing] voila page to dashboard: {time.monotonic() - t0:.1f} s")

    # ---- an app, not a notebook: no code, no tracebacks; the logged runs are in the table
    body = page.locator("body").inner_text()
    assert page.locator(".jp-CodeCell .jp-InputArea:visible, .jp-InputArea-editor:visible, .cm-content").count() == 0
    for code in ("import torch", "Dashboard(kind=", "load_log"):
        assert code not in body, f"code shown in the app: {code!r}"
    for bad in ("Traceback", "Error displaying widget", "Error:"):
        assert bad not in body, body[max(0, body.find(bad) - 300):body.find(bad) + 300]
    table = dash.locator(".tl-dashboard-results").first
    rows = table.locator("tr.tl-run")
    wait_until(lambda: rows.count() == len(logged), 30, f"the table should list the {len(logged)} logged runs", page)
    labels = {"feature_extraction": "feature extraction", "scratch": "from scratch", "fine_tune": "fine-tune"}
    for i, run in enumerate(logged):
        assert labels[run["row"]["strategy"]] in rows.nth(i).inner_text()
    status = dash.locator(".tl-dashboard-status").first
    chart = dash.locator("img.tl-live-chart-image").first
    screenshot(page, "voila-app-loaded")

    # ---- replay the last logged run (no training)
    src0 = chart.get_attribute("src")
    dash.locator("button.tl-replay-button").first.click()
    n_epochs = len(logged[-1]["history"]["epochs"])
    wait_for_text(status, re.compile(rf"replay \(no training\): showed {n_epochs} of {n_epochs} logged epochs"),
                  timeout=60_000)
    wait_until(lambda: chart.get_attribute("src") not in (None, "", src0), 20, "the replay did not draw", page)
    screenshot(page, "voila-app-replayed")

    # ---- train from scratch, stop it mid-run: a new, stopped row
    dash.locator("select").first.select_option(label="from scratch")
    train, stop = dash.locator("button.tl-train-button").first, dash.locator("button.tl-stop-button").first
    train.click()
    wait_for_text(status, re.compile(r"epoch ([2-9]|\d\d)/30"), timeout=180_000)
    assert train.is_disabled() and not stop.is_disabled()
    screenshot(page, "voila-app-training")
    stop.click()
    final = wait_for_text(status, re.compile(r"stopped after (\d+)/30 epochs"), timeout=60_000)
    done = int(re.search(r"stopped after (\d+)/30", final).group(1))
    assert 2 <= done < 30
    wait_until(lambda: rows.count() == len(logged) + 1, 30, "no row for the stopped run", page)
    new = rows.nth(len(logged))
    assert new.get_attribute("data-stopped") == "true"
    cells = new.locator("td").all_inner_texts()
    assert "from scratch" in cells and str(done) in cells
    assert re.fullmatch(r"0\.\d{3,4}", cells[TABLE_TEST_ACC]), cells
    wait_until(lambda: not train.is_disabled() and stop.is_disabled(), 30, "buttons not reset after Stop", page)
    screenshot(page, "voila-app-stopped")

    # ---- the digit pad answers a drawing: one vertical stroke dragged with the mouse reads as a "1"
    canvas = page.locator(".tl-digit-pad canvas").first
    canvas.wait_for(state="visible", timeout=60_000)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()

    def cell(r, c):  # centre of cell (row, col) of the 28x28 canvas
        return box["x"] + (c + 0.5) * box["width"] / 28, box["y"] + (r + 0.5) * box["height"] / 28

    page.mouse.move(*cell(4, 14))
    page.mouse.down()
    page.mouse.move(*cell(23, 14), steps=12)
    page.mouse.up()
    wait_for_text(page.locator(".tl-digit-prediction").first, re.compile(r"^1\s*\(\d+%\)"), timeout=60_000)
    wait_until(lambda: page.locator(".tl-digit-probs").count() == 1, 60, "no probabilities after drawing", page)
    screenshot(page, "voila-app-digit-pad")
    assert all("fontawesome" in u or "font-awesome" in u for u in external), f"needs the network: {external}"

    # ---- one kernel for the one page view, and Voilà culls idle ones with apps/voila.json's times
    kernels = voila.descendants("ipykernel")
    assert len(kernels) == 1, [k.cmdline() for k in kernels]
    cull = json.loads((APPS / "voila.json").read_text())["MappingKernelManager"]
    assert (f"Culling kernels with idle durations > {cull['cull_idle_timeout']} seconds at "
            f"{cull['cull_interval']} second intervals") in voila.log_tail(400)
    print(f"[timing] voila test total: {time.monotonic() - t0:.1f} s; blocked external requests: {len(external)}")


TABLE_TEST_ACC = 1 + TABLE_COLUMNS.index("test_acc")  # the rendered table starts with a "#" column
