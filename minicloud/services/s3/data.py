"""Object bytes in the content-addressed blob store, one replica root per availability zone.

Writing: ``stage`` streams a body into an ingest (a temporary file per replica, hashed with
SHA-256 and MD5 on the store's threads as it is written) and computes the requested checksums;
the caller checks Content-MD5 / checksums, then commits while holding ``lock(digest)`` until its
metadata is committed (so a concurrent release of the same content cannot delete the blob in
between). STANDARD data goes to every zone and is acknowledged once a quorum of replicas has
fsynced it; ONEZONE_IA and REDUCED_REDUNDANCY go to one zone.

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
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from minicloud.services.s3.checksums import Checksums
from minicloud.services.s3.errors import EntityTooLarge, ServiceUnavailable
from minicloud.storage.blobs import Digest, ReplicatedBlobStore, WritePolicy
from minicloud.storage.blobs.core import BlobNotFound, NoReplicaAvailable
from minicloud.storage.blobs.replica import Replica
from minicloud.storage.blobs.store import ReplicatedIngest

log = logging.getLogger("minicloud.s3.data")

CHUNK = 1 << 20
ONE_ZONE_CLASSES = frozenset({"ONEZONE_IA", "REDUCED_REDUNDANCY"})
VERIFY_BEFORE_SENDING = 4 << 20  # blobs up to this size are verified before their first byte goes out


class CorruptBlob(Exception):
    pass


@dataclass(slots=True)
class Staged:
    """Bytes written to an ingest, not yet a blob."""

    ingest: ReplicatedIngest
    size: int
    sha256: str
    md5: str
    checksums: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"

    async def commit(self) -> None:
        try:
            await self.ingest.commit(Digest("sha256", self.sha256), self.size)
        except NoReplicaAvailable as exc:
            log.error("object data could not be made durable: %s", exc)
            raise ServiceUnavailable("Please reduce your request rate.") from None

    async def abort(self) -> None:
        with contextlib.suppress(Exception):
            await self.ingest.abort()


class ObjectData:
    def __init__(self, root: Path, zones: Sequence[str]) -> None:
        self.replicas = [Replica(root / zone, zone) for zone in zones]
        algorithms = ("sha256", "md5")
        self.store = ReplicatedBlobStore(self.replicas, WritePolicy.QUORUM, workers=8,
                                         stream_algorithms=algorithms)
        self._single = [ReplicatedBlobStore([r], WritePolicy.ALL, workers=2, stream_algorithms=algorithms)
                        for r in self.replicas]
        self._next_zone = 0
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def close(self) -> None:
        for store in (self.store, *self._single):
            store.close()

    def lock(self, digest: str) -> asyncio.Lock:
        """Held while a blob's reference count is being changed together with its file."""
        found = self._locks.get(digest)
        if found is None:
            found = self._locks[digest] = asyncio.Lock()
        return found

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
                    limit: int) -> Staged:
        store = self._store_for(storage_class)
        try:
            ingest = await store.ingest(f"s3-{uuid.uuid4().hex}")
        except NoReplicaAvailable as exc:
            log.error("no replica can take object data: %s", exc)
            raise ServiceUnavailable("Please reduce your request rate.") from None
        summer = Checksums(checksums)
        size = 0
        try:
            async for chunk in body:
                size += len(chunk)
                if size > limit:
                    raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size",
                                         MaxSizeAllowed=str(limit), ProposedSize=str(size))
                summer.update(chunk)
                await ingest.write(chunk)
            sha256 = await ingest.hexdigest("sha256")
            md5 = await ingest.hexdigest("md5")
        except BaseException:
            with contextlib.suppress(Exception):
                await ingest.abort()
            raise
        return Staged(ingest, size, sha256, md5, summer.values())

    async def delete(self, digest: str) -> None:
        """Remove a blob whose last reference is gone (the caller holds ``lock(digest)``)."""
        with contextlib.suppress(BlobNotFound):
            await self.store.delete(Digest.parse(digest))

    async def cleanup_ingests(self) -> int:
        """Throw away ingests a crash left behind (none is in progress when the server starts)."""
        refs = [status.ref async for status in self.store.ingests() if status.ref.startswith("s3-")]
        for ref in refs:
            await self.store.abort_ingest(ref)
        return len(refs)

    # -- reading -------------------------------------------------------------------------------------
    async def read(self, segments: Sequence[tuple[str, int]], start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes [start, end) of the concatenation of ``segments`` ((digest, size) pairs)."""
        offset = 0
        for digest, size in segments:
            seg_start, seg_end = offset, offset + size
            offset = seg_end
            if seg_end <= start or seg_start >= end:
                continue
            lo, hi = max(start, seg_start) - seg_start, min(end, seg_end) - seg_start
            async for chunk in self._read_blob(Digest.parse(digest), size, lo, hi):
                yield chunk

    def _sources(self, digest: Digest) -> list[Replica]:
        return [r for r in self.replicas if r.healthy() and r.path(digest).exists()]

    async def _read_blob(self, digest: Digest, size: int, lo: int, hi: int) -> AsyncIterator[bytes]:
        whole = lo == 0 and hi == size
        if whole and size <= VERIFY_BEFORE_SENDING:
            yield await self._read_small(digest)
            return
        sources = await self.store.run(self._sources, digest)
        if not sources:
            raise BlobNotFound(str(digest))
        replica = sources[0]
        f = await self.store.run(_open_at, replica, digest, lo)
        hasher = hashlib.sha256() if whole else None
        held = b""  # a whole blob's last chunk goes out only once the digest has matched
        try:
            remaining = hi - lo
            while remaining > 0:
                chunk = await self.store.run(_read_chunk, f, min(CHUNK, remaining), hasher)
                if not chunk:
                    raise CorruptBlob(f"{digest} on {replica.name} is shorter than {size} bytes")
                remaining -= len(chunk)
                if held:
                    yield held
                held = chunk
            if hasher is not None and hasher.hexdigest() != digest.hex:
                raise CorruptBlob(f"{digest} on {replica.name} does not match its digest")
        except CorruptBlob:
            await self._repair(replica, digest)
            raise
        finally:
            await self.store.run(f.close)
        if held:
            yield held

    async def _read_small(self, digest: Digest) -> bytes:
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
        """Move a corrupt copy aside and copy the blob back from a replica whose copy verifies."""
        log.error("replica %s holds a corrupt copy of %s: repairing it", bad.name, digest)

        def repair() -> None:
            with contextlib.suppress(OSError):
                os.replace(bad.path(digest), bad.path(digest).with_suffix(".corrupt"))
            for other in self.replicas:
                if other is bad or not other.healthy():
                    continue
                with contextlib.suppress(OSError, BlobNotFound):
                    if _read_verified(other, digest) is not None:
                        bad.copy_from(other, digest)
                        return
        await self.store.run(repair)


def _open_at(replica: Replica, digest: Digest, offset: int) -> BinaryIO:
    f = replica.open(digest)
    f.seek(offset)
    return f


def _read_chunk(f: BinaryIO, size: int, hasher: hashlib._Hash | None) -> bytes:
    data = f.read(size)
    if hasher is not None:
        hasher.update(data)
    return data


def _read_verified(replica: Replica, digest: Digest) -> bytes | None:
    """The blob's bytes from one replica, or None if they do not match the digest."""
    with replica.open(digest) as f:
        data = f.read()
    return data if hashlib.sha256(data).hexdigest() == digest.hex else None
