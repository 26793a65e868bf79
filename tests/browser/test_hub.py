"""The classroom hub (deploy/jupyterhub_config.py): students kept apart, two browsers, lesson 0 at once.

JupyterHub on loopback with the config as shipped (shared-password authenticator, JupyterHub's
LocalProcessSpawner with one OS user per student, configurable-http-proxy from deploy/npm), a
throwaway state folder, and a copy of the repo's datasets/ as the shared data. The fixture makes
the students alice and bob real OS users with `deploy/add_students.sh` (homes 0700, shared data
owned by root and read-only by permission) and removes them afterwards; it needs root (CI runs as
root) and skips otherwise.

1. Isolation (issue 23 §1): from alice's kernel, in her browser, every probe of the issue (list, read,
   write, modify bob's home and lesson; write the shared data, remount it; read the hub's cookie
   secret, database and environment; use bob's server token from /proc; become root) is refused,
   while the controls (her own home, reading the shared data) work; bob's files are byte-identical
   afterwards; no student process runs as root.
2. Both run lesson 0 at the same time: each reaches only their own server (403 on the other's), own
   lessons writable, the shared data not, a feature cache of their own; the peak memory of each
   kernel and of each student's cgroup (server + kernels: what TLLAB_MEM_LIMIT bounds) is printed.
Screenshots: test-output/browser/hub-*.png (hub-alice-probes-refused.png: the probes).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from .helpers import REPO_ROOT, run_all_cells, screenshot, wait_for_all_cells_executed, wait_for_kernel_idle
from .servers import block_external_requests, jupyter_env, start

CONFIG = REPO_ROOT / "deploy" / "jupyterhub_config.py"
ADD_STUDENTS = REPO_ROOT / "deploy" / "add_students.sh"
PROXY = REPO_ROOT / "deploy" / "npm" / "node_modules" / ".bin" / "configurable-http-proxy"
STUDENTS = ("alice", "bob")
LESSON = "lessons/00_setup_and_tour.ipynb"
STUDENT_MARK = "tllab student"  # the GECOS field add_students.sh writes


def _limits_module():
    spec = importlib.util.spec_from_file_location("tllab_hub_limits", REPO_ROOT / "deploy" / "limits.py")
    module = sys.modules.setdefault("tllab_hub_limits", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)  # registered first: dataclasses look their module up
    return module


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


def _students(*args: str) -> None:
    out = subprocess.run(["bash", str(ADD_STUDENTS), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"deploy/add_students.sh {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")


@pytest.fixture(scope="module")
def hub(browser_prerequisites, tmp_path_factory):
    pytest.importorskip("jupyterhub", reason="jupyterhub is not installed: pip install -e '.[dev]'")
    if os.geteuid() != 0:
        pytest.skip("the classroom hub runs as root (it starts each student's server as their own OS user, and the "
                    "test creates those users): run the browser tests as root, as CI does")
    if not PROXY.exists():
        pytest.fail(f"{PROXY} is missing: run `bash scripts/install_npm.sh` (make test does)")
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: configurable-http-proxy needs Node.js")
    for user in STUDENTS:
        try:
            gecos = pwd.getpwnam(user).pw_gecos
        except KeyError:
            continue
        if gecos != STUDENT_MARK:
            pytest.fail(f"an OS user {user!r} exists that this test did not create; it would not touch it")
    base = Path(tempfile.mkdtemp(prefix="tllab-hub-"))  # outside pytest's 0700 tmp: students must reach it
    base.chmod(0o755)
    homes, shared = base / "home", base / "shared-data"
    homes.mkdir(mode=0o755)
    shutil.copytree(REPO_ROOT / "datasets", shared)
    work = tmp_path_factory.mktemp("hub")  # the hub's state lives under pytest's root-only tmp
    server = None
    python = Path(sys.executable)
    reach = (python.absolute(), python.resolve(), REPO_ROOT / "tlwidgets", REPO_ROOT.resolve() / "tlwidgets")
    on_the_way = {d: d.stat().st_mode for p in reach for d in p.parents}
    try:  # --reach: students must run this interpreter (pyenv's lives under /root) and read the course
        _students("--home-base", str(homes), "--data", str(shared), "--reach", str(python),
                  "--reach", str(REPO_ROOT / "tlwidgets"), *STUDENTS)
        port, password = _three_free_ports(), secrets.token_urlsafe(12)
        env = jupyter_env(work, TLLAB_HUB_DIR=str(work / "state"), TLLAB_HUB_PORT=str(port), TLLAB_DATA=str(shared),
                          TLLAB_STUDENTS=",".join(STUDENTS), TLLAB_HUB_PASSWORD=password, TLLAB_MEM_LIMIT="3G")
        env.pop("TLLAB_CACHE", None)  # the hub sets one per student
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        server = start("jupyterhub", [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)], cwd=work, env=env,
                       log_dir=work, port=port)
        server.extra.update(password=password, shared=shared, state=work / "state", homes=homes)
        server.wait_http("/hub/login", ok=(200,))
        yield server
    finally:
        if server is not None:
            server.stop()
        for folder, mode in on_the_way.items():  # undo --reach's o+x on this machine
            if folder.stat().st_mode != mode:
                folder.chmod(mode & 0o7777)
        shutil.rmtree(base, ignore_errors=True)
        _students("--remove", *STUDENTS)


def _submit_login(context, hub, user: str, *, then: str | None = None):
    """Log ``user`` in; the hub then spawns their server (waited for by :func:`_wait_for_lab`) and sends them to
    the spawner's default URL or, with ``then`` (a path on their server, e.g. ``lab/tree/x.ipynb``), there: the
    login form carries ``next`` to /hub/spawn, which carries it through the spawn-pending page."""
    page = context.new_page()
    query = ""
    if then is not None:
        if then.startswith("/") or "://" in then:
            raise ValueError(f"then must be a path on {user}'s server such as 'lab/tree/x.ipynb', got {then!r}")
        spawn = f"/hub/spawn?next={quote(f'/user/{user}/{then}', safe='/')}"
        query = f"?next={quote(spawn, safe='/')}"
    page.goto(f"{hub.base_url}/hub/login{query}")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.extra["password"])
    page.click("#login_submit", no_wait_after=True)
    return page


def _wait_for_lab(page, hub, user: str, path: str = "lab", *, loaded: bool = True) -> None:
    """Wait until ``user``'s page has gone through the spawn to ``/user/<user>/<path>`` on their own server and,
    with ``loaded``, until that page has loaded; ``loaded=False`` returns once the server has answered there (the
    page is about to be left for another one, so its scripts need not run first)."""
    deadline = time.monotonic() + 240  # spawn pending, then the lab
    while True:
        try:
            page.wait_for_url(re.compile(rf"/user/{user}/{re.escape(path)}"), timeout=2_000,
                              wait_until="load" if loaded else "commit")
            return
        except Exception:
            if "Unhandled error starting" in hub.log_tail(400) or time.monotonic() > deadline:
                raise AssertionError(f"{user}'s server did not start; hub log:\n{hub.log_tail(40)}")


def _wait_for_lesson(page) -> None:
    """Wait until the lesson the page was sent to is rendered and its kernel idle."""
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


# What alice's kernel tries (issue 23 §1, verbatim list plus becoming root), each line "name: OK (...)" or
# "name: REFUSED (...)". The two controls must work, or the probes could not tell "refused" from "broken".
PROBE_CODE = r"""
import os, subprocess, urllib.request
BOB, DATA, STATE, HUB_URL = {bob!r}, {data!r}, {state!r}, {hub_url!r}
HUB_PID, BOB_PID = {hub_pid}, {bob_pid}
BOB_LESSON = BOB + "/lessons/00_setup_and_tour.ipynb"
results = []

