"""Real-browser test fixtures: a private JupyterLab server + headless Chromium (Playwright).

Fixtures
--------
``browser_notebook_dirs`` (session)  folders whose *contents* are copied into the server root
                                      of ``jupyter_server`` (default: ``tests/browser/notebooks``).
``jupyter_server_factory`` (session) ``factory(notebook_dirs, *, copy=True) -> JupyterServer``
                                      for other notebook sets (e.g. ``[REPO_ROOT / "lessons"]``);
                                      every server it starts is stopped at the end of the session.
``jupyter_server`` (session)         a :class:`JupyterServer` serving ``browser_notebook_dirs``.
``fresh_kernels`` (function)         ``jupyter_server`` with all its kernels shut down first.
``chromium_browser`` (session)       a Playwright ``Browser`` (system ``/usr/bin/chromium``).
``browser_page`` (function)          a fresh ``Page`` (new incognito context, 1400x2400) per test;
                                      on failure a screenshot + console log land in
                                      ``test-output/browser/``.
``offline_page`` (function)          ``browser_page`` with every request to a host other than
                                      127.0.0.1 aborted and listed in ``page.external_requests``.
``recorded_page(browser, offline=)``  the same page for a module fixture (several tests, one page);
``save_failure(page, request)``       its ``FAILED-<test>`` screenshot and console log per test.

All tests in this folder get the ``browser`` marker and are skipped (not failed) when
``/usr/bin/chromium`` or the ``playwright`` package is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .helpers import REPO_ROOT, open_notebook, output_dir, run_all_cells, screenshot
from .servers import block_external_requests

# Override only to test the skip logic or on a non-Debian box.
CHROMIUM_PATH = os.environ.get("TLLAB_CHROMIUM_PATH", "/usr/bin/chromium")
HERE = Path(__file__).resolve().parent
DEFAULT_NOTEBOOK_DIR = HERE / "notebooks"
SERVER_START_TIMEOUT_S = 60 * 3  # 2 slow cores: x3 margin
VIEWPORT = {"width": 1400, "height": 2400}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]

# JupyterLab user settings written into a private JUPYTERLAB_SETTINGS_DIR.
LAB_SETTINGS = {
    # Render every cell, not only the ones in the viewport (JupyterLab 4 windowing).
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # No news / update checks (no network, no toast covering the UI).
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # Keep the served copies pristine: a new page always loads the notebook as copied.
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}
# Page config (labconfig/page_config.json in the private JUPYTER_CONFIG_DIR): no "is a build needed?" check on
# every page load (it runs node twice on the server, and a "Build recommended" dialog would be accepted by
# dismiss_dialogs); the installed lab is what the tests test.
LAB_PAGE_CONFIG = {"buildCheck": False, "buildAvailable": False}


# --------------------------------------------------------------------------- skip / marker


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "browser: real-browser test (JupyterLab + headless Chromium via Playwright); "
        "needs /usr/bin/chromium and the playwright package (bash scripts/install_browser.sh)",
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.path)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


def _browser_skip_reason() -> str | None:
    if not os.path.exists(CHROMIUM_PATH):
        return f"Chromium not found at {CHROMIUM_PATH}: run `bash scripts/install_browser.sh`"
    try:
        import playwright.sync_api  # noqa: F401
    except Exception as exc:  # ImportError or a broken install
        return f"Python package `playwright` not importable ({exc}): run `bash scripts/install_browser.sh`"
    import importlib.util

    for mod in ("jupyterlab", "ipykernel", "ipywidgets"):
        if importlib.util.find_spec(mod) is None:
            return f"Python package `{mod}` not installed in {sys.executable}"
    return None


@pytest.fixture(scope="session")
def browser_prerequisites():
    """Skips the requesting test when Chromium or playwright is missing."""
    reason = _browser_skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Expose the outcome of each phase to fixtures (for screenshots on failure).
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


# --------------------------------------------------------------------------- Jupyter server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_option_exists(name: str) -> bool:
    """Whether ``LabApp.<name>`` exists in the installed JupyterLab (checked without starting it)."""
    try:
        from jupyterlab.labapp import LabApp
    except Exception:
        return False
    return LabApp.class_traits().get(name) is not None


def _token_option() -> str:
    """``IdentityProvider.token`` on jupyter_server >= 2 (``ServerApp.token`` is deprecated there)."""
    try:
        from jupyter_server.auth.identity import IdentityProvider

        if IdentityProvider.class_traits().get("token") is not None:
            return "IdentityProvider.token"
    except Exception:
        pass
    return "ServerApp.token"


@dataclass
class JupyterServer:
    """A JupyterLab server started by the fixtures (one process group, our own)."""

    port: int
    token: str
    root_dir: Path
    work_dir: Path
    log_path: Path
    proc: subprocess.Popen
    env: dict = field(repr=False, default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "lab") -> str:
        """Absolute URL of ``path`` with the token, e.g. ``server.url("lab/tree/x.ipynb")``."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 10.0):
        """Call the REST API (``path`` like ``"api/sessions"``) with token auth; returns parsed JSON or None."""
        req = urllib.request.Request(
            f"{self.base_url}/{path.lstrip('/')}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def notebook_path(self, name: str) -> Path:
        """Path on disk of a served notebook (the private copy, not the original)."""
        return self.root_dir / name

    # ------------------------------------------------------------------ lifecycle

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        last_err: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with code {self.proc.returncode} during start-up; log:\n{self.log_tail()}"
                )
            try:
                status = self.api("api/status", timeout=5)
                if isinstance(status, dict) and "started" in status:
                    # The /lab page must also be served (the lab extension is loaded).
                    with urllib.request.urlopen(self.url("lab"), timeout=10) as resp:
                        if resp.status == 200:
                            return
            except (urllib.error.URLError, ConnectionError, OSError, ValueError) as exc:
                last_err = exc
            time.sleep(0.1)  # a refused connection costs nothing: the server is used as soon as it answers
        raise TimeoutError(
            f"jupyter lab not ready on port {self.port} after {timeout:.0f} s ({last_err}); log:\n{self.log_tail()}"
        )

    def shutdown_all_kernels(self) -> None:
        """Delete every session and kernel of this server (token auth, no XSRF needed).

        Kernels are shared per notebook path: a second ``open_notebook`` of the same
        file reconnects to the same kernel (and its state).  Call this first for a
        clean kernel.
        """
        for what in ("sessions", "kernels"):
            try:
                items = self.api(f"api/{what}", timeout=10) or []
            except Exception:
                continue
            for item in items:
                try:
                    self.api(f"api/{what}/{item['id']}", method="DELETE", timeout=30)
                except Exception:
                    pass

    def _own_kernel_pids(self) -> list[int]:
        """PIDs of kernels whose connection file lives in our private runtime dir."""
        runtime = str(self.work_dir / "runtime")
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if runtime in cmdline and "kernel" in cmdline:
                pids.append(int(entry.name))
        return pids

    def _kill_own_kernels(self) -> None:
        for pid in self._own_kernel_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # start_new_session: pgid == pid
            except ProcessLookupError:
                pass
            # its kernels end now, not after a polite shutdown each (a kernel that imported torch takes seconds
            # to exit, and nothing of theirs is kept): the server, stopping, finds them gone
            self._kill_own_kernels()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=30)
        # Kernels run in their own sessions (jupyter_client start_new_session): kill any
        # left-over kernel of *this* server (identified by our private runtime dir).
        self._kill_own_kernels()
        try:  # keep the server log next to the screenshots
            shutil.copy(self.log_path, output_dir() / f"jupyter-server-{self.port}.log")
        except OSError:
            pass


