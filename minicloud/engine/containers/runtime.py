"""The OCI runtime (crun, else runc), driven from Python: the supervisor's spawn, signals through
pidfds, pause/resume, delete.

``<runtime> --root <state dir>`` keeps the runtime's state apart from any other on the machine.
crun is preferred when installed: it starts a container in about a third of runc's time (C, no Go
runtime to start). On a cgroups v1 host whose cgroup2 hierarchy is mounted too (hybrid, at
``/sys/fs/cgroup/unified``), crun refuses to run while any controller sits in the cgroup2 one; it
is then run in a mount namespace of its own where that hierarchy is unmounted (``hide_cgroup2``),
so that it sees, and enforces, only the v1 controllers, as runc does. The namespace lives only as
long as the crun command; the containers' own namespaces are made from it as from the host's.
"""

from __future__ import annotations

import array
import asyncio
import base64
import contextlib
import ctypes.util
import errno
import functools
import hashlib
import itertools
import json
import logging
import os
import re
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

log = logging.getLogger("minicloud.engine.containers")
SHIM = Path(__file__).with_name("shim.py")
_SHIM_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


class StartFailed(EngineError):
    """runc could not start the process (Docker's "OCI runtime create failed")."""

    status = 400


@dataclass(frozen=True, slots=True)
class Started:
    shim_pid: int
    init_pid: int


UNIFIED = "/sys/fs/cgroup/unified"
# The crun command line's prefix in a hybrid host: a mount namespace (mounts slaves of the host's,
# so nothing done in it reaches the host) without the cgroup2 hierarchy.
HIDE_CGROUP2 = ["unshare", "--mount", "--propagation", "slave", "--", "/bin/sh", "-c",
                f'umount -l {UNIFIED} && exec "$@"', "sh"]


