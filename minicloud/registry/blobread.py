"""A blob's bytes for a response, read around the page cache.

The registry writes every copy of a layer with direct I/O (see ``RegistryApp``), so nothing of it
is in the page cache; a buffered read would first fill fresh page cache pages, which on this
project's VM costs more CPU than the copy itself (the first touch of a page). Here each chunk is
read with ``O_DIRECT`` straight into the buffer the response sends: no page cache page, no copy.
The buffer is a bytearray made on the event loop's thread (a pool thread's malloc arena would
keep it), one block larger than the chunk so that a block-aligned view of it can be read into.
Direct reads start at a block-aligned offset: a range that starts elsewhere is read from the
block before it and the head of the first chunk skipped. A file system without direct I/O
(tmpfs) gets buffered reads of the same chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os

from minicloud.storage.blobs import BlobNotFound, Digest, ReplicatedBlobStore

BLOCK = 4096  # direct I/O alignment of offsets, lengths and buffer addresses
CHUNK = 4 << 20  # bytes per read (a multiple of BLOCK), one read ahead while the previous is sent


def open_blob(store: ReplicatedBlobStore, digest: Digest) -> tuple[int, int]:
    """``(fd, size)`` of the blob's copy on the first healthy replica holding it (blocking)."""
    for replica in store.healthy():
        path = replica.path(digest)
        try:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECT)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError):
                    raise
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # no direct I/O here
        except OSError:
            continue
        return fd, os.fstat(fd).st_size
    raise BlobNotFound(str(digest))


def _aligned_view(buffer: bytearray, size: int) -> memoryview:
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    skip = -address % BLOCK
    return memoryview(buffer)[skip:skip + size]


class BlobReader:
    """``length`` bytes of the open blob ``fd`` from ``start``, as an async iterator of chunks;
    ``aclose`` (or the end of the bytes) closes ``fd``, whether iteration began or not."""

    def __init__(self, store: ReplicatedBlobStore, fd: int, start: int, length: int,
                 chunk_size: int = CHUNK) -> None:
        self._store = store
        self._fd = fd
        self._chunk_size = chunk_size
        self._position = start - start % BLOCK  # where the next read starts (aligned)
        self._skip = start - self._position  # bytes of the first read before ``start``
        self._remaining = length  # bytes not yet returned
        self._ahead: asyncio.Future[memoryview] | None = None

    def __aiter__(self) -> BlobReader:
        return self

    async def _fill(self) -> memoryview:
        size = min(self._chunk_size, -(-(self._skip + self._remaining) // BLOCK) * BLOCK)
        view = _aligned_view(bytearray(size + BLOCK), size)
        got = await self._store.run(os.preadv, self._fd, [view], self._position)
        self._position += got
        return view[:got]

    async def __anext__(self) -> memoryview:
        if self._remaining <= 0 or self._fd < 0:
            await self.aclose()
            raise StopAsyncIteration
        ahead, self._ahead = self._ahead, None
        try:
            chunk = await (ahead or asyncio.ensure_future(self._fill()))
        except BaseException:
            await self.aclose()
            raise
        chunk = chunk[self._skip:self._skip + self._remaining]
        self._skip = 0
        if not chunk:
            await self.aclose()
            raise BlobNotFound("the blob is shorter than its size")
        self._remaining -= len(chunk)
        if self._remaining > 0:  # the next chunk is read while this one is sent
            self._ahead = asyncio.ensure_future(self._fill())
        return chunk

    async def aclose(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            with contextlib.suppress(BaseException):
                await ahead
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
