"""JupyterHub for a classroom on one machine: every student gets the lessons, the shared data
(read-only) and a feature cache of their own.

    bash scripts/install_npm.sh                       # configurable-http-proxy from npm
    sudo deploy/add_students.sh --data /srv/tllab-data --reach .venv/bin/python --reach tlwidgets alice bob
    sudo TLLAB_HUB_PASSWORD=... TLLAB_STUDENTS=alice,bob TLLAB_DATA=/srv/tllab-data \\
        .venv/bin/python -m jupyterhub -f deploy/jupyterhub_config.py

Then students open http://127.0.0.1:8000 and log in with their name and the class password.
For a real class, put a TLS proxy (or Zero to JupyterHub on Kubernetes, docs/deploy.md) in
front and a real authenticator (OAuth/LDAP) in place of the shared password.

Settings (environment variables):
    TLLAB_HUB_PASSWORD  the shared class password (required, >= 8 characters)
    TLLAB_STUDENTS      comma-separated user names allowed to log in (required)
    TLLAB_HUB_DIR       hub state: database, cookie secret (default build/hub; made 0700)
    TLLAB_HUB_PORT      public port on 127.0.0.1 (default 8000); the hub API uses the next two ports
    TLLAB_DATA          the shared data root, read-only for students (default: the repo's datasets/)
    TLLAB_COURSE        the lesson notebooks copied into each home at first login (default lessons/)
    TLLAB_MEM_LIMIT     memory per student, server + kernels (default 3G; a lesson kernel peaks at ~1.8 GB)
    TLLAB_CPU_LIMIT     CPU time per student in cores (default cores / students, at least 1)
    TLLAB_IDLE_TIMEOUT  seconds after which an idle student server is stopped (default 3600)

What each student server gets (pre_spawn_hook):
    ~/lessons/          a copy of the course notebooks (made once; later logins keep the student's work)
    ~/data              a link to the shared data; TLLAB_DATA points at it too
    TLLAB_CACHE         ~/.cache/tlwidgets (feature caches are per student: no write races)
    JupyterLab          the course-wide defaults in deploy/lab-settings/overrides.json

Isolation (issue 23). The hub runs as root and starts each student's server as that student's own
OS user (JupyterHub's LocalProcessSpawner), created beforehand by `deploy/add_students.sh`:
    homes 0700           a student cannot list, read or write another's home (lessons, tokens, kernels)
    shared data          owned by root, read-only by permission (add_students.sh --data DIR)
    hub state            TLLAB_HUB_DIR is 0700 root: cookie secret and database unreadable to students;
                         the hub's environment (the class password) is not passed on (env_keep) and
                         /proc/<hub>/environ is readable by root only
    limits               one cgroup per student (deploy/limits.py): TLLAB_MEM_LIMIT (default 3G) for the
                         server and all its kernels together, TLLAB_CPU_LIMIT cores of CPU time (default:
                         the machine's cores / number of students, at least 1); torch threads follow it
                         (TLLAB_THREADS / OMP_NUM_THREADS set per student, tlwidgets.infra.thread_count)
    idle servers         stopped by jupyterhub-idle-culler after TLLAB_IDLE_TIMEOUT seconds (default 3600)
"""
import os
import pwd
import shutil
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import limits  # noqa: E402 - deploy/limits.py, beside this file

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

REPO = Path(__file__).resolve().parent.parent
HUB_DIR = Path(os.environ.get("TLLAB_HUB_DIR", REPO / "build" / "hub")).resolve()
COURSE = Path(os.environ.get("TLLAB_COURSE", REPO / "lessons")).resolve()
DATA = Path(os.environ.get("TLLAB_DATA") or REPO / "datasets").resolve()
STUDENTS = [u.strip() for u in os.environ.get("TLLAB_STUDENTS", "").split(",") if u.strip()]
PORT = int(os.environ.get("TLLAB_HUB_PORT", "8000"))
PROXY = REPO / "deploy" / "npm" / "node_modules" / ".bin" / "configurable-http-proxy"
LAB_SETTINGS = REPO / "deploy" / "lab-settings"
IDLE_TIMEOUT = int(os.environ.get("TLLAB_IDLE_TIMEOUT", "3600"))


def _os_user(name: str):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


if not STUDENTS:
    raise SystemExit("TLLAB_STUDENTS is empty: give the students' user names, e.g. TLLAB_STUDENTS=alice,bob")
if not PROXY.exists():
    raise SystemExit(f"{PROXY} is missing: run `bash scripts/install_npm.sh`")
if os.geteuid() != 0:
    raise SystemExit("the classroom hub must run as root: it starts each student's server as that student's OS "
                     "user (see deploy/add_students.sh)")
if missing := [u for u in STUDENTS if _os_user(u) is None]:
    raise SystemExit(f"TLLAB_STUDENTS names {missing}, which have no OS user: run "
                     f"`deploy/add_students.sh {' '.join(missing)}` first")
