"""The widget kit in a real JupyterLab + Chromium: what a student actually sees and clicks.

Notebook: tests/browser/notebooks/widgets_demo.ipynb
  cell 0 markdown
  cell 1 imports (torch on one thread)
  cell 2 FreezeSlider(load_digit_model())
  cell 3 Dashboard(kind='mnist', strategy='scratch', n_per_class=100, num_epochs=30)
  cell 4 DigitPad(model)
  cell 5 tl.fit(..., observers=[LiveChart()]) in the cell itself (the lessons' usage)
Screenshots go to test-output/browser/widgets-*.png.
"""

from __future__ import annotations

import re
import time

import pytest

from .helpers import (
    assert_no_widget_errors,
    cell_output,
    open_notebook,
    run_all_cells,
    screenshot,
    wait_for_text,
)

NOTEBOOK = "widgets_demo.ipynb"
SLIDER_CELL, DASHBOARD_CELL, PAD_CELL, FIT_CELL = 2, 3, 4, 5
COUNT = re.compile(r"trainable: ([\d,]+) / ([\d,]+) parameters \(([\d.]+)%\)")


def _tolerate_shortened_title(page, monkeypatch):
    """``helpers.open_notebook`` waits for ``document.title`` to start with the file name, but
    JupyterLab shortens long names in the title ("widgets_demo… - workspace"); compare a prefix.
    Harmless once the helper allows for that."""
    original = page.wait_for_function

    def wait_for_function(expression, *args, arg=None, **kwargs):
        if isinstance(arg, str) and arg.endswith(".ipynb") and "title" in expression:
            arg = arg[:10]
        return original(expression, *args, arg=arg, **kwargs)

    monkeypatch.setattr(page, "wait_for_function", wait_for_function)


@pytest.fixture
def demo_page(jupyter_server, browser_page, monkeypatch):
    """widgets_demo.ipynb opened in a fresh kernel with every cell executed."""
    _tolerate_shortened_title(browser_page, monkeypatch)
    jupyter_server.shutdown_all_kernels()  # kernels are shared per path: start clean
    t0 = time.monotonic()
    open_notebook(browser_page, jupyter_server, NOTEBOOK)
    run_all_cells(browser_page)
    print(f"\n[timing] open + run all cells: {time.monotonic() - t0:.1f} s")
    return browser_page


