"""The lifecycle controller: applies every bucket's lifecycle rules, for real.

- Expiration (Days or Date) of current versions: deleted (unversioned bucket) or hidden behind a
  delete marker (versioned bucket).
- NoncurrentVersionExpiration: versions noncurrent for NoncurrentDays (keeping the
  NewerNoncurrentVersions newest) are deleted for good.
- ExpiredObjectDeleteMarker: a delete marker that is a key's only version is removed.
- AbortIncompleteMultipartUpload: uploads older than DaysAfterInitiation are aborted.

Versions under Object Lock retention or legal hold are never deleted. A "day" is 86,400 seconds
with S3's rounding to the next midnight UTC; ``MINICLOUD_LIFECYCLE_DAY_SECONDS`` shortens it
(test-only acceleration: a day of N seconds, no rounding).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

import sqlalchemy as sa

from minicloud.services.s3 import store
from minicloud.services.s3.deletes import delete_one
from minicloud.services.s3.errors import AccessDenied
from minicloud.services.s3.lifecycle import matches, rule_filter
from minicloud.services.s3.locks import check_deletable
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.services.s3.tables import s3_buckets
from minicloud.storage.metadata.db import Database

log = logging.getLogger("minicloud.s3.lifecycle")

DAY = 86_400.0
BATCH = 1000


def day_seconds_from_environment() -> float:
    """MINICLOUD_LIFECYCLE_DAY_SECONDS: a shorter lifecycle "day", for tests only."""
    text = os.environ.get("MINICLOUD_LIFECYCLE_DAY_SECONDS", "")
    try:
        value = float(text) if text else DAY
    except ValueError:
        value = DAY
    return value if value > 0 else DAY


class LifecycleController:
    name = "s3-lifecycle"

    def __init__(self, db: Database, release: Callable[[list[str]], Awaitable[None]], day_seconds: float = DAY) -> None:
        self.db = db
        self.release = release
        self.day = day_seconds
        self.interval = max(0.5, min(60.0, day_seconds / 4))

    def due(self, start: datetime, days: int) -> datetime:
        """When something that started at ``start`` is ``days`` old (S3 rounds up to midnight UTC)."""
        at = start + timedelta(seconds=days * self.day)
        if self.day == DAY:
            midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
            at = midnight if midnight == at else midnight + timedelta(days=1)
        return at

    async def reconcile(self) -> None:
        buckets = await self.db.read(_buckets_with_rules)
        now = datetime.now(UTC)
        for bucket in buckets:
            try:
                released = await self.db.write(lambda conn, b=bucket: self.apply(conn, b, now))  # type: ignore[misc]
            except Exception:
                log.exception("applying the lifecycle rules of %s failed", bucket.name)
                continue
            await self.release(released)

    def apply(self, conn: sa.Connection, bucket: Bucket, now: datetime) -> list[str]:
        released: list[str] = []
        for rule in json.loads(bucket.lifecycle or "[]"):
            if rule.get("Status") != "Enabled":
                continue
            flt = rule_filter(rule)
            expiration = rule.get("Expiration") or {}
            if expiration.get("Days") or expiration.get("Date"):
                self._expire_current(conn, bucket, flt, expiration, now, released)
            if expiration.get("ExpiredObjectDeleteMarker"):
                self._remove_lone_markers(conn, bucket, flt, released)
            if rule.get("NoncurrentVersionExpiration"):
                self._expire_noncurrent(conn, bucket, flt, rule["NoncurrentVersionExpiration"], now, released)
            if rule.get("AbortIncompleteMultipartUpload"):
                days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
                for upload in store.list_uploads(conn, bucket.name, None, flt["prefix"], BATCH):
                    if self.due(upload.created_at, days) <= now:
                        released += store.drop_upload(conn, upload.upload_id)
        return released

    def _expire_current(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any],
                        expiration: dict[str, Any], now: datetime, released: list[str]) -> None:
        date = expiration.get("Date")
        if date is not None and datetime.fromisoformat(str(date)) > now:
            return
        for row in store.list_latest(conn, bucket.name, None, flt["prefix"], BATCH):
            if not matches(flt, row):
                continue
            if date is None and self.due(row.last_modified, int(expiration["Days"])) > now:
                continue
            if bucket.versioning is None and not _deletable(row, now):
                continue
            delete_one(conn, bucket, row.key, None, bucket.account_id, now, released)

    def _remove_lone_markers(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any],
                             released: list[str]) -> None:
        rows = store.list_versions(conn, bucket.name, None, flt["prefix"], BATCH * 5)
        for _, group in groupby(rows, key=lambda r: r.key):
            versions = list(group)
            if len(versions) == 1 and versions[0].delete_marker and versions[0].latest:
                released += store.delete_version(conn, versions[0])

    def _expire_noncurrent(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any],
                           action: dict[str, Any], now: datetime, released: list[str]) -> None:
        days = int(action["NoncurrentDays"])
        keep = int(action.get("NewerNoncurrentVersions") or 0)
        rows = store.list_versions(conn, bucket.name, None, flt["prefix"], BATCH * 5)
        for _, group in groupby(rows, key=lambda r: r.key):
            versions = list(group)  # newest first
            for index in range(1, len(versions)):
                row, successor = versions[index], versions[index - 1]
                if row.latest or index - 1 < keep or (not matches(flt, row) and not row.delete_marker):
                    continue
                if self.due(successor.last_modified, days) <= now and _deletable(row, now):
                    released += store.delete_version(conn, row)


def _deletable(row: ObjectRow, now: datetime) -> bool:
    try:
        check_deletable(row, now, False)
    except AccessDenied:
        return False
    return True


def _buckets_with_rules(conn: sa.Connection) -> list[Bucket]:
    rows = conn.execute(sa.select(s3_buckets).where(s3_buckets.c.lifecycle.is_not(None))).all()
    return [Bucket(*row) for row in rows]
