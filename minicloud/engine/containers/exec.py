"""``docker exec``: a process started in a running container by ``runc exec`` (in the foreground,
so runc forwards signals and returns the process's exit status). The process spec is the
container's own (capabilities, no-new-privileges, rlimits) with the exec's command, environment,
user and working directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any

from minicloud.engine.containers.manager import ContainerManager
from minicloud.engine.containers.model import new_id
from minicloud.engine.containers.spec import merge_env, resolve_user
from minicloud.engine.containers.state import Status
from minicloud.engine.errors import Conflict, InvalidArgument, NotFound, NotImplementedYet


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


class ExecManager:
    def __init__(self, containers: ContainerManager) -> None:
        self.containers = containers
        self.execs: dict[str, Exec] = {}

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

    async def start(self, exec_id: str, detach: bool = False) -> asyncio.subprocess.Process:
        """Start the process; its pipes are the caller's to pump. The exit code is recorded here."""
        exec_ = self.get(exec_id)
        if exec_.started:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        if exec_.tty:
            raise NotImplementedYet("docker exec with a TTY (-t) is not available yet in minicloud's engine")
        container = self.containers.get(exec_.container_id)
        if container.state.status is not Status.RUNNING:
            raise Conflict(f"Container {container.id} is not running")
        exec_.started = True
        files = self.containers.files(container)
        spec_path = files.dir / f"exec-{exec_.id}.json"
        spec_path.write_text(json.dumps(self.process_spec(exec_)))
        runc = self.containers.runc
        proc = await asyncio.create_subprocess_exec(
            *runc.base(), "exec", "--process", str(spec_path), container.id,
            stdin=subprocess.PIPE if exec_.attach_stdin and not detach else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if detach else subprocess.PIPE,
            stderr=subprocess.DEVNULL if detach else subprocess.PIPE)
        exec_.running, exec_.pid = True, proc.pid
        asyncio.get_running_loop().create_task(self._reap(exec_, proc, spec_path))
        return proc

    async def _reap(self, exec_: Exec, proc: asyncio.subprocess.Process, spec_path: os.PathLike[str]) -> None:
        code = await proc.wait()
        exec_.exit_code = 128 - code if code < 0 else code
        exec_.running = False
        exec_.done.set()
        with contextlib.suppress(OSError):
            os.unlink(spec_path)
