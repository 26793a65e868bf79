"""Smoke tests: ipywidgets really render and round-trip through the kernel in JupyterLab.

Notebook: tests/browser/notebooks/smoke.ipynb
  cell 0 markdown
  cell 1 IntSlider(value=3, description='freeze') + Label('value=3') observing it, in a VBox
  cell 2 Button('Click me') + Label('clicks=0') updated by on_click, in an HBox
The notebook is opened and run once for the module (one page, offline): the two tests drive widgets of
different cells, so neither sees what the other did; each still checks its widget's first value.
"""

from __future__ import annotations

import pytest

from .conftest import executed_notebook, save_failure
from .helpers import (
    assert_clean_console,
    assert_no_widget_errors,
    cell_output,
    screenshot,
    wait_for_kernel_idle,
    wait_for_text,
)

NOTEBOOK = "smoke.ipynb"


@pytest.fixture(scope="module")
def smoke_notebook(jupyter_server, chromium_browser):
    """The smoke notebook, opened and fully executed, offline, once for the module: opening JupyterLab and
    running the notebook cost more than both tests together, and the two tests share no widget."""
    with executed_notebook(chromium_browser, jupyter_server, NOTEBOOK, name="smoke-notebook") as page:
        yield page


@pytest.fixture
def smoke_page(smoke_notebook, request):
    """The shared page; a screenshot and the console log of it when this test fails."""
    yield smoke_notebook
    save_failure(smoke_notebook, request)


def test_slider_renders_and_roundtrips(smoke_page):
    page = smoke_page
    out = cell_output(page, 1)
    slider = out.locator(".widget-slider").first
    slider.wait_for(state="visible", timeout=60_000)
    assert out.locator(".jupyter-widgets").count() >= 1
    assert "freeze" in slider.inner_text()
    label = out.locator(".widget-label", has_text="value=").first
    assert wait_for_text(label, "value=3") == "value=3"
    assert_no_widget_errors(page)
    screenshot(page, "smoke-slider-before")

    # Move the slider with the keyboard: focus the noUiSlider handle, press ArrowRight.
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    # value -> kernel -> observe callback -> Label.value -> back to the browser
    assert wait_for_text(label, "value=4", timeout=60_000) == "value=4"
    assert slider.locator(".widget-readout").first.inner_text().strip() == "4"
    wait_for_kernel_idle(page)
    screenshot(page, "smoke-slider-after")
    assert_clean_console(page)


def test_button_click_updates_label(smoke_page):
    page = smoke_page
    out = cell_output(page, 2)
    button = out.locator("button.jupyter-button", has_text="Click me").first
    button.wait_for(state="visible", timeout=60_000)
    label = out.locator(".widget-label", has_text="clicks=").first
    assert wait_for_text(label, "clicks=0") == "clicks=0"
    assert_no_widget_errors(page)

    button.click()
    assert wait_for_text(label, "clicks=1", timeout=60_000) == "clicks=1"
    button.click()
    assert wait_for_text(label, "clicks=2", timeout=60_000) == "clicks=2"
    screenshot(page, "smoke-button-after")
    assert_clean_console(page)
