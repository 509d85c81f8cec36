"""Cached reads: a result is served from memory only while no connection of any process has committed."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from minicloud.storage.metadata import db as db_module
from minicloud.storage.metadata.changes import ChangeWatch
from minicloud.storage.metadata.db import Database


def _database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE rows (n INTEGER)"))
    return db


class CountingRead:
    """A read of every n, counting how often it really ran."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, conn: sa.Connection) -> list[int]:
        self.runs += 1
        return [n for (n,) in conn.exec_driver_sql("SELECT n FROM rows ORDER BY n")]


def test_served_from_memory_until_a_commit_in_this_process(tmp_path: Path) -> None:
    db = _database(tmp_path)
    read = CountingRead()

    async def scenario() -> None:
        assert await db.read_cached("all", read) == []
        assert await db.read_cached("all", read) == []
        assert read.runs == 1
        await db.write(lambda c: c.exec_driver_sql("INSERT INTO rows VALUES (1)"))
        assert await db.read_cached("all", read) == [1]  # read-your-writes
        assert read.runs == 2
        assert await db.read_cached("other key", read) == [1]
        assert read.runs == 3

    try:
        asyncio.run(scenario())
    finally:
        db.close()


def test_a_commit_by_another_connection_or_process_is_seen(tmp_path: Path) -> None:
    db = _database(tmp_path)
    read = CountingRead()
    path = tmp_path / "meta.db"

    async def scenario() -> None:
        assert await db.read_cached("all", read) == []
        other = sqlite3.connect(path)
        with other:
            other.execute("INSERT INTO rows VALUES (2)")
        other.close()
        assert await db.read_cached("all", read) == [2]
        subprocess.run([sys.executable, "-c", "import sqlite3, sys\n"
                        "c = sqlite3.connect(sys.argv[1])\n"
                        "with c: c.execute('INSERT INTO rows VALUES (3)')\n", str(path)], check=True)
        assert await db.read_cached("all", read) == [2, 3]
        assert read.runs == 3

    try:
        asyncio.run(scenario())
    finally:
        db.close()


def test_a_commit_during_the_read_keeps_nothing(tmp_path: Path) -> None:
    db = _database(tmp_path)
    path = tmp_path / "meta.db"
    runs: list[int] = []

    def read_then_someone_commits(conn: sa.Connection) -> int:
        runs.append(1)
        count = int(conn.exec_driver_sql("SELECT count(*) FROM rows").scalar_one())
        other = sqlite3.connect(path)
        with other:
            other.execute("INSERT INTO rows VALUES (9)")
        other.close()
        return count

    async def scenario() -> None:
        await db.read_cached("count", read_then_someone_commits)
        await db.read_cached("count", read_then_someone_commits)
        assert len(runs) == 2

    try:
        asyncio.run(scenario())
    finally:
        db.close()


def test_the_oldest_result_goes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "MAX_CACHED_READS", 2)
    db = _database(tmp_path)
    read = CountingRead()

    async def scenario() -> None:
        for key in ("a", "b", "c"):
            await db.read_cached(key, read)
        await db.read_cached("c", read)
        await db.read_cached("b", read)
        assert read.runs == 3
        await db.read_cached("a", read)  # evicted
        assert read.runs == 4

    try:
        asyncio.run(scenario())
    finally:
        db.close()


def test_without_wal_every_read_runs(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    plain = sqlite3.connect(path)
    plain.execute("CREATE TABLE rows (n INTEGER)")
    plain.commit()
    plain.close()
    assert ChangeWatch(path).token() is None  # a rollback-journal database has no WAL-index
    watch = ChangeWatch(tmp_path / "missing" / "x.db")
    assert watch.token() is None


def test_every_backend_reads_its_writes(metadata_db: Database) -> None:
    """On any backend (PostgreSQL reads plainly) a cached read never hides a committed write."""
    metadata_db.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE cached_rows (n INTEGER)"))

    def read(conn: sa.Connection) -> list[int]:
        return [n for (n,) in conn.exec_driver_sql("SELECT n FROM cached_rows ORDER BY n")]

    async def scenario() -> None:
        assert await metadata_db.read_cached("rows", read) == []
        for n in (1, 2):
            def insert(c: sa.Connection, n: int = n) -> None:
                c.exec_driver_sql(f"INSERT INTO cached_rows VALUES ({n})")
            await metadata_db.write(insert)
        assert await metadata_db.read_cached("rows", read) == [1, 2]

    asyncio.run(scenario())


def test_a_watch_keeps_the_process_locks_on_the_wal_index_so_no_newcomer_resets_it(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it. A watch that
    opened and closed the ``-shm`` took SQLite's lock with it: the next process to open the database
    then believed itself the first and truncated the WAL-index under the others (SIGBUS)."""
    import os
    import sqlite3
    import subprocess
    import sys

    from minicloud.storage.metadata.changes import ChangeWatch

    database = tmp_path / "m.sqlite"
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    shm = Path(f"{database}-shm")
    inode = shm.stat().st_ino

    def my_locks() -> int:
        return sum(1 for line in Path("/proc/locks").read_text().splitlines()
                   if f":{inode} " in line and f" {os.getpid()} " in line)

    assert my_locks() > 0  # SQLite's lock on the WAL-index
    watches = [ChangeWatch(database), ChangeWatch(database)]
    try:
        assert all(watch.token() is not None for watch in watches)
        assert my_locks() > 0
        watches[0].close()  # another watch of the same file still holds it
        assert my_locks() > 0
        newcomer = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                    "c.execute('SELECT count(*) FROM t').fetchall(); c.close()")
        size_before = shm.stat().st_size
        subprocess.run([sys.executable, "-c", newcomer, str(database)], check=True)
        assert shm.stat().st_size == size_before  # not truncated and rebuilt
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    finally:
        for watch in watches:
            watch.close()
        conn.close()
