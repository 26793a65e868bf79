"""deploy/limits.py: the per-student cgroup the classroom hub makes (memory limit, CPU quota, threads).

The cgroup file systems are fakes (folders under tmp_path laid out like /sys/fs/cgroup v1 and v2);
the real thing is exercised by tests/browser/test_hub.py, which runs the hub as root.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tllab_hub_limits", REPO / "deploy" / "limits.py")
limits = sys.modules.setdefault("tllab_hub_limits", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(limits)  # registered first: dataclasses look their module up


def fake_v2(tmp_path: Path) -> Path:
    root = tmp_path / "v2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def fake_v1(tmp_path: Path) -> Path:
    root = tmp_path / "v1"
    (root / "memory").mkdir(parents=True)
    (root / "cpu").mkdir()
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (root / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    return root


@pytest.mark.parametrize("text, expected", [("3G", 3 * 2**30), ("1500M", 1500 * 2**20), ("2g", 2 * 2**30),
                                            ("2147483648", 2**31), ("512MB", 512 * 2**20), ("1.5G", 3 * 2**29)])
def test_parse_bytes_reads_binary_units(text, expected):
    assert limits.parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["", "lots", "3X", "-1G", "1M", "nanG"])
def test_parse_bytes_rejects_naming_the_setting(bad):
    with pytest.raises(ValueError, match=r"TLLAB_MEM_LIMIT must be a size of at least 64M"):
        limits.parse_bytes(bad)


@pytest.mark.parametrize("cpus, threads", [(0.5, 1), (1.0, 1), (1.2, 2), (2.0, 2), (3.5, 4)])
def test_threads_follow_the_cpu_share_rounded_up(cpus, threads):
    assert limits.StudentLimits(mem_bytes=2**30, cpus=cpus).threads == threads


@pytest.mark.parametrize("mem, cpus, word", [(2**20, 1.0, "mem_bytes"), (2**30, 0.0, "cpus"),
                                             (2**30, float("inf"), "cpus")])
def test_student_limits_refuse_nonsense(mem, cpus, word):
    with pytest.raises(ValueError, match=word):
        limits.StudentLimits(mem_bytes=mem, cpus=cpus)


def test_prepare_on_cgroup_v2_writes_memory_max_and_cpu_max(tmp_path):
    root = fake_v2(tmp_path)
    group = limits.prepare("alice", limits.StudentLimits(mem_bytes=3 * 2**30, cpus=1.5), root)
    folder = root / "tllab" / "alice"
    assert group == limits.StudentGroup("alice", (folder,), 2)
    assert (folder / "memory.max").read_text() == str(3 * 2**30)
    assert (folder / "cpu.max").read_text() == "150000 100000"
    assert (root / "tllab" / "cgroup.subtree_control").read_text() == "+memory +cpu"
    assert limits.existing("alice", root) == group
    assert limits.existing("bob", root) is None


def test_prepare_on_cgroup_v1_writes_both_controllers(tmp_path):
    root = fake_v1(tmp_path)
    group = limits.prepare("bob", limits.StudentLimits(mem_bytes=2**31, cpus=1.0), root)
    mem, cpu = root / "memory" / "tllab" / "bob", root / "cpu" / "tllab" / "bob"
    assert group == limits.StudentGroup("bob", (mem, cpu), 1)
    assert (mem / "memory.limit_in_bytes").read_text() == str(2**31)
    assert (cpu / "cpu.cfs_quota_us").read_text() == "100000"
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"


def test_prepare_returns_none_without_a_cgroup_file_system(tmp_path):
    assert limits.prepare("alice", limits.StudentLimits(mem_bytes=2**30, cpus=1.0), tmp_path / "none") is None


def test_join_writes_the_pid_into_every_folder(tmp_path):
    root = fake_v1(tmp_path)
    group = limits.prepare("bob", limits.StudentLimits(mem_bytes=2**31, cpus=1.0), root)
    limits.join(group, pid=4242)
    assert [(f / "cgroup.procs").read_text() for f in group.folders] == ["4242", "4242"]


def test_peak_bytes_reads_v1_and_v2_names(tmp_path):
    v1 = limits.prepare("bob", limits.StudentLimits(mem_bytes=2**31, cpus=1.0), fake_v1(tmp_path))
    assert limits.peak_bytes(v1) is None
    (v1.folders[0] / "memory.max_usage_in_bytes").write_text("123456\n")
    assert limits.peak_bytes(v1) == 123456
    v2 = limits.prepare("alice", limits.StudentLimits(mem_bytes=2**31, cpus=1.0), fake_v2(tmp_path))
    (v2.folders[0] / "memory.peak").write_text("654321\n")
    assert limits.peak_bytes(v2) == 654321


def test_remove_keeps_a_group_that_still_has_files_and_drops_an_empty_one(tmp_path):
    busy = limits.prepare("alice", limits.StudentLimits(mem_bytes=2**30, cpus=1.0), fake_v2(tmp_path))
    limits.remove(busy)  # a real cgroup folder with processes refuses rmdir: here, the files do
    assert busy.folders[0].is_dir()
    empty = limits.StudentGroup("x", (tmp_path / "empty",), 2)
    empty.folders[0].mkdir()
    limits.remove(empty)
    assert not empty.folders[0].exists()


def test_a_real_student_group_stops_a_process_past_its_memory_limit():
    """Root with a writable cgroup v1/v2: a process joined to a 128 MiB group dies allocating 512 MiB; one
    allocating 32 MiB in the same group lives (the hub's limit is enforced, not just announced)."""
    import os
    import subprocess
    import uuid

    if os.geteuid() != 0:
        pytest.skip("needs root (the hub runs as root to make these groups)")
    name = f"test-{uuid.uuid4().hex[:8]}"
    group = limits.prepare(name, limits.StudentLimits(mem_bytes=128 * 2**20, cpus=1.0))
    if group is None:
        pytest.skip("no writable cgroup file system here")
    code = "import sys; b = bytearray(int(sys.argv[1]) * 2**20); b[::4096] = b'x' * len(b[::4096]); print('ok')"
    try:
        results = {}
        for mib in (32, 512):
            out = subprocess.run([sys.executable, "-c", code, str(mib)], capture_output=True, text=True,
                                 preexec_fn=lambda: limits.join(group), timeout=120)
            results[mib] = (out.returncode, out.stdout.strip())
        assert results[32] == (0, "ok"), results
        assert results[512][0] != 0 and results[512][1] != "ok", results
    finally:
        limits.remove(group)
        if group.version == 1:
            for folder in group.folders:  # the parent "tllab" stays (the hub shares it); only ours goes
                assert not folder.exists()
