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
import contextlib
import fcntl
import os
import struct
import weakref
import zlib
from collections.abc import AsyncIterator, Iterable
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
        return BlobLock(self, local, _stripe(digest))

    @contextlib.asynccontextmanager
    async def lock_all(self, digests: Iterable[str]) -> AsyncIterator[None]:
        """Every digest's lock, taken in stripe order: every other holder holds one lock at a
        time, and two holders of several take them in the same order, so none waits in a circle."""
        async with contextlib.AsyncExitStack() as held:
            for digest in sorted(set(digests), key=_stripe):
                await held.enter_async_context(self.lock(digest))
            yield

    async def _take(self, stripe: int) -> None:
        if not self._held.get(stripe):
            wait = _FIRST_WAIT
            while True:
                try:  # (succeeds at once if another holder of this process took it meanwhile)
                    fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, stripe)
                    break
                except (BlockingIOError, PermissionError):  # another process holds the stripe
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, _LONGEST_WAIT)
        # Counted now, not before the wait: holders of this process may have come and gone meanwhile.
        self._held[stripe] = self._held.get(stripe, 0) + 1

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


def _stripe(digest: str) -> int:
    return zlib.crc32(digest.encode()) % STRIPES


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


_FLOCK = "hhqqi4x"  # struct flock on Linux x86-64/arm64: type, whence, start, len, pid (0 for OFD locks)


class ReadMarks:
    """Which blobs a response is streaming, in any process: while a long read runs, it holds a shared
    open-file-description lock (``F_OFD_SETLK``, Linux) on the byte of each of its blobs' stripes in a
    second lock file; the deletion of a released blob asks (``F_OFD_GETLK``) whether any process
    holds one, and waits while some does. Stripes make false alarms possible (another blob of the
    same stripe being read): they only postpone a deletion. PUTs never look at these marks, so a slow
    download holds up nothing but the deletion of what it reads. Each read has its own open file
    description, so reads in one process, and this process's own check, see each other."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._probe = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def hold(self, digests: list[str]) -> ReadMark:
        fd = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
        try:
            for stripe in sorted({zlib.crc32(d.encode()) % STRIPES for d in digests}):
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_RDLCK, os.SEEK_SET, stripe, 1, 0))
        except BaseException:
            os.close(fd)
            raise
        return ReadMark(fd)

    def anyone_reading(self, digest: str) -> bool:
        stripe = zlib.crc32(digest.encode()) % STRIPES
        probe = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, stripe, 1, 0)
        kind = struct.unpack(_FLOCK, fcntl.fcntl(self._probe, fcntl.F_OFD_GETLK, probe))[0]
        return bool(kind != fcntl.F_UNLCK)

    def close(self) -> None:
        if self._probe >= 0:
            os.close(self._probe)
            self._probe = -1


class ReadMark:
    """A read's marks: all given back at once by ``close`` (closing its open file description)."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
