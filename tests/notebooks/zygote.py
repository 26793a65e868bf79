"""Notebook kernels forked from a process that has already imported torch: the test command's kernel launcher.

Why: nbval runs every lesson and solution in a fresh kernel (20 of them). Each used to start a new Python,
import ipykernel, then torch, torchvision, timm and ipywidgets in its first cell: about 3 s of one core per
notebook, a minute of the test command's two cores. Here one **zygote** per pytest worker imports those
modules once (no torch operation runs in it, so no thread pool exists to be lost by forking), and every
kernel is a ``fork()`` of it: a new process, fresh namespace, its own environment and working directory,
whose ``import torch`` finds the module already loaded.

The pieces:

- ``python zygote.py serve SOCKET`` (started by :func:`start`): imports :data:`PRELOAD` and refuses to
  serve if any of those imports issued a warning (a student's fresh kernel would print it in the import
  cell, and the suite's warning check must still see it, so then every kernel starts the normal way);
  then forks one kernel per request.
- ``python zygote.py client -f CONNECTION_FILE``: the command jupyter_client launches (the kernelspec's
  ``argv``, see the repo's conftest.py). It hands its stdin/stdout/stderr and one end of a socket pair
  to the zygote, which forks the kernel; signals the client receives (interrupt, terminate) are passed to
  the kernel, and the client exits when the kernel does. The kernel exits when the client is killed
  (the socket pair closes). Without a zygote (``$TLLAB_KERNEL_ZYGOTE`` unset or not answering) the client
  ``exec``s ``python -m ipykernel_launcher`` itself: exactly the standard kernel.
"""
from __future__ import annotations

import array
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import warnings

ENV = "TLLAB_KERNEL_ZYGOTE"     # the zygote's socket path; "0" or empty: standard kernels
#: what every lesson kernel imports first (transformers and peft only in lesson 8: not worth a preload)
PRELOAD = ("numpy", "torch", "torchvision", "timm", "PIL.Image", "tqdm.auto", "ipywidgets", "matplotlib",
           "IPython", "zmq", "ipykernel.kernelapp", "ipykernel.ipkernel")


def _send(sock: socket.socket, data: bytes, fds: list[int]) -> None:
    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])


def _recv(sock: socket.socket, size: int, max_fds: int) -> tuple[bytes, list[int]]:
    fds = array.array("i")
    chunks = []
    msg, anc, _, _ = sock.recvmsg(size, socket.CMSG_LEN(max_fds * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    chunks.append(msg)
    while not msg.endswith(b"\n"):          # the request is one JSON line; fds came with its first part
        msg = sock.recv(size)
        if not msg:
            break
        chunks.append(msg)
    return b"".join(chunks), list(fds)


# ------------------------------------------------------------------------------------------- zygote ---
def serve(path: str) -> None:
    """Import :data:`PRELOAD`, then fork a kernel per request on the unix socket ``path``."""
    with warnings.catch_warnings(record=True) as caught:
        for name in PRELOAD:
            __import__(name)
    if caught:
        print("zygote: not serving, the preloaded imports warned: "
              + "; ".join(f"{w.category.__name__}: {w.message}" for w in caught[:3]), file=sys.stderr, flush=True)
        sys.exit(3)
    parent = os.getppid()

    def orphaned():                      # the pytest worker is gone: so is the zygote
        while os.getppid() == parent:
            threading.Event().wait(1.0)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)     # kernels are reaped automatically
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        try:
            data, fds = _recv(conn, 1 << 20, 4)
            request = json.loads(data)
        except (OSError, ValueError):
            conn.close()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            server.close()
            conn.close()
            _kernel(request, fds)          # never returns
        for fd in fds:
            os.close(fd)
        try:
            conn.sendall(f"{pid}\n".encode())
        except OSError:
            pass
        conn.close()


def _kernel(request: dict, fds: list[int]) -> None:
    """In the forked child: take the client's stdio, environment and folder, then run ipykernel."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        stdin, stdout, stderr, life = fds
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
            os.close(fd)
        lifeline = socket.socket(fileno=life)

        def watch():                      # the client was killed (or exited): the kernel goes too
            try:
                while lifeline.recv(1):
                    pass
            except OSError:
                pass
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["ipykernel_launcher", "-f", request["connection_file"]]
        # ipykernel read $JPY_PARENT_PID when the zygote imported it (a class default): hand it over explicitly
        if request["env"].get("JPY_PARENT_PID", "").isdigit():
            sys.argv.append(f"--IPKernelApp.parent_handle={request['env']['JPY_PARENT_PID']}")
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
    except BaseException as exc:          # noqa: BLE001 - the child must never return into the zygote's loop
        if not isinstance(exc, SystemExit):
            print(f"zygote kernel failed: {exc!r}", file=sys.stderr, flush=True)
    finally:
        os._exit(0)


# ------------------------------------------------------------------------------------------- client ---
def _standard_kernel(connection_file: str) -> None:
    """Become the kernel jupyter_client would have started (no zygote answered): never returns."""
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file])


def client(connection_file: str) -> None:
    """The launched kernel command: a forked kernel when a zygote answers, the standard one otherwise."""
    path = os.environ.get(ENV, "")
    sock = None
    if path and path != "0":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            sock = None
    if sock is None:
        _standard_kernel(connection_file)
    mine, theirs = socket.socketpair()
    request = {"connection_file": os.path.abspath(connection_file), "cwd": os.getcwd(), "env": dict(os.environ)}
    _send(sock, json.dumps(request).encode() + b"\n", [0, 1, 2, theirs.fileno()])
    theirs.close()
    reply = b""
    while not reply.endswith(b"\n"):
        part = sock.recv(64)
        if not part:
            break
        reply += part
    sock.close()
    if not reply.strip():
        _standard_kernel(connection_file)
    pid = int(reply)

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)
    while True:                           # EOF: the kernel exited
        try:
            if not mine.recv(1):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    sys.exit(0)


# ------------------------------------------------------------------------------------ test-side use ---
def start(path: str) -> subprocess.Popen:
    """Start a zygote serving on ``path`` (the caller waits with :func:`ready`); it exits with its parent."""
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "serve", path], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)


def ready(process: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Whether the zygote said "ready" within ``timeout`` seconds (False: it exited or is stuck)."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline() if process.stdout else ""),
                              daemon=True)
    reader.start()
    reader.join(timeout)
    return bool(result) and result[0].strip() == "ready"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "client" and sys.argv[2] == "-f":
        client(sys.argv[3])
    else:
        sys.exit("usage: zygote.py serve SOCKET | zygote.py client -f CONNECTION_FILE")
