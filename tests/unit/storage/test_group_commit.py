"""SQLite group commit: concurrent writes share a transaction, each in its own savepoint."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from minicloud.storage.metadata import loopcommit
from minicloud.storage.metadata.db import Database

ROWS = sa.table("rows", sa.column("n", sa.Integer))


class Refused(Exception):
    pass


def _database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE rows (n INTEGER UNIQUE)"))
    return db


def test_a_failing_write_in_a_batch_is_undone_alone(tmp_path: Path) -> None:
    db = _database(tmp_path)
    commits: list[int] = []
    sa.event.listen(db.engine, "commit", lambda _conn: commits.append(1))

    def insert(conn: sa.Connection, n: int) -> int:
        if n == 0:
            time.sleep(0.2)  # the others queue up behind this one and go in one batch
        conn.execute(ROWS.insert().values(n=n))
        if n == 7:
            raise Refused("no 7")
        if n == 9:
            conn.execute(ROWS.insert().values(n=8))  # a constraint violation inside the write
        return n * 10

    async def scenario() -> list[object]:
        first = asyncio.ensure_future(db.write(lambda c: insert(c, 0)))
        await asyncio.sleep(0.05)
        rest = [db.write(lambda c, n=n: insert(c, n)) for n in range(1, 20)]  # type: ignore[misc]
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        results = asyncio.run(scenario())
        assert len(commits) <= 3, f"{len(commits)} commits for 20 concurrent writes: no group commit"
        assert isinstance(results[7], Refused)
        assert isinstance(results[9], sa.exc.IntegrityError)
        assert [r for i, r in enumerate(results) if i not in (7, 9)] == [i * 10 for i in range(20) if i not in (7, 9)]
        stored = db.read_sync(lambda c: sorted(n for (n,) in c.execute(sa.select(ROWS.c.n))))
        assert stored == [n for n in range(20) if n not in (7, 9)]
        # and a fresh connection sees them: they were committed, not left in an open transaction
        fresh = sa.create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
        with fresh.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM rows")).scalar() == 18
        fresh.dispose()
    finally:
        db.close()


def test_writes_after_close_of_one_loop_work_in_another(tmp_path: Path) -> None:
    db = _database(tmp_path)
    try:
        assert asyncio.run(db.write(lambda c: c.execute(ROWS.insert().values(n=1)).rowcount)) == 1
        with pytest.raises(sa.exc.IntegrityError):
            asyncio.run(db.write(lambda c: c.execute(ROWS.insert().values(n=1))))
        assert asyncio.run(db.write(lambda c: c.execute(ROWS.insert().values(n=2)).rowcount)) == 1
    finally:
        db.close()


async def _counting_loop_turns(work: Coroutine[Any, Any, int]) -> tuple[int, int]:
    """``work``'s result, and how many 10 ms ticks the event loop ran meanwhile."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    running = asyncio.ensure_future(ticker())
    try:
        return await work, ticks
    finally:
        running.cancel()


def _write_while_the_lock_is_held_elsewhere(tmp_path: Path) -> Database:
    """A write made while another connection (another process, say) holds SQLite's write lock for
    0.3 s: it lands after that, beside the other's row, and the loop keeps serving meanwhile.
    The database, for what the caller checks next (closed by the caller)."""
    db = _database(tmp_path)
    other = sqlite3.connect(tmp_path / "meta.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO rows VALUES (1)")

    async def scenario() -> int:
        asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
        return await db.write(lambda c: c.execute(ROWS.insert().values(n=2)).rowcount)

    try:
        written, ticks = asyncio.run(_counting_loop_turns(scenario()))
        assert written == 1
        assert ticks >= 10, f"the loop ran {ticks} times in 0.3 s: it waited for the lock itself"
        assert db.read_sync(lambda c: sorted(n for (n,) in c.execute(sa.select(ROWS.c.n)))) == [1, 2]
    except BaseException:
        db.close()
        raise
    finally:
        other.close()
    return db


def test_a_write_lock_held_elsewhere_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    """The loop tries again on its later turns, and the write lands in a batch of its own (the
    writer thread is not needed)."""
    db = _write_while_the_lock_is_held_elsewhere(tmp_path)
    try:
        assert db._writer is None, "the write went to the writer thread"
    finally:
        db.close()


