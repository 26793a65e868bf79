"""Infrastructure: folders, checksums, atomic writes, the network probe, safe extraction, devices and seeds.

The plumbing every other module stands on, in one place:

- **paths**: the repository, the user cache folder, ``$TLLAB_CACHE``;
- **content keys**: :func:`sha256_file`, :func:`file_digest` (memoised by
  size + mtime + inode, re-hashed when the file may have changed within the
  file system's timestamp resolution), :func:`read_manifest`,
  :func:`verify_checksums`;
- **one atomic write**: :func:`atomic_write` for every file the package
  writes (results JSON, checkpoints, feature caches, dashboard logs,
  downloads): the old file stays intact until the new one is complete, and a
  full disk is reported with the file name and the space needed;
- **network**: :func:`network_available`, a quick probe so offline machines
  fail in seconds; :func:`safe_extract` for archives;
- **devices and seeds**: :func:`select_device`, :func:`seed_everything`.

It imports nothing else from the package except the argument checks.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import io
import math
import os
import random
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .validate import check_int

__all__ = [
    "REPO_ROOT", "REPO_DATASETS", "DATA_ENV", "CACHE_ENV", "DataMissingError", "ChecksumError", "StorageError",
    "asset_path", "user_cache_dir", "cache_root", "writable_cache_dir",
    "ensure_writable_dir", "sha256_file", "file_digest", "files_digest", "short_hash",
    "read_manifest", "verify_checksums", "atomic_write", "torch_bytes", "network_available", "safe_extract",
    "DEVICES", "select_device", "seed_everything", "seed_torch", "SEED_PURPOSES", "derive_seed", "plain",
    "clear_digest_memo", "THREADS_ENV", "cpu_quota", "thread_count", "apply_thread_policy",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
REPO_DATASETS = REPO_ROOT / "datasets"
DATA_ENV = "TLLAB_DATA"
CACHE_ENV = "TLLAB_CACHE"


class DataMissingError(FileNotFoundError):
    """The files a loader needs are nowhere on the data-root search path.

    Its message lists what is missing, every folder that was searched and the
    one command that fetches the data, so a student can fix it without help.
    """


class ChecksumError(ValueError):
    """A data or weights file differs from the checksum it was shipped with (or cannot be read safely)."""


class StorageError(OSError):
    """A file could not be written: the message names the file, the reason and what to do.

    ``str()`` is the message alone (no "[Errno 28]" prefix); ``errno`` is still set.
    """

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.errno = code

    def __str__(self) -> str:
        return self.args[0]


# ---------------------------------------------------------------------------
# folders
# ---------------------------------------------------------------------------
def _xdg_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def user_cache_dir() -> Path:
    """Where downloaded data goes by default: ``~/.cache/tlwidgets/data`` (or under ``$XDG_CACHE_HOME``)."""
    return _xdg_cache() / "tlwidgets" / "data"


def cache_root() -> Path:
    """``$TLLAB_CACHE`` or ``~/.cache/tlwidgets``: computed caches (features), shared by all lessons, safe to delete."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else _xdg_cache() / "tlwidgets"


def writable_cache_dir(name: str) -> Path:
    """``cache_root() / name``, created; an unusable folder is reported with both ways out.

    A read-only home, a full disk or ``$TLLAB_CACHE`` pointing at a file all
    end here, with a message that says how to pick another folder
    (``TLLAB_CACHE``) or to run without the cache (``cache=False``).
    """
    path = cache_root() / name
    try:
        ensure_writable_dir(path)
    except OSError as exc:
        raise StorageError(
            f"cache folder {path} is not writable ({exc.strerror or exc}). Point ${CACHE_ENV} at a writable "
            f"folder (e.g. os.environ['{CACHE_ENV}'] = '/tmp/tllab-cache'), or pass cache=False to compute "
            "without caching.") from None
    return path


