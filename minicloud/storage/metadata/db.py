"""The metadata store: SQLAlchemy Core over SQLite (WAL, default) or PostgreSQL.

Statements run on worker threads (SQLite reads excepted, see ``read``): ``await db.read(fn)`` and
``await db.write(fn)`` call ``fn(connection)`` inside a transaction. SQLite has a single writer,
so its writes are serialised on one thread (no ``database is locked`` upgrades) and its reads,
microseconds of CPU, run inline; PostgreSQL uses a small pool for both. A write has been
committed when it returns: in WAL mode with ``synchronous=FULL`` the commit fsyncs the WAL, so it
survives ``kill -9`` and a power loss alike.

Group commit (SQLite): the writes waiting on an event loop run there in one transaction, each
inside its own SAVEPOINT (a write that raises is rolled back alone and gets its exception); the
one COMMIT (one fsync), on a thread, then answers them all (``loopcommit``). Under concurrency the
fixed costs (BEGIN/COMMIT, the fsync, waking the event loop) are paid once per batch. When the
write lock is taken elsewhere, the writer thread takes the batch and waits for it, the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import signal
import sqlite3
import threading
import traceback
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from minicloud.storage.metadata.changes import ChangeWatch
from minicloud.storage.metadata.epoch import SharedEpoch
from minicloud.storage.metadata.loopcommit import (
    BUSY_TIMEOUT_MS,
    LoopCommitter,
    PendingWrite,
    raw_connection,
    run_in_savepoints,
)

T = TypeVar("T")
log = logging.getLogger("minicloud.metadata")

MAX_CACHED_READS = 10_000  # results kept by ``read_cached`` (the oldest goes first; rows of ~1 KiB)
MAX_BATCH = 256  # writes committed together at most (a batch holds the write lock while it runs)
HERE_WAIT_MS = 100  # how long ``run_here`` waits for the write lock before leaving its writes to their callers

_MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL in WAL mode: every commit fsyncs the WAL, so a committed transaction survives a power
    # loss too (one fsync per commit; group commit shares it between concurrent writes).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


@dataclass(slots=True)
class _Write(Generic[T]):
    fn: Callable[[sa.Connection], T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    result: Any = None
    error: BaseException | None = field(default=None)


def _settle(writes: list[_Write[Any]]) -> None:
    """On the event loop: hand each write its outcome."""
    for write in writes:
        if write.future.done():  # cancelled by its caller; the write stands all the same
            continue
        if write.error is not None:
            write.future.set_exception(write.error)
        else:
            write.future.set_result(write.result)


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
        self._here = threading.local()  # ``run_here``'s connection, one per thread that calls it
        # Results of hot reads, valid while nothing is committed (see ``read_cached``).
        database = self.engine.url.database if self.is_sqlite else None
        self.in_memory = self.is_sqlite and _sqlite_in_memory(self.engine.url)
        on_file = database if database and not self.in_memory else None
        self._changes = ChangeWatch(Path(on_file)) if on_file else None
        # Bumped after changes that processes keep in memory (see ``epoch``): shared by every
        # process using this SQLite file; elsewhere this process's own.
        self.epoch = SharedEpoch(Path(f"{on_file}.epoch") if on_file else None)
        self._cached: dict[Hashable, Any] = {}
        self._cached_token: bytes | None = None
        workers = 1 if self.is_sqlite else 8
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metadata")
        self._writes: queue.SimpleQueue[_Write[Any] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        # SQLite: the group commit of each event loop's writes (see loopcommit), COMMITs on one thread.
        self._committers: dict[asyncio.AbstractEventLoop, LoopCommitter] = {}
        self._commit_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metadata-commit")
        # SQLite: long reads (a controller's scan of thousands of rows), off the event loop and off
        # the writer's thread (WAL readers never wait for the writer, nor it for them).
        self._scans = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metadata-scan") if self.is_sqlite else None

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent).

        Where it can, in a forked child: alembic, with the mako and pygments it imports, is ~11 MiB
        of a process's memory that would otherwise stay in the server (modules are never unloaded)
        and in every S3 worker forked from it. In this process when another thread runs (a fork
        would copy the locks it holds), or when the database lives in this process's memory.
        The child dies with this process; its error comes back as this call's ``RuntimeError``."""
        if self.in_memory or not hasattr(os, "fork") or threading.active_count() > 1:
            self._migrate_here()
            return
        parent = os.getpid()
        reader, writer = os.pipe()
        try:
            pid = os.fork()
        except BaseException:
            os.close(reader)
            os.close(writer)
            raise
        if pid == 0:  # the child: migrate through connections of its own, then leave at once
            os.close(reader)
            _exit_with_parent(parent)
            report, code = b"ok", 0
            try:
                self.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
                self._migrate_here()
            except BaseException:
                report, code = traceback.format_exc().encode(errors="replace"), 1
            finally:
                with contextlib.suppress(OSError):
                    os.write(writer, report)
                os._exit(code)
        os.close(writer)
        status: int | None = None
        try:
            with os.fdopen(reader, "rb") as pipe:
                report = pipe.read()  # until the child exits
            with contextlib.suppress(ChildProcessError):  # (reaped already where SIGCHLD is ignored)
                status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        except BaseException:  # interrupted: the migration stops with us
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            raise
        if report != b"ok":
            reason = (f":\n{report.decode(errors='replace')}" if report
                      else f" (the migrating process died: exit status {status})")
            raise RuntimeError(f"migrating the metadata store failed{reason}")

    def _migrate_here(self) -> None:
        # Imported here: only the process that migrates needs alembic.
        from alembic import command
        from alembic.config import Config as AlembicConfig

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
            self._begin_immediate(connection)
            return fn(connection)

    def _begin_immediate(self, conn: sa.Connection) -> None:
        """Start a SQLite write transaction holding the write lock from its first statement: what it
        reads stays true until it commits, whatever other processes (S3 workers, ``minicloud
        accounts``) write meanwhile. (pysqlite would begin only at the first change, after the
        reads; and a deferred transaction that read first cannot take the lock once another
        process has committed: SQLITE_BUSY at once, no wait.) Elsewhere: nothing to do."""
        if self.is_sqlite:
            raw_connection(conn).execute("BEGIN IMMEDIATE")

    async def read(self, fn: Callable[[sa.Connection], T], *, bulk: bool = False) -> T:
        """``fn`` in a read transaction. ``bulk``: a read that may take many milliseconds (a
        controller's page of a thousand rows) runs on a thread of its own, so that the event loop
        serves meanwhile."""
        if bulk and self._scans is not None:
            return await asyncio.get_running_loop().run_in_executor(self._scans, self.read_sync, fn)
        if self.is_sqlite:
            # A SQLite read is a few microseconds of CPU on pages in memory (WAL readers never
            # wait for the writer): handing it to a thread costs far more (a GIL hand-over can
            # take the whole 5 ms switch interval under load), so it runs right here.
            return self._read_inline(fn)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.read_sync, fn)

    async def read_cached(self, key: Hashable, fn: Callable[[sa.Connection], T]) -> T:
        """``read(fn)``, its result kept under ``key`` until the next commit to the database by
        any connection of any process (SQLite in WAL mode; elsewhere a plain read). The result is
        shared by every caller with the same key: it must not be changed."""
        changes = self._changes
        token = changes.token() if changes is not None else None
        if token is None:
            return await self.read(fn)
        if token != self._cached_token:
            self._cached.clear()
            self._cached_token = token
        elif key in self._cached:
            return self._cached[key]  # type: ignore[no-any-return]
        value = await self.read(fn)
        # Kept only if nothing was committed meanwhile (the read may have seen either state).
        if changes is not None and changes.token() == token and self._cached_token == token:
            if len(self._cached) >= MAX_CACHED_READS:
                del self._cached[next(iter(self._cached))]
            self._cached[key] = value
        return value

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

    async def write(self, fn: Callable[[sa.Connection], T], *, bulk: bool = False) -> T:
        """``fn`` in a write transaction, committed when this returns. ``bulk``: a write that may
        take many milliseconds (e.g. a thousand deletions) runs on the writer thread, where the
        event loop goes on serving between its statements, instead of on the loop itself."""
        loop = asyncio.get_running_loop()
        if not self.is_sqlite:
            return await loop.run_in_executor(self._executor, self.write_sync, fn)
        future: asyncio.Future[T] = loop.create_future()
        if bulk:
            self._to_writer_thread([_Write(fn, loop, future)])
        else:
            self._committer(loop).submit(_Write(fn, loop, future))
        return await future

    def enqueue_write(self, fn: Callable[[sa.Connection], T], loop: asyncio.AbstractEventLoop,
                      future: asyncio.Future[T]) -> None:
        """``write`` started from any thread (e.g. the one that just made an object's data durable,
        sparing a round trip through the event loop): ``future``, of ``loop``, gets the outcome."""
        write: _Write[T] = _Write(fn, loop, future)
        if self.is_sqlite:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                self._submit_on_loop(write)
                return
            try:
                loop.call_soon_threadsafe(self._submit_on_loop, write)
            except RuntimeError:  # that loop is closed: the write stands all the same
                self._to_writer_thread([write])
            return

        def done(result: Any) -> None:
            try:
                write.result = result.result()
            except BaseException as exc:
                write.error = exc
            self._answer([write])
        self._executor.submit(self.write_sync, fn).add_done_callback(done)

    def run_here(self, batch: Sequence[PendingWrite]) -> None:
        """Run ``batch`` now on this thread, one transaction for all of it (each write in its own
        savepoint) committed before this returns; each write gets its ``result`` or ``error``. For
        a thread with no event loop that makes data durable and then commits its rows (the hosted
        small-blob writer, ``storage.blobs.writerproc``), which must not stall behind another
        connection's transaction: when the write lock is not free within ``HERE_WAIT_MS``, or the
        transaction fails as a whole, every write gets that error (nothing of the batch stands)
        and its caller runs it another way."""
        conn: sa.Connection | None = getattr(self._here, "conn", None)
        try:
            if conn is None or conn.closed or conn.invalidated:
                conn = self._here.conn = self.engine.connect()
                raw_connection(conn).execute(f"PRAGMA busy_timeout={HERE_WAIT_MS}")
            with conn.begin():
                self._begin_immediate(conn)
                run_in_savepoints(conn, batch)
        except BaseException as exc:
            if conn is not None and not conn.closed and not conn.invalidated and conn.in_transaction():
                with contextlib.suppress(Exception):
                    conn.rollback()
            for write in batch:
                write.result, write.error = None, write.error or exc

    # -- SQLite group commit ---------------------------------------------------------------------
    def _committer(self, loop: asyncio.AbstractEventLoop) -> LoopCommitter:
        committer = self._committers.get(loop)
        if committer is None:
            for other, stale in list(self._committers.items()):  # those of loops closed since
                if other.is_closed() and stale.idle:
                    stale.close()
                    del self._committers[other]
            committer = LoopCommitter(loop, self.engine.connect, self._commit_pool, self._to_writer_thread,
                                      _settle, MAX_BATCH)
            self._committers[loop] = committer
        return committer

    def _submit_on_loop(self, write: _Write[Any]) -> None:
        self._committer(write.loop).submit(write)

    def _to_writer_thread(self, writes: list[_Write[Any]]) -> None:
        """Writes the loop could not run (the write lock taken elsewhere, a failed batch): the
        writer thread waits for the lock and settles each."""
        if self._writer is None:
            self._start_writer()
        for write in writes:
            self._writes.put(write)

    def _start_writer(self) -> None:
        with self._writer_lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="metadata-writer", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        conn: sa.Connection | None = None
        while True:
            first = self._writes.get()
            if first is None:
                break
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._writes.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            if conn is None or conn.closed or conn.invalidated:
                try:
                    conn = self.engine.connect()
                except BaseException as exc:  # every waiting write gets the failure
                    for write in batch:
                        write.error = exc
                    self._answer(batch)
                    conn = None
                    continue
            self._run_batch(conn, batch)
            self._answer(batch)
            if stop:
                break
        if conn is not None:
            conn.close()

    def _run_batch(self, conn: sa.Connection, batch: list[_Write[Any]]) -> None:
        if len(batch) == 1:
            write = batch[0]
            try:
                with conn.begin():
                    self._begin_immediate(conn)
                    write.result = write.fn(conn)
            except BaseException as exc:  # delivered to the caller
                write.error = exc
            return
        try:
            with conn.begin():
                # An explicit BEGIN: the first SAVEPOINT must not open (and its RELEASE commit) the
                # transaction itself, as it would with pysqlite's deferred implicit BEGIN.
                self._begin_immediate(conn)
                run_in_savepoints(conn, batch)
        except BaseException as exc:  # the batch did not commit: nothing of it stands
            log.warning("a group commit of %d writes failed: %s", len(batch), exc)
            if conn.invalidated or conn.closed:
                for write in batch:
                    write.error = write.error or exc
                return
            for write in batch:  # each again on its own, so one bad write cannot fail the others
                write.result, write.error = None, None
                self._run_batch(conn, [write])

    @staticmethod
    def _answer(batch: list[_Write[Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Write[Any]]] = {}
        for write in batch:
            by_loop.setdefault(write.loop, []).append(write)
        for loop, writes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, writes)

    def close(self) -> None:
        if self._writer is not None:
            self._writes.put(None)
            self._writer.join()
            self._writer = None
        self._commit_pool.shutdown(wait=True)
        for committer in self._committers.values():
            committer.close()
        self._committers.clear()
        self._executor.shutdown(wait=True)
        if self._scans is not None:
            self._scans.shutdown(wait=True)
        self.engine.dispose()
        if self._changes is not None:  # (after the connections: see ``changes``)
            self._changes.close()
        self.epoch.close()


_PR_SET_PDEATHSIG = 1


def _sqlite_in_memory(url: sa.URL) -> bool:
    """Whether a SQLite URL names a database in the process's memory (no file): no name,
    ``:memory:``, or a URI filename (``uri=true``) with ``mode=memory``, ``vfs=memdb`` or the name
    ``file::memory:``."""
    database = url.database
    if not database or database == ":memory:":
        return True
    query = {key: (value[-1] if isinstance(value, tuple) else value) for key, value in url.query.items()}
    if str(query.get("uri", "")).lower() not in ("true", "1"):
        return False  # without URI filenames, every other name is a file
    return (query.get("mode") == "memory" or query.get("vfs") == "memdb"
            or database.startswith("file::memory:"))


def _exit_with_parent(parent: int) -> None:
    """In a forked child: be killed when the parent dies (Linux), and leave now if it already has."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