class Runc:
    """The OCI runtime's command line: ``name`` is ``runc`` or ``crun`` (both take runc's)."""

    def __init__(self, binary: str, root: Path, name: str = "runc", hide_cgroup2: bool = False) -> None:
        self.binary = binary
        self.root = root
        self.name = name
        self.hide_cgroup2 = hide_cgroup2
        self.cgroup_hierarchies = _v1_hierarchies() if name == "crun" else []
        self._compiled_seccomp: dict[str, str] = {}  # profile key -> base64 BPF
        self._compiling: dict[str, str] = {}  # container id -> profile key
        self._terminal_prefix = ["chrt", "--reset-on-fork", "--fifo", "1"] \
            if name == "crun" and _realtime_allowed() else []
        root.mkdir(parents=True, exist_ok=True)

    def base(self) -> list[str]:
        return [*(HIDE_CGROUP2 if self.hide_cgroup2 else []), self.binary, "--root", str(self.root)]

    # -- crun's seccomp filters, compiled once per profile ---------------------------------------
    # crun compiles the profile into BPF at every start (~5 ms of CPU for Docker's, with its
    # capability-gated argument rules; its own cache needs a build with libgcrypt's checksums) and
    # keeps the result in its state directory. The filter compiled for a container is kept here
    # by the profile's text and crun's and libseccomp's files, and handed to the next container
    # with the same profile as crun's ``run.oci.seccomp_bpf_data`` annotation, which crun loads
    # as it is: the same filter, not compiled again.
    def use_compiled_seccomp(self, container_id: str, doc: dict[str, Any]) -> None:
        """Before ``config.json`` is written: the compiled filter of ``doc``'s profile, if known."""
        seccomp = (doc.get("linux") or {}).get("seccomp")
        if self.name != "crun" or not seccomp:
            return
        key = _seccomp_key(seccomp, self.binary)
        compiled = self._compiled_seccomp.get(key)
        if compiled is not None:
            doc.setdefault("annotations", {})[SECCOMP_BPF_ANNOTATION] = compiled
        else:
            self._compiling[container_id] = key

    def learn_compiled_seccomp(self, container_id: str) -> None:
        """After a start: the filter crun compiled for the container, kept for the next ones."""
        key = self._compiling.pop(container_id, None)
        if key is None:
            return
        try:
            data = (self.root / container_id / "seccomp.bpf").read_bytes()
        except OSError:
            return
        if data and len(data) % 8 == 0:  # whole BPF instructions
            if len(self._compiled_seccomp) >= SECCOMP_CACHE_SIZE:
                self._compiled_seccomp.pop(next(iter(self._compiled_seccomp)))
            self._compiled_seccomp[key] = base64.b64encode(data).decode()

    def forget_compiling(self, container_id: str) -> None:
        self._compiling.pop(container_id, None)

    def terminal_exec_prefix(self) -> list[str]:
        """What runs an ``exec`` on a terminal. crun (1.8 and later alike) lets the process go before
        it sizes the terminal (the size is set just after the process is released), so a process
        that reads its size at once (``stty size``) may find 0x0; crun is run in the real-time
        class (its children, the process among them, are reset to the normal class at fork) so that
        it sets the size before the process, on another CPU or behind it, gets that far."""
        return list(self._terminal_prefix)

    def update_args(self, container_id: str) -> list[str]:
        """``update`` with the resources as JSON on stdin (crun takes no ``-`` for it)."""
        source = "-" if self.name == "runc" else "/dev/stdin"
        return [*self.base(), "update", "--resources", source, container_id]

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
        """``<runtime> delete --force``. For a container whose init has exited (the usual case: the
        supervisor reaped it), what the runtime would do is done here, without a process (runc:
        ~8 ms of CPU; crun: 4 short processes with the cgroup2 hierarchy hidden) on the path of the
        next start: its cgroups removed, its state directory deleted. The runtime does it when
        anything is unexpected (init alive, a cgroup busy or with children, a state unread)."""
        if not await asyncio.to_thread(self._delete_stopped, container_id):
            await self.call("delete", "--force", container_id)

    def _delete_stopped(self, container_id: str) -> bool:
        state_dir = self.root / container_id
        try:
            cgroups, init = self._crun_state(state_dir) if self.name == "crun" else _runc_state(state_dir)
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

    def _crun_state(self, state_dir: Path) -> tuple[set[str], tuple[int, int]]:
        """crun's ``status``: the init's pid and start time, and its cgroup in every v1 hierarchy."""
        state = json.loads((state_dir / "status").read_text())
        relative = str(state["cgroup-path"]).lstrip("/")
        if not relative:
            raise ValueError("no cgroup path")
        cgroups = {str(hierarchy / relative) for hierarchy in self.cgroup_hierarchies}
        return cgroups, (int(state["pid"]), int(state["process-start-time"]))

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
        shim_cfg = {"runc": self.binary, "runtime": self.name, "hide_cgroup2": self.hide_cgroup2,
                    "root": str(self.root), "id": container_id,
                    "bundle": str(files.bundle), "log_path": str(files.log), "tty": tty,
                    "stdin": stdin, "cgroup": cgroup}
        files.shim_config.write_text(json.dumps(shim_cfg))
        for stale in (files.exit, files.init_pid):
            stale.unlink(missing_ok=True)


def choose_runtime(root: Path, runc: str | None = None, crun: str | None = None, wanted: str = "") -> Runc:
    """crun when installed (and ``wanted`` is not ``runc``), else runc; each with its own state
    directory under ``root``. Containers that runc started and that still run (minicloud
    restarted after crun was installed) keep runc until they are gone: only it knows them."""
    crun_path = crun or shutil.which("crun")
    if wanted == "crun" and crun_path is None:
        log.warning("crun was asked for (engine_runtime) but is not installed: runc runs containers")
    if wanted != "runc" and crun_path is not None and not _has_containers(root / "runc"):
        hide = cgroup_hybrid()
        if not hide or _runs_hidden(crun_path):
            return Runc(crun_path, root / "crun", "crun", hide_cgroup2=hide)
        log.warning("crun cannot run here with the cgroup2 hierarchy hidden (unshare, umount): runc runs containers")
    return Runc(runc or shutil.which("runc") or "runc", root / "runc")