def ensure_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Create the folder ``path`` and prove it writable by writing and deleting an empty file; OSError if not.

    Why write instead of asking ``os.access``: it checks permissions only, while
    a full disk or quota (or a network file system that decides on the server)
    fails on the first real write; probing here fails before any work is done.
    Callers turn the OSError into their own message.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write-test-{os.getpid()}-{threading.get_ident()}"
    probe.write_bytes(b"")
    probe.unlink()
    return folder


def asset_path(name: str) -> Path:
    """A file shipped inside the package (``tlwidgets/assets/<name>``), found through ``importlib.resources``.

    Works for a source checkout and an installed wheel alike (the package is
    installed unzipped, so the resource is a real file torch can open).
    """
    from importlib.resources import files

    return Path(str(files("tlwidgets").joinpath("assets").joinpath(name)))


# ---------------------------------------------------------------------------
# content keys and checksums
# ---------------------------------------------------------------------------
def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# (path) -> (stat key, digest, time the file was hashed)
_DIGESTS: dict[str, tuple[tuple, str, float]] = {}
#: A file modified less than this long before it was hashed may change again
#: without its mtime changing (coarse file-system clocks), so its digest is not reused.
RACY_SECONDS = 2.0


def _stat_key(st: os.stat_result) -> tuple:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def file_digest(path: str | os.PathLike) -> str:
    """The sha256 of ``path``'s content, memoised per process by (size, mtime, ctime, inode).

    Any edit changes mtime (and ctime), any replacement the inode, so a
    remembered digest is reused only for the very same bytes. The one gap,
    a same-size edit within the file system's timestamp resolution, is closed
    the way git closes it: a file whose mtime was within :data:`RACY_SECONDS`
    of the moment it was hashed is hashed again next time.
    """
    path = os.fspath(path)
    st = os.stat(path)
    key = _stat_key(st)
    memo = _DIGESTS.get(path)
    if memo is not None and memo[0] == key and st.st_mtime_ns / 1e9 < memo[2] - RACY_SECONDS:
        return memo[1]
    hashed_at = time.time()
    digest = sha256_file(path)
    _DIGESTS[path] = (key, digest, hashed_at)
    return digest


def files_digest(paths: Iterable[str | os.PathLike]) -> str:
    """One digest over several files' contents (in order): a cache key that changes when any byte does."""
    h = hashlib.sha256()
    for p in paths:
        h.update(file_digest(p).encode())
    return h.hexdigest()


def short_hash(*parts: Any, length: int = 16) -> str:
    """The package's one short hash: ``length`` hex digits of the sha1 of ``parts``, for cache keys and fingerprints.

    Tensors and arrays are hashed by their dtype, shape and bytes (wherever they live), bytes as they are,
    anything else by ``repr``; every part is framed, so ``("ab", "c")`` and ``("a", "bc")`` differ. Not a
    security hash: it names content, it does not protect it (:func:`sha256_file` checks files).
    """
    length = check_int("length", length, min=4, max=40)
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, torch.Tensor):   # any dtype (bfloat16 too): its raw bytes
            flat = p.detach().cpu().contiguous().reshape(-1)
            h.update(f"tensor|{p.dtype}|{tuple(p.shape)}|".encode())
            h.update(flat.view(torch.uint8).numpy().tobytes())
        elif isinstance(p, np.ndarray):
            data = np.ascontiguousarray(p)
            h.update(f"array|{data.dtype}|{data.shape}|".encode())
            h.update(data.tobytes())
        elif isinstance(p, (bytes, bytearray, memoryview)):
            h.update(b"bytes|%d|" % len(p))
            h.update(bytes(p))
        else:
            text = repr(p).encode()
            h.update(b"repr|%d|" % len(text))
            h.update(text)
    return h.hexdigest()[:length]


def read_manifest(root: str | os.PathLike) -> dict[str, str]:
    """``relative path -> sha256`` from ``root/SHA256SUMS`` (empty if there is none)."""
    path = Path(root) / "SHA256SUMS"
    if not path.exists():
        return {}
    entries = {}
    for line in path.read_text().splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            entries[parts[1].lstrip("*").removeprefix("./")] = parts[0].lower()
    return entries


