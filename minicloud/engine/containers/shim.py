"""The per-container supervisor (our shim): ``python -I -S shim.py <container dir> <status fd>``.

Standard library only, so that it starts quickly. It lives in its own session, independent of
minicloud, for as long as the container runs, so that minicloud can stop and start again while
containers keep running (a restarted engine re-adopts them by the pid files written here).

1. becomes a child subreaper, so the container's init (whose parent, ``runc run -d``, exits)
   is re-parented to it and its exit status can be collected;
2. runs ``runc run -d`` (or crun's, in a mount namespace without the cgroup2 hierarchy on a hybrid
   host: see runtime.py) with pipes (or, for a TTY, a console socket receiving the pty master);
3. reports ``{"pid": N}`` or ``{"error": "..."}`` on the status fd and closes it;
4. copies the container's output into ``<id>-json.log`` in Docker's json-file format, and, for a
   TTY, the stdin pipe into the pty master and window sizes from the ``resize`` fifo;
5. when init exits: drains the output, writes ``exit.json`` (code, time, OOM kill), runs
   ``runc delete`` and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket

# Modules only a TTY needs (array, socket, tempfile, shutil, fcntl, struct, termios) are imported
# where they are used: every millisecond of start-up is on the path of `docker run`.

PR_SET_CHILD_SUBREAPER = 36
BUFFER = 32 * 1024
CLONE_NEWNS = 0x20000
MS_REC, MS_SLAVE = 0x4000, 0x80000
MNT_DETACH = 2


def now_rfc3339() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(ns // 1_000_000_000)) + f"{ns % 1_000_000_000:09d}Z"


class LogWriter:
    """Docker's json-file driver: one JSON object per line of output."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, stream: str, data: bytes) -> None:
        stamp = now_rfc3339()
        lines = []
        for piece in data.splitlines(keepends=True):
            text = piece.decode("utf-8", "replace")
            lines.append(json.dumps({"log": text, "stream": stream, "time": stamp}) + "\n")
        os.write(self.fd, "".join(lines).encode())


def receive_master(listener: socket.socket) -> int:
    import array
    import socket

    conn, _ = listener.accept()
    with conn:
        fds = array.array("i")
        _msg, ancdata, _flags, _addr = conn.recvmsg(1024, socket.CMSG_LEN(4 * fds.itemsize))
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not fds:
        raise RuntimeError("runc sent no terminal")
    return fds[0]


def runc_error(log_path: str, fallback: str) -> str:
    message = ""
    try:
        with open(log_path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    message = entry.get("msg", "")
    except OSError:
        pass
    return message or fallback.strip() or "runc failed"


def hide_cgroup2() -> None:
    """In the runtime's child before its exec: a mount namespace of its own, its mounts slaves of
    the host's (nothing done here reaches the host), without the cgroup2 hierarchy (crun refuses a
    hybrid host). runtime.py's HIDE_CGROUP2 does the same with commands."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None) != 0 \
            or libc.umount2(b"/sys/fs/cgroup/unified", MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot hide the cgroup2 hierarchy from crun: {os.strerror(err)}")


def start(cfg: dict[str, Any], directory: str) -> tuple[int, dict[str, int]]:
    """Run ``runc run -d`` (or crun's); return the init pid and the output fds by stream name."""
    runc_log = os.path.join(directory, "runc.log")
    args = [cfg["runc"], "--root", cfg["root"], "--log", runc_log, "--log-format", "json", "run", "-d",
            "--pid-file", os.path.join(directory, "init.pid"), "--bundle", cfg["bundle"]]
    outputs: dict[str, int] = {}
    listener = None
    sock_dir = None
    if cfg["tty"]:
        import socket
        import tempfile

        sock_dir = tempfile.mkdtemp(prefix="mc-console-")
        sock_path = os.path.join(sock_dir, "s")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(sock_path)
        listener.listen(1)
        args += ["--console-socket", sock_path]
        stdio: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
                                 "stderr": subprocess.PIPE}
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        outputs = {"stdout": out_r, "stderr": err_r}
        stdio = {"stdin": 0 if cfg["stdin"] else subprocess.DEVNULL, "stdout": out_w, "stderr": err_w}
    args.append(cfg["id"])
    try:
        proc = subprocess.Popen(args, **stdio, preexec_fn=hide_cgroup2 if cfg.get("hide_cgroup2") else None)
        if listener is not None:
            listener.settimeout(30)
            with contextlib.suppress(OSError, RuntimeError):  # runc failed first: its status says why
                outputs = {"stdout": receive_master(listener)}
        _out, err = proc.communicate()
    finally:
        if listener is not None:
            listener.close()
        if sock_dir is not None:
            import shutil

            shutil.rmtree(sock_dir, ignore_errors=True)
        if not cfg["tty"]:
            os.close(stdio["stdout"])
            os.close(stdio["stderr"])
    if proc.returncode != 0:
        raise RuntimeError(runc_error(runc_log, (err or b"").decode(errors="replace")))
    with open(os.path.join(directory, "init.pid")) as f:
        return int(f.read().strip()), outputs


def oom_killed(cgroup: str, before: int) -> bool:
    try:
        with open(f"/sys/fs/cgroup/memory{cgroup}/memory.oom_control") as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1]) > before
    except OSError:
        pass
    return False


