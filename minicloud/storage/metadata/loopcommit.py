"""SQLite group commit driven from the event loop: the statements on the loop, the COMMIT on a thread.

A write's statements are microseconds of CPU each, but every call into SQLite releases the GIL
and takes it back. On a writer thread each of those re-takes waits for the event loop to let go
of the GIL (up to a whole switch interval under load): a batch of six 4 KiB PUTs measured 4 ms
of wall time for 1 ms of CPU, and that wait, not the disk, capped small PUTs. So the writes
waiting on an event loop run right there, one transaction for all of them (each inside its own
SAVEPOINT, as the writer thread does it), and only the COMMIT, the fsync, goes to a thread,
where it waits without the GIL. Writes that arrive meanwhile form the next batch.

The loop never blocks on SQLite's write lock: its connection's busy timeout is zero. When another
connection holds the lock (most often another S3 process's batch, for its statements and COMMIT: a
millisecond or two) the batch goes back in front of the queue and BEGIN IMMEDIATE is tried again on
the loop's next turns, then every millisecond; the writes arriving meanwhile join it. Handing such
a batch to the writer thread instead, as this module first did, made every S3 worker slow the
others down: the thread waits in SQLite's busy handler, which sleeps 1, 2, 5, 10... ms between
tries, and then runs each statement with a GIL hand-off (4 KiB PUTs, ONEZONE_IA, 16 connections,
with one S3 worker: ~1,450-1,600/s that way, ~2,100/s retrying on the loop). A lock held for longer
than ``LOOP_WAIT_S`` (a bulk write, say) is waited for by the writer thread. The same thread runs
again each write of a batch whose transaction could not be started or committed.
A write that may run for many milliseconds (``Database.write(..., bulk=True)``: a thousand
deletions) goes to the writer thread from the start, so that the loop serves between its statements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

import sqlalchemy as sa

log = logging.getLogger("minicloud.metadata")

SAVEPOINT = "SAVEPOINT minicloud_write"
ROLLBACK_TO = "ROLLBACK TO SAVEPOINT minicloud_write"
RELEASE = "RELEASE SAVEPOINT minicloud_write"
LOOP_WAIT_S = 0.5  # how long the loop retries a taken write lock before the writer thread waits for it
EAGER_RETRIES = 2  # retries on the loop's next turns, then one every RETRY_S
RETRY_S = 0.001
BUSY_TIMEOUT_MS = 10_000  # how long a SQLite connection waits for the write lock (the loop's: 0)


class PendingWrite(Protocol):
    @property
    def fn(self) -> Callable[[sa.Connection], Any]: ...
    result: Any
    error: BaseException | None


class LoopCommitter:
    """The group commit of the writes of one event loop (created and used on that loop's thread).

    ``connect`` opens the connection the batches run on; ``commit_pool`` runs the COMMITs;
    ``fallback`` hands writes to the writer thread (which settles them itself); ``settle``
    answers the writes of a committed batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connect: Callable[[], sa.Connection],
                 commit_pool: Executor, fallback: Callable[[list[Any]], None],
                 settle: Callable[[list[Any]], None], max_batch: int) -> None:
        self._loop = loop
        self._connect, self._commit_pool = connect, commit_pool
        self._fallback, self._settle = fallback, settle
        self._max_batch = max_batch
        self._pending: deque[PendingWrite] = deque()
        self._running = False  # a batch is being run or committed (or one is scheduled)
        self._conn: sa.Connection | None = None
        self._busy_since: float | None = None  # since when BEGIN IMMEDIATE has found the lock taken
        self._retries = 0

    def submit(self, write: PendingWrite) -> None:
        """On the loop's thread: ``write`` joins the next batch."""
        self._pending.append(write)
        if not self._running:
            self._running = True
            # On the loop's next turn: the writes made during this one join the same batch.
            self._loop.call_soon(self._next_batch)

    @property
    def idle(self) -> bool:
        """No batch is being run or committed."""
        return not self._running

    def close(self) -> None:
        """Return the connection (no batch may be running: the loop has stopped)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(Exception):
                if conn.in_transaction():
                    conn.rollback()
                raw_connection(conn).execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.close()

    # -- on the loop's thread ------------------------------------------------------------------------
    def _next_batch(self) -> None:
        if not self._pending:
            self._running = False
            return
        batch = [self._pending.popleft() for _ in range(min(self._max_batch, len(self._pending)))]
        try:
            conn = self._connection()
        except Exception:  # the writer thread reports it to each write
            self._hand_over(batch)
            return
        transaction = conn.begin()
        try:
            raw_connection(conn).execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self._abandon(conn, transaction)
            if not (_lock_taken(exc) and self._retry_later(batch)):
                self._hand_over(batch)  # the writer thread waits for the lock
            return
        self._busy_since = None
        try:
            run_in_savepoints(conn, batch)
        except Exception as exc:  # the transaction machinery itself failed
            log.warning("a group commit of %d writes could not run on the loop: %s", len(batch), exc)
            self._abandon(conn, transaction)
            self._hand_over(batch)
            return
        if all(write.error is not None for write in batch):  # nothing to commit
            self._abandon(conn, transaction)
            self._settle(batch)
            self._loop.call_soon(self._next_batch)
            return
        job = self._loop.run_in_executor(self._commit_pool, transaction.commit)
        job.add_done_callback(lambda done: self._committed(batch, conn, transaction, done))

    def _retry_later(self, batch: list[PendingWrite]) -> bool:
        """Put ``batch`` back in front and try again on a later turn of the loop; False (nothing
        done) once the lock has been found taken for longer than ``LOOP_WAIT_S``."""
        now = self._loop.time()
        if self._busy_since is None:
            self._busy_since, self._retries = now, 0
        elif now - self._busy_since > LOOP_WAIT_S:
            return False
        self._pending.extendleft(reversed(batch))
        self._retries += 1
        if self._retries <= EAGER_RETRIES:
            self._loop.call_soon(self._next_batch)
        else:
            self._loop.call_later(RETRY_S, self._next_batch)
        return True

    def _committed(self, batch: list[PendingWrite], conn: sa.Connection, transaction: sa.RootTransaction,
                   done: asyncio.Future[None]) -> None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:
            log.warning("a group commit of %d writes failed: %s", len(batch), error)
            self._abandon(conn, transaction)
            self._hand_over(batch)
            return
        self._settle(batch)
        self._next_batch()

    def _hand_over(self, batch: list[PendingWrite]) -> None:
        """The batch to the writer thread, each write to be run again from the start."""
        self._busy_since = None  # (the next taken lock starts its own clock)
        for write in batch:
            write.result, write.error = None, None
        self._fallback(batch)
        self._loop.call_soon(self._next_batch)

    def _connection(self) -> sa.Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._connect()
            raw_connection(conn).execute("PRAGMA busy_timeout=0")  # never wait on the loop
            self._conn = conn
        return conn

    def _abandon(self, conn: sa.Connection, transaction: sa.RootTransaction) -> None:
        try:
            transaction.rollback()
        except Exception:  # the connection is unusable: the next batch opens another
            with contextlib.suppress(Exception):
                conn.invalidate()
            self._conn = None



def _lock_taken(exc: sqlite3.OperationalError) -> bool:
    """SQLite refused to start the transaction because another connection holds the write lock
    (SQLITE_BUSY or SQLITE_LOCKED, extended codes such as SQLITE_BUSY_RECOVERY included)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def raw_connection(conn: sa.Connection) -> sqlite3.Connection:
    """The driver's connection under ``conn`` (SQLite): BEGIN, savepoints and pragmas go straight
    to it (through SQLAlchemy's execution context they cost more than the statements themselves)."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def run_in_savepoints(conn: sa.Connection, batch: Sequence[PendingWrite]) -> None:
    """Each write of ``batch`` inside its own SAVEPOINT of the open transaction: one that raises is
    undone alone and keeps its error; the others' results wait for the COMMIT."""
    raw = raw_connection(conn)
    for write in batch:
        raw.execute(SAVEPOINT)
        try:
            write.result = write.fn(conn)
        except BaseException as exc:  # the caller gets the error
            write.error = exc
            raw.execute(ROLLBACK_TO)
        raw.execute(RELEASE)
