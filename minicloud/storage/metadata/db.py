"""The metadata store: SQLAlchemy Core over SQLite (WAL, default) or PostgreSQL.

Statements run on worker threads (SQLite reads excepted, see ``read``): ``await db.read(fn)`` and
``await db.write(fn)`` call ``fn(connection)`` inside a transaction. SQLite has a single writer,
so its writes are serialised on one thread (no ``database is locked`` upgrades) and its reads,
microseconds of CPU, run inline; PostgreSQL uses a small pool for both. A write has been
committed (and, in WAL mode, survives ``kill -9``) when it returns.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

T = TypeVar("T")

_MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed transaction survives a process crash (kill -9);
    # only an operating-system crash or power loss can roll back the last transactions.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=4, max_overflow=8)
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
            self.engine = sa.create_engine(url, pool_size=8, max_overflow=4, pool_pre_ping=True)
        self._readers = threading.local()
        workers = 1 if self.is_sqlite else 8
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metadata")

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "heads")  # one branch per service, all from 0020_s3

    def read_sync(self, fn: Callable[[sa.Connection], T]) -> T:
        with self.engine.connect() as connection:
            return fn(connection)

    def write_sync(self, fn: Callable[[sa.Connection], T]) -> T:
        with self.engine.begin() as connection:
            return fn(connection)

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        if self.is_sqlite:
            # A SQLite read is a few microseconds of CPU on pages in memory (WAL readers never
            # wait for the writer): handing it to a thread costs far more (a GIL hand-over can
            # take the whole 5 ms switch interval under load), so it runs right here.
            return self._read_inline(fn)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.read_sync, fn)

    def _read_inline(self, fn: Callable[[sa.Connection], T]) -> T:
        """A read on this thread's own long-lived connection, its transaction ended right after
        (so the next read sees every commit made since)."""
        conn: sa.Connection | None = getattr(self._readers, "conn", None)
        if conn is None or conn.closed:
            conn = self._readers.conn = self.engine.connect()
        try:
            return fn(conn)
        except sa.exc.DBAPIError:
            conn.invalidate()
            raise
        finally:
            if not conn.invalidated:
                conn.rollback()

    async def write(self, fn: Callable[[sa.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.write_sync, fn)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()
