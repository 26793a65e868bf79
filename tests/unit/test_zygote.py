"""tests/notebooks/zygote.py: the test command's notebook kernels, forked from a process that imported torch.

A forked kernel must behave as the standard one nbval would start: its own process, the launching client's
working directory and environment, interrupts reaching the running cell, gone when its client is killed; and
with no zygote answering, the client is the standard ``ipykernel_launcher``.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parents[2]
ZYGOTE_PY = REPO / "tests" / "notebooks" / "zygote.py"
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the zygote forks (POSIX only)")


def _zygote_module():
    spec = importlib.util.spec_from_file_location("tllab_zygote_test", ZYGOTE_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    module = _zygote_module()
    path = str(tmp_path_factory.mktemp("zyg") / "k.sock")
    process = module.start(path)
    assert module.ready(process), "the zygote did not start"
    yield module, path, process
    process.kill()
    process.wait()


class _Spec(KernelSpec):
    pass


def _kernel(env: dict, cwd: Path):
    spec = _Spec(argv=[sys.executable, str(ZYGOTE_PY), "client", "-f", "{connection_file}"],
                 display_name="zygote test", language="python")
    km = KernelManager()
    km._kernel_spec = spec                      # this spec, not a named one from the Jupyter paths
    km.start_kernel(env=env, cwd=str(cwd))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def _run(kc, code: str, timeout: float = 30) -> str:
    out = []
    kc.execute_interactive(code, timeout=timeout,
                           output_hook=lambda m: out.append(m["content"].get("text", "")
                                                            if m["msg_type"] == "stream" else ""))
    return "".join(out)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:                                         # a zombie waiting to be reaped counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def test_a_forked_kernel_has_its_own_process_folder_and_environment(zygote, tmp_path):
    module, path, process = zygote
    env = {**os.environ, module.ENV: path, "ZYGOTE_TEST_MARK": "seen"}
    km, kc = _kernel(env, tmp_path)
    try:
        out = _run(kc, "import os, sys\nprint(os.getpid(), os.getppid(), os.getcwd(), "
                       "os.environ.get('ZYGOTE_TEST_MARK'), 'torch' in sys.modules, "
                       "__import__('subprocess').check_output(['sh', '-c', 'echo $ZYGOTE_TEST_MARK'], text=True))")
        pid, ppid, cwd, mark, preloaded, c_environ = out.split()
        assert int(ppid) == process.pid and int(pid) != process.pid        # a child of the zygote
        assert cwd == str(tmp_path) and mark == c_environ == "seen"             # subprocesses see it too
        assert preloaded == "True"                                          # torch came with the fork
        assert _run(kc, "x = 41\nprint(x + 1)").strip() == "42"
        # an interrupt reaches the running cell, and the kernel carries on
        kc.execute("import time\ntry:\n    time.sleep(20)\nexcept KeyboardInterrupt:\n    print('interrupted')")
        time.sleep(1.0)
        km.interrupt_kernel()
        text = ""
        deadline = time.monotonic() + 10
        while "interrupted" not in text and time.monotonic() < deadline:
            msg = kc.get_iopub_msg(timeout=10)
            if msg["msg_type"] == "stream":
                text += msg["content"]["text"]
        assert "interrupted" in text
        assert _run(kc, "print(x)").strip() == "41"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    deadline = time.monotonic() + 10
    while _alive(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(int(pid)), "the kernel outlived its client"


def test_a_killed_client_takes_its_kernel_along(zygote, tmp_path):
    module, path, _ = zygote
    km, kc = _kernel({**os.environ, module.ENV: path}, tmp_path)
    try:
        pid = int(_run(kc, "import os\nprint(os.getpid())"))
        os.kill(km.provisioner.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_without_a_zygote_the_client_is_the_standard_kernel(tmp_path):
    module = _zygote_module()
    km, kc = _kernel({**os.environ, module.ENV: str(tmp_path / "nobody.sock")}, tmp_path)
    try:
        out = _run(kc, "import os, sys\nprint(os.getpid(), sys.argv[0].endswith('ipykernel_launcher.py'))")
        pid, standard = out.split()
        assert int(pid) == km.provisioner.process.pid and standard == "True"   # the client exec'd the kernel
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