def oom_count(cgroup: str) -> int:
    try:
        with open(f"/sys/fs/cgroup/memory{cgroup}/memory.oom_control") as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Supervisor:
    def __init__(self, cfg: dict[str, Any], directory: str, pid: int, outputs: dict[str, int]) -> None:
        self.cfg = cfg
        self.directory = directory
        self.pid = pid
        self.outputs = {fd: name for name, fd in outputs.items()}
        self.log = LogWriter(cfg["log_path"])
        self.master = outputs.get("stdout") if cfg["tty"] else None
        self.status: int | None = None
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.stdin_open = bool(cfg["tty"] and cfg["stdin"])
        self.resize_fd = -1
        if cfg["tty"]:
            fifo = os.path.join(directory, "resize")
            if not os.path.exists(fifo):
                os.mkfifo(fifo, 0o600)
            self.resize_fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    # ``crun run -d`` may return while the process that made init (a child of crun's) is still
    # exiting: an init that ended at once is then briefly nobody's child of ours, until it is
    # re-parented to this subreaper (which a SIGCHLD announces). ``run`` waits for that.
    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid:
                self.status = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    def pump(self, fd: int) -> bool:
        try:
            data = os.read(fd, BUFFER)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return True
            data = b""  # EIO: the pty's other side is gone
        if not data:
            return False
        self.log.write(self.outputs[fd], data)
        return True

    def forward_stdin(self) -> None:
        try:
            data = os.read(0, BUFFER)
        except OSError:
            data = b""
        if not data:
            self.stdin_open = False
            return
        if self.master is not None:
            os.write(self.master, data)

    def resize(self) -> None:
        import fcntl
        import struct
        import termios

        try:
            data = os.read(self.resize_fd, 4096).decode()
        except OSError:
            return
        for line in data.splitlines():
            parts = line.split()
            if len(parts) == 2 and self.master is not None:
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", int(parts[0]), int(parts[1]), 0, 0))

    def run(self) -> int:
        deadline: float | None = None
        while self.outputs:
            if self.status is not None and deadline is None:
                deadline = time.monotonic() + 2.0  # processes that kept the pipes open die with init
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            watched = [*self.outputs, self.wake_r]
            if self.stdin_open:
                watched.append(0)
            if self.resize_fd >= 0:
                watched.append(self.resize_fd)
            ready, _, _ = select.select(watched, [], [], timeout)
            if not ready and deadline is not None:
                break
            for fd in ready:
                if fd == self.wake_r:
                    os.read(self.wake_r, 4096)
                    self.reap()
                elif fd == 0:
                    self.forward_stdin()
                elif fd == self.resize_fd:
                    self.resize()
                elif not self.pump(fd):
                    del self.outputs[fd]
                    os.close(fd)
        while self.status is None:
            try:
                pid, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                if os.path.exists(f"/proc/{self.pid}"):  # not re-parented to us yet (see below)
                    time.sleep(0.0005)
                    continue
                self.status = 255
                break
            if pid == self.pid:
                self.status = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return self.status


