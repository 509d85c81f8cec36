"""The scrub controller: every ``interval`` seconds, read every copy of every S3 blob on every
zone's replica (files and packed rows) and repair corrupt or missing copies
(``minicloud.storage.blobs.repair``); remove orphans; then give the free pages of each zone's
small-blob pack back to the file system.

Blobs of STANDARD (every-zone) objects and uploads are restored on every zone; ONEZONE_IA and
REDUCED_REDUNDANCY blobs are verified where they are. ``MINICLOUD_S3_SCRUB_SECONDS`` sets the
interval (default one hour; tests use a second).

An orphan is a blob no object, version or part references (no ``s3_blobs`` row) whose newest
copy is older than ``MINICLOUD_S3_ORPHAN_SECONDS`` (default one hour): the copies of a PUT whose
metadata never committed (the server died in between), or of a release cut short by a stop. It
is removed under the blob's lock after its reference is checked again, like a released blob; the
grace period covers a PUT whose copies are written and whose metadata is about to commit.
"""

from __future__ import annotations

import json
import logging
import os
import time

import sqlalchemy as sa

from minicloud.services.s3 import store
from minicloud.services.s3.data import ONE_ZONE_CLASSES, ObjectData
from minicloud.services.s3.tables import s3_blobs, s3_objects, s3_upload_parts, s3_uploads
from minicloud.storage.blobs import Digest
from minicloud.storage.blobs.repair import Scrubber
from minicloud.storage.metadata.db import Database

log = logging.getLogger("minicloud.s3.scrub")

DEFAULT_INTERVAL = 3600.0
DEFAULT_ORPHAN_GRACE = 3600.0


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "")
    try:
        value = float(text) if text else default
    except ValueError:
        value = default
    return value if value > 0 else default


def interval_from_environment() -> float:
    return _seconds("MINICLOUD_S3_SCRUB_SECONDS", DEFAULT_INTERVAL)


def referenced_digests(conn: sa.Connection) -> set[str]:
    return {digest for (digest,) in conn.execute(sa.select(s3_blobs.c.digest))}


def every_zone_digests(conn: sa.Connection) -> set[str]:
    """Digests that belong on every zone: data of objects and parts not kept in one zone."""
    found: set[str] = set()
    rows = conn.execute(sa.select(s3_objects.c.digest, s3_objects.c.parts).where(
        s3_objects.c.storage_class.not_in(sorted(ONE_ZONE_CLASSES)), s3_objects.c.delete_marker == sa.false()))
    for digest, parts in rows:
        if digest:
            found.add(digest)
        if parts:
            found.update(str(d) for d, _ in json.loads(parts))
    parts_query = (sa.select(s3_upload_parts.c.digest)
                   .join(s3_uploads, s3_uploads.c.upload_id == s3_upload_parts.c.upload_id)
                   .where(s3_uploads.c.storage_class.not_in(sorted(ONE_ZONE_CLASSES))))
    found.update(digest for (digest,) in conn.execute(parts_query))
    return found


class ScrubController:
    name = "s3-scrub"

    def __init__(self, db: Database, data: ObjectData, interval: float = DEFAULT_INTERVAL) -> None:
        self.db = db
        self.data = data
        self.interval = interval
        self.scrubber = Scrubber(data.replicas)
        self.orphan_grace = _seconds("MINICLOUD_S3_ORPHAN_SECONDS", DEFAULT_ORPHAN_GRACE)
        self._started = False

    async def reconcile(self) -> None:
        if not self._started:  # the first pass waits one interval: a start is busy enough
            self._started = True
            return
        newest = await self.data.store.run(self._inventory)
        referenced = await self.db.read(referenced_digests)
        everywhere = await self.db.read(every_zone_digests)
        cutoff = time.time() - self.orphan_grace
        orphans = {name for name, (_, written) in newest.items() if name not in referenced and written < cutoff}
        digests = [newest[name][0] for name in sorted(newest) if name not in orphans]

        def full_copy(digest: Digest) -> bool:
            return str(digest) in everywhere
        report = await self.data.store.run(self.scrubber.scrub, digests, full_copy)
        removed = 0
        for name in sorted(orphans):
            removed += await self._remove_orphan(name)
        if removed:
            log.warning("scrub: removed %d orphaned blobs (no reference, written over %.0f s ago)", removed,
                        self.orphan_grace)
        await self.data.store.run(self.scrubber.reclaim)
        if report.corrupt_repaired or report.missing_repaired or report.unrecoverable:
            log.warning("scrub: %d blobs checked, %d corrupt and %d missing copies repaired, %d unrecoverable",
                        report.checked, report.corrupt_repaired, report.missing_repaired, len(report.unrecoverable))

    def _inventory(self) -> dict[str, tuple[Digest, float]]:
        """Every blob a healthy replica holds, with the time its newest copy was written."""
        found: dict[str, tuple[Digest, float]] = {}
        for replica in self.data.replicas:
            if not replica.healthy():
                continue
            for info in replica.walk():
                name = str(info.digest)
                written = info.created_at.timestamp()
                known = found.get(name)
                if known is None or known[1] < written:
                    found[name] = (info.digest, written)
        return found

    async def _remove_orphan(self, name: str) -> int:
        async with self.data.lock(name):
            if self.data.reading(name) or await self.db.read(lambda conn: store.is_referenced(conn, name)):
                return 0
            await self.data.delete(name)
        return 1