def probe(name, attempt):
    try:
        results.append(f"{{name}}: OK ({{attempt()}})")
    except Exception as exc:
        results.append(f"{{name}}: REFUSED ({{type(exc).__name__}}: {{str(exc)[:150]}})")

def run(*cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise PermissionError(f"exit {{out.returncode}}: {{' '.join((out.stderr or out.stdout).split())[:140]}}")
    return "exit 0"

def environ(pid):
    pairs = open(f"/proc/{{pid}}/environ", "rb").read().split(b"\0")
    return dict(p.split(b"=", 1) for p in pairs if b"=" in p)

def readable_environs():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            yield pid, environ(pid)
        except OSError:
            pass

def append_space(path):
    with open(path, "a") as f:
        f.write(" ")
    return "appended"

def write_new(path):
    with open(path, "x") as f:
        f.write("alice was here")
    return "written"

def use_bobs_token():
    tokens = [e[b"JUPYTERHUB_API_TOKEN"].decode() for _, e in readable_environs()
              if e.get(b"JUPYTERHUB_USER", b"alice") != b"alice" and b"JUPYTERHUB_API_TOKEN" in e]
    if not tokens:
        environ(BOB_PID)  # raises the reason: bob's server environment is not hers to read
        raise PermissionError("no other student's token in any readable process environment")
    req = urllib.request.Request(HUB_URL + "/user/bob/api/contents/lessons",
                                 headers={{"Authorization": "token " + tokens[0]}})
    return f"listed bob's lessons: HTTP {{urllib.request.urlopen(req).status}}"

def class_password():
    hits = [pid for pid, e in readable_environs() if b"TLLAB_HUB_PASSWORD" in e]
    if hits:
        return f"in the environment of process(es) {{hits}}"
    raise PermissionError("in no process environment alice can read")

probe("control: write in her own home", lambda: write_new(os.path.expanduser("~/alice-probe.txt")))
probe("control: read the shared data", lambda: f"{{len(os.listdir(DATA))}} entries")
probe("list bob's home", lambda: os.listdir(BOB))
probe("read bob's lesson 00", lambda: f"{{len(open(BOB_LESSON).read())}} characters")
probe("write a new file in bob's home", lambda: write_new(BOB + "/from-alice.txt"))
probe("modify bob's lesson 00 (append a space)", lambda: append_space(BOB_LESSON))
probe("create a file in the shared data", lambda: write_new(DATA + "/MNIST/from-alice.txt"))
probe("remount the shared data read-write", lambda: run("mount", "-o", "remount,rw", DATA))
probe("create a file in the shared data after a remount in a namespace of her own",
      lambda: run("unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                  'mount --bind "$0" "$0"; mount -o remount,bind,rw "$0"; echo x > "$0/MNIST/from-alice.txt"', DATA))
probe("read the hub cookie secret", lambda: f"{{len(open(STATE + '/jupyterhub_cookie_secret', 'rb').read())}} bytes")
probe("read the hub database", lambda: f"{{len(open(STATE + '/jupyterhub.sqlite', 'rb').read())}} bytes")
probe("read the hub process environment", lambda: f"{{len(environ(HUB_PID))}} variables")
probe("find the class password in a process environment", class_password)
probe("use bob's server token", use_bobs_token)
probe("become root", lambda: os.setuid(0) or "uid 0")
print("\n".join(results))
"""
N_CONTROLS = 2


def _tree_digest(root: Path, skip=(".local", ".ipython", ".jupyter", ".cache", ".config")) -> dict[str, str]:
    """sha256 of every file under ``root`` (the server's own runtime folders left out: they change as it runs)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in skip]
        for name in files + [d + "/" for d in dirs]:
            path = Path(folder) / name.rstrip("/")
            rel = str(path.relative_to(root)) + ("/" if name.endswith("/") else "")
            out[rel] = "dir" if name.endswith("/") else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _server_pid(hub, user: str) -> int:
    uid = pwd.getpwnam(user).pw_uid
    for p in hub.descendants("singleuser"):
        if p.uids().real == uid:
            return p.pid
    raise AssertionError(f"no server process of {user} among the hub's children")


def _probe_notebook(code: str) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                                                            "display_name": "Python 3"}},
            "cells": [{"cell_type": "code", "id": "probes", "metadata": {}, "execution_count": None, "outputs": [],
                       "source": code}]}


def test_students_are_kept_apart_every_probe_from_alices_kernel_is_refused(hub, chromium_browser):
    t0 = time.monotonic()
    contexts, pages, external = {}, {}, []
    for user in STUDENTS:
        ctx = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
        ctx.set_default_timeout(120_000)
        block_external_requests(ctx, external)
        contexts[user] = ctx
    try:
        for user in STUDENTS:  # both log in: bob's server (and its token) must be running for the probes
            pages[user] = _submit_login(contexts[user], hub, user)
        # each landing page is left once its server answers: alice's for the probes' notebook, bob's for a blank
        # page (his browser has no part in the probes, his running server and its token do; his JupyterLab would
        # only start up beside hers)
        for user in STUDENTS:
            _wait_for_lab(pages[user], hub, user, loaded=False)
        pages["bob"].goto("about:blank")
        print(f"\n[timing] hub: both logged in and spawned: {time.monotonic() - t0:.1f} s")

        # ---- what the operating system sees: each server and kernel runs as its student, none as root
        for user in STUDENTS:
            home = Path(pwd.getpwnam(user).pw_dir)
            assert home.parent == hub.extra["homes"] and (home.stat().st_mode & 0o777) == 0o700, oct(home.stat().st_mode)
            assert home.stat().st_uid == pwd.getpwnam(user).pw_uid
        state = hub.extra["state"]
        assert (state.stat().st_mode & 0o077) == 0, f"hub state {state} is {oct(state.stat().st_mode)}"
        bob_home = Path(pwd.getpwnam("bob").pw_dir)
        before = _tree_digest(bob_home)
        shared_before = _tree_digest(hub.extra["shared"])
        assert "lessons/00_setup_and_tour.ipynb" in before

        code = PROBE_CODE.format(bob=str(bob_home), data=str(hub.extra["shared"]), state=str(state),
                                 hub_url=hub.base_url, hub_pid=hub.proc.pid, bob_pid=_server_pid(hub, "bob"))
        page, ctx = pages["alice"], contexts["alice"]
        resp = ctx.request.put(f"{hub.base_url}/user/alice/api/contents/probes.ipynb",
                               data=json.dumps({"type": "notebook", "content": _probe_notebook(code)}),
                               headers={"X-XSRFToken": _xsrf(ctx), "Content-Type": "application/json"})
        assert resp.status in (200, 201), resp.text()
        page.goto(f"{hub.base_url}/user/alice/lab/tree/probes.ipynb")
        page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first.wait_for(state="visible", timeout=180_000)
        wait_for_kernel_idle(page)
        run_all_cells(page)
        output = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output").first
        output.wait_for(state="visible")
        output.scroll_into_view_if_needed()
        lines = [line for line in output.inner_text().splitlines() if ": OK (" in line or ": REFUSED (" in line]
        screenshot(page, "hub-alice-probes-refused")
        print("[probes] from alice's kernel:\n  " + "\n  ".join(lines))

        assert len(lines) == PROBE_CODE.count('\nprobe("'), lines
        controls, attacks = lines[:N_CONTROLS], lines[N_CONTROLS:]
        assert all(": OK (" in line for line in controls), controls
        allowed = [line for line in attacks if ": REFUSED (" not in line]
        assert not allowed, "alice's kernel was allowed:\n" + "\n".join(allowed)

        # ---- afterwards: bob's files and the shared data exactly as before
        assert _tree_digest(bob_home) == before, "bob's home changed"
        assert _tree_digest(hub.extra["shared"]) == shared_before, "the shared data changed"
        for p in hub.descendants():
            cmd = " ".join(p.cmdline())
            if "singleuser" in cmd or "ipykernel" in cmd:
                assert 0 not in p.uids(), f"a student process runs as root: {cmd}"
                assert p.username() in STUDENTS, (p.username(), cmd)
        assert hub.descendants("jupyterhub_idle_culler"), "the idle culler service is not running"
        assert not [u for u in external if "127.0.0.1" not in u], f"asked the network for {external}"
    finally:
        for ctx in contexts.values():
            ctx.close()
    print(f"[timing] hub isolation test: {time.monotonic() - t0:.1f} s")


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
    """Both at once: own server only (403), own lessons writable, shared data not, own cache; memory."""
    t0 = time.monotonic()
    contexts, pages, external = {}, {}, []
    for user in STUDENTS:
        ctx = chromium_browser.new_context(viewport={"width": 1400, "height": 2400})
        ctx.set_default_timeout(120_000)
        block_external_requests(ctx, external)
        contexts[user] = ctx
    try:
        # both log in, then both servers spawn at the same time; the login goes on to lesson 0 (one JupyterLab
        # start per browser: the landing page of the first test is not loaded again only to leave it)
        for user in STUDENTS:
            pages[user] = _submit_login(contexts[user], hub, user, then=f"lab/tree/{LESSON}")
        for user in STUDENTS:
            _wait_for_lab(pages[user], hub, user, f"lab/tree/{LESSON}")
        print(f"\n[timing] hub: both logged in and spawned: {time.monotonic() - t0:.1f} s")
        for user in STUDENTS:
            _wait_for_lesson(pages[user])
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
            assert (Path(pwd.getpwnam(user).pw_dir) / "lessons" / "notes.txt").exists()
            status = _put_text(contexts[user], hub, user, "data/MNIST/notes.txt")
            assert status >= 400, f"{user} wrote into the shared data (HTTP {status})"
            assert not (shared / "MNIST" / "notes.txt").exists()
        homes = [Path(pwd.getpwnam(u).pw_dir) for u in STUDENTS]
        for h in homes:  # a feature cache of their own, where the hub pointed TLLAB_CACHE
            assert (h / ".cache" / "tlwidgets").is_dir()

        kernels = sorted(memory.peaks.values())
        assert len(kernels) >= len(STUDENTS), memory.peaks
        assert {user for _, user in memory.peaks} <= set(STUDENTS), memory.peaks  # kernels run as their student
        print(f"[memory] hub: peak RSS per student kernel during lesson 0: {[round(k) for k in kernels]} MB; "
              f"per student server: {[round(v) for v in sorted(memory.servers.values())]} MB")
        # the thread policy as the hub sets it: the CPU share (cores / students, at least 1) rounded up
        share = max(1.0, len(os.sched_getaffinity(0)) / len(STUDENTS))
        expected = str(max(1, math.ceil(share - 1e-9)))
        for p in hub.descendants("ipykernel"):
            env = p.environ()
            assert (env.get("TLLAB_THREADS"), env.get("OMP_NUM_THREADS")) == (expected, expected), p.pid
        limits = _limits_module()
        for user in STUDENTS:  # the student's cgroup: server + every kernel, what TLLAB_MEM_LIMIT bounds
            group = limits.existing(user)
            peak = None if group is None else limits.peak_bytes(group)
            print(f"[memory] hub: {user}'s cgroup peak (server + kernels): "
                  f"{'not available' if peak is None else f'{peak / 2**20:.0f} MB'}")
        assert not [u for u in external if "127.0.0.1" not in u], f"asked the network for {external}"
    finally:
        for ctx in contexts.values():
            ctx.close()
    print(f"[timing] hub test total: {time.monotonic() - t0:.1f} s")