def _runs_hidden(crun: str) -> bool:
    """Whether a mount namespace without the cgroup2 hierarchy can be made here (it needs
    CAP_SYS_ADMIN, unshare and umount) and crun runs in it."""
    try:
        return subprocess.run([*HIDE_CGROUP2, crun, "--version"], capture_output=True, check=False,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


SECCOMP_BPF_ANNOTATION = "run.oci.seccomp_bpf_data"
SECCOMP_CACHE_SIZE = 64


def _seccomp_key(seccomp: dict[str, Any], binary: str) -> str:
    """The profile's text and the files that compile it (crun, libseccomp): another version of
    either, and the filter is compiled again."""
    digest = hashlib.sha256(json.dumps(seccomp, sort_keys=True).encode())
    for path in (binary, *_libseccomp_paths()):
        with contextlib.suppress(OSError):
            st = os.stat(path)
            digest.update(f"{path}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()


@functools.cache
def _libseccomp_paths() -> tuple[str, ...]:
    found = ctypes.util.find_library("seccomp")
    if found is None:
        return ()
    for directory in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"):
        candidate = os.path.join(directory, found)
        if os.path.exists(candidate):
            return (os.path.realpath(candidate),)
    return ()


def _runc_state(state_dir: Path) -> tuple[set[str], tuple[int, int]]:
    """runc's ``state.json``: the init's pid and start time, and its cgroups."""
    state = json.loads((state_dir / "state.json").read_text())
    cgroups = {str(path) for path in state["cgroup_paths"].values()}
    return cgroups, (int(state["init_process_pid"]), int(state["init_process_start"]))


def _v1_hierarchies(mountinfo: str = "/proc/self/mountinfo") -> list[Path]:
    """The cgroup v1 hierarchies mounted under /sys/fs/cgroup (the ones crun uses when cgroup2 is
    hidden from it)."""
    found = []
    try:
        with open(mountinfo) as f:
            for line in f:
                if " - cgroup " in line and line.split()[4].startswith("/sys/fs/cgroup/"):
                    found.append(Path(line.split()[4]))
    except OSError:
        pass
    return found


@functools.cache
def _realtime_allowed() -> bool:
    """Whether ``chrt`` may put a process in the real-time class here (CAP_SYS_NICE, RLIMIT_RTPRIO)."""
    try:
        return subprocess.run(["chrt", "--fifo", "1", "true"], capture_output=True, check=False).returncode == 0
    except OSError:
        return False


def _has_containers(state_root: Path) -> bool:
    try:
        return any(entry.is_dir() for entry in state_root.iterdir())
    except OSError:
        return False


def cgroup_hybrid(mountinfo: str = "/proc/self/mountinfo") -> bool:
    """True when cgroup v1 hierarchies are mounted at /sys/fs/cgroup with cgroup2 beside them."""
    types: dict[str, str] = {}
    try:
        with open(mountinfo) as f:
            for line in f:
                fields = line.split()
                if " - " in line and fields[4].startswith("/sys/fs/cgroup"):
                    types[fields[4]] = line.split(" - ", 1)[1].split()[0]
    except OSError:
        return False
    return types.get("/sys/fs/cgroup") != "cgroup2" and types.get(UNIFIED) == "cgroup2"


_CRUN_NOT_FOUND = re.compile(r"executable file `(?P<path>.*)` not found in \$PATH: No such file or directory")
_CRUN_NOT_EXECUTABLE = re.compile(r"open executable: (Permission denied|Operation not permitted)")


def runc_wording(message: str) -> str:
    """crun's start errors in runc's words, which the docker CLI reads its exit code from (127 for
    "executable file not found" or "no such file or directory", 126 for "permission denied")."""
    found = _CRUN_NOT_FOUND.search(message)
    if found:
        path = found["path"]
        said = f"stat {path}: no such file or directory" if "/" in path else "executable file not found in $PATH"
        return f'exec: "{path}": {said}'
    message = _CRUN_NOT_EXECUTABLE.sub("open executable: permission denied", message)
    for code in (errno.ENOENT, errno.EACCES, errno.ENOTDIR, errno.EISDIR):
        message = message.replace(os.strerror(code), os.strerror(code).lower())
    return message


def _started(report: dict[str, Any], runtime: str) -> Started:
    if "pid" not in report:
        error = str(report.get("error") or "the container supervisor failed")
        raise StartFailed(_docker_start_error(runc_wording(error) if runtime == "crun" else error, runtime))
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

    async def spawn(self, files: ContainerFiles, stdin_fd: int | None, runtime: str = "runc") -> Started:
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
        return _started(report, runtime)

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


def _docker_start_error(message: str, runtime: str) -> str:
    return (f"failed to create task for container: failed to create shim task: OCI runtime create failed: "
            f"{runtime} create failed: {message}: unknown")


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
