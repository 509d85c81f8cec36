"""runc, driven from Python: the supervisor's spawn, signals through pidfds, pause/resume, delete.

``runc --root <state dir>`` keeps the runtime's state apart from any other runc on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        proc = await asyncio.create_subprocess_exec(
            *self.base(), *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, (out + err).decode(errors="replace").strip()

    async def pause(self, container_id: str) -> None:
        code, text = await self.call("pause", container_id)
        if code != 0:
            raise EngineError(f"cannot pause container {container_id[:12]}: {text}")

    async def resume(self, container_id: str) -> None:
        code, text = await self.call("resume", container_id)
        if code != 0:
            raise EngineError(f"cannot unpause container {container_id[:12]}: {text}")

    async def delete(self, container_id: str) -> None:
        await self.call("delete", "--force", container_id)

    def list_ids(self) -> list[str]:
        result = subprocess.run([*self.base(), "list", "--format", "json"], capture_output=True, text=True,
                                check=False)
        try:
            return [entry["id"] for entry in json.loads(result.stdout or "null") or []]
        except ValueError:
            return []

    # -- the supervisor ---------------------------------------------------------------------
    def spawn(self, files: ContainerFiles, container_id: str, *, tty: bool, stdin_fd: int | None,
              cgroup: str) -> Started:
        """Start the container under a new supervisor; blocking (call it in a thread)."""
        shim_cfg = {"runc": self.binary, "root": str(self.root), "id": container_id,
                    "bundle": str(files.bundle), "log_path": str(files.log), "tty": tty,
                    "stdin": stdin_fd is not None, "cgroup": cgroup}
        files.shim_config.write_text(json.dumps(shim_cfg))
        for stale in (files.exit, files.init_pid):
            stale.unlink(missing_ok=True)
        status_r, status_w = os.pipe()
        with open(files.dir / "shim.log", "ab") as shim_log:
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(SHIM), str(files.dir), str(status_w)],
                    stdin=stdin_fd if stdin_fd is not None else subprocess.DEVNULL,
                    stdout=shim_log, stderr=shim_log, pass_fds=(status_w,), start_new_session=True,
                    env=_SHIM_ENV, cwd=str(files.dir))
            finally:
                os.close(status_w)
        files.shim_pid.write_text(str(proc.pid))
        with os.fdopen(status_r, "rb") as status:
            line = status.readline()
        try:
            report: dict[str, Any] = json.loads(line or b"{}")
        except ValueError:
            report = {}
        if "pid" not in report:
            proc.wait()
            files.shim_pid.unlink(missing_ok=True)
            raise StartFailed(_docker_start_error(report.get("error") or "the container supervisor failed"))
        return Started(proc.pid, int(report["pid"]))


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
