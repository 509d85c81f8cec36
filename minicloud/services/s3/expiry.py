"""The lifecycle controller: applies every bucket's lifecycle rules, for real.

- Expiration (Days or Date) of current versions: deleted (unversioned bucket) or hidden behind a
  delete marker (versioned bucket).
- NoncurrentVersionExpiration: versions noncurrent for NoncurrentDays (keeping the
  NewerNoncurrentVersions newest) are deleted for good.
- ExpiredObjectDeleteMarker: a delete marker that is a key's only version is removed.
- AbortIncompleteMultipartUpload: uploads older than DaysAfterInitiation are aborted.
- Transitions (Days or Date) of current versions and NoncurrentVersionTransitions (NoncurrentDays,
  keeping the NewerNoncurrentVersions newest) change a version's storage class, down S3's
  waterfall only, to the coldest class whose transition is due (``transitions.py``); the data stays
  where it is (a version leaving a one-zone class is copied to every zone), and an
  s3:LifecycleTransition event is sent.

Versions under Object Lock retention or legal hold are never deleted. A "day" is 86,400 seconds
with S3's rounding to the next midnight UTC; ``lifecycle_day_seconds`` (``MINICLOUD_LIFECYCLE_DAY_SECONDS``)
shortens it (test-only acceleration: a day of N seconds, no rounding).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import sqlalchemy as sa

from minicloud.services.s3 import store
from minicloud.services.s3.data import ONE_ZONE_CLASSES
from minicloud.services.s3.deletes import delete_one
from minicloud.services.s3.errors import AccessDenied
from minicloud.services.s3.events import Notice, service_notice
from minicloud.services.s3.lifecycle import DAY, due_at, lifecycle_rules, matches, minimum_object_size, rule_filter
from minicloud.services.s3.locks import check_deletable
from minicloud.services.s3.store import Bucket, ObjectRow
from minicloud.services.s3.tables import s3_buckets
from minicloud.services.s3.transitions import (
    coldest,
    current_transitions,
    noncurrent_transitions,
    size_allows,
    sized_by_filter,
)
from minicloud.storage.metadata.db import Database

log = logging.getLogger("minicloud.s3.lifecycle")

BATCH = 1000
MAX_PAGES = 1000  # per rule action and pass: a million keys

Digests = Callable[[list[str]], Awaitable[None]]


async def _nothing(_: list[str]) -> None:
    return None


class LifecycleController:
    name = "s3-lifecycle"

    def __init__(self, db: Database, release: Digests, day_seconds: float = DAY, widen: Digests = _nothing) -> None:
        """``release``: blobs whose last reference is gone; ``widen``: blobs that a transition took
        out of a one-zone class, for every zone to hold."""
        self.db = db
        self.release = release
        self.widen = widen
        self.day = day_seconds
        self.interval = max(0.5, min(60.0, day_seconds / 4))

    def due(self, start: datetime, days: int) -> datetime:
        """When something that started at ``start`` is ``days`` old (S3 rounds up to midnight UTC)."""
        return due_at(start, days, self.day)

    async def reconcile(self) -> None:
        buckets = await self.db.read(_buckets_with_rules)
        now = datetime.now(UTC)
        for bucket in buckets:
            try:
                await self.apply(bucket, now)
            except Exception:
                log.exception("applying the lifecycle rules of %s failed", bucket.name)

    async def apply(self, bucket: Bucket, now: datetime) -> None:
        """Every enabled rule of the bucket, page by page (one short transaction a page)."""
        for rule in lifecycle_rules(bucket):
            if rule.get("Status") == "Enabled":
                await self._apply_rule(bucket, rule, now)
                await self._transition(bucket, rule, now)

    async def _apply_rule(self, bucket: Bucket, rule: dict[str, Any], now: datetime) -> None:
        flt = rule_filter(rule)
        expiration = rule.get("Expiration") or {}
        if expiration.get("Days") or expiration.get("Date"):
            await self._pages(lambda conn, after: self._expire_current(conn, bucket, flt, expiration, now, after))
        if expiration.get("ExpiredObjectDeleteMarker"):
            await self._pages(lambda conn, after: self._by_key(conn, bucket, flt, after, self._lone_marker, now))
        action = rule.get("NoncurrentVersionExpiration")
        if action:
            def noncurrent(conn: sa.Connection, versions: list[ObjectRow], when: datetime) -> list[str]:
                return self._noncurrent(conn, versions, action, flt, when)
            await self._pages(lambda conn, after: self._by_key(conn, bucket, flt, after, noncurrent, now))
        if rule.get("AbortIncompleteMultipartUpload"):
            days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            await self._pages(lambda conn, after: self._abort_uploads(conn, bucket, flt, days, now, after))

    async def _pages(self, page: Callable[[sa.Connection, Any], tuple[list[str], Any]]) -> None:
        """Run ``page`` (released digests, next position or None) until it reports the end."""
        after: Any = None
        for _ in range(MAX_PAGES):
            released, after = await self.db.write(lambda conn, a=after: page(conn, a), bulk=True)  # type: ignore[misc]
            await self.release(released)
            if after is None:
                return

    def _expire_current(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any],
                        expiration: dict[str, Any], now: datetime, after: str | None) -> tuple[list[str], Any]:
        released: list[str] = []
        date = expiration.get("Date")
        if date is not None and datetime.fromisoformat(str(date)) > now:
            return released, None
        rows = store.list_latest(conn, bucket.name, after, flt["prefix"], BATCH)
        for row in rows:
            if not matches(flt, row):
                continue
            if date is None and self.due(row.last_modified, int(expiration["Days"])) > now:
                continue
            if bucket.versioning is None and not _deletable(row, now):
                continue
            delete_one(conn, bucket, row.key, None, bucket.account_id, now, released)
        return released, rows[-1].key if len(rows) == BATCH else None

    def _by_key(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any], after: tuple[str, int] | None,
                handle: Callable[[sa.Connection, list[ObjectRow], datetime], list[str]],
                now: datetime) -> tuple[list[str], Any]:
        """A page of versions grouped by key (newest first); a key cut by the page's end is read
        again, whole, by the next page (unless it alone fills a page)."""
        rows = store.list_versions(conn, bucket.name, after, flt["prefix"], BATCH)
        groups = [list(group) for _, group in groupby(rows, key=lambda r: r.key)]
        following: tuple[str, int] | None = None
        if len(rows) == BATCH:  # a cut key: all its versions next time, unless it alone fills the page
            following = (groups.pop()[0].key, -1) if len(groups) > 1 else (rows[-1].key, rows[-1].id)
        released: list[str] = []
        for versions in groups:
            released += handle(conn, versions, now)
        return released, following

    @staticmethod
    def _lone_marker(conn: sa.Connection, versions: list[ObjectRow], now: datetime) -> list[str]:
        if len(versions) == 1 and versions[0].delete_marker and versions[0].latest:
            return store.delete_version(conn, versions[0])
        return []

    def _noncurrent(self, conn: sa.Connection, versions: list[ObjectRow], action: dict[str, Any],
                    flt: dict[str, Any], now: datetime) -> list[str]:
        days = int(action["NoncurrentDays"])
        keep = int(action.get("NewerNoncurrentVersions") or 0)
        released: list[str] = []
        for index in range(1, len(versions)):  # newest first: each version was replaced by the one before it
            row, successor = versions[index], versions[index - 1]
            if row.latest or index - 1 < keep or (not row.delete_marker and not matches(flt, row)):
                continue
            if self.due(successor.last_modified, days) <= now and _deletable(row, now):
                released += store.delete_version(conn, row)
        return released

    async def _transition(self, bucket: Bucket, rule: dict[str, Any], now: datetime) -> None:
        """The rule's transitions of current versions, then of noncurrent ones."""
        transitions, noncurrent = current_transitions(rule), noncurrent_transitions(rule)
        if not transitions and not noncurrent:
            return
        flt = rule_filter(rule)
        mover = _Mover(minimum_object_size(bucket), sized_by_filter(rule),
                       service_notice(bucket, "s3:LifecycleTransition", now, version="2.3"))
        if transitions:
            await self._pages(lambda conn, after: self._transition_current(conn, bucket, flt, transitions, mover, now,
                                                                           after))
        if noncurrent:
            def handle(conn: sa.Connection, versions: list[ObjectRow], when: datetime) -> list[str]:
                self._transition_noncurrent(conn, versions, noncurrent, flt, mover, when)
                return []
            await self._pages(lambda conn, after: self._by_key(conn, bucket, flt, after, handle, now))
        await self.widen(mover.widened)

    def _transition_current(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any],
                            transitions: list[dict[str, Any]], mover: _Mover, now: datetime,
                            after: str | None) -> tuple[list[str], Any]:
        if all(t.get("Date") is not None and _date(t) > now for t in transitions):
            return [], None  # (no version to look at before the first date)
        rows = store.list_latest(conn, bucket.name, after, flt["prefix"], BATCH)
        for row in rows:
            if matches(flt, row):
                mover.move(conn, row, [t["StorageClass"] for t in transitions if self._when(t, row) <= now])
        return [], rows[-1].key if len(rows) == BATCH else None

    def _when(self, transition: dict[str, Any], row: ObjectRow) -> datetime:
        """When a current version's transition is due: its Date, or Days after the version was written."""
        if transition.get("Date") is not None:
            return _date(transition)
        return self.due(row.last_modified, int(transition["Days"]))

    def _transition_noncurrent(self, conn: sa.Connection, versions: list[ObjectRow], transitions: list[dict[str, Any]],
                               flt: dict[str, Any], mover: _Mover, now: datetime) -> None:
        for index in range(1, len(versions)):  # newest first: each version was replaced by the one before it
            row, successor = versions[index], versions[index - 1]
            if row.latest or row.delete_marker or not matches(flt, row):
                continue
            due = [t["StorageClass"] for t in transitions
                   if index - 1 >= int(t.get("NewerNoncurrentVersions") or 0)
                   and self.due(successor.last_modified, int(t["NoncurrentDays"])) <= now]
            mover.move(conn, row, due)

    def _abort_uploads(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any], days: int, now: datetime,
                       after: tuple[str, str] | None) -> tuple[list[str], Any]:
        released: list[str] = []
        uploads = store.list_uploads(conn, bucket.name, after, flt["prefix"], BATCH)
        for upload in uploads:
            if self.due(upload.created_at, days) <= now:
                released += store.drop_upload(conn, upload.upload_id)
        return released, (uploads[-1].key, uploads[-1].upload_id) if len(uploads) == BATCH else None


