"""Network namespaces as the calling thread sees them: ``enter`` one held by a file, or
``unshare_to`` a new one kept at a path (as ``unshare --net=PATH`` does, without a process).
A thread's namespace is what its new sockets belong to; ``in_own_thread`` runs such work in a
thread of its own (ended afterwards), so that no pooled thread ever changes namespace."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
T = TypeVar("T")


def enter(path: Path | str) -> None:
    """Move the calling thread into the network namespace held by ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def unshare_to(path: Path) -> None:
    """Move the calling thread into a new network namespace (only ``lo``, down), kept by
    bind-mounting it on ``path`` (an empty file, created here), as ``unshare --net=PATH`` does.
    Only for a thread of its own, which ends afterwards."""
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    path.touch()
    if _libc.mount(b"/proc/thread-self/ns/net", str(path).encode(), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        path.unlink(missing_ok=True)
        raise OSError(err, f"cannot keep the namespace at {path}: {os.strerror(err)}")


async def in_own_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread that ends with it (free to change its namespace)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.cancelled():
            outcome()

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting task
            error = exc
            loop.call_soon_threadsafe(settle, lambda: future.set_exception(error))
        else:
            loop.call_soon_threadsafe(settle, lambda: future.set_result(result))

    threading.Thread(target=run, name="netns-work", daemon=True).start()
    return await future