def verify_checksums(root: str | os.PathLike, prefix: str, *, only: Iterable[str] | None = None) -> int:
    """Verify every manifest entry under ``prefix`` (or just ``only``); return how many were checked.

    Digests are memoised by :func:`file_digest`, so a lesson that loads the
    same files twice pays for hashing once.
    """
    root = Path(root)
    manifest = read_manifest(root)
    wanted = set(only) if only is not None else None
    checked = 0
    for rel, expected in manifest.items():
        if not rel.startswith(prefix) or (wanted is not None and rel not in wanted):
            continue
        path = root / rel
        if not path.exists():
            continue  # absence is reported by find_dataset / the loader, with the fetch hint
        actual = file_digest(path)
        if actual != expected:
            raise ChecksumError(
                f"{path}: sha256 is {actual}, expected {expected} (listed in {root / 'SHA256SUMS'}). "
                "The file is corrupt or truncated: delete it and fetch it again.")
        checked += 1
    return checked


# ---------------------------------------------------------------------------
# the one atomic write
# ---------------------------------------------------------------------------
def torch_bytes(obj: Any) -> bytes:
    """``torch.save(obj)`` into memory, so it can be written with :func:`atomic_write`."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} kB" if n >= 1024 else f"{n} bytes"


def _write_fully(fd: int, data: memoryview) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


def atomic_write(path: str | os.PathLike, data: bytes | str, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` so the file is either the old one or the complete new one, never half.

    The bytes go to a temporary file beside ``path``, are flushed to disk,
    and replace ``path`` in one ``os.replace``. On any failure the temporary
    file is removed and ``path`` is untouched. A full disk (checked before
    writing, and caught while writing) raises :class:`StorageError` naming the
    file, the space needed and the space free.
    """
    path = Path(path)
    blob = data.encode(encoding) if isinstance(data, str) else bytes(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: cannot create its folder {path.parent} "
                           f"({exc.strerror or exc})") from None
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if free is not None and free < len(blob):
        raise StorageError(f"cannot write {path}: disk full ({_mb(len(blob))} needed, {_mb(free)} free on "
                           f"{path.parent}); free some space or write elsewhere", errno.ENOSPC)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            _write_fully(fd, memoryview(blob))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            try:
                free_now = _mb(shutil.disk_usage(path.parent).free)
            except OSError:
                free_now = "unknown"
            raise StorageError(f"cannot write {path}: disk full ({_mb(len(blob))} needed, {free_now} free on "
                               f"{path.parent}); the previous file, if any, is unchanged", exc.errno) from None
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}", exc.errno) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------
# network and archives (only for users with a network; never on the default offline path)
# ---------------------------------------------------------------------------
def network_available(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """A quick TCP probe so offline machines fail in seconds instead of hanging on a download.

    The probe runs in a daemon thread that is abandoned after ``timeout``:
    the socket timeout does not cover the DNS lookup, which on a badly
    configured offline machine can hang far longer than the connect.
    """
    result: list[bool] = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name=f"probe {host}", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Extract a tar archive, refusing any member that would land outside ``dest`` or is a link."""
    dest = Path(dest).resolve()
    try:
        tar = tarfile.open(archive)
    except (tarfile.TarError, OSError) as exc:
        raise ChecksumError(f"{archive}: not a readable tar archive ({exc}); delete it and download again") from None
    with tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not target.is_relative_to(dest) or member.issym() or member.islnk() or member.isdev():
                raise ValueError(
                    f"{archive}: refusing to extract {member.name!r}: it would leave {dest} "
                    "(or is a link or device); the archive is unsafe")
        tar.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(dest)


# ---------------------------------------------------------------------------
# devices and seeds
# ---------------------------------------------------------------------------
DEVICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def select_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is used as given (and checked)."""
    if isinstance(device, torch.device):
        return device
    if device is not None and not isinstance(device, str):
        raise ValueError(f"unknown device {device!r} ({type(device).__name__}); choose one of {DEVICES} "
                         "(or e.g. 'cuda:1')")
    device = device or "auto"
    base, _, index = device.partition(":")
    if base not in DEVICES or (index and not (index.isdigit() and base == "cuda")):
        raise ValueError(f"unknown device {device!r}; choose one of {DEVICES} (or e.g. 'cuda:1')")
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but no CUDA GPU is available; use device='auto' or 'cpu'")
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} was asked for but this machine has "
                             f"{torch.cuda.device_count()} CUDA GPU(s) (cuda:0..cuda:{torch.cuda.device_count() - 1})")
    if base == "mps" and not _mps_available():
        raise ValueError("device='mps' was asked for but Apple's MPS is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so the same seed gives the same numbers (on CPU, bit for bit)."""
    seed = check_int("seed", seed, min=0, max=2**63 - 1)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    seed_torch(seed)


@functools.cache
def _cpu_only() -> bool:
    """No accelerator torch could seed (CUDA, XPU, MTIA, MPS): asked once, the answer cannot change."""
    backends = [torch.cuda, getattr(torch, "xpu", None), getattr(torch, "mtia", None)]
    if any(b is not None and b.is_available() for b in backends):
        return False
    return not _mps_available()


def seed_torch(seed: int) -> None:
    """``torch.manual_seed(seed)``, without its cost on a machine with no accelerator.

    Why: ``torch.manual_seed`` also queues a seed for every lazily started backend (CUDA, XPU, MTIA) and formats
    a stack trace for each, ~0.1-0.3 ms a call; :func:`tlwidgets.fit` seeds every epoch's batch order, and
    the digit lessons run thousands of short epochs. Where no accelerator exists the CPU generator is the
    only one that draws, so seeding it alone gives the same numbers; elsewhere this is ``torch.manual_seed``.
    """
    if _cpu_only():
        torch.default_generator.manual_seed(int(seed))
    else:
        torch.manual_seed(seed)


# ---------------------------------------------------------------------------
# threads: one policy for every kernel (self-contained: reads only os, the cgroup files and torch)
# ---------------------------------------------------------------------------
THREADS_ENV = "TLLAB_THREADS"


def _cgroup_quota_at(folder: Path) -> float | None:
    """CPUs allowed by the cgroup files in ``folder`` (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``); None: no limit."""
    try:
        quota, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100_000)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((folder / "cpu.cfs_quota_us").read_text())
        period_us = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def cpu_quota(cgroup_root: str | os.PathLike = "/sys/fs/cgroup",
              self_cgroup: str | os.PathLike = "/proc/self/cgroup") -> float | None:
    """The CPU time this process's cgroup may use, in CPUs (1.5 = one and a half cores); None when unlimited.

    A hub or container limits a student with a cgroup quota, not with CPU affinity: the kernel still
    sees every core, and torch would start one thread per core and fight the quota. Limits nest, so
    the smallest quota from the process's cgroup up to the root counts. Reads cgroup v2
    (``cpu.max``) and v1 (``cpu,cpuacct`` / ``cpu`` hierarchies: ``cpu.cfs_quota_us``).
    """
    root = Path(cgroup_root)
    try:
        lines = Path(self_cgroup).read_text().splitlines()
    except OSError:
        return None
    found: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        names = controllers.split(",")
        if controllers == "":  # cgroup v2: one unified tree at the root
            bases = [root]
        elif "cpu" in names:
            bases = [root / controllers, root / "cpu", root / "cpu,cpuacct"]
        else:
            continue
        for base in dict.fromkeys(bases):
            folder = base / path.strip("/")
            while True:
                quota = _cgroup_quota_at(folder)
                if quota is not None:
                    found.append(quota)
                if folder == base or base not in folder.parents:
                    break
                folder = folder.parent
    return min(found) if found else None


