"""A blob's lock, held while its reference count changes together with its data, by every process.

Blobs are content-addressed: two PUTs of the same bytes share one blob, and a released blob is
deleted only once nothing refers to it. A PUT that re-uses a blob (writes its copies, then commits a
reference) must not interleave with the deletion of the same blob (checks that nothing refers to
it, then deletes the copies), or the new reference would point at deleted data. Within a process,
an ``asyncio.Lock`` per digest orders them; between the API server and its workers (``server.workers``)
a POSIX record lock does: one byte of a shared lock file per stripe of digests (4,096 stripes, so a
collision only makes two unrelated blobs wait for each other briefly). Record locks belong to the
process, so the stripe is taken when this process's first holder arrives and given back when its
last one leaves. The event loop never blocks on it: a stripe held by another process is retried
after a short sleep.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import weakref
import zlib
from pathlib import Path
from types import TracebackType

STRIPES = 4096
_FIRST_WAIT = 0.0005
_LONGEST_WAIT = 0.02


class BlobLocks:
    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._local: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._held: dict[int, int] = {}  # stripe -> holders in this process

    def lock(self, digest: str) -> BlobLock:
        local = self._local.get(digest)
        if local is None:
            local = self._local[digest] = asyncio.Lock()
        return BlobLock(self, local, zlib.crc32(digest.encode()) % STRIPES)

    async def _take(self, stripe: int) -> None:
        holders = self._held.get(stripe, 0)
        if holders == 0:
            wait = _FIRST_WAIT
            while True:
                try:
                    fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, stripe)
                    break
                except (BlockingIOError, PermissionError):  # another process holds the stripe
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, _LONGEST_WAIT)
        self._held[stripe] = holders + 1

    def _give(self, stripe: int) -> None:
        holders = self._held[stripe] - 1
        if holders:
            self._held[stripe] = holders
            return
        del self._held[stripe]
        fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, stripe)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class BlobLock:
    """``async with``: this process's lock of the digest, then its stripe among processes."""

    __slots__ = ("_local", "_locks", "_stripe")

    def __init__(self, locks: BlobLocks, local: asyncio.Lock, stripe: int) -> None:
        self._locks = locks
        self._local = local
        self._stripe = stripe

    async def __aenter__(self) -> None:
        await self._local.acquire()
        try:
            await self._locks._take(self._stripe)
        except BaseException:
            self._local.release()
            raise

    async def __aexit__(self, kind: type[BaseException] | None, value: BaseException | None,
                        traceback: TracebackType | None) -> None:
        try:
            self._locks._give(self._stripe)
        finally:
            self._local.release()
