"""SQLite group commit driven from the event loop: the statements and the COMMIT on the loop, the
fsync elsewhere.

A write's statements are microseconds of CPU each, but every call into SQLite releases the GIL
and takes it back. On a writer thread each of those re-takes waits for the event loop to let go
of the GIL (up to a whole switch interval under load): a batch of six 4 KiB PUTs measured 4 ms
of wall time for 1 ms of CPU, and that wait, not the disk, capped small PUTs. So the writes
waiting on an event loop run right there, one transaction for all of them (each inside its own
SAVEPOINT, as the writer thread does it). Writes that arrive meanwhile form the next batch.

The fsync that makes a batch durable: with an outside sync (``Database.sync_wal_with``: the
small-blob writer process, which ``minicloud up`` gives every server process), the loop's
connection commits with ``synchronous=NORMAL`` (SQLite writes the WAL, without syncing it: tens of
microseconds), the writer process fdatasyncs the WAL, and the batch is answered once it has
(``durable.sync_wal``); the next batch runs meanwhile (a sync that started after a COMMIT covers
it). Measured before, with the COMMIT and its fsync on a thread of the server: 0.8-0.95 ms a
COMMIT there against ~0.2 ms for the same COMMIT in a process of its own, the rest being the
thread's waits for the GIL the loop holds, and the write lock held all that time (every other
process's batch waited for it). Now the lock is held for the statements and the COMMIT only, no
thread of the server takes the GIL for it, and the processes' syncs share the writer's
fdatasyncs. Without an outside sync (a Database built by tests and tools), or when it fails (the
writer process died), the commit thread does it: the COMMIT with its fsync, or the WAL's
fdatasync. Checkpoints (the loop's connection runs none: they write and sync pages) run on the
commit thread once the WAL has grown past ``CHECKPOINT_BYTES``. Durability is the same either
way: a write is answered after its transaction is in a synced WAL.

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
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from minicloud.storage.durable import sync_wal

log = logging.getLogger("minicloud.metadata")

SAVEPOINT = "SAVEPOINT minicloud_write"
ROLLBACK_TO = "ROLLBACK TO SAVEPOINT minicloud_write"
RELEASE = "RELEASE SAVEPOINT minicloud_write"
LOOP_WAIT_S = 0.5  # how long the loop retries a taken write lock before the writer thread waits for it
EAGER_RETRIES = 2  # retries on the loop's next turns, then one every RETRY_S
RETRY_S = 0.001
BUSY_TIMEOUT_MS = 10_000  # how long a SQLite connection waits for the write lock (the loop's: 0)
CHECKPOINT_CHECK_EVERY = 64  # commits between two looks at the WAL's size (with an outside sync)
CHECKPOINT_BYTES = 4 << 20  # a larger WAL is checkpointed on the commit thread (SQLite's own default: ~1,000 pages)


class WalSync(Protocol):
    """Makes the transactions committed to the WAL ``wal`` durable somewhere else (the small-blob
    writer process) and then calls ``done``, on any thread, with None or the error. False, and
    ``done`` not taken, when it cannot."""

    def __call__(self, wal: Path, done: Callable[[OSError | None], None]) -> bool: ...


class PendingWrite(Protocol):
    @property
    def fn(self) -> Callable[[sa.Connection], Any]: ...
    result: Any
    error: BaseException | None


class LoopCommitter:
    """The group commit of the writes of one event loop (created and used on that loop's thread).

    ``connect`` opens the connection the batches run on; ``commit_pool`` runs the COMMITs;
    ``fallback`` hands writes to the writer thread (which settles them itself); ``settle``
    answers the writes of a committed batch. With ``wal`` (the database's WAL file) and
    ``sync_wal``, the loop runs the COMMIT too, without its fsync (``synchronous=NORMAL`` on its
    connection), and ``sync_wal`` makes it durable before the batch is answered; the commit
    thread only checkpoints the WAL then, and syncs it when ``sync_wal`` cannot."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connect: Callable[[], sa.Connection],
                 commit_pool: Executor, fallback: Callable[[list[Any]], None],
                 settle: Callable[[list[Any]], None], max_batch: int,
                 wal: Path | None = None, sync_wal: WalSync | None = None) -> None:
        self._loop = loop
        both = wal is not None and sync_wal is not None
        self._wal: Path | None = wal if both else None
        self._sync_wal: WalSync | None = sync_wal if both else None
        self._commits = 0
        self._syncing = 0  # batches committed on the loop, waiting for their WAL sync
        self._checkpointing = False
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
        """No batch is being run, committed or synced."""
        return not self._running and not self._syncing

    def close(self) -> None:
        """Return the connection (no batch may be running: the loop has stopped)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(Exception):
                if conn.in_transaction():
                    conn.rollback()
                raw = raw_connection(conn)
                raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                raw.execute("PRAGMA synchronous=FULL")  # (back in the pool: as db._sqlite_pragmas has them)
                raw.execute("PRAGMA wal_autocheckpoint=1000")
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
        if self._sync_wal is not None:
            self._commit_here(batch, conn, transaction)
            return
        job = self._loop.run_in_executor(self._commit_pool, transaction.commit)
        job.add_done_callback(lambda done: self._committed(batch, conn, transaction, done))

    def _commit_here(self, batch: list[PendingWrite], conn: sa.Connection,
                     transaction: sa.RootTransaction) -> None:
        """COMMIT on the loop (tens of microseconds: the WAL is written, not synced), then answer
        the batch once ``sync_wal`` has made it durable."""
        assert self._wal is not None and self._sync_wal is not None
        try:
            transaction.commit()
        except Exception as exc:
            log.warning("a group commit of %d writes failed: %s", len(batch), exc)
            self._abandon(conn, transaction)
            self._hand_over(batch)
            return
        self._commits += 1
        if self._commits % CHECKPOINT_CHECK_EVERY == 0:
            self._checkpoint_if_large()
        loop = self._loop

        def synced(error: OSError | None) -> None:  # on the loop, or on the thread reading the acks
            if _on_loop(loop):
                self._synced(batch, error)
            else:
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                    loop.call_soon_threadsafe(self._synced, batch, error)
        self._syncing += 1
        if not self._sync_wal(self._wal, synced):
            self._synced(batch, _NO_SYNC)
        # The next batch runs while this one's sync is under way (a sync started after its COMMIT
        # covers it: the WAL is one file), on the loop's next turn: what arrives meanwhile joins it.
        self._loop.call_soon(self._next_batch)

    def _synced(self, batch: list[PendingWrite], error: OSError | None) -> None:
        """On the loop: the batch's COMMIT is durable (``error`` None), or must be synced here."""
        if error is None:
            self._syncing -= 1
            self._settle(batch)
            return
        if error is not _NO_SYNC:
            log.warning("syncing the metadata WAL elsewhere failed (%s): syncing it here", error)
        assert self._wal is not None
        job = self._loop.run_in_executor(self._commit_pool, sync_wal, self._wal)
        job.add_done_callback(lambda done: self._synced_here(batch, done))

    def _synced_here(self, batch: list[PendingWrite], done: asyncio.Future[None]) -> None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if error is not None:  # committed, but not known to be durable: the writes fail
            log.error("syncing the metadata WAL failed: %s", error)
            for write in batch:
                if write.error is None:
                    write.error, write.result = error, None
        self._syncing -= 1
        self._settle(batch)

    def _checkpoint_if_large(self) -> None:
        """A PASSIVE checkpoint on the commit thread when the WAL has grown past CHECKPOINT_BYTES
        (the loop's connection does not checkpoint: it would write and sync pages on the loop)."""
        assert self._wal is not None
        if self._checkpointing:
            return
        try:
            size = self._wal.stat().st_size
        except OSError:
            return
        if size < CHECKPOINT_BYTES:
            return
        self._checkpointing = True
        job = self._loop.run_in_executor(self._commit_pool, self._checkpoint)
        job.add_done_callback(self._checkpointed)

    def _checkpoint(self) -> None:
        with self._connect() as conn:
            raw_connection(conn).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpointing = False
        error = done.exception() if not done.cancelled() else None
        if error is not None:
            log.warning("checkpointing the metadata WAL failed: %s", error)

    def _retry_later(self, batch: list[PendingWrite]) -> bool:
        """Put ``batch`` back in front and try again on a later turn of the loop; False (nothing
        done) once the lock has been found taken for longer than ``LOOP_WAIT_S``."""
        now = self._loop.time()
        if self._busy_since is None:
            self._busy_since, self._retries = now, 0
        elif now - self._busy_since > LOOP_WAIT_S:
            self._busy_since = None
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
        for write in batch:
            write.result, write.error = None, None
        self._fallback(batch)
        self._loop.call_soon(self._next_batch)

    def _connection(self) -> sa.Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._connect()
            raw = raw_connection(conn)
            raw.execute("PRAGMA busy_timeout=0")  # never wait on the loop
            if self._sync_wal is not None:  # the COMMIT writes the WAL, ``sync_wal`` syncs it
                raw.execute("PRAGMA synchronous=NORMAL")
                raw.execute("PRAGMA wal_autocheckpoint=0")  # (on the commit thread: _checkpoint)
            self._conn = conn
        return conn

    def _abandon(self, conn: sa.Connection, transaction: sa.RootTransaction) -> None:
        try:
            transaction.rollback()
        except Exception:  # the connection is unusable: the next batch opens another
            with contextlib.suppress(Exception):
                conn.invalidate()
            self._conn = None



_NO_SYNC = OSError("no writer process to sync the WAL")  # (_synced: sync it on the commit thread)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _lock_taken(exc: sqlite3.OperationalError) -> bool:
    """SQLite refused to start the transaction because another connection holds the write lock."""
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


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
