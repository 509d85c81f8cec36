"""Object bytes in the content-addressed blob store, one replica root per availability zone.

Writing: ``stage`` streams a body into an ingest (a temporary file per replica, hashed with
SHA-256 and MD5 on the store's threads as it is written) and computes the requested checksums;
the caller checks Content-MD5 / checksums, then commits while holding ``lock(digest)`` until its
metadata is committed (so a concurrent release of the same content cannot delete the blob in
between). STANDARD data goes to every zone and is acknowledged once a quorum of replicas has
fsynced it; ONEZONE_IA and REDUCED_REDUNDANCY go to one zone. A body of at most ``SMALL`` bytes
is written by the small-blob writer process: up to ``pack.PACK_LIMIT`` into each zone's SQLite
pack (group commit), larger ones as files. Blobs written as files before the pack existed stay
files, and every read, repair and removal looks in both tiers.

Reading: ``read`` streams a byte range of an object's segments (one blob, or the parts of a
multipart object) in ~1 MiB chunks. A blob read whole is verified against its digest: a small
one before any byte is sent (a bad copy is skipped for another replica and repaired); a large
one as it streams (a bad copy cuts the response short, so the client retries, and is repaired).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import threading
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from minicloud.services.s3 import sealed
from minicloud.services.s3.blob_locks import BlobLock, BlobLocks, ReadMark, ReadMarks
from minicloud.services.s3.checksums import Checksums
from minicloud.services.s3.crypto import Sealer
from minicloud.services.s3.errors import EntityTooLarge, ServiceUnavailable
from minicloud.services.s3.sealed import CorruptBlob, SealedBody, overlapped
from minicloud.services.s3.small import INLINE_BYTES, SmallDigests
from minicloud.storage.blobs import Digest, ReplicatedBlobStore, WritePolicy
from minicloud.storage.blobs.core import BlobNotFound, NoReplicaAvailable
from minicloud.storage.blobs.replica import Replica
from minicloud.storage.blobs.small import healthy_replicas, prepare_fanout
from minicloud.storage.blobs.store import ReplicatedIngest
from minicloud.storage.blobs.writerproc import shared_writer

log = logging.getLogger("minicloud.s3.data")

CHUNK = 4 << 20  # an unencrypted blob is read (and hashed) this many bytes at a time for a response
WORKERS = 24  # file work in parallel: fsyncs overlap on the device
SMALL = 1 << 20  # bodies up to this size are received in memory and written to replicas in one go
ONE_ZONE_CLASSES = frozenset({"ONEZONE_IA", "REDUCED_REDUNDANCY"})
# Small one-zone objects go this many in a row to one zone, then as many to the next: the small-blob
# writer's round then commits one zone's pack (one fsync) where one object per zone in turn made it
# commit every zone's. 4 KiB ONEZONE_IA PUTs at 16 connections, alternating runs: ~2,290 -> ~2,420/s,
# median latency ~5.3 -> ~4.9 ms. Over any longer stretch the zones still get equal shares.
ONE_ZONE_RUN = 64
VERIFY_BEFORE_SENDING = 4 << 20  # blobs up to this size are verified before their first byte goes out
BODY_BATCH = 1 << 20  # a large body is checksummed, sealed and written this many bytes at a time


class _Counts:
    """Outcomes of one blob's copies, counted on the writer's threads."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.ok = self.finished = 0
        self.lock = threading.Lock()

    def add(self, ok: bool) -> tuple[int, bool]:
        """The copies that succeeded so far, and whether this was the last outcome."""
        with self.lock:
            self.ok += ok
            self.finished += 1
            return self.ok, self.finished == self.total


def _resolve(future: asyncio.Future[int], value: int) -> None:
    if not future.done():
        future.set_result(value)


