"""``docker exec``: a process started in a running container by ``runc exec`` (in the foreground,
so runc forwards signals and returns the process's exit status). The process spec is the
container's own (capabilities, no-new-privileges, rlimits) with the exec's command, environment,
user and working directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import struct
import subprocess
import termios
import tty
from dataclasses import dataclass, field
from typing import Any

from minicloud.engine.containers.manager import ContainerManager
from minicloud.engine.containers.model import new_id
from minicloud.engine.containers.spec import merge_env, resolve_user
from minicloud.engine.containers.state import Status
from minicloud.engine.errors import Conflict, InvalidArgument, NotFound


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
    """A started exec: ``runc exec`` and, with a TTY, the master side of its terminal."""

    proc: asyncio.subprocess.Process
    master: int = -1

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


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

    def process_spec(self, exec_: Exec) -> dict[str, Any]:
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
        return process

    async def start(self, exec_id: str, detach: bool = False,
                    console_size: tuple[int, int] | None = None) -> ExecProcess:
        """Start the process; its streams are the caller's to pump. The exit code is recorded here.
        With a TTY, runc gets a pseudo-terminal of ours as its stdio: it puts it in raw mode,
        copies it to and from the container's own terminal, and follows its window size."""
        exec_ = self.get(exec_id)
        if exec_.started:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        container = self.containers.get(exec_.container_id)
        if container.state.status is not Status.RUNNING:
            raise Conflict(f"Container {container.id} is not running")
        exec_.started = True
        files = self.containers.files(container)
        spec_path = files.dir / f"exec-{exec_.id}.json"
        spec_path.write_text(json.dumps(self.process_spec(exec_)))
        args = [*self.containers.runc.base(), "exec", "--process", str(spec_path), container.id]
        master = -1
        if exec_.tty and not detach:
            master, slave = os.openpty()
            tty.setraw(slave)  # a plain byte pipe: the container's own terminal does the line discipline
            if console_size:
                set_window_size(master, *console_size)
            try:
                proc = await asyncio.create_subprocess_exec(*args, stdin=slave, stdout=slave, stderr=slave,
                                                            start_new_session=True)
            finally:
                os.close(slave)
        else:
            proc = await asyncio.create_subprocess_exec(
                *args, stdin=subprocess.PIPE if exec_.attach_stdin and not detach else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if detach else subprocess.PIPE,
                stderr=subprocess.DEVNULL if detach else subprocess.PIPE)
        exec_.running, exec_.pid = True, proc.pid
        handle = ExecProcess(proc, master)
        self.processes[exec_.id] = handle
        asyncio.get_running_loop().create_task(self._reap(exec_, proc, spec_path))
        return handle

    def resize(self, exec_id: str, height: int, width: int) -> None:
        exec_ = self.get(exec_id)
        process = self.processes.get(exec_id)
        if process is None or process.master < 0 or not exec_.running:
            return
        set_window_size(process.master, height, width)
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.proc.pid, signal.SIGWINCH)  # runc copies the new size into the container

    async def _reap(self, exec_: Exec, proc: asyncio.subprocess.Process, spec_path: os.PathLike[str]) -> None:
        code = await proc.wait()
        exec_.exit_code = 128 - code if code < 0 else code
        exec_.running = False
        exec_.done.set()
        self.processes.pop(exec_.id, None)  # the terminal's master is closed by whoever pumps it
        with contextlib.suppress(OSError):
            os.unlink(spec_path)
