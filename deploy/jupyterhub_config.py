"""JupyterHub for a classroom on one machine: every student gets the lessons, the shared data
(read-only) and a feature cache of their own.

    bash scripts/install_npm.sh                       # configurable-http-proxy from npm
    TLLAB_HUB_PASSWORD=... TLLAB_STUDENTS=alice,bob \\
        .venv/bin/python -m jupyterhub -f deploy/jupyterhub_config.py

Then students open http://127.0.0.1:8000 and log in with their name and the class password.
For a real class, put a TLS proxy (or Zero to JupyterHub on Kubernetes, docs/deploy.md) in
front and a real authenticator (OAuth/LDAP) in place of the shared password.

Settings (environment variables):
    TLLAB_HUB_PASSWORD  the shared class password (required, >= 8 characters)
    TLLAB_STUDENTS      comma-separated user names allowed to log in (required)
    TLLAB_HUB_DIR       hub state: database, cookie secret, students' homes (default build/hub)
    TLLAB_HUB_PORT      public port on 127.0.0.1 (default 8000); the hub API uses the next two ports
    TLLAB_DATA          the shared data root, read-only for students (default: the repo's datasets/)
    TLLAB_COURSE        the lesson notebooks copied into each home at first login (default lessons/)

What each student server gets (pre_spawn_hook):
    ~/lessons/          a copy of the course notebooks (made once; later logins keep the student's work)
    ~/data              a link to the shared data; TLLAB_DATA points at it too
    TLLAB_CACHE         ~/.cache/tlwidgets (feature caches are per student: no write races)
    JupyterLab          the course-wide defaults in deploy/lab-settings/overrides.json

Isolation. The hub lets a student reach only their own server (403 on anybody else's). When the
hub runs as root, each student's server starts in a mount namespace of its own in which the shared
data is mounted read-only (`unshare` + a read-only bind mount: root ignores file permissions, a
read-only mount it cannot ignore). All servers run as the hub's user, so the operating system does
not keep one student's kernel out of another's home: for a class, use Zero to JupyterHub (a pod and
a volume per student, docs/deploy.md) or a spawner with real system users.
"""
import os
import shutil
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

REPO = Path(__file__).resolve().parent.parent
HUB_DIR = Path(os.environ.get("TLLAB_HUB_DIR", REPO / "build" / "hub")).resolve()
COURSE = Path(os.environ.get("TLLAB_COURSE", REPO / "lessons")).resolve()
DATA = Path(os.environ.get("TLLAB_DATA") or REPO / "datasets").resolve()
STUDENTS = [u.strip() for u in os.environ.get("TLLAB_STUDENTS", "").split(",") if u.strip()]
PORT = int(os.environ.get("TLLAB_HUB_PORT", "8000"))
PROXY = REPO / "deploy" / "npm" / "node_modules" / ".bin" / "configurable-http-proxy"
LAB_SETTINGS = REPO / "deploy" / "lab-settings"
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

if not STUDENTS:
    raise SystemExit("TLLAB_STUDENTS is empty: give the students' user names, e.g. TLLAB_STUDENTS=alice,bob")
if not PROXY.exists():
    raise SystemExit(f"{PROXY} is missing: run `bash scripts/install_npm.sh`")
HUB_DIR.mkdir(parents=True, exist_ok=True)

# ---- network: everything on loopback
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = PORT
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = PORT + 1
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PORT + 2}"
c.ConfigurableHTTPProxy.command = [str(PROXY)]
c.ConfigurableHTTPProxy.pid_file = str(HUB_DIR / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{HUB_DIR / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(HUB_DIR / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(HUB_DIR / "jupyterhub.pid")

# ---- who may log in: the class list, one shared password (a throwaway authenticator)
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = os.environ.get("TLLAB_HUB_PASSWORD", "")
c.Authenticator.allowed_users = set(STUDENTS)

# ---- idle servers are stopped (memory goes back to the machine): see docs/deploy.md for sizing
c.JupyterHub.load_roles = [{"name": "jupyterhub-idle-culler-role",
                            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                            "services": ["jupyterhub-idle-culler-service"]}]
try:  # the culler is a separate package (pip install jupyterhub-idle-culler); optional here
    import sys

    import jupyterhub_idle_culler  # noqa: F401

    c.JupyterHub.services = [{"name": "jupyterhub-idle-culler-service",
                              "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]}]
except ImportError:
    c.JupyterHub.load_roles = []


class CourseSpawner(SimpleLocalProcessSpawner):
    """A local process per student, started in its home under TLLAB_HUB_DIR/home, with the course's environment."""

    def user_env(self, env):
        env = super().user_env(env)
        home = Path(self.home_dir)
        env.update({
            "TLLAB_DATA": str(DATA),
            "TLLAB_CACHE": str(home / ".cache" / "tlwidgets"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
            "JUPYTER_RUNTIME_DIR": str(home / ".local" / "share" / "jupyter" / "runtime"),
            "IPYTHONDIR": str(home / ".ipython"),
        })
        env.pop("TLLAB_HEADLESS", None)
        return env


def prepare_home(spawner) -> None:
    """Give the student the lessons (once), a link to the shared data, a cache folder; own it."""
    home = Path(spawner.home_dir)
    fresh = not (home / "lessons").exists()
    home.mkdir(parents=True, exist_ok=True)
    if fresh:
        shutil.copytree(COURSE, home / "lessons", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    if not (home / "data").is_symlink():
        (home / "data").symlink_to(DATA, target_is_directory=True)
    (home / ".cache" / "tlwidgets").mkdir(parents=True, exist_ok=True)


c.JupyterHub.spawner_class = CourseSpawner
c.SimpleLocalProcessSpawner.home_dir_template = str(HUB_DIR / "home" / "{username}")
c.Spawner.pre_spawn_hook = prepare_home
c.Spawner.default_url = "/lab/tree/lessons"
c.Spawner.args = [f"--LabApp.app_settings_dir={LAB_SETTINGS}",  # course-wide defaults (overrides.json)
                  "--LabApp.extension_manager=readonly",         # no PyPI queries from a classroom
                  "--ServerApp.terminals_enabled=False"]
if AS_ROOT:
    # The shared data, read-only in the student's own mount namespace; then the usual single-user server.
    c.Spawner.cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                     'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', str(DATA),
                     "jupyterhub-singleuser"]
    c.Spawner.args.append("--allow-root")  # else the hub waits for a server that refuses to start
c.Spawner.start_timeout = 180  # 2 slow cores under a class's load
c.Spawner.http_timeout = 180