def _affinity() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))  # macOS / Windows: no affinity call


def thread_count(environ: Mapping[str, str] | None = None, *,
                 affinity: Callable[[], Iterable[int]] = _affinity,
                 cgroup_root: str | os.PathLike = "/sys/fs/cgroup",
                 self_cgroup: str | os.PathLike = "/proc/self/cgroup") -> int:
    """How many torch threads this process should run: the CPUs it may really use.

    Why: torch starts one thread per core it sees. Several kernels on few cores (a classroom hub,
    ``make test``) then run many more spinning OpenMP threads than cores and slow each other down
    many times over, far more than sharing the cores would cost (docs/load.md). In order:

    1. ``$TLLAB_THREADS`` (an integer >= 1): an explicit choice (the hub sets it from each student's CPU share);
    2. ``$OMP_NUM_THREADS``: what OpenMP itself was told (its first number);
    3. the cores this process may run on (``os.sched_getaffinity``), capped by its cgroup's CPU quota
       rounded up (:func:`cpu_quota`); at least 1.
    """
    env = os.environ if environ is None else environ
    given = env.get(THREADS_ENV, "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise ValueError(f"${THREADS_ENV} must be an integer >= 1 (the number of torch threads), got {given!r}")
        return int(given)
    omp = env.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp)
    cores = max(1, len(set(affinity())))
    quota = cpu_quota(cgroup_root, self_cgroup)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota - 1e-9)))
    return cores


