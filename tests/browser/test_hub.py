"""The classroom hub (deploy/jupyterhub_config.py): two students, two browsers, lesson 0 at once.

JupyterHub on loopback with the config as shipped (shared-password authenticator, the course's
local spawner, configurable-http-proxy from deploy/npm), a throwaway state folder, and a copy of
the repo's datasets/ as the shared data. Two browser contexts log in as alice and bob, open
lessons/00 in their own JupyterLab and run all cells at the same time. Then: each reaches only
their own server (403 on the other's), the shared data is read-only while their own lessons
folder is writable, and each has a feature cache of their own. The peak memory of each
student's kernel during the lesson is printed, for sizing a hub (docs/deploy.md).
Screenshots: test-output/browser/hub-*.png.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from .helpers import REPO_ROOT, run_all_cells, screenshot, wait_for_all_cells_executed, wait_for_kernel_idle
from .servers import block_external_requests, jupyter_env, start

CONFIG = REPO_ROOT / "deploy" / "jupyterhub_config.py"
PROXY = REPO_ROOT / "deploy" / "npm" / "node_modules" / ".bin" / "configurable-http-proxy"
STUDENTS = ("alice", "bob")
LESSON = "lessons/00_setup_and_tour.ipynb"


def _three_free_ports() -> int:
    """A port P with P+1 and P+2 free too (the hub uses P, P+1 for its API, P+2 for the proxy's API)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 65000:
            continue
        try:
            socks = []
            for p in (port, port + 1, port + 2):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no three consecutive free ports")


@pytest.fixture(scope="module")
def hub(browser_prerequisites, tmp_path_factory):
    pytest.importorskip("jupyterhub", reason="jupyterhub is not installed: pip install -e '.[dev]'")
    if not PROXY.exists():
        pytest.fail(f"{PROXY} is missing: run `bash scripts/install_npm.sh` (make test does)")
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: configurable-http-proxy needs Node.js")
    work = tmp_path_factory.mktemp("hub")
    shared = work / "shared-data"
    shutil.copytree(REPO_ROOT / "datasets", shared)  # read-only for the students (a read-only mount as root)
    port, password = _three_free_ports(), secrets.token_urlsafe(12)
    env = jupyter_env(work, TLLAB_HUB_DIR=str(work / "state"), TLLAB_HUB_PORT=str(port), TLLAB_DATA=str(shared),
                      TLLAB_STUDENTS=",".join(STUDENTS), TLLAB_HUB_PASSWORD=password)
    env.pop("TLLAB_CACHE", None)  # the hub sets one per student
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    server = start("jupyterhub", [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], cwd=work, env=env,
                   log_dir=work, port=port)
    server.extra.update(password=password, shared=shared, state=work / "state")
    try:
        server.wait_http("/hub/login", ok=(200,))
        yield server
    finally:
        server.stop()


def _submit_login(context, hub, user: str):
    """Log ``user`` in; the hub then spawns their server (waited for by :func:`_wait_for_lab`)."""
    page = context.new_page()
    page.goto(f"{hub.base_url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.extra["password"])
    page.click("#login_submit", no_wait_after=True)
    return page


def _wait_for_lab(page, hub, user: str) -> None:
    deadline = time.monotonic() + 240  # spawn pending, then the lab
    while True:
        try:
            page.wait_for_url(re.compile(rf"/user/{user}/lab"), timeout=2_000)
            return
        except Exception:
            if "Unhandled error starting" in hub.log_tail(400) or time.monotonic() > deadline:
                raise AssertionError(f"{user}'s server did not start; hub log:\n{hub.log_tail(40)}")


def _open_lesson(page, hub, user: str) -> None:
    page.goto(f"{hub.base_url}/user/{user}/lab/tree/{LESSON}")
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first.wait_for(state="visible", timeout=180_000)
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(state="attached", timeout=120_000)
    wait_for_kernel_idle(page)


def _xsrf(context) -> str:
    return next((c["value"] for c in context.cookies() if c["name"] == "_xsrf"), "")


def _put_text(context, hub, user: str, path: str) -> int:
    """Create a text file through the contents API of ``user``'s server; the HTTP status."""
    resp = context.request.put(f"{hub.base_url}/user/{user}/api/contents/{path}",
                                data={"type": "file", "format": "text", "content": "student work"},
                                headers={"X-XSRFToken": _xsrf(context)})
    return resp.status


class _PeakKernelMemory(threading.Thread):
    """Polls the resident memory of every kernel the hub's student servers run; keeps each one's peak."""

    def __init__(self, hub):
        super().__init__(daemon=True)
        self.hub, self.peaks, self.servers, self.stop = hub, {}, {}, threading.Event()

    def run(self):
        while not self.stop.is_set():
            for p in self.hub.descendants():
                try:
                    cmd = " ".join(p.cmdline())
                    rss = p.memory_info().rss / 2**20
                    key = (p.pid, p.username() if hasattr(p, "username") else "")
                except Exception:
                    continue
                if "ipykernel" in cmd:
                    self.peaks[key] = max(self.peaks.get(key, 0.0), rss)
                elif "jupyterhub-singleuser" in cmd or "singleuser" in cmd:
                    self.servers[key] = max(self.servers.get(key, 0.0), rss)
            time.sleep(0.5)


def test_two_students_run_lesson0_at_once_each_in_their_own_space(hub, chromium_browser):
    t0 = time.monotonic()
    contexts, pages, external = {}, {}, []
    for user in STUDENTS:
        ctx = chromium_browser.new_context(viewport={"width": 1400, "height": 2400})
        ctx.set_default_timeout(120_000)
        block_external_requests(ctx, external)
        contexts[user] = ctx
    try:
        for user in STUDENTS:  # both log in, then both servers spawn at the same time
            pages[user] = _submit_login(contexts[user], hub, user)
        for user in STUDENTS:
            _wait_for_lab(pages[user], hub, user)
        print(f"\n[timing] hub: both logged in and spawned: {time.monotonic() - t0:.1f} s")
        for user in STUDENTS:
            _open_lesson(pages[user], hub, user)
        memory = _PeakKernelMemory(hub)
        memory.start()
        t1 = time.monotonic()
        for user in STUDENTS:  # start both runs before waiting for either
            run_all_cells(pages[user], wait=False)
        for user in STUDENTS:
            assert wait_for_all_cells_executed(pages[user]) == "done", user
        memory.stop.set()
        memory.join(5)
        print(f"[timing] hub: lesson 0 in both browsers at once: {time.monotonic() - t1:.1f} s")
        for user in STUDENTS:
            screenshot(pages[user], f"hub-{user}-lesson0")

        # ---- each student reaches their own server only
        for user in STUDENTS:
            other = next(u for u in STUDENTS if u != user)
            ctx = contexts[user]
            own = ctx.request.get(f"{hub.base_url}/user/{user}/api/contents/lessons")
            assert own.status == 200 and any(i["name"] == Path(LESSON).name for i in own.json()["content"])
            theirs = ctx.request.get(f"{hub.base_url}/user/{other}/api/contents/lessons", max_redirects=5)
            assert theirs.status == 403, f"{user} got {theirs.status} on {other}'s server"
            if user == STUDENTS[0]:  # what the student sees, once (the API check above covers both)
                page = ctx.new_page()
                page.goto(f"{hub.base_url}/user/{other}/lab")
                assert "403" in page.locator("body").inner_text()
                screenshot(page, f"hub-{user}-403-on-{other}")
                page.close()

        # ---- their own work is writable, the shared data is not
        shared = hub.extra["shared"]
        for user in STUDENTS:
            assert _put_text(contexts[user], hub, user, "lessons/notes.txt") in (200, 201)
            assert (hub.extra["state"] / "home" / user / "lessons" / "notes.txt").exists()
            status = _put_text(contexts[user], hub, user, "data/MNIST/notes.txt")
            assert status >= 400, f"{user} wrote into the shared data (HTTP {status})"
            assert not (shared / "MNIST" / "notes.txt").exists()
        homes = [hub.extra["state"] / "home" / u for u in STUDENTS]
        for h in homes:  # a feature cache of their own, where the hub pointed TLLAB_CACHE
            assert (h / ".cache" / "tlwidgets").is_dir()

        kernels = sorted(memory.peaks.values())
        assert len(kernels) >= len(STUDENTS), memory.peaks
        print(f"[memory] hub: peak RSS per student kernel during lesson 0: {[round(k) for k in kernels]} MB; "
              f"per student server: {[round(v) for v in sorted(memory.servers.values())]} MB")
        assert not [u for u in external if "127.0.0.1" not in u], f"asked the network for {external}"
    finally:
        for ctx in contexts.values():
            ctx.close()
    print(f"[timing] hub test total: {time.monotonic() - t0:.1f} s")
