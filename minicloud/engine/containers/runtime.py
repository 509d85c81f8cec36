"""runc, driven from Python: the supervisor's spawn, signals through pidfds, pause/resume, delete.

``runc --root <state dir>`` keeps the runtime's state apart from any other runc on the machine.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minicloud.engine import commands
from minicloud.engine.containers.model import ContainerFiles
from minicloud.engine.errors import EngineError

SHIM = Path(__file__).with_name("shim.py")
_SHIM_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


class StartFailed(EngineError):
    """runc could not start the process (Docker's "OCI runtime create failed")."""

    status = 400


@dataclass(frozen=True, slots=True)
class Started:
    shim_pid: int
    init_pid: int


class Runc:
    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def base(self) -> list[str]:
        return [self.binary, "--root", str(self.root)]

    async def call(self, *args: str) -> tuple[int, str]:
        result = await commands.run([*self.base(), *args])
        return result.returncode, (result.stdout + result.stderr).decode(errors="replace").strip()

    async def pause(self, container_id: str) -> None:
        code, text = await self.call("pause", container_id)
        if code != 0:
            raise EngineError(f"cannot pause container {container_id[:12]}: {text}")

    async def resume(self, container_id: str) -> None:
        code, text = await self.call("resume", container_id)
        if code != 0:
            raise EngineError(f"cannot unpause container {container_id[:12]}: {text}")

    async def delete(self, container_id: str) -> None:
        """``runc delete --force``. For a container whose init has exited (the usual case: the
        supervisor reaped it), what runc would do is done here, without a Go process (~8 ms of CPU
        on the path of the next start): its cgroups removed, its state directory deleted. runc
        does it when anything is unexpected (init alive, a cgroup busy or with children)."""
        if not await asyncio.to_thread(self._delete_stopped, container_id):
            await self.call("delete", "--force", container_id)

    def _delete_stopped(self, container_id: str) -> bool:
        state_dir = self.root / container_id
        try:
            state = json.loads((state_dir / "state.json").read_text())
            cgroups = {str(path) for path in state["cgroup_paths"].values()}
            init = (int(state["init_process_pid"]), int(state["init_process_start"]))
        except FileNotFoundError:
            return not state_dir.exists()  # deleted already
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False
        if _started_at(init[0]) == init[1]:
            return False
        for path in sorted(cgroups):
            try:
                os.rmdir(path)
            except FileNotFoundError:
                continue
            except OSError:
                return False
        shutil.rmtree(state_dir, ignore_errors=True)
        return True

    def list_ids(self) -> list[str]:
        result = subprocess.run([*self.base(), "list", "--format", "json"], capture_output=True, text=True,
                                check=False)
        try:
            return [entry["id"] for entry in json.loads(result.stdout or "null") or []]
        except ValueError:
            return []

    # -- the supervisor ---------------------------------------------------------------------
    def write_shim_config(self, files: ContainerFiles, container_id: str, *, tty: bool, stdin: bool,
                          cgroup: str) -> None:
        shim_cfg = {"runc": self.binary, "root": str(self.root), "id": container_id,
                    "bundle": str(files.bundle), "log_path": str(files.log), "tty": tty,
                    "stdin": stdin, "cgroup": cgroup}
        files.shim_config.write_text(json.dumps(shim_cfg))
        for stale in (files.exit, files.init_pid):
            stale.unlink(missing_ok=True)


def _started(report: dict[str, Any]) -> Started:
    if "pid" not in report:
        raise StartFailed(_docker_start_error(report.get("error") or "the container supervisor failed"))
    return Started(int(report["shim_pid"]), int(report["pid"]))


class Zygote:
    """A warm process that hands each container start to a supervisor it forked ahead (``shim.py
    --zygote``): no interpreter start-up and no fork on the path of ``docker run``. Started with
    the engine, restarted if it dies; the socket is SOCK_SEQPACKET, one message per request and
    answer."""

    def __init__(self, log_path: Path) -> None:
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    def _ensure(self) -> socket.socket:
        if self._sock is not None and self._proc is not None and self._proc.poll() is None:
            return self._sock
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with open(self._log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(SHIM), "--zygote", str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(theirs.fileno(),),
                start_new_session=True, env=_SHIM_ENV)
        theirs.close()
        ours.setblocking(False)
        asyncio.get_running_loop().add_reader(ours, self._readable, ours)
        self._sock = ours
        return ours

    def warm(self) -> None:
        """Start the zygote now rather than at the first container's start."""
        self._ensure()

    async def spawn(self, files: ContainerFiles, stdin_fd: int | None) -> Started:
        sock = self._ensure()
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        ancillary = [] if stdin_fd is None else \
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [stdin_fd]).tobytes())]
        try:
            sock.sendmsg([json.dumps({"id": request_id, "dir": str(files.dir)}).encode()], ancillary)
            report = await asyncio.wait_for(future, 120)
        finally:
            self._pending.pop(request_id, None)
        return _started(report)

    def _readable(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # the zygote is gone: fail what waits; the next spawn starts a new one
                for future in self._pending.values():
                    if not future.done():
                        future.set_result({"error": "the container supervisor zygote exited"})
                self.close()
                return
            with contextlib.suppress(ValueError, KeyError):
                doc = json.loads(data)
                future = self._pending[int(doc["id"])]
                if not future.done():
                    future.set_result(doc)

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock)
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(5)  # it exits when its socket closes
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


def _docker_start_error(message: str) -> str:
    return (f"failed to create task for container: failed to create shim task: OCI runtime create failed: "
            f"runc create failed: {message}: unknown")


class ExitWatch:
    """Calls ``on_exit`` (in the event loop) once the process ``pid`` has exited."""

    def __init__(self, pid: int, on_exit: Callable[[], None]) -> None:
        self.pid = pid
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        try:
            self._fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._fd = -1
            self._loop.call_soon(self._fire)
            return
        self._loop.add_reader(self._fd, self._fire)

    def _fire(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(self.pid, os.WNOHANG)  # our child when we spawned it; adopted ones are not
        self._on_exit()

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1


def _started_at(pid: int) -> int | None:
    """The start time (clock ticks after boot) of the running process ``pid``, as runc records it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])  # field 22 of stat; the split starts at field 3


def signal_process(pidfd: int, sig: int) -> bool:
    try:
        signal.pidfd_send_signal(pidfd, sig)
        return True
    except ProcessLookupError:
        return False


def process_alive(pid: int, marker: str) -> bool:
    """True when ``pid`` runs and its command line contains ``marker`` (guards against pid reuse)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False


def swap_accounting() -> bool:
    return Path("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
