"""The thread policy (tlwidgets.infra.thread_count / cpu_quota / apply_thread_policy).

Affinity and cgroup files are fakes (a callable, a folder tree under tmp_path laid out like
/sys/fs/cgroup), so every branch runs on any machine; one test checks the real thing in a real
cgroup when this machine lets root make one.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from tlwidgets.infra import THREADS_ENV, apply_thread_policy, cpu_quota, thread_count

REPO = Path(__file__).resolve().parents[2]


def cores(n: int):
    """A fake ``os.sched_getaffinity``: ``n`` usable cores."""
    return lambda: set(range(n))


def v2_tree(tmp_path: Path, path: str, limits: dict[str, str]) -> tuple[Path, Path]:
    """A cgroup v2 tree: /proc/self/cgroup says ``0::/path``; ``limits`` maps folder -> cpu.max text."""
    root = tmp_path / "cgroup"
    (root / path.strip("/")).mkdir(parents=True, exist_ok=True)
    for folder, text in limits.items():
        (root / folder.strip("/")).mkdir(parents=True, exist_ok=True)
        (root / folder.strip("/") / "cpu.max").write_text(text + "\n")
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text(f"0::{path}\n")
    return root, self_cgroup


def v1_tree(tmp_path: Path, controllers: str, path: str, quota_us: int, period_us: int = 100_000) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    folder = root / controllers / path.strip("/")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
    (folder / "cpu.cfs_period_us").write_text(f"{period_us}\n")
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text(f"12:memory:/elsewhere\n4:{controllers}:{path}\n0::/\n")
    return root, self_cgroup


# ---------------------------------------------------------------------------- cpu_quota


def test_cpu_quota_reads_cgroup_v2_cpu_max(tmp_path):
    root, me = v2_tree(tmp_path, "/hub/alice", {"/hub/alice": "150000 100000"})
    assert cpu_quota(root, me) == pytest.approx(1.5)


def test_cpu_quota_is_none_when_v2_says_max(tmp_path):
    root, me = v2_tree(tmp_path, "/hub/alice", {"/hub/alice": "max 100000", "/hub": "max 100000"})
    assert cpu_quota(root, me) is None


def test_cpu_quota_takes_the_smallest_limit_up_the_tree(tmp_path):
    # the parent (the whole class) may use 1 CPU although the student's own group says 3
    root, me = v2_tree(tmp_path, "/hub/alice", {"/hub/alice": "300000 100000", "/hub": "100000 100000"})
    assert cpu_quota(root, me) == pytest.approx(1.0)


@pytest.mark.parametrize("controllers", ["cpu", "cpu,cpuacct"])
def test_cpu_quota_reads_cgroup_v1_cfs_files(tmp_path, controllers):
    root, me = v1_tree(tmp_path, controllers, "/tllab/bob", quota_us=50_000)
    assert cpu_quota(root, me) == pytest.approx(0.5)


def test_cpu_quota_v1_minus_one_means_unlimited(tmp_path):
    root, me = v1_tree(tmp_path, "cpu", "/tllab/bob", quota_us=-1)
    assert cpu_quota(root, me) is None


def test_cpu_quota_is_none_without_cgroup_files(tmp_path):
    assert cpu_quota(tmp_path / "nothing", tmp_path / "no-such-file") is None


# ---------------------------------------------------------------------------- thread_count


def test_thread_count_follows_affinity_without_quota(tmp_path):
    assert thread_count({}, affinity=cores(6), cgroup_root=tmp_path, self_cgroup=tmp_path / "none") == 6


def test_thread_count_is_capped_by_the_quota_rounded_up(tmp_path):
    root, me = v2_tree(tmp_path, "/s", {"/s": "150000 100000"})
    assert thread_count({}, affinity=cores(8), cgroup_root=root, self_cgroup=me) == 2


def test_thread_count_is_at_least_one_under_a_tiny_quota(tmp_path):
    root, me = v2_tree(tmp_path, "/s", {"/s": "10000 100000"})  # 0.1 CPU
    assert thread_count({}, affinity=cores(8), cgroup_root=root, self_cgroup=me) == 1


def test_thread_count_affinity_smaller_than_quota_wins(tmp_path):
    root, me = v2_tree(tmp_path, "/s", {"/s": "400000 100000"})
    assert thread_count({}, affinity=cores(2), cgroup_root=root, self_cgroup=me) == 2


def test_thread_count_env_override_beats_everything(tmp_path):
    root, me = v2_tree(tmp_path, "/s", {"/s": "100000 100000"})
    env = {THREADS_ENV: "3", "OMP_NUM_THREADS": "1"}
    assert thread_count(env, affinity=cores(8), cgroup_root=root, self_cgroup=me) == 3


def test_thread_count_respects_omp_num_threads(tmp_path):
    assert thread_count({"OMP_NUM_THREADS": "2,1"}, affinity=cores(8), cgroup_root=tmp_path,
                        self_cgroup=tmp_path / "none") == 2


def test_thread_count_ignores_a_malformed_omp_value(tmp_path):
    assert thread_count({"OMP_NUM_THREADS": "lots"}, affinity=cores(3), cgroup_root=tmp_path,
                        self_cgroup=tmp_path / "none") == 3


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_thread_count_rejects_a_bad_override_naming_the_variable(bad):
    with pytest.raises(ValueError, match=rf"\$TLLAB_THREADS must be an integer >= 1 .*got '{bad}'"):
        thread_count({THREADS_ENV: bad}, affinity=cores(2))


def test_thread_count_on_this_machine_matches_the_os_twin():
    # no override, no quota here (checked): the answer is what the OS reports as usable cores
    if cpu_quota() is not None:
        pytest.skip("this process runs under a cgroup CPU quota")
    assert thread_count({}) == len(os.sched_getaffinity(0))


# ---------------------------------------------------------------------------- apply_thread_policy


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_apply_lowers_torch_threads_to_the_policy(restore_threads, tmp_path):
    torch.set_num_threads(4)
    root, me = v2_tree(tmp_path, "/s", {"/s": "100000 100000"})
    assert apply_thread_policy({}, affinity=cores(4), cgroup_root=root, self_cgroup=me) == 1
    assert torch.get_num_threads() == 1


def test_apply_keeps_a_lower_count_set_on_purpose(restore_threads, tmp_path):
    torch.set_num_threads(1)
    assert apply_thread_policy({}, affinity=cores(4), cgroup_root=tmp_path, self_cgroup=tmp_path / "x") == 1


def test_apply_raises_the_count_only_when_asked_explicitly(restore_threads):
    torch.set_num_threads(1)
    assert apply_thread_policy({THREADS_ENV: "2"}, affinity=cores(4)) == 2


def test_importing_tlwidgets_applies_the_policy():
    env = {**os.environ, "PYTHONPATH": str(REPO), THREADS_ENV: "1"}
    env.pop("OMP_NUM_THREADS", None)
    env.pop("MKL_NUM_THREADS", None)
    code = "import tlwidgets, torch; print(torch.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def _cgroup_v1_cpu() -> Path | None:
    base = Path("/sys/fs/cgroup/cpu")
    if os.geteuid() != 0 or not (base / "cpu.cfs_quota_us").exists():
        return None
    return base


def test_a_real_cgroup_quota_gives_one_thread():
    """In a real cgroup (v1 cpu controller, root only) with a 1-CPU quota, a fresh process picks 1 thread."""
    base = _cgroup_v1_cpu()
    if base is None:
        pytest.skip("needs root and a writable cgroup v1 cpu controller")
    group = base / f"tllab-test-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup here: {exc}")
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text("100000")
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", THREADS_ENV)}
        env["PYTHONPATH"] = str(REPO)
        code = (f"import os; open('{group}/cgroup.procs', 'w').write(str(os.getpid()));"
                "from tlwidgets.infra import thread_count; print(thread_count())")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "1"
    finally:
        group.rmdir()