if root_students := [u for u in STUDENTS if _os_user(u).pw_uid == 0]:
    raise SystemExit(f"TLLAB_STUDENTS names {root_students}, which run as root: a student must be an ordinary user")
LIMITS = limits.StudentLimits(
    mem_bytes=limits.parse_bytes(os.environ.get("TLLAB_MEM_LIMIT", "3G")),
    cpus=float(os.environ.get("TLLAB_CPU_LIMIT") or max(1.0, len(os.sched_getaffinity(0)) / len(STUDENTS))))
HUB_DIR.mkdir(parents=True, exist_ok=True)
HUB_DIR.chmod(0o700)  # cookie secret, database, pid files: the hub's alone

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

# ---- idle servers are stopped (memory goes back to the machine): jupyterhub-idle-culler, a dev dependency
try:
    import jupyterhub_idle_culler  # noqa: F401
except ImportError as exc:
    raise SystemExit("jupyterhub-idle-culler is not installed: pip install -e '.[dev]' (or jupyterhub-idle-culler)") \
        from exc
c.JupyterHub.load_roles = [{"name": "jupyterhub-idle-culler-role",
                            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                            "services": ["jupyterhub-idle-culler-service"]}]
c.JupyterHub.services = [{"name": "jupyterhub-idle-culler-service",
                          "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={IDLE_TIMEOUT}"]}]


class CourseSpawner(LocalProcessSpawner):
    """Each student's server as their own OS user, in their own cgroup (limits), with the course's environment."""

    cgroup: limits.StudentGroup | None = None

    def user_env(self, env):
        env = super().user_env(env)  # USER, HOME, SHELL of the student's OS account
        home = Path(env["HOME"])
        env.update({
            "TLLAB_DATA": str(DATA),
            "TLLAB_CACHE": str(home / ".cache" / "tlwidgets"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
            "JUPYTER_RUNTIME_DIR": str(home / ".local" / "share" / "jupyter" / "runtime"),
            "IPYTHONDIR": str(home / ".ipython"),
            # torch threads from the student's CPU share (tlwidgets.infra.thread_count reads TLLAB_THREADS first;
            # OMP_NUM_THREADS reaches OpenMP before torch is even imported)
            "TLLAB_THREADS": str(LIMITS.threads),
            "OMP_NUM_THREADS": str(LIMITS.threads),
            "MKL_NUM_THREADS": str(LIMITS.threads),
        })
        env.pop("TLLAB_HEADLESS", None)
        return env

    async def start(self):
        self.cgroup = limits.prepare(self.user.name, LIMITS)
        if self.cgroup is None:
            self.log.warning("no writable cgroup file system: memory/CPU limits for %s are NOT enforced",
                             self.user.name)
        return await super().start()

    def make_preexec_fn(self, name):
        become_student = super().make_preexec_fn(name)  # setgid/setgroups/setuid + chdir home
        group = self.cgroup

        def preexec():
            if group is not None:
                limits.join(group)  # still root here: move into the student's cgroup, then drop root
            become_student()

        return preexec

    async def stop(self, now=False):
        await super().stop(now=now)
        if self.cgroup is not None:
            limits.remove(self.cgroup)


def prepare_home(spawner) -> None:
    """Give the student the lessons (once), a link to the shared data, a cache folder: all owned by the student."""
    user = pwd.getpwnam(spawner.user.name)
    home = Path(user.pw_dir)
    home.mkdir(parents=True, exist_ok=True)
    made = []
    if not (home / "lessons").exists():
        shutil.copytree(COURSE, home / "lessons", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        made.append(home / "lessons")
    if not (home / "data").is_symlink():
        (home / "data").symlink_to(DATA, target_is_directory=True)
    for sub in (".cache/tlwidgets", ".config/matplotlib", ".local/share/jupyter/runtime", ".ipython"):
        if not (home / sub).exists():
            (home / sub).mkdir(parents=True)
            made.append(home / sub.split("/")[0])
    for top in made:  # what the hub (root) just created belongs to the student
        for folder, dirs, files in os.walk(top):
            for p in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                os.lchown(p, user.pw_uid, user.pw_gid)
    os.lchown(home / "data", user.pw_uid, user.pw_gid)
    os.chown(home, user.pw_uid, user.pw_gid)
    home.chmod(0o700)


c.JupyterHub.spawner_class = CourseSpawner
c.Spawner.pre_spawn_hook = prepare_home
c.Spawner.mem_limit = LIMITS.mem_bytes  # informational here (MEM_LIMIT for the server); enforced by the cgroup
c.Spawner.cpu_limit = LIMITS.cpus
c.Spawner.default_url = "/lab/tree/lessons"
c.Spawner.cmd = ["jupyterhub-singleuser"]
c.Spawner.args = [f"--LabApp.app_settings_dir={LAB_SETTINGS}",  # course-wide defaults (overrides.json)
                  "--LabApp.extension_manager=readonly",         # no PyPI queries from a classroom
                  "--ServerApp.terminals_enabled=False"]
c.Spawner.start_timeout = 180  # 2 slow cores under a class's load
c.Spawner.http_timeout = 180