class _Mover:
    """Moves versions to the coldest class due, within one pass over one rule's transitions."""

    def __init__(self, minimum_size: str, sized_rule: bool, notice: Notice | None) -> None:
        self.minimum_size = minimum_size
        self.sized_rule = sized_rule
        self.notice = notice
        self.widened: list[str] = []  # blobs of versions that left a one-zone class

    def move(self, conn: sa.Connection, row: ObjectRow, due: list[str]) -> None:
        """Move ``row`` to the coldest of the ``due`` classes the waterfall and its size allow."""
        target = coldest(row.storage_class,
                         [t for t in due if size_allows(row.size, t, self.minimum_size, self.sized_rule)])
        if target is None or not store.set_storage_class(conn, row, target):
            return
        if row.storage_class in ONE_ZONE_CLASSES and target not in ONE_ZONE_CLASSES:
            self.widened += [digest for digest, _ in row.segments()]
        if self.notice is not None:
            data = {"transitionEventData": {"destinationStorageClass": target}}
            self.notice.write(conn, row.key, size=row.size, etag=row.etag, version_id=row.version_id,
                              extra={"lifecycleEventData": data})


def _date(transition: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(transition["Date"]))


def _deletable(row: ObjectRow, now: datetime) -> bool:
    try:
        check_deletable(row, now, False)
    except AccessDenied:
        return False
    return True


def _buckets_with_rules(conn: sa.Connection) -> list[Bucket]:
    rows = conn.execute(sa.select(s3_buckets).where(s3_buckets.c.lifecycle.is_not(None))).all()
    return [Bucket(*row) for row in rows]
