"""``docker exec``: a process started in a running container by the runtime's ``exec`` (runc's
or crun's: the same command line; "runc" below stands for either). The process spec is the
container's own (capabilities, no-new-privileges, rlimits) with the exec's command, environment,
user and working directory. The runtime is started by ``spawn`` (vfork, pidfd), never by asyncio's
subprocesses.

Without a TTY runc runs in the foreground, with pipes: it forwards signals and returns the
process's exit status. With a TTY it runs detached (``-d --console-socket``) under
``exec_parent.py``, and the engine holds the container's own terminal: created and sized by runc
before the process starts, with the kernel's default settings, nothing between it and the client.
(runc in the foreground would relay through a terminal of its own and clear ONLCR on the
container's after the process has started: a shell that read the settings first restores ONLCR
and its output gets ``\r\r\n``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minicloud.engine.containers.manager import ContainerManager
from minicloud.engine.containers.model import new_id
from minicloud.engine.containers.shim import receive_master
from minicloud.engine.containers.spawn import Spawned, spawn
from minicloud.engine.containers.spec import merge_env, resolve_user
from minicloud.engine.containers.state import Status
from minicloud.engine.errors import Conflict, InvalidArgument, NotFound

EXEC_PARENT = Path(__file__).with_name("exec_parent.py")


@dataclass
class Exec:
    id: str
    container_id: str
    cmd: list[str]
    env: list[str]
    user: str
    workdir: str
    tty: bool
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ExecProcess:
    """A started exec: ``runc exec`` (with a TTY, ``exec_parent.py``) and, with a TTY, the master
    side of the container's terminal for it."""

    proc: Spawned
    master: int = -1
    error: str = ""  # with a TTY: why runc could not start the process
    pid: int = 0  # with a TTY: the process's own pid (``proc`` is its parent)

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


def with_dockers_umask(argv: list[str]) -> list[str]:
    """``argv`` run with umask 022: ``runc exec`` hands its own umask to the process (minicloud
    runs with 077; Docker's processes start with 022), and ``process.user.umask`` is not honoured
    by ``runc exec`` (1.1)."""
    return ["/bin/sh", "-c", 'umask 022 && exec "$@"', "sh", *argv]


