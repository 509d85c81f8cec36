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

Each pass reads (read transactions: SQLite's one writer stays free for PUTs) only what may be due,
filtered in SQL by its date and, for transitions, by the classes that can still move; only what is
due is written, each row guarded against having changed since it was read. A version leaving a
one-zone class is copied to every zone before its class changes (data before metadata). A rule
whose pass fails is logged and does not keep the bucket's other rules from running.

Versions under Object Lock retention or legal hold are never deleted. A "day" is 86,400 seconds
with S3's rounding to the next midnight UTC; ``lifecycle_day_seconds`` (``MINICLOUD_LIFECYCLE_DAY_SECONDS``)
shortens it (test-only acceleration: a day of N seconds, no rounding).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.services.s3 import store
from minicloud.services.s3.data import ONE_ZONE_CLASSES
from minicloud.services.s3.deletes import delete_one
from minicloud.services.s3.errors import AccessDenied
from minicloud.services.s3.events import Notice, service_notice
from minicloud.services.s3.lifecycle import (
    DAY,
    due_at,
    lifecycle_rules,
    matches,
    minimum_object_size,
    rule_filter,
    started_by,
)
from minicloud.services.s3.locks import check_deletable
from minicloud.services.s3.store import Bucket, Noncurrent, ObjectRow
from minicloud.services.s3.tables import s3_buckets
from minicloud.services.s3.transitions import (
    coldest,
    current_transitions,
    noncurrent_transitions,
    size_allows,
    sized_by_filter,
    sources,
)
from minicloud.storage.metadata.db import Database

log = logging.getLogger("minicloud.s3.lifecycle")

BATCH = 1000
MAX_PAGES = 1000  # per rule action and pass: a million keys

Digests = Callable[[list[str]], Awaitable[None]]
Widen = Callable[[list[str]], Awaitable[set[str]]]  # the digests it could not copy to every zone
Move = tuple[ObjectRow, str]  # a version and the class it moves to


async def _nothing(_: list[str]) -> set[str]:
    return set()


class LifecycleController:
    name = "s3-lifecycle"

    def __init__(self, db: Database, release: Digests, day_seconds: float = DAY, widen: Widen = _nothing) -> None:
        """``release``: blobs whose last reference is gone; ``widen``: blobs that a transition takes
        out of a one-zone class, for every zone to hold (before the class changes)."""
        self.db = db
        self.release = release
        self.widen = widen
        self.day = day_seconds
        self.interval = max(0.5, min(60.0, day_seconds / 4))

    def due(self, start: datetime, days: int) -> datetime:
        """When something that started at ``start`` is ``days`` old (S3 rounds up to midnight UTC)."""
        return due_at(start, days, self.day)

    def started_by(self, now: datetime, days: int) -> datetime | None:
        """The latest start that is ``days`` old at ``now`` (None: none is)."""
        return started_by(now, days, self.day)

    async def reconcile(self) -> None:
        buckets = await self.db.read(_buckets_with_rules)
        now = datetime.now(UTC)
        for bucket in buckets:
            try:
                await self.apply(bucket, now)
            except Exception:
                log.exception("applying the lifecycle rules of %s failed", bucket.name)

    async def apply(self, bucket: Bucket, now: datetime) -> None:
        """Every enabled rule of the bucket, page by page; a rule that fails is logged, the others
        run all the same."""
        for rule in lifecycle_rules(bucket):
            if rule.get("Status") != "Enabled":
                continue
            for action in (self._apply_rule, self._transition):
                try:
                    await action(bucket, rule, now)
                except Exception:
                    log.exception("lifecycle rule %r of bucket %s failed", rule.get("ID"), bucket.name)

    async def _apply_rule(self, bucket: Bucket, rule: dict[str, Any], now: datetime) -> None:
        flt = rule_filter(rule)
        expiration = rule.get("Expiration") or {}
        if expiration.get("Days") or expiration.get("Date"):
            await self._scan(lambda conn, after: self._current_expired(conn, bucket, flt, expiration, now, after),
                             lambda conn, rows: self._expire_current(conn, bucket, rows, now))
        if expiration.get("ExpiredObjectDeleteMarker"):
            await self._scan(lambda conn, after: self._lone_markers(conn, bucket, flt, after),
                             _delete_lone_markers)
        action = rule.get("NoncurrentVersionExpiration")
        if action:
            await self._scan(lambda conn, after: self._noncurrent_expired(conn, bucket, flt, action, now, after),
                             lambda conn, rows: _delete_versions(conn, rows, now))
        if rule.get("AbortIncompleteMultipartUpload"):
            days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            await self._scan(lambda conn, after: self._stale_uploads(conn, bucket, flt, days, now, after),
                             _abort_uploads)

    async def _scan(self, read: Callable[[sa.Connection, Any], tuple[list[Any], Any]],
                    write: Callable[[sa.Connection, list[Any]], list[str]]) -> None:
        """``read`` a page (what is due, next position or None) in a read transaction, then
        ``write`` what is due (released digests) in a write transaction, until the end."""
        after: Any = None
        for _ in range(MAX_PAGES):
            due, after = await self.db.read(lambda conn, a=after: read(conn, a), bulk=True)  # type: ignore[misc]
            if due:
                released = await self.db.write(lambda conn, d=due: write(conn, d), bulk=True)  # type: ignore[misc]
                await self.release(released)
            if after is None:
                return

    # -- expiration ------------------------------------------------------------------------------------
    def _current_expired(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any],
                         expiration: dict[str, Any], now: datetime, after: str | None) -> tuple[list[ObjectRow], Any]:
        date = expiration.get("Date")
        if date is not None and datetime.fromisoformat(str(date)) > now:
            return [], None
        cutoff = None if date is not None else self.started_by(now, int(expiration["Days"]))
        if date is None and cutoff is None:
            return [], None
        rows = store.list_latest(conn, bucket.name, after, flt["prefix"], BATCH, modified_by=cutoff)
        due = [row for row in rows if matches(flt, row)
               and (date is not None or self.due(row.last_modified, int(expiration["Days"])) <= now)]
        return due, rows[-1].key if len(rows) == BATCH else None

    @staticmethod
    def _expire_current(conn: sa.Connection, bucket: Bucket, rows: list[ObjectRow], now: datetime) -> list[str]:
        released: list[str] = []
        for seen in rows:
            row = store.get_object(conn, bucket.name, seen.key)
            if row is None or (row.id, row.last_modified, row.delete_marker) != (seen.id, seen.last_modified, False):
                continue  # replaced or deleted since it was read
            if bucket.versioning is None and not _deletable(row, now):
                continue
            delete_one(conn, bucket, row.key, None, bucket.account_id, now, released)
        return released

    @staticmethod
    def _lone_markers(conn: sa.Connection, bucket: Bucket, flt: dict[str, Any],
                      after: str | None) -> tuple[list[ObjectRow], Any]:
        rows = store.list_lone_markers(conn, bucket.name, after, flt["prefix"], BATCH)
        return rows, rows[-1].key if len(rows) == BATCH else None

    def _noncurrent_expired(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any], action: dict[str, Any],
                            now: datetime, after: tuple[str, int] | None) -> tuple[list[ObjectRow], Any]:
        days = int(action["NoncurrentDays"])
        keep = int(action.get("NewerNoncurrentVersions") or 0)
        cutoff = self.started_by(now, days)
        if cutoff is None:
            return [], None
        found = store.list_noncurrent(conn, bucket.name, after, flt["prefix"], BATCH, noncurrent_by=cutoff,
                                      keeps=[keep], markers=True)
        due = [n.row for n in found if (n.row.delete_marker or matches(flt, n.row))
               and self.due(n.since, days) <= now and _deletable(n.row, now)]
        return due, _position(found)

    def _stale_uploads(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any], days: int, now: datetime,
                       after: tuple[str, str] | None) -> tuple[list[Any], Any]:
        cutoff = self.started_by(now, days)
        if cutoff is None:
            return [], None
        uploads = store.list_uploads(conn, bucket.name, after, flt["prefix"], BATCH, created_by=cutoff)
        due = [upload for upload in uploads if self.due(upload.created_at, days) <= now]
        return due, (uploads[-1].key, uploads[-1].upload_id) if len(uploads) == BATCH else None

    # -- transitions -----------------------------------------------------------------------------------
    async def _transition(self, bucket: Bucket, rule: dict[str, Any], now: datetime) -> None:
        """The rule's transitions of current versions, then of noncurrent ones."""
        transitions, noncurrent = current_transitions(rule), noncurrent_transitions(rule)
        if not transitions and not noncurrent:
            return
        flt = rule_filter(rule)
        mover = _Mover(minimum_object_size(bucket), sized_by_filter(rule),
                       service_notice(bucket, "s3:LifecycleTransition", now, version="2.3"))
        if transitions:
            await self._moves(lambda conn, after: self._current_moves(conn, bucket, flt, transitions, mover, now,
                                                                      after), mover)
        if noncurrent:
            await self._moves(lambda conn, after: self._noncurrent_moves(conn, bucket, flt, noncurrent, mover, now,
                                                                         after), mover)

    async def _moves(self, read: Callable[[sa.Connection, Any], tuple[list[Move], Any]], mover: _Mover) -> None:
        """Each page's due moves: read, their data copied to every zone where they leave one zone,
        then their classes changed."""
        after: Any = None
        for _ in range(MAX_PAGES):
            moves, after = await self.db.read(lambda conn, a=after: read(conn, a), bulk=True)  # type: ignore[misc]
            widening = [digest for row, target in moves if _widens(row, target) for digest, _ in row.segments()]
            if widening:
                failed = await self.widen(widening)
                moves = [(row, target) for row, target in moves  # (not moved: tried again next pass)
                         if not (_widens(row, target) and failed.intersection(d for d, _ in row.segments()))]
            if moves:
                await self.db.write(lambda conn, m=moves: mover.commit(conn, m), bulk=True)  # type: ignore[misc]
            if after is None:
                return

    def _current_moves(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any],
                       transitions: list[dict[str, Any]], mover: _Mover, now: datetime,
                       after: str | None) -> tuple[list[Move], Any]:
        dated = [t for t in transitions if t.get("Date") is not None]
        if any(_date(t) <= now for t in dated):
            cutoff = None  # (every version is old enough for a transition whose date has come)
        else:
            starts = [self.started_by(now, int(t["Days"])) for t in transitions if t.get("Date") is None]
            cutoff = max((start for start in starts if start is not None), default=None)
            if cutoff is None:
                return [], None  # (no version is due before the first date, or ever)
        rows = store.list_latest(conn, bucket.name, after, flt["prefix"], BATCH, modified_by=cutoff,
                                 classes=sources([t["StorageClass"] for t in transitions]))
        moves = []
        for row in rows:
            if matches(flt, row):
                target = mover.target(row, [t["StorageClass"] for t in transitions if self._when(t, row) <= now])
                if target is not None:
                    moves.append((row, target))
        return moves, rows[-1].key if len(rows) == BATCH else None

    def _when(self, transition: dict[str, Any], row: ObjectRow) -> datetime:
        """When a current version's transition is due: its Date, or Days after the version was written."""
        if transition.get("Date") is not None:
            return _date(transition)
        return self.due(row.last_modified, int(transition["Days"]))

    def _noncurrent_moves(self, conn: sa.Connection, bucket: Bucket, flt: dict[str, Any],
                          transitions: list[dict[str, Any]], mover: _Mover, now: datetime,
                          after: tuple[str, int] | None) -> tuple[list[Move], Any]:
        starts = [self.started_by(now, int(t["NoncurrentDays"])) for t in transitions]
        cutoff = max((start for start in starts if start is not None), default=None)
        if cutoff is None:
            return [], None
        keeps = {id(t): int(t.get("NewerNoncurrentVersions") or 0) for t in transitions}
        found = store.list_noncurrent(conn, bucket.name, after, flt["prefix"], BATCH, noncurrent_by=cutoff,
                                      keeps=set(keeps.values()), markers=False,
                                      classes=sources([t["StorageClass"] for t in transitions]))
        moves = []
        for version in found:
            if not matches(flt, version.row):
                continue
            due = [t["StorageClass"] for t in transitions
                   if version.more_than[keeps[id(t)]] and self.due(version.since, int(t["NoncurrentDays"])) <= now]
            target = mover.target(version.row, due)
            if target is not None:
                moves.append((version.row, target))
        return moves, _position(found)


