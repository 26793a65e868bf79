"""Per-student memory and CPU limits for the classroom hub, enforced by the kernel's cgroups.

JupyterHub's ``Spawner.mem_limit`` / ``cpu_limit`` are only *enforced* by container spawners
(Kubernetes, Docker, systemd); the local-process spawner merely passes them on as ``MEM_LIMIT`` /
``CPU_LIMIT`` environment variables. So the hub (running as root) makes one cgroup per student,
``tllab/<name>``, sets its memory limit and CPU quota, and moves the student's server into it
before it drops root (:func:`join`, called from the spawner's ``preexec_fn``). Every kernel the
server starts inherits the group: the limit covers the student's server and all their kernels
together; past the memory limit the kernel's OOM killer ends the biggest process (a lesson kernel;
JupyterLab shows "kernel restarting"). Works with cgroup v2 (``memory.max``, ``cpu.max``) and v1
(``memory.limit_in_bytes``, ``cpu.cfs_quota_us``). Without a writable cgroup file system (not
root, a locked container) :func:`prepare` returns ``None`` and the hub logs that limits are off.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StudentLimits", "StudentGroup", "parse_bytes", "prepare", "existing", "join", "peak_bytes", "remove"]

PERIOD_US = 100_000
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str, *, name: str = "TLLAB_MEM_LIMIT") -> int:
    """``"3G"``, ``"1500M"``, ``"2147483648"`` -> bytes (binary units, as JupyterHub's ``mem_limit`` reads them)."""
    value = str(text).strip().upper().removesuffix("B")
    unit = value[-1:] if value[-1:] in UNITS and not value[-1:].isdigit() else ""
    number = value[: len(value) - len(unit)]
    try:
        amount = float(number) * UNITS[unit]
    except ValueError:
        amount = -1
    if not math.isfinite(amount) or amount < 2**26:
        raise ValueError(f"{name} must be a size of at least 64M such as 3G or 1500M, got {text!r}")
    return int(amount)


@dataclass(frozen=True)
class StudentLimits:
    """What one student's server and kernels together may use: ``mem_bytes`` of memory, ``cpus`` cores of time."""

    mem_bytes: int
    cpus: float

    def __post_init__(self):
        if self.mem_bytes < 2**26:
            raise ValueError(f"mem_bytes must be at least 64 MiB, got {self.mem_bytes}")
        if not (math.isfinite(self.cpus) and self.cpus >= 0.1):
            raise ValueError(f"cpus must be a number of cores >= 0.1, got {self.cpus!r}")

    @property
    def threads(self) -> int:
        """torch threads that fit the CPU share (at least 1): the hub exports it as TLLAB_THREADS / OMP_NUM_THREADS."""
        return max(1, math.ceil(self.cpus - 1e-9))


@dataclass(frozen=True)
class StudentGroup:
    """The cgroup folders of one student (one on v2; one per controller on v1)."""

    name: str
    folders: tuple[Path, ...]
    version: int


def _v2(root: Path) -> bool:
    return (root / "cgroup.controllers").exists()


def prepare(name: str, limits: StudentLimits, root: str | os.PathLike = "/sys/fs/cgroup") -> StudentGroup | None:
    """Create (or update) ``tllab/<name>`` with ``limits``; None when this machine does not let us."""
    root = Path(root)
    try:
        if _v2(root):
            parent = root / "tllab"
            parent.mkdir(exist_ok=True)
            for folder in (root, parent):  # let the children use the memory and cpu controllers
                (folder / "cgroup.subtree_control").write_text("+memory +cpu")
            group = parent / name
            group.mkdir(exist_ok=True)
            (group / "memory.max").write_text(str(limits.mem_bytes))
            (group / "cpu.max").write_text(f"{round(limits.cpus * PERIOD_US)} {PERIOD_US}")
            return StudentGroup(name, (group,), 2)
        mem, cpu = root / "memory" / "tllab" / name, root / "cpu" / "tllab" / name
        if not (root / "memory" / "memory.limit_in_bytes").exists() or not (root / "cpu" / "cpu.cfs_quota_us").exists():
            return None
        for folder in (mem, cpu):
            folder.mkdir(parents=True, exist_ok=True)
        (mem / "memory.limit_in_bytes").write_text(str(limits.mem_bytes))
        (cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(round(limits.cpus * PERIOD_US)))
        return StudentGroup(name, (mem, cpu), 1)
    except OSError:
        return None


def existing(name: str, root: str | os.PathLike = "/sys/fs/cgroup") -> StudentGroup | None:
    """The student's group as :func:`prepare` made it, without creating or changing anything; None if absent."""
    root = Path(root)
    if _v2(root):
        folders: tuple[Path, ...] = (root / "tllab" / name,)
    else:
        folders = (root / "memory" / "tllab" / name, root / "cpu" / "tllab" / name)
    return StudentGroup(name, folders, 2 if _v2(root) else 1) if all(f.is_dir() for f in folders) else None


def join(group: StudentGroup, pid: int = 0) -> None:
    """Move process ``pid`` (0: this one) into the student's group(s); called after fork, before setuid."""
    for folder in group.folders:
        (folder / "cgroup.procs").write_text(str(pid or os.getpid()))


def peak_bytes(group: StudentGroup) -> int | None:
    """The group's peak memory so far (v2 ``memory.peak``, v1 ``memory.max_usage_in_bytes``); None if unknown."""
    name = "memory.peak" if group.version == 2 else "memory.max_usage_in_bytes"
    for folder in group.folders:
        try:
            return int((folder / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return None


def remove(group: StudentGroup) -> None:
    """Remove the group's folders once its processes are gone (kept, silently, while any is alive)."""
    for folder in group.folders:
        try:
            folder.rmdir()
        except OSError:
            pass