def set_window_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class ExecManager:
    def __init__(self, containers: ContainerManager) -> None:
        self.containers = containers
        self.execs: dict[str, Exec] = {}
        self.processes: dict[str, ExecProcess] = {}

    def create(self, ref: str, body: dict[str, Any]) -> Exec:
        container = self.containers.get(ref)
        if container.state.status is Status.PAUSED:
            raise Conflict(f"Container {container.id} is paused, unpause the container before exec")
        if container.state.status is not Status.RUNNING:
            raise Conflict(f"Container {container.id} is not running")
        cmd = body.get("Cmd") or []
        if not cmd:
            raise InvalidArgument("No exec command specified")
        if body.get("Privileged"):
            raise InvalidArgument("privileged exec is not available yet in minicloud's engine")
        exec_ = Exec(id=new_id(), container_id=container.id, cmd=list(cmd), env=list(body.get("Env") or []),
                     user=body.get("User") or container.config.get("User") or "",
                     workdir=body.get("WorkingDir") or container.config.get("WorkingDir") or "/",
                     tty=bool(body.get("Tty")), attach_stdin=bool(body.get("AttachStdin")),
                     attach_stdout=bool(body.get("AttachStdout")), attach_stderr=bool(body.get("AttachStderr")))
        self.execs[exec_.id] = exec_
        return exec_

    def get(self, exec_id: str) -> Exec:
        try:
            return self.execs[exec_id]
        except KeyError:
            raise NotFound(f"No such exec instance: {exec_id}") from None

    def process_spec(self, exec_: Exec, console_size: tuple[int, int] | None = None) -> dict[str, Any]:
        container = self.containers.get(exec_.container_id)
        files = self.containers.files(container)
        bundle = json.loads((files.dir / "config.json").read_text())
        process: dict[str, Any] = dict(bundle["process"])
        user = resolve_user(exec_.user, files.rootfs)
        process["user"] = {"uid": user.uid, "gid": user.gid}
        if user.additional_gids:
            process["user"]["additionalGids"] = list(user.additional_gids)
        process["args"] = exec_.cmd
        process["env"] = merge_env(process["env"], exec_.env, {})
        process["cwd"] = exec_.workdir
        process["terminal"] = exec_.tty
        process.pop("consoleSize", None)
        if exec_.tty and console_size:  # runc sizes the terminal before the process starts
            process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
        return process

    async def start(self, exec_id: str, detach: bool = False,
                    console_size: tuple[int, int] | None = None) -> ExecProcess:
        """Start the process; its streams are the caller's to pump (with a TTY and ``detach``,
        the terminal's output is discarded here). The exit code is recorded here. A process that
        runc could not start has an ``error`` instead of a terminal."""
        exec_ = self.get(exec_id)
        if exec_.started:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        container = self.containers.get(exec_.container_id)
        if container.state.status is not Status.RUNNING:
            raise Conflict(f"Container {container.id} is not running")
        exec_.started = True
        files = self.containers.files(container)
        spec_path = files.dir / f"exec-{exec_.id}.json"
        spec_path.write_text(json.dumps(self.process_spec(exec_, console_size)))
        args = [*self.containers.runc.base(), "exec", "--process", str(spec_path), container.id]
        if exec_.tty:
            handle = await self._start_on_terminal(args, files.dir / f"exec-{exec_.id}.pid")
        else:
            proc = await spawn(
                with_dockers_umask(args),
                stdin=subprocess.PIPE if exec_.attach_stdin and not detach else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if detach else subprocess.PIPE,
                stderr=subprocess.DEVNULL if detach else subprocess.PIPE)
            handle = ExecProcess(proc)
        exec_.running, exec_.pid = True, handle.pid or handle.proc.pid
        self.processes[exec_.id] = handle
        if detach and handle.master >= 0:
            self._discard_output(handle)
        asyncio.get_running_loop().create_task(self._reap(exec_, handle, spec_path, detach))
        return handle

    async def _start_on_terminal(self, args: list[str], pid_file: Path) -> ExecProcess:
        """``runc exec -d --console-socket`` under ``exec_parent.py``; the terminal's master side
        comes over the socket while runc starts the process."""
        sock_dir = tempfile.mkdtemp(prefix="mc-exec-")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock_path = os.path.join(sock_dir, "s")
            listener.bind(sock_path)
            listener.listen(1)
            runc = [*self.containers.runc.terminal_exec_prefix(), *args[:-1], "-d", "--console-socket", sock_path,
                    "--pid-file", str(pid_file), args[-1]]
            proc = await spawn(
                with_dockers_umask([sys.executable, "-I", "-S", str(EXEC_PARENT), str(pid_file), *runc]),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                start_new_session=True)
            assert proc.stdout is not None
            line = await proc.stdout.readline()  # runc has exited: the terminal, if any, is queued
            try:
                report = json.loads(line)
            except ValueError:
                report = {"error": "the exec's parent process failed"}
            if "pid" not in report:
                return ExecProcess(proc, error=str(report.get("error") or "runc exec failed"))
            listener.settimeout(10)
            try:
                master = await asyncio.to_thread(receive_master, listener)
            except (OSError, RuntimeError) as exc:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(report["pid"]), signal.SIGKILL)  # a terminal nobody holds
                return ExecProcess(proc, error=f"no terminal from runc: {exc}")
            os.set_inheritable(master, False)
            os.set_blocking(master, False)
            return ExecProcess(proc, master, pid=int(report["pid"]))
        finally:
            listener.close()
            shutil.rmtree(sock_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(pid_file)

    def _discard_output(self, handle: ExecProcess) -> None:
        """A detached exec on a terminal: its output goes nowhere, but the terminal must stay open
        (closing it hangs the process up) and drained (a full one blocks it)."""
        loop = asyncio.get_running_loop()
        master = handle.master

        def readable() -> None:
            try:
                if os.read(master, 32 * 1024):
                    return
            except BlockingIOError:
                return
            except OSError:
                pass
            loop.remove_reader(master)

        loop.add_reader(master, readable)

    def resize(self, exec_id: str, height: int, width: int) -> None:
        exec_ = self.get(exec_id)
        process = self.processes.get(exec_id)
        if process is None or process.master < 0 or not exec_.running:
            return
        with contextlib.suppress(OSError):
            set_window_size(process.master, height, width)  # the kernel signals SIGWINCH

    async def _reap(self, exec_: Exec, handle: ExecProcess, spec_path: os.PathLike[str], detach: bool) -> None:
        code = await handle.proc.wait()
        exec_.exit_code = 128 - code if code < 0 else code
        exec_.running = False
        exec_.done.set()
        self.processes.pop(exec_.id, None)
        if detach and handle.master >= 0:  # otherwise whoever pumps the terminal closes it
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(handle.master)
            handle.close()
        with contextlib.suppress(OSError):
            os.unlink(spec_path)
