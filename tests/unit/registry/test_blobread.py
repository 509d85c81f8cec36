"""Blob reads around the page cache: every range, chunk boundaries, unaligned starts, the fd closed."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from minicloud.registry.blobread import BLOCK, BlobReader, open_blob
from minicloud.storage.blobs import BlobNotFound, Digest, ReplicatedBlobStore, WritePolicy


async def _put(store: ReplicatedBlobStore, data: bytes) -> Digest:
    digest = Digest("sha256", hashlib.sha256(data).hexdigest())
    ingest = await store.ingest("t")
    await ingest.write(data)
    await ingest.commit(digest)
    return digest


async def _read(store: ReplicatedBlobStore, digest: Digest, start: int, length: int, chunk: int) -> bytes:
    fd, size = await store.run(open_blob, store, digest)
    assert size == os.fstat(fd).st_size
    return b"".join([bytes(c) async for c in BlobReader(store, fd, start, length, chunk)])


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_ranges_across_chunks_and_unaligned_starts(tmp_path: Path) -> None:
    async def main() -> None:
        store = ReplicatedBlobStore.for_zones(tmp_path, ["a", "b"], WritePolicy.ALL, direct_primary=True)
        data = os.urandom(5 * BLOCK * 3 + 123)
        digest = await _put(store, data)
        before = _fd_count()
        for chunk in (BLOCK, 2 * BLOCK, 1 << 20):
            for start, length in [(0, len(data)), (1, len(data) - 1), (BLOCK - 1, 2), (BLOCK, BLOCK),
                                  (3 * BLOCK + 7, 5000), (len(data) - 1, 1), (17, 3 * BLOCK)]:
                assert await _read(store, digest, start, length, chunk) == data[start:start + length]
        assert _fd_count() == before
        store.close()
    asyncio.run(main())


def test_closed_without_iterating_and_a_missing_blob(tmp_path: Path) -> None:
    async def main() -> None:
        store = ReplicatedBlobStore.for_zones(tmp_path, ["a"], direct_primary=True)
        digest = await _put(store, b"x" * 10_000)
        before = _fd_count()
        fd, _ = await store.run(open_blob, store, digest)
        reader = BlobReader(store, fd, 0, 10_000)
        assert bytes(await reader.__anext__()) == b"x" * 10_000
        await reader.aclose()
        fd, _ = await store.run(open_blob, store, digest)
        await BlobReader(store, fd, 0, 10_000).aclose()  # never iterated: the fd is closed all the same
        assert _fd_count() == before
        with pytest.raises(BlobNotFound):
            await store.run(open_blob, store, Digest("sha256", "0" * 64))
        store.close()
    asyncio.run(main())
