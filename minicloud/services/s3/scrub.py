"""The scrub controller: every ``interval`` seconds, read every copy of every S3 blob on every
zone's replica (files and packed rows) and repair corrupt or missing copies
(``minicloud.storage.blobs.repair``); then give the free pages of each zone's small-blob pack back
to the file system.

Blobs of STANDARD (every-zone) objects and uploads are restored on every zone; ONEZONE_IA and
REDUCED_REDUNDANCY blobs are verified where they are. ``MINICLOUD_S3_SCRUB_SECONDS`` sets the
interval (default one hour; tests use a second).
"""

from __future__ import annotations

import json
import logging
import os

import sqlalchemy as sa

from minicloud.services.s3.data import ONE_ZONE_CLASSES, ObjectData
from minicloud.services.s3.tables import s3_objects, s3_upload_parts, s3_uploads
from minicloud.storage.blobs import Digest
from minicloud.storage.blobs.repair import Scrubber
from minicloud.storage.metadata.db import Database

log = logging.getLogger("minicloud.s3.scrub")

DEFAULT_INTERVAL = 3600.0


def interval_from_environment() -> float:
    text = os.environ.get("MINICLOUD_S3_SCRUB_SECONDS", "")
    try:
        value = float(text) if text else DEFAULT_INTERVAL
    except ValueError:
        value = DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


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
        self._started = False

    async def reconcile(self) -> None:
        if not self._started:  # the first pass waits one interval: a start is busy enough
            self._started = True
            return
        digests = await self.data.store.run(self.scrubber.digests)
        everywhere = await self.db.read(every_zone_digests)

        def full_copy(digest: Digest) -> bool:
            return str(digest) in everywhere
        report = await self.data.store.run(self.scrubber.scrub, digests, full_copy)
        await self.data.store.run(self.scrubber.reclaim)
        if report.corrupt_repaired or report.missing_repaired or report.unrecoverable:
            log.warning("scrub: %d blobs checked, %d corrupt and %d missing copies repaired, %d unrecoverable",
                        report.checked, report.corrupt_repaired, report.missing_repaired, len(report.unrecoverable))