def _copy_notebook_dirs(dirs: Iterable[Path], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for src in dirs:
        src = Path(src)
        if not src.is_dir():
            raise FileNotFoundError(f"notebook folder not found: {src}")
        shutil.copytree(
            src,
            dest,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )


def _server_env(work: Path) -> dict:
    env = dict(os.environ)
    env.pop("TLLAB_HEADLESS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["JUPYTERLAB_SETTINGS_DIR"] = str(work / "lab-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(work / "lab-workspaces")
    env["JUPYTER_RUNTIME_DIR"] = str(work / "runtime")
    env["JUPYTER_CONFIG_DIR"] = str(work / "config")  # ignore ~/.jupyter
    env["IPYTHONDIR"] = str(work / "ipython")  # ignore ~/.ipython startup files
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    env.pop("JUPYTER_TOKEN", None)
    return env


def start_jupyter_server(notebook_dirs: Iterable[Path], work: Path, *, copy: bool = True) -> JupyterServer:
    """Copy ``notebook_dirs`` into ``work/root`` and start ``python -m jupyterlab`` there.

    ``copy=False`` serves the single folder in ``notebook_dirs`` in place (for notebooks
    that use paths relative to their folder); autosave is off, so nothing is written
    there unless a test saves.
    """
    notebook_dirs = [Path(d) for d in notebook_dirs]
    if copy:
        root = work / "root"
        _copy_notebook_dirs(notebook_dirs, root)
    else:
        if len(notebook_dirs) != 1 or not notebook_dirs[0].is_dir():
            raise ValueError(f"copy=False needs exactly one existing folder, got {notebook_dirs}")
        root = notebook_dirs[0].resolve()
    settings_dir = work / "lab-settings"
    for rel, content in LAB_SETTINGS.items():
        p = settings_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(content, indent=2))
    for d in ("lab-workspaces", "runtime", "config/labconfig", "ipython"):
        (work / d).mkdir(parents=True, exist_ok=True)
    (work / "config" / "labconfig" / "page_config.json").write_text(json.dumps(LAB_PAGE_CONFIG, indent=2))
    env = _server_env(work)

    last_exc: Exception | None = None
    for attempt in range(3):  # a free port can be grabbed by someone else before we bind it
        port = _free_port()
        token = secrets.token_hex(24)
        cmd = [
            sys.executable, "-m", "jupyterlab",  # not `jupyter lab`: that script may run another interpreter
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--{_token_option()}={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.open_browser=False",
            "--ServerApp.terminals_enabled=False",
            f"--LabApp.user_settings_dir={settings_dir}",
            f"--LabApp.workspaces_dir={work / 'lab-workspaces'}",
        ]
        if _lab_option_exists("news_url"):
            cmd.append("--LabApp.news_url=None")
        if _lab_option_exists("check_for_updates_class"):
            cmd.append("--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
        if _lab_option_exists("extension_manager"):
            cmd.append("--LabApp.extension_manager=readonly")  # no PyPI queries
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        log_path = work / f"jupyter-lab-{port}.log"
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            cmd,
            cwd=str(root),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: teardown kills exactly this tree
        )
        log.close()
        server = JupyterServer(port=port, token=token, root_dir=root, work_dir=work, log_path=log_path, proc=proc, env=env)
        try:
            server.wait_ready()
            return server
        except Exception as exc:
            last_exc = exc
            server.stop()
            if "address already in use" not in server.log_tail().lower():
                break
    raise RuntimeError(f"could not start jupyter lab: {last_exc}")


@pytest.fixture(scope="session")
def browser_notebook_dirs() -> list[Path]:
    """Folders copied into the Jupyter server root. Override to serve other notebooks."""
    return [DEFAULT_NOTEBOOK_DIR]


@pytest.fixture(scope="session")
def jupyter_server_factory(browser_prerequisites, tmp_path_factory) -> Iterable[Callable[..., JupyterServer]]:
    servers: list[JupyterServer] = []

    def factory(notebook_dirs: Iterable[Path] = (DEFAULT_NOTEBOOK_DIR,), *, copy: bool = True) -> JupyterServer:
        work = tmp_path_factory.mktemp("jupyter-lab")
        server = start_jupyter_server(list(notebook_dirs), work, copy=copy)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def jupyter_server(jupyter_server_factory, browser_notebook_dirs) -> JupyterServer:
    return jupyter_server_factory(browser_notebook_dirs)


@pytest.fixture
def fresh_kernels(jupyter_server) -> JupyterServer:
    """``jupyter_server`` after shutting down all its sessions/kernels: the next
    ``open_notebook`` starts a new kernel (no state left by earlier tests)."""
    jupyter_server.shutdown_all_kernels()
    return jupyter_server


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def chromium_browser(browser_prerequisites):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM_PATH,
            headless=True,
            args=CHROMIUM_ARGS,
            timeout=120_000,
        )
    except Exception:
        pw.stop()
        raise
    try:
        yield browser
    finally:
        try:
            browser.close()
        finally:
            pw.stop()


def new_page(browser):
    """A page in a new browser context (clean cookies and storage), set up as every test here needs it:
    the 1400x2400 viewport, timeouts sized for 2 slow shared cores, and "beforeunload" dialogs accepted
    (leaving a modified notebook raises one, and page.goto() would wait on it forever).
    Close it with ``page.context.close()``."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.set_default_timeout(90_000)
    context.set_default_navigation_timeout(120_000)
    page = context.new_page()
    page.on("dialog", lambda d: d.accept() if d.type == "beforeunload" else d.dismiss())
    return page


def recorded_page(browser, *, offline: bool = False):
    """:func:`new_page` that keeps its console messages and uncaught exceptions in ``page.console_messages_log``
    (what :func:`helpers.console_errors` reads); ``offline=True`` also aborts every request to another host than
    127.0.0.1 and lists it in ``page.external_requests`` (see ``offline_page``). For a page that several tests
    share (a module-scoped fixture); close it with ``page.context.close()``."""
    page = new_page(browser)
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"[{msg.type}] {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"[pageerror] {exc}"))
    page.console_messages_log = console  # handy when debugging a test
    if offline:
        page.external_requests = []
        block_external_requests(page.context, page.external_requests)
    return page


@contextmanager
def executed_notebook(browser, server, notebook: str, *, name: str, prepare: Callable | None = None,
                      fresh_kernel: bool = False) -> Iterator:
    """A recorded, offline page with ``notebook`` opened on ``server`` and every cell run, for a module's tests
    to share; closed on exit. Opening JupyterLab and running a notebook costs more than the tests that read it.
    ``prepare(page)`` runs first; ``fresh_kernel`` shuts the server's kernels down before opening (kernels are
    shared per path). A set-up that raises saves ``FAILED-<name>-setup`` (screenshot and console log)."""
    page = recorded_page(browser, offline=True)
    try:
        if prepare is not None:
            prepare(page)
        if fresh_kernel:
            server.shutdown_all_kernels()
        open_notebook(page, server, notebook)
        run_all_cells(page)
    except Exception:
        save_failure(page, None, name=f"FAILED-{name}-setup")
        page.context.close()
        raise
    try:
        yield page
    finally:
        page.context.close()


def save_failure(page, request, *, name: str | None = None) -> None:
    """When ``request``'s test failed (set-up or call), save ``FAILED-<test>.png`` and the page's console log;
    ``request=None`` saves them as ``name`` at once (a module fixture's set-up that raised)."""
    if request is not None:
        reps = [getattr(request.node, f"rep_{when}", None) for when in ("setup", "call")]
        if not any(rep is not None and rep.failed for rep in reps):
            return
        name = f"FAILED-{request.node.name}"
    elif not name:
        raise ValueError("save_failure needs a name when request is None")
    try:
        screenshot(page, name)
    except Exception:
        pass
    try:
        (output_dir() / f"{name}-console.log").write_text("\n".join(getattr(page, "console_messages_log", [])))
    except OSError:
        pass


@pytest.fixture
def browser_page(chromium_browser, request):
    """A fresh page in its own browser context (clean cookies/storage) for each test."""
    page = recorded_page(chromium_browser)
    try:
        yield page
    finally:
        save_failure(page, request)
        page.context.close()


@pytest.fixture
def offline_page(browser_page):
    """``browser_page`` cut off from the network, as a classroom without internet would be.

    The course promises to run offline; a page that silently fetched a font or a script from a CDN would
    pass here and fail in class. Every request to another host is aborted and recorded in
    ``page.external_requests`` for the test to assert on (some apps may fetch a font, and say so).
    """
    external: list[str] = []
    block_external_requests(browser_page.context, external)
    browser_page.external_requests = external
    return browser_page
