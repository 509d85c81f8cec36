"""The blob store over replica roots, one per availability zone, with a write policy.

An ingest writes every chunk to each healthy replica's ingest file (a tee), hashing once. At commit
the digest and size are checked, each copy is fsynced and renamed into place; the commit succeeds
when the write policy is met (``ALL`` replicas, or a ``QUORUM`` of them). A replica that missed
part of an ingest (it was unhealthy, or its copy failed) gets a copy of the committed blob when
the policy is ALL, or later through ``repair``. Reads come from the first healthy replica that
holds the blob.

All blocking work (file I/O, hashing, fsync) runs on the store's thread pool, never on the event
loop; memory is bounded by ``flush_bytes`` per open ingest plus one chunk per open read.
sha256 is hashed while bytes stream in; a sha512 digest is computed at commit by reading the
ingest file again (``stream_algorithms`` changes that).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from minicloud.storage.blobs.core import (
    BlobInfo,
    BlobNotFound,
    Digest,
    DigestMismatch,
    IngestStatus,
    NoReplicaAvailable,
    SizeMismatch,
)
from minicloud.storage.blobs.ingestfile import IngestFile
from minicloud.storage.blobs.replica import Replica

log = logging.getLogger("minicloud.blobs")
T = TypeVar("T")

READ_CHUNK = 1 << 20
STREAM_CHUNK = 4 << 20  # a blob read for a response goes out this many bytes at a time
FLUSH_BYTES = 1 << 20  # an ingest's bytes are handed to the thread pool this many at a time
EARLY_WRITEBACK_BYTES = 1 << 20  # a batch this large starts its own writeback (see writeback.py)
HASH_STATES_KEPT = 256  # hash states of ingests closed for a resume, kept so a resume need not re-read


class WritePolicy(StrEnum):
    ALL = "all"
    QUORUM = "quorum"


def _hash_file(path: Path, algorithm: str, limit: int | None = None) -> Any:
    hasher = hashlib.new(algorithm)
    remaining = limit
    with path.open("rb") as f:
        while remaining is None or remaining > 0:
            chunk = f.read(READ_CHUNK if remaining is None else min(READ_CHUNK, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return hasher


class ReplicatedBlobStore:
    def __init__(self, replicas: Sequence[Replica], policy: WritePolicy = WritePolicy.ALL, *,
                 workers: int = 8, flush_bytes: int = FLUSH_BYTES,
                 stream_algorithms: tuple[str, ...] = ("sha256",), direct_secondaries: bool = True) -> None:
        if not replicas:
            raise ValueError("a blob store needs at least one replica")
        self.replicas = list(replicas)
        self.policy = policy
        self.flush_bytes = flush_bytes
        self.stream_algorithms = stream_algorithms
        self.direct_secondaries = direct_secondaries  # see ingestfile.py
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="blobs")
        # Each replica's fsync + rename at commit; under QUORUM the ones past the quorum finish
        # here after the commit returned. A pool of its own: its jobs never wait for each other.
        self._committer = ThreadPoolExecutor(max_workers=max(4, 2 * len(self.replicas)),
                                             thread_name_prefix="blob-commit")
        self._hash_states: dict[str, tuple[int, dict[str, Any]]] = {}
        for replica in self.replicas:
            replica.prepare()

    @classmethod
    def for_zones(cls, root: Path, zones: Sequence[str], policy: WritePolicy = WritePolicy.ALL,
                  **kw: Any) -> ReplicatedBlobStore:
        """One replica per availability zone: ``<root>/<zone>/``."""
        return cls([Replica(root / zone, zone) for zone in zones], policy, **kw)

    @property
    def required(self) -> int:
        n = len(self.replicas)
        return n if self.policy is WritePolicy.ALL else n // 2 + 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._committer.shutdown(wait=True)

    def keep_hash_state(self, ref: str, offset: int, hashers: dict[str, Any]) -> None:
        """Remember an ingest's hash state as it is closed, so that a resume at ``offset`` goes on
        from it instead of reading the bytes back (a registry upload's PATCH, then its PUT)."""
        self._hash_states.pop(ref, None)
        if len(self._hash_states) >= HASH_STATES_KEPT:
            self._hash_states.pop(next(iter(self._hash_states)))
        self._hash_states[ref] = (offset, {name: h.copy() for name, h in hashers.items()})

    def _resumed_hashers(self, ref: str, offset: int, replica: Replica) -> dict[str, Any]:
        kept = self._hash_states.pop(ref, None)
        if kept is not None and kept[0] == offset and set(kept[1]) == set(self.stream_algorithms):
            return kept[1]
        return {algorithm: (_hash_file(replica.ingest_data(ref), algorithm, offset) if offset
                            else hashlib.new(algorithm)) for algorithm in self.stream_algorithms}

    def healthy(self) -> list[Replica]:
        return [r for r in self.replicas if r.healthy()]

    # -- reading -------------------------------------------------------------------------------------
    def _locate(self, digest: Digest) -> tuple[Replica, BlobInfo]:
        for replica in self.healthy():
            with contextlib.suppress(BlobNotFound, OSError):
                return replica, replica.stat(digest)
        raise BlobNotFound(str(digest))

    async def stat(self, digest: Digest) -> BlobInfo:
        return (await self.run(self._locate, digest))[1]

    def _open_at(self, digest: Digest, offset: int) -> BinaryIO:
        replica, _ = self._locate(digest)
        f = replica.open(digest)
        f.seek(offset)
        return f

    async def read(self, digest: Digest, offset: int = 0, length: int | None = None,
                   chunk_size: int = STREAM_CHUNK) -> AsyncIterator[bytes | bytearray]:
        """The bytes in chunks, the next one read on a thread while the caller sends the current
        one. Each chunk is a new buffer (a transport may still hold the previous one), made on the
        event loop's thread: made on the pool's threads, their malloc arenas would keep them."""
        f = await self.run(self._open_at, digest, offset)
        remaining = length

        async def fill() -> bytearray:
            buffer = bytearray(chunk_size if remaining is None else min(chunk_size, remaining))
            got = await self.run(f.readinto, buffer)  # type: ignore[attr-defined]
            if got < len(buffer):
                del buffer[got:]
            return buffer
        ahead: asyncio.Future[bytearray] | None = asyncio.ensure_future(fill())
        try:
            while ahead is not None:
                chunk = await ahead
                ahead = None
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                if remaining is None or remaining > 0:
                    ahead = asyncio.ensure_future(fill())
                yield chunk
        finally:
            if ahead is not None:
                with contextlib.suppress(BaseException):
                    await ahead
            f.close()

    async def read_all(self, digest: Digest) -> bytes:
        def read() -> bytes:
            replica, _ = self._locate(digest)
            with replica.open(digest) as f:
                return f.read()
        return await self.run(read)

    def _walk_all(self) -> list[BlobInfo]:
        seen: dict[Digest, BlobInfo] = {}
        for replica in self.healthy():
            for info in replica.walk():
                seen.setdefault(info.digest, info)
        return sorted(seen.values(), key=lambda i: i.digest)

    async def walk(self) -> AsyncIterator[BlobInfo]:
        for info in await self.run(self._walk_all):
            yield info

    # -- deleting and repairing ----------------------------------------------------------------------
    async def delete(self, digest: Digest) -> None:
        def delete() -> bool:
            return any([r.delete(digest) for r in self.replicas if r.healthy()])
        if not await self.run(delete):
            raise BlobNotFound(str(digest))

    def _repair(self, digest: Digest) -> list[str]:
        source, _ = self._locate(digest)
        repaired = []
        for replica in self.healthy():
            if replica is not source and not replica.has(digest):
                replica.copy_from(source, digest)
                repaired.append(replica.name)
        return repaired

    async def repair(self, digest: Digest) -> list[str]:
        """Copy a blob to every healthy replica that lacks it; the names of those repaired."""
        return await self.run(self._repair, digest)

    # -- ingests -------------------------------------------------------------------------------------
    async def ingest(self, ref: str) -> ReplicatedIngest:
        return await self.run(self._open_ingest, ref)

    def _open_ingest(self, ref: str) -> ReplicatedIngest:
        healthy = self.healthy()
        if len(healthy) < self.required:
            raise NoReplicaAvailable(f"{len(healthy)} healthy replicas, {self.required} required")
        files: list[tuple[Replica, IngestFile]] = []
        for replica in healthy:
            try:  # the first copy is the one reads prefer: through the page cache; the others around it
                files.append((replica, replica.open_ingest(ref, direct=bool(files) and self.direct_secondaries)))
            except OSError as exc:
                log.warning("replica %s cannot ingest %s: %s", replica.name, ref, exc)
        if not files:
            raise NoReplicaAvailable("no replica can ingest")
        offset = files[0][1].tell()
        kept: list[tuple[Replica, IngestFile]] = [files[0]]
        for replica, f in files[1:]:
            size = f.tell()
            if size > offset:
                f.truncate(offset)
                f.seek(offset)
                size = offset
            if size == offset:
                kept.append((replica, f))
            else:  # it missed bytes: it gets a copy of the committed blob instead
                f.close()
                replica.remove_ingest(ref)
        return ReplicatedIngest(self, ref, kept, offset, self._resumed_hashers(ref, offset, kept[0][0]))

    def _ingest_status(self, ref: str) -> IngestStatus:
        for replica in self.healthy():
            with contextlib.suppress(BlobNotFound):
                return replica.ingest_status(ref)
        raise BlobNotFound(f"no ingest {ref}")

    async def ingest_status(self, ref: str) -> IngestStatus:
        return await self.run(self._ingest_status, ref)

    async def abort_ingest(self, ref: str) -> None:
        def abort() -> None:
            for replica in self.replicas:
                replica.remove_ingest(ref)
        self._hash_states.pop(ref, None)
        await self.run(abort)

    async def ingests(self) -> AsyncIterator[IngestStatus]:
        def listing() -> list[IngestStatus]:
            seen: dict[str, IngestStatus] = {}
            for replica in self.healthy():
                for status in replica.ingests():
                    seen.setdefault(status.ref, status)
            return sorted(seen.values(), key=lambda s: s.ref)
        for status in await self.run(listing):
            yield status


PARALLEL_SYNC_BYTES = 8 << 20  # under ALL, below this one thread syncs the copies in turn


def _update_all(hasher: Any, chunks: list[bytes | bytearray]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


class ReplicatedIngest:
    """An open ingest, written to every replica in ``files``. Not safe for concurrent writers:
    callers serialise the writes to one ingest reference."""

    def __init__(self, store: ReplicatedBlobStore, ref: str, files: list[tuple[Replica, IngestFile]],
                 offset: int, hashers: dict[str, Any]) -> None:
        self.store = store
        self.ref = ref
        self._files = files
        self._offset = offset
        self._hashers = hashers
        self._pending: list[bytes | bytearray] = []
        self._pending_size = 0
        self._inflight: asyncio.Future[None] | None = None
        self._inflight_size = 0
        self._closed = False

    @property
    def offset(self) -> int:
        return self._offset + self._inflight_size + self._pending_size

    async def write(self, data: bytes | bytearray) -> None:
        if not data:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self.store.flush_bytes:
            await self.flush()

    async def flush(self) -> None:
        """Hand the buffered bytes to the thread pool. Hashing and each replica's write run in
        parallel, and one flush stays in flight while the caller fills the next buffer."""
        await self._settle()
        if not self._pending:
            return
        # The chunks go to the threads as they came (vectored writes, a hash update each): joined
        # here, they would cost a copy of every byte on the event loop's thread.
        chunks, self._pending = self._pending, []
        self._inflight_size, self._pending_size = self._pending_size, 0
        self._inflight = asyncio.ensure_future(self._write(chunks, self._inflight_size))

    async def _settle(self) -> None:
        if self._inflight is not None:
            task, self._inflight = self._inflight, None
            try:
                await task
            finally:
                self._inflight_size = 0

    async def _write(self, chunks: list[bytes | bytearray], size: int) -> None:
        files = list(self._files)
        early = size >= EARLY_WRITEBACK_BYTES
        jobs = [self.store.run(f.append_all, chunks, early) for _, f in files]
        jobs += [self.store.run(_update_all, h, chunks) for h in self._hashers.values()]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for i, result in enumerate(results):
            if isinstance(result, BaseException) and (i >= len(files) or not isinstance(result, OSError)):
                raise result
        failed = [entry for entry, result in zip(files, results, strict=False) if isinstance(result, OSError)]
        if failed:
            await self.store.run(self._drop, failed)
        self._offset += size
        # Under ALL, a replica that misses bytes gets a copy at commit; under QUORUM, fail early.
        if not self._files or (self.store.policy is WritePolicy.QUORUM and len(self._files) < self.store.required):
            raise NoReplicaAvailable(f"only {len(self._files)} replicas left for ingest {self.ref}")

    def _drop(self, failed: list[tuple[Replica, IngestFile]]) -> None:
        for entry in failed:
            log.warning("replica %s failed writing ingest %s", entry[0].name, self.ref)
            self._files.remove(entry)
            with contextlib.suppress(OSError):
                entry[1].close()
            entry[0].remove_ingest(self.ref)

    async def hexdigest(self, algorithm: str = "sha256") -> str:
        """The hex digest of every byte written so far (after writing out what is buffered), in
        ``algorithm`` (one of ``stream_algorithms`` is free; another reads the file again): for a
        caller that learns a blob's name only from its content, before ``commit``."""
        await self.flush()
        await self._settle()
        return await self.store.run(self._digest_of_ingest, algorithm)

    async def commit(self, expected: Digest, expected_size: int | None = None) -> BlobInfo:
        await self.flush()
        await self._settle()
        return await self.store.run(self._commit_sync, expected, expected_size)

    def _digest_of_ingest(self, algorithm: str) -> str:
        hasher = self._hashers.get(algorithm)
        if hasher is not None:
            return str(hasher.hexdigest())
        for _, f in self._files:
            f.flush()
        return str(_hash_file(self._files[0][0].ingest_data(self.ref), algorithm).hexdigest())

    def _commit_sync(self, expected: Digest, expected_size: int | None) -> BlobInfo:
        if expected_size is not None and expected_size != self._offset:
            raise SizeMismatch(f"{self._offset} bytes written, {expected_size} expected")
        actual = self._digest_of_ingest(expected.algorithm)
        if actual != expected.hex:
            raise DigestMismatch(f"content hashes to {expected.algorithm}:{actual}, not {expected}")
        files, self._files = self._files, []
        self._closed = True
        committed, info = self._install_quorum(files, expected)
        if committed and self.store.policy is WritePolicy.ALL:
            for replica in self.store.healthy():
                if replica not in committed:
                    try:
                        replica.copy_from(committed[0], expected)
                        replica.remove_ingest(self.ref)
                        committed.append(replica)
                    except OSError as exc:
                        log.warning("replica %s failed copying %s: %s", replica.name, expected, exc)
        if info is None or len(committed) < self.store.required:
            raise NoReplicaAvailable(f"{expected} committed on {len(committed)} replicas, "
                                     f"{self.store.required} required")
        return info

    def _install_quorum(self, files: list[tuple[Replica, IngestFile]],
                        expected: Digest) -> tuple[list[Replica], BlobInfo | None]:
        """fsync + rename every copy, all at once (each disk flushes its own copy; in turn, a commit
        waited for the sum of the flushes). Under ALL this waits for every copy; under QUORUM it
        returns once ``required`` copies are in place, the others finishing on their own."""
        if len(files) == 1 or (self._offset < PARALLEL_SYNC_BYTES and self.store.policy is WritePolicy.ALL):
            results = [(replica, self._install_one(replica, f, expected)) for replica, f in files]
            installed = [(replica, i) for replica, i in results if i is not None]
            return [replica for replica, _ in installed], (installed[0][1] if installed else None)
        futures = {self.store._committer.submit(self._install_one, replica, f, expected): replica
                   for replica, f in files}
        wait_all = self.store.policy is WritePolicy.ALL
        committed: list[Replica] = []
        info: BlobInfo | None = None
        pending = set(futures)
        while pending and (wait_all or len(committed) < self.store.required):
            done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                result = future.result()
                if result is not None:
                    committed.append(futures[future])
                    info = info or result
        return committed, info

    def _install_one(self, replica: Replica, f: IngestFile, expected: Digest) -> BlobInfo | None:
        try:
            try:
                f.flush()
                os.fsync(f.fileno())
            finally:
                f.close()
            info = replica.install(replica.ingest_data(self.ref), expected)
            replica.remove_ingest(self.ref)
            return info
        except OSError as exc:
            log.warning("replica %s failed committing %s: %s", replica.name, expected, exc)
            return None

    async def close(self) -> None:
        """Keep what was written for a later resume."""
        if self._closed:
            return
        await self.flush()
        await self._settle()

        def close() -> None:
            for _, f in self._files:
                f.close()
        self._closed = True
        self.store.keep_hash_state(self.ref, self._offset, self._hashers)
        await self.store.run(close)

    async def abort(self) -> None:
        def abort() -> None:
            for _, f in self._files:
                with contextlib.suppress(OSError):
                    f.close()
            for replica in self.store.replicas:
                replica.remove_ingest(self.ref)
        self._pending.clear()
        self._pending_size = 0
        self._closed = True
        with contextlib.suppress(Exception):
            await self._settle()
        await self.store.run(abort)