@dataclass(slots=True)
class Staged:
    """Bytes received, not yet a blob: in an ingest (large bodies) or in memory (small ones)."""

    size: int
    sha256: str
    md5: str
    checksums: dict[str, str] = field(default_factory=dict)
    ingest: ReplicatedIngest | None = None
    body: bytes | None = None
    replicas: list[Replica] = field(default_factory=list)
    writer: ObjectData | None = None
    sealed_sha256: str | None = None  # an encrypted body: the digest and size of the sealed blob
    sealed_size: int | None = None

    @property
    def digest(self) -> str:
        return f"sha256:{self.sealed_sha256 or self.sha256}"

    async def commit(self) -> None:
        blob = Digest("sha256", self.sealed_sha256 or self.sha256)
        try:
            if self.ingest is not None:
                await self.ingest.commit(blob, self.sealed_size if self.sealed_size is not None else self.size)
            elif self.writer is not None and self.body is not None:
                await self.writer.write_replicas(self.replicas, self.body, blob)
        except NoReplicaAvailable as exc:
            log.error("object data could not be made durable: %s", exc)
            raise ServiceUnavailable("Please reduce your request rate.") from None

    async def abort(self) -> None:
        if self.ingest is not None:
            with contextlib.suppress(Exception):
                await self.ingest.abort()


