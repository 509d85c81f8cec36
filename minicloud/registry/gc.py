"""Online garbage collection of the registry, safe beside concurrent pushes.

One pass, in this order:
1. upload sessions untouched for ``upload_ttl`` are cancelled, and ingests that no session owns
   (an interrupted monolithic upload) are removed once as old;
2. a repository's link to a blob that none of its manifests refers to is removed once it is older
   than ``link_grace`` (a push links its layers before it puts the manifest that names them);
3. a blob that no repository links is deleted once its file is older than ``blob_grace``; one that
   is linked gets a copy in every zone that lacks one (a push is acknowledged once a quorum of zones
   has the blob: a zone that failed, or a crash before the last copy was in place, leaves it short).

Why this never races a push: a blob is committed (renamed into place, mtime = now, or touched when
it already existed) and then linked in the same request, well inside ``blob_grace``; a link
is created before its manifest, well inside ``link_grace``; and the collector reads links only after
it listed the blobs, so a link made during the pass protects its blob.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson
import sqlalchemy as sa

from minicloud.registry.tables import blob_links, manifests, uploads
from minicloud.storage.blobs import BlobNotFound, Digest, ReplicatedBlobStore

if TYPE_CHECKING:
    from minicloud.storage.metadata.db import Database

log = logging.getLogger("minicloud.registry.gc")


@dataclass
class GcReport:
    uploads: list[str] = field(default_factory=list)
    ingests: list[str] = field(default_factory=list)
    links: list[tuple[int, str]] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    repaired: list[str] = field(default_factory=list)  # "<digest> <zone>": copies restored


def referenced(content: bytes) -> set[str]:
    """The digests a stored manifest names (config, layers, an index's manifests)."""
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        return set()
    found: set[str] = set()
    if not isinstance(doc, dict):
        return found
    config = doc.get("config")
    for descriptor in [config, *(doc.get("layers") or []), *(doc.get("manifests") or [])]:
        if isinstance(descriptor, dict) and isinstance(descriptor.get("digest"), str):
            found.add(descriptor["digest"])
    return found


def _deleter(upload_id: str) -> Callable[[sa.Connection], object]:
    return lambda conn: conn.execute(uploads.delete().where(uploads.c.id == upload_id))


def _linked(digests: list[str]) -> Callable[[sa.Connection], set[str]]:
    def read(conn: sa.Connection) -> set[str]:
        query = sa.select(blob_links.c.digest).where(blob_links.c.digest.in_(digests)).distinct()
        return {r.digest for r in conn.execute(query)}
    return read


class RegistryGC:
    name = "registry-gc"
    interval = 600.0

    def __init__(self, db: Database, blobs: ReplicatedBlobStore, *, upload_ttl: timedelta = timedelta(hours=24),
                 link_grace: timedelta = timedelta(hours=24), blob_grace: timedelta = timedelta(hours=1)) -> None:
        self.db = db
        self.blobs = blobs
        self.upload_ttl = upload_ttl
        self.link_grace = link_grace
        self.blob_grace = blob_grace

    async def reconcile(self) -> None:
        report = await self.collect(datetime.now(UTC))
        if report.repaired:
            log.warning("registry gc: restored %d missing blob copies: %s", len(report.repaired),
                        ", ".join(report.repaired[:20]))
        if report.uploads or report.blobs or report.links or report.ingests:
            log.info("registry gc: %d uploads, %d ingests, %d links, %d blobs (%d bytes)", len(report.uploads),
                     len(report.ingests), len(report.links), len(report.blobs), report.bytes_freed)

    async def collect(self, now: datetime) -> GcReport:
        report = GcReport()
        await self._uploads(now, report)
        await self._links(now, report)
        await self._blobs(now, report)
        return report

    async def _uploads(self, now: datetime, report: GcReport) -> None:
        limit = now - self.upload_ttl
        stale = await self.db.read(lambda conn: [r.id for r in conn.execute(
            sa.select(uploads.c.id).where(uploads.c.updated_at < limit))])
        for upload_id in stale:
            await self.blobs.abort_ingest(upload_id)
            await self.db.write(_deleter(upload_id))
            report.uploads.append(upload_id)
        live = set(await self.db.read(lambda conn: [r.id for r in conn.execute(sa.select(uploads.c.id))]))
        async for ingest in self.blobs.ingests():
            if ingest.ref not in live and ingest.updated_at < limit:
                await self.blobs.abort_ingest(ingest.ref)
                report.ingests.append(ingest.ref)

    async def _links(self, now: datetime, report: GcReport) -> None:
        limit = now - self.link_grace

        def sweep(conn: sa.Connection) -> list[tuple[int, str]]:
            old = conn.execute(sa.select(blob_links.c.repository_id, blob_links.c.digest).where(
                blob_links.c.created_at < limit)).all()
            if not old:
                return []
            wanted: dict[int, set[str]] = {}
            for repository_id in {r.repository_id for r in old}:
                names: set[str] = set()
                for row in conn.execute(sa.select(manifests.c.content).where(
                        manifests.c.repository_id == repository_id)):
                    names |= referenced(bytes(row.content))
                wanted[repository_id] = names
            dropped = [(r.repository_id, r.digest) for r in old if r.digest not in wanted[r.repository_id]]
            for repository_id, digest in dropped:
                conn.execute(blob_links.delete().where(blob_links.c.repository_id == repository_id,
                                                       blob_links.c.digest == digest,
                                                       blob_links.c.created_at < limit))
            return dropped
        report.links.extend(await self.db.write(sweep))

    async def _blobs(self, now: datetime, report: GcReport) -> None:
        limit = now - self.blob_grace
        candidates = [info async for info in self.blobs.walk() if info.created_at < limit]
        if not candidates:
            return
        names = [str(info.digest) for info in candidates]
        linked: set[str] = set()
        for start in range(0, len(names), 500):
            linked |= await self.db.read(_linked(names[start:start + 500]))
        for info in candidates:
            if str(info.digest) in linked:
                try:
                    report.repaired.extend(f"{info.digest} {zone}" for zone in await self.blobs.repair(info.digest))
                except (BlobNotFound, OSError) as exc:
                    log.warning("registry gc: cannot restore the copies of %s: %s", info.digest, exc)
                continue
            try:
                fresh = await self.blobs.stat(Digest.parse(str(info.digest)))
            except BlobNotFound:
                continue
            if fresh.created_at >= limit:  # touched by a push since it was listed
                continue
            await self.blobs.delete(info.digest)
            report.blobs.append(str(info.digest))
            report.bytes_freed += info.size