def _wait_until(fn, timeout_s: float, what: str, page, poll_ms: int = 200):
    """Poll ``fn()`` until it returns something truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as exc:  # element re-rendered between two calls: retry
            last = exc
        if last and not isinstance(last, Exception):
            return last
        page.wait_for_timeout(poll_ms)
    raise AssertionError(f"{what} (last: {last!r}) within {timeout_s:.0f} s")


def test_freeze_slider_and_dashboard_train_stop(demo_page):
    page = demo_page
    assert_no_widget_errors(page, reprs=("FreezeSlider(", "Dashboard(", "DigitPad("))

    # ---- the freeze slider renders as a widget and moving it changes the trainable count
    out = cell_output(page, SLIDER_CELL)
    slider = out.locator(".tl-freeze-slider").first
    slider.wait_for(state="visible", timeout=60_000)
    assert "frozen groups" in slider.inner_text()
    count = out.locator(".tl-freeze-count").first
    before = wait_for_text(count, COUNT)
    trainable0, total0, _ = COUNT.search(before).groups()
    assert trainable0 == total0  # the loaded digit model starts with nothing frozen
    assert out.locator("tr[data-state='frozen']").count() == 0
    screenshot(page, "widgets-freeze-slider-before")

    handle = slider.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    after = _wait_until(lambda: (t := count.inner_text().strip()) != before and COUNT.search(t) and t,
                        60, "the trainable-parameter count did not change after ArrowRight", page)
    trainable1, total1, _ = COUNT.search(after).groups()
    assert total1 == total0 and int(trainable1.replace(",", "")) < int(trainable0.replace(",", ""))
    assert slider.locator(".widget-readout").first.inner_text().strip() == "1"
    _wait_until(lambda: out.locator("tr[data-state='frozen']").count() == 1, 30, "group table not updated", page)
    page.keyboard.press("ArrowRight")
    _wait_until(lambda: out.locator("tr[data-state='frozen']").count() == 2, 30, "second group not frozen", page)
    assert count.inner_text().strip() != after
    slider.scroll_into_view_if_needed()
    screenshot(page, "widgets-freeze-slider-after")

    # ---- the dashboard: Train updates the chart, Stop stops before the epoch budget ends
    dash = cell_output(page, DASHBOARD_CELL)
    train = dash.locator("button.tl-train-button").first
    stop = dash.locator("button.tl-stop-button").first
    train.wait_for(state="visible", timeout=60_000)
    status = dash.locator(".tl-dashboard-status").first
    chart_img = dash.locator("img.tl-live-chart-image").first
    table = dash.locator(".tl-dashboard-results").first
    assert "no runs yet" in table.inner_text()
    assert stop.is_disabled() and not train.is_disabled()
    src0 = chart_img.get_attribute("src")
    dash.scroll_into_view_if_needed()
    screenshot(page, "widgets-dashboard-before")

    train.click()
    # epoch 2 of 30 finished: the status line advanced and the chart was re-rendered
    wait_for_text(status, re.compile(r"epoch ([2-9]|1\d)/30"), timeout=240_000)
    _wait_until(lambda: chart_img.get_attribute("src") not in (None, "", src0), 30,
                "the chart image did not change during training", page)
    assert not stop.is_disabled() and train.is_disabled()
    screenshot(page, "widgets-dashboard-training")

    stop.click()
    final = wait_for_text(status, re.compile(r"stopped after \d+/30 epochs"), timeout=120_000)
    epochs_done = int(re.search(r"stopped after (\d+)/30", final).group(1))
    assert 2 <= epochs_done < 30
    rows = table.locator("tr.tl-run")
    _wait_until(lambda: rows.count() == 1, 30, "the results table did not gain a row", page)
    row = rows.first
    assert row.get_attribute("data-stopped") == "true"
    cells = row.locator("td").all_inner_texts()
    assert "from scratch" in cells and str(epochs_done) in cells and "True" in cells
    _wait_until(lambda: not train.is_disabled() and stop.is_disabled(), 30, "buttons not reset after stop", page)
    assert_no_widget_errors(page, reprs=("FreezeSlider(", "Dashboard(", "DigitPad("))
    dash.scroll_into_view_if_needed()
    screenshot(page, "widgets-dashboard-stopped")


def test_digit_pad_and_inline_live_chart(demo_page):
    page = demo_page
    # ---- LiveChart as a plain fit() observer displayed itself and drew the finished run
    fit_out = cell_output(page, FIT_CELL)
    img = fit_out.locator("img.tl-live-chart-image").first
    img.wait_for(state="visible", timeout=60_000)
    assert (img.get_attribute("src") or "").startswith("blob:")
    assert img.evaluate("el => el.naturalWidth") > 100  # a real decoded PNG, not a broken image
    status = fit_out.locator(".tl-live-chart-status").first
    assert re.match(r"3 epochs · final loss [\d.]+ · acc [\d.]+ · val_loss [\d.]+ · val_acc [\d.]+",
                    wait_for_text(status, re.compile(r"^3 epochs"), timeout=60_000))
    assert_no_widget_errors(page, reprs=("LiveChart(",))
    fit_out.scroll_into_view_if_needed()
    screenshot(page, "widgets-inline-live-chart")

    # ---- the digit pad: clicking cells draws and the prediction follows
    out = cell_output(page, PAD_CELL)
    pad = out.locator(".tl-digit-pad").first
    pad.wait_for(state="visible", timeout=60_000)
    cells = pad.locator("button")
    assert cells.count() == 14 * 14
    assert "draw something" in out.inner_text()
    for r in range(2, 12):  # a vertical stroke: a "1"
        cells.nth(r * 14 + 7).click()
    _wait_until(lambda: out.locator(".tl-digit-probs").count() == 1, 60, "no probability bars after drawing", page)
    _wait_until(lambda: "draw something" not in out.inner_text(), 30, "prediction not shown", page)
    colour = cells.nth(6 * 14 + 7).evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour in ("rgb(0, 0, 0)", "rgba(0, 0, 0, 1)"), colour
    # the model's answer for a vertical stroke is "1" (after the last click has been processed)
    prediction = out.locator(".widget-html", has_text="%").first
    wait_for_text(prediction, re.compile(r"^1\s*\(\d+%\)"), timeout=30_000)
    out.locator("button", has_text="Clear").first.click()
    _wait_until(lambda: "draw something" in out.inner_text(), 30, "Clear did not reset the pad", page)
    pad.scroll_into_view_if_needed()
    cells.nth(7).click()  # leave something drawn for the screenshot
    for r in range(2, 12):
        cells.nth(r * 14 + 7).click()
    _wait_until(lambda: out.locator(".tl-digit-probs").count() == 1, 60, "no bars after redrawing", page)
    screenshot(page, "widgets-digit-pad")