class ObjectData:
    def __init__(self, root: Path, zones: Sequence[str]) -> None:
        self.replicas = [Replica(root / zone, zone) for zone in zones]
        algorithms = ("sha256",)  # a large body's MD5 is the staging pipeline's, over the plaintext
        self.store = ReplicatedBlobStore(self.replicas, WritePolicy.QUORUM, workers=WORKERS,
                                         stream_algorithms=algorithms)
        self._single = [ReplicatedBlobStore([r], WritePolicy.ALL, workers=2, stream_algorithms=algorithms)
                        for r in self.replicas]
        for replica in self.replicas:
            prepare_fanout(replica)
            replica.enable_pack()  # small copies: one SQLite pack per zone, group-committed
        self._next_zone = 0  # a large one-zone object goes to the next zone in turn
        self._small_turn = 0  # small ones: ONE_ZONE_RUN in a row to a zone
        self._locks = BlobLocks(root / "blob-locks")  # shared with the S3 workers
        self._marks = ReadMarks(root / "blob-reads")  # long reads, seen by every process's deletions
        self._readers: dict[str, int] = {}

    def close(self) -> None:
        for store in (self.store, *self._single):
            store.close()
        for replica in self.replicas:  # its threads are done: their pack connections go too
            if replica.pack is not None:
                replica.pack.close()
        self._locks.close()
        self._marks.close()

    def lock(self, digest: str) -> BlobLock:
        """Held while a blob's reference count is being changed together with its file (by any process)."""
        return self._locks.lock(digest)

    def _store_for(self, storage_class: str) -> ReplicatedBlobStore:
        if storage_class not in ONE_ZONE_CLASSES or len(self._single) == 1:
            return self.store
        healthy = [s for s in self._single if s.replicas[0].healthy()]
        if not healthy:
            return self.store
        self._next_zone = (self._next_zone + 1) % len(healthy)
        return healthy[self._next_zone]

    # -- writing -------------------------------------------------------------------------------------
    async def stage(self, body: AsyncIterable[bytes], storage_class: str, *, checksums: set[str],
                    limit: int, sealer: Sealer | None = None, plain_sha256: bool = True) -> Staged:
        """Receive a body (sealed on the way when ``sealer`` is given: the checksums, MD5 and
        SHA-256 stay those of the plaintext; a sealed body's SHA-256 only when ``plain_sha256``,
        else ``Staged.sha256`` is empty). One that fits in ``SMALL`` stays in memory until
        ``commit`` writes it to the replicas in parallel; a larger one streams into an ingest."""
        iterator = aiter(body)
        head = bytearray()
        while len(head) <= SMALL:
            try:
                head += await anext(iterator)
            except StopAsyncIteration:
                return await self._stage_small(bytes(head), storage_class, checksums, limit, sealer,
                                               plain_sha256)
        return await self._stage_large(bytes(head), iterator, storage_class, checksums, limit, sealer,
                                       plain_sha256)

    async def _stage_small(self, data: bytes, storage_class: str, checksums: set[str], limit: int,
                           sealer: Sealer | None, plain_sha256: bool = True) -> Staged:
        _check_limit(len(data), limit)

        found = (SmallDigests(data, checksums, sealer, plain_sha256) if len(data) <= INLINE_BYTES  # on the loop
                 else await self.store.run(SmallDigests, data, checksums, sealer, plain_sha256))
        staged = Staged(len(data), found.sha256, found.md5, found.checksums, body=found.body,
                        sealed_sha256=found.sealed_sha256, sealed_size=found.sealed_size)
        staged.replicas, staged.writer = self._replicas_for(storage_class), self
        return staged

    async def _stage_large(self, head: bytes, rest: AsyncIterator[bytes], storage_class: str,
                           checksums: set[str], limit: int, sealer: Sealer | None,
                           plain_sha256: bool = True) -> Staged:
        """A body larger than ``SMALL``; a sealed one's plaintext SHA-256 only when ``plain_sha256``
        (a caller that has no use for it leaves ``Staged.sha256`` empty and saves a hash pass)."""
        store = self._store_for(storage_class)
        try:
            ingest = await store.ingest(f"s3-{uuid.uuid4().hex}")
        except NoReplicaAvailable as exc:
            log.error("no replica can take object data: %s", exc)
            raise ServiceUnavailable("Please reduce your request rate.") from None
        pipeline = _BodyPipeline(self.store, ingest, Checksums(checksums), sealer, plain_sha256)
        size = len(head)
        try:
            if sealer is not None:
                await ingest.write(sealer.header)
            await pipeline.feed(head)
            async for chunk in rest:
                size += len(chunk)
                _check_limit(size, limit)
                await pipeline.feed(chunk)
            md5, plain_digest = await pipeline.finish()
            if sealer is not None:
                sealed_sha256 = await ingest.hexdigest("sha256")
                return Staged(size, plain_digest or "", md5, pipeline.summer.values(), ingest=ingest,
                              sealed_sha256=sealed_sha256, sealed_size=ingest.offset)
            sha256 = await ingest.hexdigest("sha256")
        except BaseException:
            await pipeline.cancel()
            with contextlib.suppress(Exception):
                await ingest.abort()
            raise
        return Staged(size, sha256, md5, pipeline.summer.values(), ingest=ingest)

    def _replicas_for(self, storage_class: str) -> list[Replica]:
        """A small object's zones: every healthy one, or for a one-zone class one of them, the same
        for ``ONE_ZONE_RUN`` objects in a row."""
        healthy = healthy_replicas(self.replicas)
        if storage_class in ONE_ZONE_CLASSES and healthy:
            self._small_turn = (self._small_turn + 1) % (len(healthy) * ONE_ZONE_RUN)
            return [healthy[self._small_turn // ONE_ZONE_RUN]]
        return healthy

    async def write_replicas(self, replicas: list[Replica], data: bytes, digest: Digest) -> None:
        """Write a small blob to each replica in parallel (by the writer process: temporary file,
        fsync, rename, directory fsync); return once a quorum has it durably, the others
        finishing in the background."""
        need = len(replicas) // 2 + 1 if len(replicas) > 1 else 1
        if not replicas:
            raise NoReplicaAvailable("0 healthy replicas")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        counts = _Counts(len(replicas))

        def done(error: OSError | None) -> None:
            if error is not None:
                log.warning("a replica failed writing %s: %s", digest, error)
            ok, finished = counts.add(error is None)
            if ok == need or (finished and ok < need):
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                    loop.call_soon_threadsafe(_resolve, future, ok)
        writer = shared_writer()
        for replica in replicas:
            writer.submit(replica, data, digest, done)
        written = await future
        if written < need:
            raise NoReplicaAvailable(f"{digest} written to {written} replicas, {need} required")

    def lock_all(self, digests: list[str]) -> contextlib.AbstractAsyncContextManager[None]:
        """``lock`` of every digest (see ``BlobLocks.lock_all``)."""
        return self._locks.lock_all(digests)

    async def delete(self, digest: str) -> None:
        """``delete_many`` of one blob."""
        await self.delete_many([digest])

    async def delete_many(self, digests: list[str]) -> None:
        """Remove blobs whose last reference is gone (the caller holds their ``lock``): every
        healthy replica's copy, by the writer process, one request per replica (they share its
        commit)."""
        blobs = [Digest.parse(digest) for digest in digests]
        replicas = healthy_replicas(self.replicas)
        if not replicas or not blobs:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        counts = _Counts(len(replicas))

        def done(error: OSError | None) -> None:
            if error is not None and not isinstance(error, FileNotFoundError):
                log.warning("a replica failed removing blobs: %s", error)
            ok, finished = counts.add(error is None)
            if finished:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_resolve, future, ok)
        writer = shared_writer()
        for replica in replicas:
            writer.submit_delete(replica, blobs, done)
        await future

    async def cleanup_ingests(self) -> int:
        """Throw away ingests a crash left behind (none is in progress when the server starts)."""
        refs = [status.ref async for status in self.store.ingests() if status.ref.startswith("s3-")]
        for ref in refs:
            await self.store.abort_ingest(ref)

        def small_leftovers() -> int:
            # temporary files of small copies, and directories of copies between replicas (a
            # packed copy's batch left nothing: SQLite drops an uncommitted transaction on open)
            found = [p for r in self.replicas for p in r.ingest_root.glob(".s3-*")]
            for path in found:
                path.unlink(missing_ok=True)
            copies = [p for r in self.replicas for p in r.ingest_root.glob(".copy-*")]
            for path in copies:
                shutil.rmtree(path, ignore_errors=True)
            return len(found) + len(copies)
        return len(refs) + await self.store.run(small_leftovers)

    # -- reading -------------------------------------------------------------------------------------
    async def read(self, segments: Sequence[tuple[str, int]], start: int, end: int
                   ) -> AsyncIterator[bytes | bytearray]:
        """The bytes [start, end) of the concatenation of ``segments`` ((digest, size) pairs)."""
        mark = self._mark(segments, start, end)
        try:
            for digest, size, lo, hi in overlapped(segments, start, end):
                # (closed here, not by the garbage collector later, when this read is abandoned)
                async with contextlib.aclosing(self._read_blob(Digest.parse(digest), size, lo, hi)) as chunks:
                    async for chunk in chunks:
                        yield chunk
        finally:
            if mark is not None:
                mark.close()

    def _mark(self, segments: Sequence[tuple[str, int]], start: int, end: int) -> ReadMark | None:
        """For a long read (more than ``SMALL`` bytes), marks on the blobs it will read, for the
        deletions of other processes (``reading``); a short one ends well within a release's grace."""
        if end - start <= SMALL:
            return None
        return self._marks.hold([digest for digest, _size, _lo, _hi in overlapped(segments, start, end)])

    def read_sealed(self, segments: Sequence[tuple[str, int]], start: int, end: int, kek: bytes) -> SealedBody:
        """``read`` for encrypted objects: ``segments`` are sealed blobs with their plaintext
        sizes; only the frames [start, end) touches are read, each authenticated by its tag (see
        ``sealed``: read on the event loop, or by a thread with ``read_next``). A copy that fails
        is repaired and the read goes on from another replica."""
        spans = sealed.spans(self._sources, self._repair_now, segments, start, end, kek)
        for span in spans:
            self._readers[span.name] = self._readers.get(span.name, 0) + 1
        mark = self._mark(segments, start, end)

        def release() -> None:
            if mark is not None:
                mark.close()
            for span in spans:
                left = self._readers.get(span.name, 1) - 1
                if left:
                    self._readers[span.name] = left
                else:
                    self._readers.pop(span.name, None)
        return SealedBody(spans, self.store.run, release)

    def _sources(self, digest: Digest) -> list[Replica]:
        return [r for r in self.replicas if r.healthy() and r.has(digest)]

    def reading(self, digest: str) -> bool:
        """Whether a response is streaming the blob right now, in this process or (a long read) another."""
        return self._readers.get(digest, 0) > 0 or self._marks.anyone_reading(digest)

    async def _read_blob(self, digest: Digest, size: int, lo: int, hi: int
                         ) -> AsyncGenerator[bytes | bytearray, None]:
        name = str(digest)
        self._readers[name] = self._readers.get(name, 0) + 1
        try:
            async with contextlib.aclosing(self._read_blob_counted(digest, size, lo, hi)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            left = self._readers.get(name, 1) - 1
            if left:
                self._readers[name] = left
            else:
                self._readers.pop(name, None)

    async def _read_blob_counted(self, digest: Digest, size: int, lo: int, hi: int
                                 ) -> AsyncGenerator[bytes | bytearray, None]:
        whole = lo == 0 and hi == size
        if whole and size <= VERIFY_BEFORE_SENDING:
            yield await self._read_small(digest)
            return
        sources = await self.store.run(self._sources, digest)
        if not sources:
            raise BlobNotFound(str(digest))
        replica = sources[0]
        f = await self.store.run(replica.open, digest)
        hasher = hashlib.sha256() if whole else None

        def start(at: int) -> tuple[bytearray, asyncio.Future[int]]:
            """The chunk at ``at``, read and hashed on a thread while the one before it is sent (one
            job at a time: the hash goes in order); its buffer made here, on the event loop's
            thread (see ``_BodyPipeline._hand_off``)."""
            buffer = bytearray(min(CHUNK, hi - at))
            return buffer, asyncio.ensure_future(self.store.run(_read_chunk_at, f, at, buffer, hasher))
        held: bytearray | None = None  # a whole blob's last chunk goes out only once the digest has matched
        following: tuple[bytearray, asyncio.Future[int]] | None = start(lo)
        offset = lo
        try:
            while following is not None:
                chunk, job = following
                following = None
                if await job < len(chunk):
                    raise CorruptBlob(f"{digest} on {replica.name} is shorter than {size} bytes")
                offset += len(chunk)
                if offset < hi:
                    following = start(offset)
                if held is not None:
                    yield held  # never reused: the transport may keep it
                held = chunk
            if hasher is not None and hasher.hexdigest() != digest.hex:
                raise CorruptBlob(f"{digest} on {replica.name} does not match its digest")
        except CorruptBlob:
            await self._repair(replica, digest)
            raise
        finally:
            if following is not None:
                with contextlib.suppress(BaseException):
                    await following[1]
            await self.store.run(f.close)
        if held is not None:
            yield held

    async def _read_small(self, digest: Digest) -> bytes:
        if digest.algorithm == "sha256":  # packed copies: read on the event loop (cached pages: microseconds)
            for replica in healthy_replicas(self.replicas):
                try:
                    data = replica.packed(digest)
                except OSError as exc:
                    log.warning("replica %s cannot read %s: %s", replica.name, digest, exc)
                    continue
                if data is None:
                    continue
                good = (_digest_matches(data, digest) if len(data) <= INLINE_BYTES
                        else await self.store.run(_digest_matches, data, digest))
                if good:
                    return data
                await self._repair(replica, digest)
        for replica in await self.store.run(self._sources, digest):
            try:
                data = await self.store.run(_read_verified, replica, digest)
            except OSError as exc:
                log.warning("replica %s cannot read %s: %s", replica.name, digest, exc)
                continue
            if data is not None:
                return data
            await self._repair(replica, digest)
        raise BlobNotFound(str(digest))

    async def _repair(self, bad: Replica, digest: Digest) -> None:
        await self.store.run(self._repair_now, bad, digest)

    def _repair_now(self, bad: Replica, digest: Digest) -> None:
        """Move a corrupt copy aside and copy the blob back from a replica whose copy verifies."""
        log.error("replica %s holds a corrupt copy of %s: repairing it", bad.name, digest)
        bad.quarantine(digest)
        for other in self.replicas:
            if other is bad or not other.healthy():
                continue
            with contextlib.suppress(OSError, BlobNotFound):
                if _read_verified(other, digest) is not None:
                    bad.copy_from(other, digest)
                    return


class _BodyPipeline:
    """A large body on its way into an ingest, in batches of ``BODY_BATCH`` bytes: while the event
    loop receives the next batch, one thread checksums and seals the previous one (then the ingest
    writes it to every replica, hashing it with SHA-256, on other threads), and MD5, the slowest
    hash, runs on a thread of its own. Each stage keeps one batch in flight, in order."""

    def __init__(self, store: ReplicatedBlobStore, ingest: ReplicatedIngest, summer: Checksums,
                 sealer: Sealer | None, plain_sha256: bool) -> None:
        self.store = store
        self.ingest = ingest
        self.summer = summer
        self.sealer = sealer
        self.md5 = hashlib.md5()
        self.plain_sha256 = hashlib.sha256() if sealer is not None and plain_sha256 else None
        self._chunks: list[bytes] = []
        self._size = 0
        self._md5_job: asyncio.Future[None] | None = None
        self._seal_job: asyncio.Future[list[bytes | bytearray]] | None = None

    async def feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size >= BODY_BATCH:
            await self._hand_off()

    async def _hand_off(self) -> None:
        # The chunks go to the threads as they came (no join: that copy would be the event loop's).
        chunks, self._chunks, size, self._size = self._chunks, [], self._size, 0
        if self._md5_job is not None:
            await self._md5_job
        self._md5_job = asyncio.ensure_future(self.store.run(_update_all, self.md5, chunks))
        if self._seal_job is not None:
            job, self._seal_job = self._seal_job, None
            for piece in await job:
                await self.ingest.write(piece)
        # Large buffers are allocated here, on the event loop's thread: made on the pool's threads,
        # each thread's malloc arena would keep some of them, and the server's RSS would grow.
        out = bytearray(self.sealer.sealed_bytes(size)) if self.sealer is not None else None
        self._seal_job = asyncio.ensure_future(self.store.run(self._seal, chunks, out))

    def _seal(self, chunks: list[bytes], out: bytearray | None) -> list[bytes | bytearray]:
        for chunk in chunks:
            self.summer.update(chunk)
        if self.sealer is None or out is None:
            return list(chunks)
        if self.plain_sha256 is not None:
            _update_all(self.plain_sha256, chunks)
        self.sealer.feed_into_many(chunks, out)
        return [out]

    async def finish(self) -> tuple[str, str | None]:
        """Everything handed to the ingest: the body's MD5 and (sealed bodies) plaintext SHA-256."""
        if self._size:
            await self._hand_off()
        if self._md5_job is not None:
            await self._md5_job
        if self._seal_job is not None:
            job, self._seal_job = self._seal_job, None
            for piece in await job:
                await self.ingest.write(piece)
        if self.sealer is not None:
            await self.ingest.write(await self.store.run(self.sealer.finish))
        return self.md5.hexdigest(), self.plain_sha256.hexdigest() if self.plain_sha256 is not None else None

    async def cancel(self) -> None:
        for job in (self._md5_job, self._seal_job):
            if job is not None:
                with contextlib.suppress(BaseException):
                    await job


def _update_all(hasher: hashlib._Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


def _check_limit(size: int, limit: int) -> None:
    if size > limit:
        raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size",
                             MaxSizeAllowed=str(limit), ProposedSize=str(size))


def _read_chunk_at(f: BinaryIO, offset: int, buffer: bytearray, hasher: hashlib._Hash | None) -> int:
    """Fill ``buffer`` from ``offset`` of the file (fewer bytes only at its end), hashing what was read."""
    fd, view, got = f.fileno(), memoryview(buffer), 0
    while got < len(buffer):
        more = os.preadv(fd, [view[got:]], offset + got)
        if more <= 0:
            break
        got += more
    if hasher is not None:
        hasher.update(view[:got])
    return got


def _digest_matches(data: bytes, digest: Digest) -> bool:
    return hashlib.sha256(data).hexdigest() == digest.hex


def _read_verified(replica: Replica, digest: Digest) -> bytes | None:
    """The blob's bytes from one replica (either tier), or None if they do not match the digest."""
    data = replica.read_bytes(digest)
    return data if _digest_matches(data, digest) else None
