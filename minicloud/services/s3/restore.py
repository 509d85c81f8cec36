"""RestoreObject and the restore controller: temporary copies of archived (GLACIER, DEEP_ARCHIVE)
object versions, for the Days asked (``archive.py`` holds the rules reads follow).

- POST /{Key}?restore (s3:RestoreObject): 202 Accepted when a restore starts; 409
  RestoreAlreadyInProgress while one runs; 200 OK when a copy is restored already (its expiry is
  then counted again from now); 403 InvalidObjectState for a class that is not archived.
- The ``s3-restore`` controller ends each restore ``s3_restore_seconds`` after it was asked for
  (every retrieval tier alike), then, once the copy's expiry has passed, forgets it (GETs are
  refused again from that moment on, controller or not). Restores send
  s3:ObjectRestore:Post, :Completed and :Delete events.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from minicloud.aws.context import RequestContext
from minicloud.aws.protocol.rest_serializers import RESULT_STATUS
from minicloud.services.s3 import store
from minicloud.services.s3.archive import ARCHIVE_CLASSES, Restore
from minicloud.services.s3.errors import (
    InvalidArgument,
    InvalidObjectState,
    MalformedXML,
    NoSuchKey,
    NotImplementedFeature,
    ObjectAlreadyInActiveTierError,
    RestoreAlreadyInProgress,
)
from minicloud.services.s3.events import Notice, notice_for, service_notice
from minicloud.services.s3.lifecycle import DAY, due_at, within_calendar
from minicloud.services.s3.objects import ObjectOperations
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.storage.metadata.db import Database

log = logging.getLogger("minicloud.s3.restore")

TIERS = ("Standard", "Bulk", "Expedited")
BATCH = 500


def copy_expiry(requested: datetime, days: int, day_seconds: float) -> datetime:
    """When a restored copy expires: ``days`` after the request (S3 rounds up to midnight UTC), in
    whole seconds (as ``x-amz-restore`` tells it)."""
    at = due_at(requested, days, day_seconds)
    return at.replace(microsecond=0) + timedelta(seconds=1) if at.microsecond else at


def restore_request(request: dict[str, Any], row: ObjectRow) -> tuple[int, str]:
    """The Days and retrieval tier of a RestoreRequest for ``row``, checked as S3 does."""
    if request.get("Type") == "SELECT":
        raise NotImplementedFeature("S3 Select restores (Type SELECT) are not implemented by minicloud")
    if request.get("OutputLocation") or request.get("SelectParameters") or request.get("Tier") is not None:
        raise MalformedXML()  # (all three belong to S3 Select restores only)
    days = request.get("Days")
    if row.storage_class == "INTELLIGENT_TIERING":
        if days is not None:
            raise InvalidArgument("INTELLIGENT_TIERING objects are not subject to restore expiry. Do not specify "
                                  "Days when restoring this object")
        raise ObjectAlreadyInActiveTierError("This action is not allowed against this storage tier.")
    if row.storage_class not in ARCHIVE_CLASSES:
        raise InvalidObjectState("The operation is not valid for the object's storage class",
                                 StorageClass=row.storage_class)
    if days is None:
        raise MalformedXML()
    if int(days) < 1:
        raise InvalidArgument("The restore period in days must be a positive integer", ArgumentName="Days",
                              ArgumentValue=str(days))
    if not within_calendar(int(days)):  # (S3 documents no maximum: refused where no date can hold it)
        raise InvalidArgument("The restore period in days must end before the year 10000", ArgumentName="Days",
                              ArgumentValue=str(days))
    tier = str((request.get("GlacierJobParameters") or {}).get("Tier") or "Standard")
    if tier not in TIERS:
        raise MalformedXML()
    if tier == "Expedited" and row.storage_class == "DEEP_ARCHIVE":
        raise InvalidArgument("Expedited retrievals are not available for objects in the DEEP_ARCHIVE storage class",
                              ArgumentName="Tier", ArgumentValue=tier)
    return int(days), tier


class RestoreOperations(ObjectOperations):
    async def restore_object(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key, version_id = params["Key"], params.get("VersionId")
        bucket = await self.bucket_for(ctx, params, "RestoreObject", key)
        row = await self.find_object(ctx, bucket, key, version_id, "RestoreObject")
        days, tier = restore_request(params.get("RestoreRequest") or {}, row)
        config = self.runtime.config
        begin = Begin(days, tier, ctx.now, config.lifecycle_day_seconds, config.s3_restore_seconds,
                      notice_for(ctx, bucket, "s3:ObjectRestore:Post"))
        status = await self.db.write(lambda conn: begin.run(conn, row))
        return {RESULT_STATUS: status}


class Begin:
    """One RestoreObject's change, in its own transaction, on the version as it stands then."""

    def __init__(self, days: int, tier: str, now: datetime, day_seconds: float, delay: float,
                 notice: Notice | None) -> None:
        self.days, self.tier, self.now = days, tier, now
        self.day_seconds, self.delay, self.notice = day_seconds, delay, notice

    def run(self, conn: sa.Connection, found: ObjectRow) -> int:
        """The HTTP status S3 answers: 202 a restore started, 200 a restored copy extended."""
        row = store.get_object_by_id(conn, found.id, for_update=True)
        if row is None or row.version_id != found.version_id:  # deleted (or replaced) meanwhile
            raise NoSuchKey("The specified key does not exist.", Key=found.key)
        if row.storage_class not in ARCHIVE_CLASSES:
            raise InvalidObjectState("The operation is not valid for the object's storage class",
                                     StorageClass=row.storage_class)
        current = Restore.of(row)
        if current is not None and current.ongoing:
            raise RestoreAlreadyInProgress("Object restore is already in progress")
        if current is not None and current.available(self.now):
            expiry = copy_expiry(self.now, self.days, self.day_seconds)
            store.set_restore(conn, row.id, replace(current, days=self.days, expiry=expiry).to_json(), expiry)
            return 200
        restore = Restore(True, self.days, self.tier, self.now)
        store.set_restore(conn, row.id, restore.to_json(), self.now + timedelta(seconds=self.delay))
        if self.notice is not None:
            self.notice.write(conn, row.key, size=row.size, etag=row.etag, version_id=row.version_id)
        return 202