def apply_thread_policy(environ: Mapping[str, str] | None = None, **where: Any) -> int:
    """Set torch's thread count by :func:`thread_count`; the count in force afterwards.

    Applied once when ``tlwidgets`` is imported, which every lesson, app and script does before
    any torch work, so a kernel from any front end (JupyterLab, Voila, papermill) follows it
    without a line in each notebook. It only lowers torch's count (a lower count set on purpose,
    e.g. by the test suite, stays) unless ``$TLLAB_THREADS`` asks for a number explicitly.
    ``where``: ``affinity`` / ``cgroup_root`` / ``self_cgroup`` for tests (see :func:`thread_count`).
    """
    env = os.environ if environ is None else environ
    wanted = thread_count(env, **where)
    if env.get(THREADS_ENV, "").strip() or torch.get_num_threads() > wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()
#: what a derived seed drives: which samples a task holds, its validation split, a model's initial weights,
#: the data order (and dropout) of training, a random draw made by an experiment (random features, class sets)
SEED_PURPOSES = ("samples", "val_split", "weights", "order", "draw")


def derive_seed(seed: int, purpose: str, *keys: object) -> int:
    """The seed for one purpose of a run, derived from the run's ``seed``: the one derivation in the package.

    Why: one run seed drives several independent random choices (which samples,
    initial weights, data order, ...). Offsets made up where used (``s + 10_000``,
    ``s * 100 + n``) collide across purposes and across seeds; hashing
    ``(seed, purpose, *keys)`` gives unrelated streams, stable across Python
    versions and platforms (sha256, not ``hash()``). ``keys`` tell apart several
    uses of one purpose (an epoch, a depth, a stage). Result in ``0 .. 2**31 - 1``.
    """
    seed = check_int("seed", seed, min=0, max=2**63 - 1)
    if purpose not in SEED_PURPOSES:
        raise ValueError(f"derive_seed: purpose must be one of {SEED_PURPOSES}, got {purpose!r}")
    text = "/".join([str(seed), purpose, *(repr(k) for k in keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def plain(value: Any, *, where: str = "value") -> Any:
    """``value`` as plain Python data (NumPy scalars and arrays, tuples, Paths, sets converted).

    What goes into a checkpoint's metadata or a JSON file must read back with
    the safe loader; ``np.int64(3)`` would not. Tensors are kept (the safe
    loader reads them). Anything else unknown is refused with its key.
    """
    if isinstance(value, np.generic):  # first: np.float64 is also a Python float
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (torch.device, torch.dtype)):
        return str(value)
    if isinstance(value, dict):
        return {plain(k, where=where): plain(v, where=f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v, where=where) for v in value)
    raise TypeError(f"{where} is a {type(value).__name__}, which cannot be stored as plain data; "
                    "store numbers, strings, lists, dicts or tensors")



def clear_digest_memo() -> None:
    """Forget every memoised file digest (tests; a long-lived kernel whose files were restored from backup)."""
    _DIGESTS.clear()