def write_json(path: str, doc: dict[str, Any]) -> None:
    """Atomically (a reader sees all of it or nothing), not durably: the engine reads it at once,
    and after a crash of the host a missing one reads as exit code 255, which the container's
    processes, gone with the host, have no better claim to. An fsync here waited on every other
    writer of the filesystem, on the path of every exit."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def supervise(directory: str, report: Callable[[dict[str, Any]], None]) -> int:
    """Start the container, ``report`` how that went, supervise it until it exits."""
    with open(os.path.join(directory, "shim.json")) as f:
        cfg = json.load(f)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        pid, outputs = start(cfg, directory)
    except Exception as exc:
        report({"error": str(exc)})
        return 1
    oom_before = oom_count(cfg["cgroup"])
    report({"pid": pid, "shim_pid": os.getpid()})
    code = Supervisor(cfg, directory, pid, outputs).run()
    oom = oom_killed(cfg["cgroup"], oom_before)
    # The engine runs `runc delete` when it sees this supervisor exit (or, after a restart of
    # minicloud, when it re-adopts the container): the exit is reported sooner that way.
    write_json(os.path.join(directory, "exit.json"),
               {"code": code, "finished_at": now_rfc3339(), "oom_killed": oom})
    return 0


def main(argv: list[str]) -> int:
    """Direct mode: ``shim.py <dir> <status fd>``."""
    directory, status_fd = argv[0], int(argv[1])

    def report(doc: dict[str, Any]) -> None:
        os.write(status_fd, (json.dumps(doc) + "\n").encode())
        os.close(status_fd)

    return supervise(directory, report)


def zygote(sock_fd: int) -> int:
    """Zygote mode: ``shim.py --zygote <socket fd>``. Already started and with every module
    imported, it serves one supervisor per request (a SOCK_SEQPACKET message ``{"id", "dir"}``,
    optionally carrying the container's stdin as SCM_RIGHTS). Each supervisor is forked ahead of
    its request (a spare, waiting), so no process is created on the path of a start but runc's;
    the next spare is forked shortly after the request is handed over. A supervisor is a grandchild, in
    its own session, so it outlives both the zygote and minicloud; it answers on the same socket.
    The zygote exits when the engine closes its end (and a waiting spare when the zygote exits)."""
    import socket

    sock = socket.socket(fileno=sock_fd)
    spare = _fork_spare(sock)
    while True:
        try:
            message, ancdata, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(_INT_SIZE))
        except InterruptedError:
            continue
        if not message:
            return 0
        fds = _received_fds(ancdata)
        try:
            spare.sendmsg([message], _rights(fds))
        except OSError:  # the spare died: a new one takes this request
            spare.close()
            spare = _fork_spare(sock)
            spare.sendmsg([message], _rights(fds))
        for fd in fds:
            os.close(fd)
        spare.close()
        # the next spare once this start had the CPU to itself for a moment (or at once if the
        # next request is already waiting)
        select.select([sock], [], [], SPARE_DELAY)
        spare = _fork_spare(sock)


_INT_SIZE = 4
SPARE_DELAY = 0.05  # seconds


def _received_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    import array
    import socket

    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return list(fds)


def _rights(fds: list[int]) -> list[tuple[int, int, bytes]]:
    import array
    import socket

    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []


def _fork_spare(sock: socket.socket) -> socket.socket:
    """A supervisor forked (twice: re-parented away from the zygote) and in its own session,
    waiting for its request on the returned socket."""
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    child = os.fork()
    if child == 0:
        ours.close()
        _spare(sock, theirs)
    theirs.close()
    os.waitpid(child, 0)
    return ours


def _spare(sock: socket.socket, jobs: socket.socket) -> None:
    import socket

    request: dict[str, Any] = {}
    try:
        if os.fork() != 0:
            os._exit(0)  # the zygote reaps this one; the spare is re-parented away
        os.setsid()
        while True:
            try:
                message, ancdata, _flags, _addr = jobs.recvmsg(65536, socket.CMSG_SPACE(_INT_SIZE))
                break
            except InterruptedError:
                continue
        if not message:  # the zygote is gone
            os._exit(0)
        jobs.close()
        fds = _received_fds(ancdata)
        request = json.loads(message)
        _supervisor(sock, request, fds[0] if fds else None)
    except BaseException as exc:  # never return into the zygote's loop
        if request:
            with contextlib.suppress(Exception):
                sock.send(json.dumps({"id": request["id"], "error": f"supervisor failed: {exc}"}).encode())
        os._exit(1)


def _supervisor(sock: socket.socket, request: dict[str, Any], stdin_fd: int | None) -> None:
    directory = request["dir"]
    os.dup2(stdin_fd if stdin_fd is not None else os.open(os.devnull, os.O_RDONLY), 0)
    log = os.open(os.path.join(directory, "shim.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, sock.fileno())
    os.closerange(sock.fileno() + 1, 65536)
    os.chdir(directory)

    def report(doc: dict[str, Any]) -> None:
        sock.send(json.dumps({**doc, "id": request["id"]}).encode())
        sock.close()

    os._exit(supervise(directory, report))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        sys.exit(zygote(int(sys.argv[2])))
    sys.exit(main(sys.argv[1:]))
