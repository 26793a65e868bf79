"""The course as a website (`make book`): the static Jupyter Book site opened in an offline Chromium.

What the site is built from (said in the test's output):
* build/lessons/ when `make course` (`python -m tlwidgets.course --quick`) has executed every
  lesson there: the real site, as `make book` builds it;
* otherwise the two tiny executed notebooks in tests/browser/book_fixture/ (make.py there):
  the same pipeline - lesson map, navigation, figures, tables, widget scripts - in seconds,
  but not the lessons' content. Running the whole course inside `make test` would cost minutes.

One build and one static file server for the module; every request to a host other than
127.0.0.1 is aborted, so the page works only if nothing comes from a CDN.
Screenshots: test-output/browser/book-*.png.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import pytest

from .helpers import REPO_ROOT, console_errors, screenshot
from .servers import block_external_requests, free_port, jupyter_env, start

FIXTURE = Path(__file__).resolve().parent / "book_fixture"
EXECUTED = REPO_ROOT / "build" / "lessons"


def _load_builder():
    spec = importlib.util.spec_from_file_location("tllab_book_build", REPO_ROOT / "book" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _source() -> tuple[Path, str]:
    wanted = {p.name for p in (REPO_ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")}
    executed = {p.name for p in EXECUTED.glob("[0-9][0-9]_*.ipynb")}
    if wanted and wanted <= executed:
        return EXECUTED, "the executed lessons in build/lessons"
    return FIXTURE, f"the fixture notebooks (build/lessons lacks {sorted(wanted - executed)[:3]}...: run `make course`)"


@pytest.fixture(scope="module")
def book(browser_prerequisites, tmp_path_factory):
    pytest.importorskip("jupyter_book", reason="jupyter-book<2 is not installed: pip install -e '.[dev]'")
    builder = _load_builder()
    missing = [rel for rel, _ in builder.STATIC_FILES if not (builder.NPM / rel).exists()]
    if missing:
        pytest.fail(f"npm packages missing ({missing}): run `bash scripts/install_npm.sh` (make test does)")
    lessons, what = _source()
    out = tmp_path_factory.mktemp("book")
    infos = builder.stage(lessons, out / "src")
    seconds = builder.build(out / "src", out)
    print(f"\n[timing] book built from {what}: {len(infos)} lessons in {seconds:.1f} s")
    html = out / "_build" / "html"
    port = free_port()
    server = start("book-http", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                 "--directory", str(html)], cwd=out, env=jupyter_env(out), log_dir=out, port=port)
    try:
        server.wait_http("/index.html", ok=(200,))
        server.extra.update(infos=infos, lessons=lessons, seconds=seconds)
        yield server
    finally:
        server.stop()


def _widget_state_count(path: Path) -> int:
    state = json.loads(path.read_text()).get("metadata", {}).get("widgets", {})
    return len(state.get("application/vnd.jupyter.widget-state+json", {}).get("state", {}))


def test_index_links_every_lesson_and_each_shows_its_figures(book, browser_page):
    page = browser_page
    infos = book.extra["infos"]
    external: list[str] = []
    block_external_requests(page.context, external)
    missing: list[str] = []  # local files the pages ask for and the site lacks (fonts, scripts)
    page.on("response", lambda r: missing.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    t0 = time.monotonic()
    page.goto(book.base_url + "/index.html")
    page.locator("article h1").first.wait_for()
    # the lesson map: one row per lesson, linking to it, with what it teaches
    map_rows = page.locator("main table tbody tr")
    assert map_rows.count() == len(infos)
    for row, info in zip(map_rows.all(), infos):
        assert info["title"] in row.inner_text()
    screenshot(page, "book-index")

    figures_seen = widget_pages = 0
    for i, info in enumerate(infos):
        # follow the link in the navigation sidebar, as a reader does
        link = page.locator("nav.bd-docs-nav a.reference.internal", has_text=info["title"]).first
        link.click()
        page.wait_for_url(re.compile(rf"lessons/{re.escape(info['stem'])}\.html"))
        assert page.locator("article h1").first.inner_text().strip().startswith(info["title"][:20])
        imgs = page.locator("main .cell_output img")
        assert imgs.count() == info["figures"], f"{info['stem']}: {imgs.count()} figures on the page, " \
                                                f"{info['figures']} in the notebook"
        for img in imgs.all():
            img.scroll_into_view_if_needed()
            assert img.evaluate("el => el.complete && el.naturalWidth > 0"), f"{info['stem']}: a figure did not load"
        figures_seen += imgs.count()
        if _widget_state_count(book.extra["lessons"] / f"{info['stem']}.ipynb"):
            # widgets come back from their saved state through the locally served html-manager
            page.locator("main .jupyter-widgets, main .widget-slider, main .widget-html").first.wait_for(
                state="attached", timeout=30_000)
            assert page.evaluate("typeof window.require") == "function"  # require.js from _static, no CDN
            # no kernel behind a static page: its saved controls are shown as they were, and do not move
            sliders = page.locator("main .widget-slider .noUi-target")
            if sliders.count():
                disabled = [s.get_attribute("disabled") is not None for s in sliders.all()]
                assert all(disabled), f"{info['stem']}: a saved slider can still be dragged"
            widget_pages += 1
        if i in (0, len(infos) - 1):
            screenshot(page, f"book-{info['stem']}")
    assert figures_seen > 0
    page.locator("nav.bd-docs-nav a.reference.internal", has_text="Results").first.click()
    page.wait_for_url(re.compile(r"results\.html"))
    if (book.extra["lessons"] / "results.md").exists():  # the course run's table (the fixture has none)
        assert page.locator("main table tbody tr").count() == len(infos)
    assert not external, f"the site asked the network for {external}"
    assert not missing, f"the site lacks files its pages ask for: {missing}"
    assert not console_errors(page), console_errors(page)
    print(f"[timing] book: {len(infos)} lessons, {figures_seen} figures and widgets on {widget_pages} pages checked in {time.monotonic() - t0:.1f} s; "
          f"build {book.extra['seconds']:.1f} s")
