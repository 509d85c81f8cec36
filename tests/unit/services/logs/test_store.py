"""The logs data layer on every metadata backend: batched writes, stream bounds, retention."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa

from minicloud.services.logs import store
from minicloud.services.logs.tables import logs_events, logs_groups, logs_streams
from minicloud.storage.metadata.db import Database


def test_the_writer_creates_groups_and_streams_and_batches(metadata_db: Database) -> None:
    async def scenario() -> None:
        writer = store.LogWriter(metadata_db, interval=0.01)
        writer.put("111122223333", "us-east-1", "/aws/lambda/f", "s1", [(2000, "b"), (1000, "a")])
        writer.put("111122223333", "us-east-1", "/aws/lambda/f", "s2", [(3000, "c")])
        await writer.close()

    asyncio.run(scenario())
    with metadata_db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(logs_groups)).scalar() == 1
        streams = {r.name: r for r in conn.execute(sa.select(logs_streams))}
        assert (streams["s1"].first_event, streams["s1"].last_event) == (1000, 2000)
        assert streams["s1"].stored_bytes == 2 * (1 + store.EVENT_OVERHEAD)
        messages = [r.message for r in conn.execute(sa.select(logs_events.c.message).order_by(logs_events.c.id))]
        assert messages == ["a", "b", "c"]


def test_retention_expires_old_events(metadata_db: Database) -> None:
    now = int(time.time() * 1000)

    def setup(conn: sa.Connection) -> None:
        group = store.create_group(conn, "111122223333", "us-east-1", "/g")
        stream = store.stream_id(conn, group.id, "s", True)
        assert stream is not None
        store.append_events(conn, group.id, stream, [(now - 3 * 86_400_000, "old"), (now, "new")])
        conn.execute(logs_groups.update().values(retention_days=1))

    metadata_db.write_sync(setup)
    assert metadata_db.write_sync(lambda conn: store.expire(conn, now)) == 1
    left = metadata_db.read_sync(lambda conn: [r.message for r in conn.execute(sa.select(logs_events.c.message))])
    assert left == ["new"]


def test_the_writer_recreates_a_group_deleted_under_it(metadata_db: Database) -> None:
    async def scenario() -> None:
        writer = store.LogWriter(metadata_db, interval=0.01)
        writer.put("111122223333", "us-east-1", "/g", "s", [(1000, "first")])
        await writer.flush()

        def delete(conn: sa.Connection) -> None:
            conn.execute(logs_events.delete())
            conn.execute(logs_streams.delete())
            conn.execute(logs_groups.delete())

        metadata_db.write_sync(delete)
        writer.put("111122223333", "us-east-1", "/g", "s", [(2000, "second")])
        await writer.close()

    asyncio.run(scenario())
    messages = metadata_db.read_sync(lambda conn: [r.message for r in conn.execute(sa.select(logs_events.c.message))])
    assert messages == ["second"]
