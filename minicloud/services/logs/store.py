"""CloudWatch Logs' data layer: groups, streams and events in the metadata store, and ``LogWriter``,
the batched writer other services (Lambda) send their log events through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.services.logs.tables import logs_events, logs_groups, logs_streams
from minicloud.storage.metadata.db import Database

log = logging.getLogger("minicloud.logs")
EVENT_OVERHEAD = 26  # bytes AWS counts per event on top of its message
Event = tuple[int, str]  # (timestamp in epoch milliseconds, message)


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    account_id: str
    region: str
    name: str
    created_at: datetime
    retention_days: int | None

    @property
    def arn(self) -> str:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{self.name}"


def _group(row: Any) -> Group:
    m = row._mapping
    return Group(m["id"], m["account_id"], m["region"], m["name"], m["created_at"], m["retention_days"])


def get_group(conn: sa.Connection, account_id: str, region: str, name: str) -> Group | None:
    row = conn.execute(sa.select(logs_groups).where(
        logs_groups.c.account_id == account_id, logs_groups.c.region == region, logs_groups.c.name == name)).first()
    return _group(row) if row else None


def create_group(conn: sa.Connection, account_id: str, region: str, name: str, tags: str = "{}") -> Group:
    conn.execute(logs_groups.insert().values(
        account_id=account_id, region=region, name=name, created_at=datetime.now(UTC), retention_days=None,
        tags=tags))
    group = get_group(conn, account_id, region, name)
    assert group is not None
    return group


def stream_id(conn: sa.Connection, group_id: int, name: str, create: bool) -> int | None:
    row = conn.execute(sa.select(logs_streams.c.id).where(
        logs_streams.c.group_id == group_id, logs_streams.c.name == name)).first()
    if row is not None:
        return int(row[0])
    if not create:
        return None
    conn.execute(logs_streams.insert().values(group_id=group_id, name=name, created_at=datetime.now(UTC),
                                              stored_bytes=0))
    return stream_id(conn, group_id, name, False)


def append_events(conn: sa.Connection, group_id: int, stream: int, events: Sequence[Event]) -> None:
    if not events:
        return
    now = int(time.time() * 1000)
    # The driver's executemany directly: SQLAlchemy's per-row work was most of a busy function's log cost.
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO logs_events (group_id, stream_id, timestamp, ingestion_time, message) "
        f"VALUES ({', '.join([mark] * 5)})",
        [(group_id, stream, ts, now, message) for ts, message in events])
    first = min(ts for ts, _ in events)
    last = max(ts for ts, _ in events)
    size = sum(len(m.encode()) + EVENT_OVERHEAD for _, m in events)
    c = logs_streams.c
    conn.execute(logs_streams.update().where(c.id == stream).values(
        first_event=sa.case((c.first_event.is_(None), first), (c.first_event < first, c.first_event), else_=first),
        last_event=sa.case((c.last_event.is_(None), last), (c.last_event > last, c.last_event), else_=last),
        last_ingestion=now, stored_bytes=c.stored_bytes + size))


def expire(conn: sa.Connection, now_ms: int) -> int:
    """Delete events older than their group's retention; the number deleted."""
    deleted = 0
    for row in conn.execute(sa.select(logs_groups.c.id, logs_groups.c.retention_days).where(
            logs_groups.c.retention_days.is_not(None))):
        cutoff = now_ms - int(row.retention_days) * 86_400_000
        deleted += conn.execute(logs_events.delete().where(
            logs_events.c.group_id == row.id, logs_events.c.timestamp < cutoff)).rowcount
    return deleted


StreamKey = tuple[str, str, str, str]  # account, region, group, stream
StreamIds = dict[StreamKey, tuple[int, int]]  # -> (group id, stream id)


class LogWriter:
    """Batches log events in memory and writes them every ``interval`` seconds in one transaction,
    creating groups and streams as they are first used (as Lambda's service does). The ids of the
    streams it has written to are remembered; a group deleted meanwhile is created again."""

    def __init__(self, db: Database, interval: float = 0.5) -> None:
        self.db = db
        self.interval = interval
        self._pending: dict[StreamKey, list[Event]] = {}
        self._ids: StreamIds = {}
        self._task: asyncio.Task[None] | None = None

    def put(self, account_id: str, region: str, group: str, stream: str, events: Sequence[Event]) -> None:
        self._pending.setdefault((account_id, region, group, stream), []).extend(events)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.interval)
        await self.flush()

    async def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                await self.db.write(_batch_writer(batch, self._ids))
            except Exception:
                self._ids.clear()  # a stream or group deleted under us: look them up again
                try:
                    await self.db.write(_batch_writer(batch, self._ids))
                except Exception:
                    log.exception("writing %d log streams failed", len(batch))

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


def _batch_writer(batch: dict[StreamKey, list[Event]], ids: StreamIds) -> Callable[[sa.Connection], None]:
    return lambda conn: _write_batch(conn, batch, ids)


def _write_batch(conn: sa.Connection, batch: dict[StreamKey, list[Event]], ids: StreamIds) -> None:
    for key, events in batch.items():
        known = ids.get(key)
        if known is None:
            account_id, region, group_name, stream_name = key
            group = get_group(conn, account_id, region, group_name) or \
                create_group(conn, account_id, region, group_name)
            stream = stream_id(conn, group.id, stream_name, True)
            assert stream is not None
            known = ids[key] = (group.id, stream)
        append_events(conn, known[0], known[1], sorted(events, key=lambda e: e[0]))