class _Mover:
    """Moves versions to the coldest class due, within one pass over one rule's transitions."""

    def __init__(self, minimum_size: str, sized_rule: bool, notice: Notice | None) -> None:
        self.minimum_size = minimum_size
        self.sized_rule = sized_rule
        self.notice = notice

    def target(self, row: ObjectRow, due: list[str]) -> str | None:
        """The coldest of the ``due`` classes the waterfall and ``row``'s size allow (None: none)."""
        return coldest(row.storage_class,
                       [t for t in due if size_allows(row.size, t, self.minimum_size, self.sized_rule)])

    def commit(self, conn: sa.Connection, moves: list[Move]) -> None:
        """Change each version's class, unless it changed since it was read; send its event."""
        for row, target in moves:
            if not store.set_storage_class(conn, row, target):
                continue
            if self.notice is not None:
                data = {"transitionEventData": {"destinationStorageClass": target}}
                self.notice.write(conn, row.key, size=row.size, etag=row.etag, version_id=row.version_id,
                                  extra={"lifecycleEventData": data})


def _widens(row: ObjectRow, target: str) -> bool:
    """Whether moving ``row`` to ``target`` takes it out of a one-zone class."""
    return row.storage_class in ONE_ZONE_CLASSES and target not in ONE_ZONE_CLASSES


def _position(found: list[Noncurrent]) -> tuple[str, int] | None:
    """Where the next page of a full page of versions starts."""
    return (found[-1].row.key, found[-1].row.id) if len(found) == BATCH else None


def _delete_lone_markers(conn: sa.Connection, rows: list[ObjectRow]) -> list[str]:
    released: list[str] = []
    for row in rows:  # (still its key's only version?)
        if store.key_version_ids(conn, row.bucket, row.key, 2) == [row.id]:
            released += store.delete_version(conn, row)
    return released


def _delete_versions(conn: sa.Connection, rows: list[ObjectRow], now: datetime) -> list[str]:
    released: list[str] = []
    for seen in rows:
        row = store.get_object_by_id(conn, seen.id)
        if row is None or row.latest or row.lock != seen.lock or not _deletable(row, now):
            continue  # deleted, current again, or locked since it was read
        released += store.delete_version(conn, row)
    return released


def _abort_uploads(conn: sa.Connection, uploads: list[Any]) -> list[str]:
    released: list[str] = []
    for upload in uploads:
        released += store.drop_upload(conn, upload.upload_id)
    return released


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