class RestoreController:
    """Ends restores when their time has come, and forgets restored copies that have expired."""

    name = "s3-restore"

    def __init__(self, db: Database, day_seconds: float = DAY, delay: float = 5.0) -> None:
        self.db = db
        self.day = day_seconds
        self.interval = max(0.25, min(30.0, delay / 4, day_seconds / 4))

    async def reconcile(self) -> None:
        """The restores due now, the most overdue first (a batch a pass: the rest come next time);
        one that fails is logged and left for the next pass, never in the way of the others."""
        now = datetime.now(UTC)
        rows = await self.db.read(lambda conn: store.restores_due(conn, now, BATCH))
        for row in rows:
            try:
                await self.db.write(lambda conn, r=row: self.advance(conn, r, now))  # type: ignore[misc]
            except Exception:
                log.exception("advancing the restore of %s/%s (version %s) failed", row.bucket, row.key,
                              row.version_id)

    def advance(self, conn: sa.Connection, seen: ObjectRow, now: datetime) -> None:
        """Complete ``seen``'s restore, or forget its expired copy (unless it changed meanwhile)."""
        row = store.get_object_by_id(conn, seen.id, for_update=True)
        bucket = store.get_bucket(conn, seen.bucket)
        restore = Restore.of(row) if row is not None else None
        if row is None or bucket is None or restore is None or row.restore != seen.restore:
            return
        if restore.ongoing:
            expiry = copy_expiry(restore.requested, restore.days, self.day)
            store.set_restore(conn, row.id, replace(restore, ongoing=False, expiry=expiry).to_json(), expiry)
            data = {"lifecycleRestorationExpiryTime": _event_time(expiry),
                    "lifecycleRestoreStorageClass": row.storage_class}
            _notify(conn, bucket, row, "s3:ObjectRestore:Completed", now,
                    {"glacierEventData": {"restoreEventData": data}})
        elif restore.expiry is None or restore.expiry <= now:
            store.set_restore(conn, row.id, None, None)
            _notify(conn, bucket, row, "s3:ObjectRestore:Delete", now, None, version="2.3")


def _notify(conn: sa.Connection, bucket: Bucket, row: ObjectRow, event: str, now: datetime,
            extra: dict[str, Any] | None, version: str = "2.1") -> None:
    notice = service_notice(bucket, event, now, version)
    if notice is not None:
        notice.write(conn, row.key, size=row.size, etag=row.etag, version_id=row.version_id, extra=extra)


def _event_time(at: datetime) -> str:
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