def test_a_write_lock_held_for_long_is_waited_for_by_the_writer_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loopcommit, "LOOP_WAIT_S", 0.05)
    db = _write_while_the_lock_is_held_elsewhere(tmp_path)
    try:
        assert db._writer is not None, "the loop kept trying for longer than LOOP_WAIT_S"
    finally:
        db.close()


def test_two_databases_on_one_file_take_turns_at_the_write_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes' group commits on one database (two Database objects, each with its own
    event loop on its own thread): every write of both lands, each on its own loop, without
    either falling back to its writer thread."""
    monkeypatch.setattr(loopcommit, "LOOP_WAIT_S", 30.0)  # (a slow disk's fsync must not make it fall back)
    first = _database(tmp_path)
    second = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    results: dict[int, list[object]] = {}

    def run(db: Database, base: int) -> None:
        async def writes() -> list[object]:
            async def one(n: int) -> object:
                await asyncio.sleep(0.0005 * (n % 7))
                return await db.write(lambda c: c.execute(ROWS.insert().values(n=n)).rowcount)
            return await asyncio.gather(*(one(base + i) for i in range(300)), return_exceptions=True)
        results[base] = asyncio.run(writes())

    threads = [threading.Thread(target=run, args=(db, base)) for db, base in ((first, 0), (second, 1000))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert results[0] == [1] * 300 and results[1000] == [1] * 300
        stored = first.read_sync(lambda c: sorted(n for (n,) in c.execute(sa.select(ROWS.c.n))))
        assert stored == list(range(300)) + list(range(1000, 1300))
        assert first._writer is None and second._writer is None, "a batch went to a writer thread"
    finally:
        first.close()
        second.close()


def test_a_write_enqueued_from_another_thread_is_answered_on_its_loop(tmp_path: Path) -> None:
    db = _database(tmp_path)

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        thread = threading.Thread(target=db.enqueue_write,
                                  args=(lambda c: c.execute(ROWS.insert().values(n=5)).rowcount, loop, future))
        thread.start()
        thread.join()
        return await future

    try:
        assert asyncio.run(scenario()) == 1
        assert db.read_sync(lambda c: [n for (n,) in c.execute(sa.select(ROWS.c.n))]) == [5]
    finally:
        db.close()


def test_loops_that_closed_give_their_connections_back(tmp_path: Path) -> None:
    db = _database(tmp_path)
    try:
        for n in range(20):  # more loops than the pool has connections
            asyncio.run(db.write(lambda c, n=n: c.execute(ROWS.insert().values(n=n))))  # type: ignore[misc]
        assert db.engine.pool.checkedout() <= 2  # type: ignore[attr-defined]
        assert db.read_sync(lambda c: c.execute(sa.text("SELECT count(*) FROM rows")).scalar()) == 20
    finally:
        db.close()


def test_a_bulk_write_leaves_the_loop_serving_meanwhile(tmp_path: Path) -> None:
    db = _database(tmp_path)

    def slow(conn: sa.Connection) -> int:
        time.sleep(0.3)  # (a thousand deletions, say)
        return int(conn.execute(ROWS.insert().values(n=1)).rowcount)

    async def scenario() -> int:
        return await db.write(slow, bulk=True)

    try:
        written, ticks = asyncio.run(_counting_loop_turns(scenario()))
        assert written == 1
        assert ticks >= 10, f"the loop ran {ticks} times in 0.3 s: the bulk write ran on it"
    finally:
        db.close()


@pytest.mark.parametrize(("code", "taken"), [(sqlite3.SQLITE_BUSY, True), (sqlite3.SQLITE_LOCKED, True),
                                             (sqlite3.SQLITE_BUSY | (2 << 8), True),  # SQLITE_BUSY_SNAPSHOT
                                             (sqlite3.SQLITE_IOERR, False), (None, False)])
def test_a_taken_write_lock_is_told_by_the_primary_result_code(code: int | None, taken: bool) -> None:
    error = sqlite3.OperationalError("database is locked")
    if code is not None:
        error.sqlite_errorcode = code
    assert loopcommit._lock_taken(error) is taken
