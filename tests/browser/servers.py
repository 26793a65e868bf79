"""Servers the deployment tests start: Voilà, Notebook 7, a static file server, JupyterHub.

Each runs as its own process group on 127.0.0.1 with a free port; :meth:`Server.stop` ends
exactly that group (and any kernel it started that escaped into its own session). The
JupyterLab server of ``conftest.py`` works the same way; this module is for the other apps.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .helpers import REPO_ROOT, output_dir

START_TIMEOUT_S = 180  # 2 slow shared cores: ~3x the measured cold start


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(work: Path, **extra: str) -> dict:
    """The environment of a server: repo importable, private Jupyter dirs, widgets not headless."""
    env = dict(os.environ)
    env.pop("TLLAB_HEADLESS", None)  # pytest sets it for the lessons; a browser must see widgets
    env.pop("JUPYTER_TOKEN", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    for name, sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_CONFIG_DIR", "config"),
                      ("IPYTHONDIR", "ipython"), ("JUPYTER_DATA_DIR", "data")):
        (work / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(work / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.update(extra)
    return env


@dataclass
class Server:
    """One server process (own process group) with its log."""

    name: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def wait_http(self, path: str = "/", timeout: float = START_TIMEOUT_S, ok=(200, 302, 403)) -> None:
        """Poll ``path`` until it answers with a status in ``ok`` (the process must stay alive)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=5) as resp:
                    last = resp.status
            except urllib.error.HTTPError as exc:
                last = exc.code
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                last = exc
            if last in ok:
                return
            time.sleep(0.1)  # a refused connection costs nothing: the server is used as soon as it answers
        raise TimeoutError(f"{self.name} not answering {path} after {timeout:.0f} s ({last}); log:\n{self.log_tail()}")

    def descendants(self, needle: str = "") -> list:
        """psutil processes started by this server (kernels, spawned user servers) whose command line has ``needle``."""
        import psutil

        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        out = []
        for p in kids:
            try:
                if needle in " ".join(p.cmdline()):
                    out.append(p)
            except psutil.Error:
                pass
        return out

    def stop(self) -> None:
        import psutil

        kids = []
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            # what it started in sessions of their own (kernels; the hub's student servers, proxy and culler) ends
            # now, not after a polite shutdown each (a kernel that imported torch takes seconds to exit, a hub waits
            # for each server in turn, and nothing of theirs is kept): the server, stopping, finds them gone
            for p in kids:
                try:
                    if os.getsid(p.pid) != self.proc.pid:
                        p.kill()
                except (psutil.Error, OSError):
                    pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        for p in kids:  # kernels / user servers started in their own sessions
            try:
                p.kill()
            except psutil.Error:
                pass
        try:
            shutil.copy(self.log_path, output_dir() / f"{self.name}-{self.port}.log")
        except OSError:
            pass


def start(name: str, cmd: list[str], *, cwd: Path, env: dict, log_dir: Path, port: int) -> Server:
    """Start ``cmd`` (already holding ``port``) in its own process group, output to ``log_dir/name.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return Server(name=name, port=port, proc=proc, log_path=log_path)


def block_external_requests(context, record: list[str]) -> None:
    """Abort every request to a host other than 127.0.0.1 (offline, as on the course machines); keep the URLs."""

    def handle(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            route.continue_()
        else:
            record.append(url)
            route.abort()

    context.route("**/*", handle)
