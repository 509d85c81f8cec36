"""Network namespaces kept as files: ``unshare --net=<file>`` bind-mounts a new namespace on an
empty file, so it lives until the file is unmounted, independent of any process; ``nsenter`` runs
``ip`` inside one; a worker thread that has ``setns``-ed into one creates sockets that belong to it.

The directory holding the files is bind-mounted on itself with private propagation (as iproute2
does for ``/run/netns``), so that the namespace mounts never propagate to other mount namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from minicloud.engine.commands import run as run_command
from minicloud.engine.errors import EngineError
from minicloud.engine.snapshots.mounts import is_mounted, unmount
from minicloud.netlink import namespaces

MS_BIND = 4096
MS_PRIVATE = 1 << 18
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
T = TypeVar("T")


class NetworkSetupFailed(EngineError):
    """A command that builds networking (``ip``, ``nft``, ``unshare``) failed."""


def private_directory(directory: Path) -> None:
    """Blocking. Make ``directory`` a mount point of its own with private propagation."""
    directory.mkdir(parents=True, exist_ok=True)
    if is_mounted(directory):
        return
    raw = str(directory).encode()
    if _libc.mount(raw, raw, None, MS_BIND, None) != 0 or _libc.mount(b"none", raw, None, MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise NetworkSetupFailed(f"cannot make {directory} a private mount: {os.strerror(err)}")


def create(path: Path) -> None:
    """Blocking. A new network namespace (only ``lo``, down) held by the file ``path``."""
    if is_mounted(path):
        return
    path.touch()
    result = subprocess.run(["unshare", f"--net={path}", "true"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        with contextlib.suppress(OSError):
            path.unlink()
        raise NetworkSetupFailed(f"cannot create a network namespace at {path}: {result.stderr.strip()}")


def remove(path: Path) -> None:
    """Blocking. Drop the file's hold on the namespace (the kernel frees it, and the interfaces in
    it, when no process is left inside) and remove the file."""
    unmount(path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def exists(path: Path) -> bool:
    return is_mounted(path)


def _inside(netns: Path | None) -> list[str]:
    """The command prefix that runs a program in ``netns`` (``None``: this process's own namespace)."""
    return [] if netns is None else ["nsenter", f"--net={netns}"]


async def run_ip(netns: Path | None, commands: list[str], *, tolerate: bool = False) -> str:
    """Run ``ip -batch`` inside ``netns``; raise unless every command succeeded (or ``tolerate``)."""
    if not commands:
        return ""
    args = [*_inside(netns), "ip", *(["-force"] if tolerate else []), "-batch", "-"]
    result = await run_command(args, "\n".join(commands).encode() + b"\n")
    if result.returncode != 0 and not tolerate:
        where = "this namespace" if netns is None else netns.name
        raise NetworkSetupFailed(f"ip failed in {where}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout.decode(errors="replace")


async def run_nft(netns: Path | None, ruleset: str) -> None:
    """Load ``ruleset`` atomically (one ``nft -f`` transaction) inside ``netns``."""
    result = await run_command([*_inside(netns), "nft", "-f", "-"], ruleset.encode())
    if result.returncode != 0:
        where = "this namespace" if netns is None else netns.name
        raise NetworkSetupFailed(f"nft failed in {where}: {result.stderr.decode(errors='replace').strip()}")


class NamespaceThread:
    """One worker thread living in a network namespace: a socket it creates belongs to that
    namespace for good (the namespace is fixed at creation), so the event loop can use it after."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, initializer=namespaces.enter, initargs=(str(path),),
                                            thread_name_prefix="netns")

    async def call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def write_sysctl(self, name: str, value: str) -> None:
        """Blocking (run through ``call``). A sysctl of the namespace, never of the host."""
        path = Path("/proc/sys") / name.replace(".", "/")
        with contextlib.suppress(FileNotFoundError):
            path.write_text(value)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
