"""Small blobs packed in one SQLite database per replica root, written with group commit.

    <root>/small-pack.sqlite (+ -wal, -shm)     blobs of at most ``PACK_LIMIT`` bytes (sha256 only)
    <root>/small-pack.lock                      taken by a writer around each transaction

A file per small copy costs six system calls and two journal commits of the file system (the
file's fsync, the directory's): about as much CPU as all of S3's Python per 4 KiB PUT. In the
pack, every copy waiting for a replica goes into one transaction (``PackWriter``: all that is
queued, up to ``BATCH_BYTES``; the writer process commits on its main thread every request
waiting in its socket, a writer in the server has a thread per replica), committed with one fsync of the WAL
(``journal_mode=WAL``, ``synchronous=FULL``); each copy is acknowledged only after its
transaction committed, so an acknowledged copy survives kill -9 and power loss exactly as a
renamed-and-synced file does, and an uncommitted batch is simply not there after a crash (SQLite
rolls the WAL's uncommitted frames back when it next opens the database). Writers of several
processes (``minicloud up`` shares one writer between its S3 processes, but a process whose shared
writer died starts one of its own, and tools may write too) take turns through ``LOCK_NAME``.

A row is keyed by the first 64 bits of its SHA-256 (the rowid: one B-tree, no index) and holds
the full digest: a row whose key another digest already holds is refused (``Collision``) and
that blob is written as a file instead, so the two tiers together always hold it. The pack file
sits in the replica's own root: each zone's copies stay on that zone's disk.

Released blobs' rows are deleted in the writer's transactions; the pages they free are given
back to the file system by ``reclaim`` (``auto_vacuum=INCREMENTAL``), which the writer runs after
enough deletions and the scrubber after each pass.

Readers get one connection per thread (a read of a row whose pages the OS caches costs
microseconds: the S3 GET fast path reads on the event loop). A connection checks at most once a
second that the pack file is still the one it opened (an AZ root unmounted, removed or replaced:
it reopens, or reports the pack gone); the writer checks before every batch, and fails the batch
when the replica is unhealthy, so no copy is acknowledged into a root that is gone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from minicloud.storage.blobs.core import Digest
from minicloud.storage.durable import fsync_dir

log = logging.getLogger("minicloud.blobs.pack")

PACK_NAME = "small-pack.sqlite"
LOCK_NAME = "small-pack.lock"  # writers of every process take it around a transaction (see ``_writing``)
# Blobs up to this size are packed. Below it, the per-file costs (six system calls, two journal
# commits, an inode and a directory entry) outweigh writing the bytes twice (the WAL, then the
# checkpoint into the database); a 256 KiB copy is ~64 pages, which one transaction writes
# sequentially. Larger blobs stay files (one write, read by offset without SQLite's page chain).
PACK_LIMIT = 256 * 1024
PAGE_SIZE = 4096
BATCH_BYTES = 8 << 20  # the most bytes one group commit takes
BATCH_COPIES = 512  # the most copies one group commit takes
IDENTITY_SECONDS = 1.0  # how long a reader trusts that the pack file is the one it opened
RECLAIM_AFTER_DELETES = 256  # the writer reclaims free pages after this many deletions
RECLAIM_FREE_PAGES = 256  # ... when at least this many pages are free (1 MiB)
RECLAIM_FREE_SHARE = 0.25  # ... and at least this share of the file's pages
RECLAIM_STEP = 2048  # pages given back by one reclaim (8 MiB)
BUSY_MS = 30_000
CACHE_KIB = 512  # SQLite's page cache per connection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    id INTEGER PRIMARY KEY,  -- the first 64 bits of the SHA-256, signed
    digest TEXT NOT NULL,    -- the full hex digest: a row answers only for its own digest
    size INTEGER NOT NULL,
    created REAL NOT NULL,   -- written (or written again): a collector's grace period counts from it
    data BLOB NOT NULL
)
"""


class Collision(OSError):
    """Another digest holds this blob's key in the pack: the blob is written as a file instead."""


def packable(digest: Digest, size: int) -> bool:
    return digest.algorithm == "sha256" and size <= PACK_LIMIT


def row_key(digest: Digest) -> int:
    value = int(digest.hex[:16], 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def _os_error(exc: sqlite3.Error, what: str) -> OSError:
    code = errno.ENOSPC if "full" in str(exc) else errno.EIO
    return OSError(code, f"{what}: {exc}")


class _Handle:
    """One thread's connection to the pack, and what it knows about the file it opened."""

    __slots__ = ("checked", "conn", "identity", "lock_fd", "synced_dir", "unsynced")

    def __init__(self, conn: sqlite3.Connection, identity: tuple[int, int], lock_fd: int) -> None:
        self.conn = conn
        self.identity = identity
        self.lock_fd = lock_fd
        self.checked = time.monotonic()
        self.synced_dir = False
        self.unsynced = False  # a deletions-only transaction could not set synchronous=FULL back


class Pack:
    """One replica root's pack: connections per thread, opened on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / PACK_NAME
        self._local = threading.local()
        self._handles: list[_Handle] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Pack({str(self.path)!r})"

    @classmethod
    def create(cls, root: Path) -> Pack:
        """The root's pack, created (durably, with its schema) when it does not exist yet."""
        pack = cls(root)
        if not pack.path.exists():
            root.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(pack.path, isolation_level=None, timeout=BUSY_MS / 1000)
            try:
                conn.execute(f"PRAGMA page_size={int(PAGE_SIZE)}")  # before the first table
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(_SCHEMA)
            finally:
                conn.close()
            fsync_dir(root)
        return pack

    @staticmethod
    def exists(root: Path) -> bool:
        return (root / PACK_NAME).exists()

    # -- connections -----------------------------------------------------------------------------------
    def _identity(self) -> tuple[int, int]:
        st = os.stat(self.path)  # FileNotFoundError: the root (or its pack) is gone
        return st.st_dev, st.st_ino

    def _open(self) -> _Handle:
        identity = self._identity()
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_MS / 1000, check_same_thread=False)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA journal_size_limit=67108864")
        # A small page cache per connection (there is one per thread and zone): another process's
        # commit empties it anyway, and the OS caches the file's pages for every connection.
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        # No mmap_size: mapped reads were ~2 us cheaper, but a disk that fails or goes away under a
        # mapping raises SIGBUS in the server, where pread gives an error the caller handles.
        try:
            lock_fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            conn.close()
            raise
        handle = _Handle(conn, identity, lock_fd)
        with self._lock:
            self._handles.append(handle)
        return handle

    def _drop(self, handle: _Handle) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._handles.remove(handle)
        _close(handle)
        self._local.handle = None

    def _handle(self, check: bool = False) -> _Handle:
        """This thread's connection; reopened when the pack file is no longer the one it opened
        (checked now when ``check``, else at most once per ``IDENTITY_SECONDS``)."""
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None:
            handle = self._local.handle = self._open()
            return handle
        now = time.monotonic()
        if check or now - handle.checked > IDENTITY_SECONDS:
            try:
                same = self._identity() == handle.identity
            except FileNotFoundError:
                self._drop(handle)
                raise
            handle.checked = now
            if not same:
                self._drop(handle)
                handle = self._local.handle = self._open()
        return handle

    def close(self) -> None:
        """Close every thread's connection (each thread opens a new one on its next use)."""
        with self._lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            _close(handle)
        self._local = threading.local()

    # -- reading -----------------------------------------------------------------------------------------
    def get(self, digest: Digest) -> bytes | None:
        """The blob's bytes, or None when the pack has no row for it (blocking only when the OS
        does not cache the pages: microseconds otherwise)."""
        if digest.algorithm != "sha256":
            return None
        try:
            row = self._handle().conn.execute("SELECT digest, data FROM blobs WHERE id=?",
                                              (row_key(digest),)).fetchone()
        except sqlite3.Error as exc:
            raise _os_error(exc, f"reading {digest} from {self.path}") from None
        if row is None or row[0] != digest.hex:
            return None
        return bytes(row[1])

    def stat(self, digest: Digest) -> tuple[int, float] | None:
        """(size, created) of the blob's row, or None."""
        if digest.algorithm != "sha256":
            return None
        try:
            row = self._handle().conn.execute("SELECT digest, size, created FROM blobs WHERE id=?",
                                              (row_key(digest),)).fetchone()
        except sqlite3.Error as exc:
            raise _os_error(exc, f"reading {digest} from {self.path}") from None
        if row is None or row[0] != digest.hex:
            return None
        return int(row[1]), float(row[2])

    def walk(self) -> Iterator[tuple[str, int, float]]:
        """(hex digest, size, created) of every row, in key order (read in pages of rows, each in
        its own read transaction: a long walk does not hold the WAL back)."""
        last: int | None = None
        while True:
            try:
                conn = self._handle().conn
                query = "SELECT id, digest, size, created FROM blobs"
                rows = (conn.execute(query + " ORDER BY id LIMIT 1000").fetchall() if last is None
                        else conn.execute(query + " WHERE id > ? ORDER BY id LIMIT 1000", (last,)).fetchall())
            except sqlite3.Error as exc:
                raise _os_error(exc, f"listing {self.path}") from None
            for key, hex_digest, size, created in rows:
                yield str(hex_digest), int(size), float(created)
                last = int(key)
            if len(rows) < 1000:
                return

    # -- writing -----------------------------------------------------------------------------------------
    def put_many(self, items: Sequence[tuple[bytes, Digest]], deletes: Sequence[Digest] = (),
                 check: bool = True) -> tuple[list[OSError | None], list[bool]]:
        """Write ``items`` and delete the rows of ``deletes`` in ONE transaction, committed (the WAL
        fsynced) before this returns: each item's outcome (None: durable; ``Collision``: another
        digest holds its key) and, per deletion, whether a row was removed. When the transaction
        fails, every item gets the error (nothing of it is visible).

        A transaction of deletions only is committed without the fsync (``synchronous=NORMAL``,
        for it alone): the next write's commit, or the next checkpoint, makes it durable with
        everything before it in the WAL. A power loss before either brings the rows back:
        unreferenced copies, which the scrubber removes as orphans; an acknowledged write is never
        at stake. Released blobs are deleted in batches of their own (S3's GET phase after a
        burst of overwrites: the fsync was a fifth of the writer's CPU per deletion)."""
        if not items and not deletes:
            return [], []
        try:
            handle = self._handle(check=check)
        except FileNotFoundError as exc:
            error = OSError(errno.ENOENT, f"the pack {self.path} is gone: {exc}")
            return [error] * len(items), [False] * len(deletes)
        outcomes: list[OSError | None] = [None] * len(items)
        removed = [False] * len(deletes)
        try:
            with _writing(handle):
                self._transaction(handle, items, deletes, outcomes, removed)
        except sqlite3.Error as exc:
            error = _os_error(exc, f"writing {len(items)} blobs to {self.path}")
            return [error] * len(items), [False] * len(deletes)
        finally:
            if handle.unsynced:  # the next transaction opens a connection of its own, synchronous=FULL
                log.warning("the pack %s: a connection could not be set back to synchronous=FULL: closed",
                            self.path)
                self._drop(handle)
        return outcomes, removed

    def _transaction(self, handle: _Handle, items: Sequence[tuple[bytes, Digest]], deletes: Sequence[Digest],
                     outcomes: list[OSError | None], removed: list[bool]) -> None:
        conn = handle.conn
        lazy = not items  # deletions only: committed without the WAL's fsync (see ``put_many``)
        if not lazy:
            self._statements(conn, items, deletes, outcomes, removed)
        else:
            handle.unsynced = True  # until FULL is back (else ``put_many`` closes the connection)
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                self._statements(conn, items, deletes, outcomes, removed)
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA synchronous=FULL")
                    handle.unsynced = False
        if not handle.synced_dir:  # a new WAL file's directory entry (once per connection)
            fsync_dir(self.root)
            handle.synced_dir = True

    @staticmethod
    def _statements(conn: sqlite3.Connection, items: Sequence[tuple[bytes, Digest]], deletes: Sequence[Digest],
                    outcomes: list[OSError | None], removed: list[bool]) -> None:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for i, (data, digest) in enumerate(items):
                cursor = conn.execute(
                    "INSERT INTO blobs (id, digest, size, created, data) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET size=excluded.size, created=excluded.created, "
                    "data=excluded.data WHERE blobs.digest=excluded.digest",
                    (row_key(digest), digest.hex, len(data), now, data))
                if cursor.rowcount != 1:
                    outcomes[i] = Collision(errno.EEXIST, f"another blob holds the pack key of {digest}")
            for i, digest in enumerate(deletes):
                cursor = conn.execute("DELETE FROM blobs WHERE id=? AND digest=?", (row_key(digest), digest.hex))
                removed[i] = cursor.rowcount == 1
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def put(self, data: bytes, digest: Digest) -> None:
        error = self.put_many([(data, digest)])[0][0]
        if error is not None:
            raise error

    def delete(self, digest: Digest) -> bool:
        _, removed = self.put_many([], [digest])
        return removed[0]

    def reclaim(self, pages: int = RECLAIM_STEP, at_least: int = 1, share: float = 0.0) -> int:
        """Give up to ``pages`` free pages back to the file system (when at least ``at_least`` are
        free, and at least ``share`` of the file's pages): the number given back."""
        try:
            handle = self._handle(check=True)
            conn = handle.conn
            free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
            if free < max(at_least, 1):
                return 0
            if share > 0 and free < share * int(conn.execute("PRAGMA page_count").fetchone()[0]):
                return 0
            with _writing(handle):
                    conn.executescript(f"PRAGMA incremental_vacuum({int(pages)})")  # (execute would free one page)
            return free - int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        except FileNotFoundError:
            return 0
        except sqlite3.Error as exc:
            raise _os_error(exc, f"reclaiming space in {self.path}") from None


@contextlib.contextmanager
def _writing(handle: _Handle) -> Iterator[None]:
    """Hold the pack's writer lock (``LOCK_NAME``, a ``flock``) for a write transaction. Every
    writer of every process (S3's workers each have a writer process) takes it first: one that
    waits is woken the moment the other's commit is done, where SQLite's own busy handler would
    poll, sleeping 1, 2, 5, 10... ms between tries, and write smaller batches more often."""
    fcntl.flock(handle.lock_fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle.lock_fd, fcntl.LOCK_UN)


def _close(handle: _Handle) -> None:
    with contextlib.suppress(sqlite3.Error):
        handle.conn.close()
    with contextlib.suppress(OSError):
        os.close(handle.lock_fd)


Done = Callable[[OSError | None], None]
Fallback = Callable[[bytes, Digest, Done], None]


class PackWriter:
    """Group commit for one replica's pack: one thread takes every copy (and removal) queued when
    it is free, up to ``BATCH_BYTES``/``BATCH_COPIES``, as one transaction; each copy's ``done``
    is called on that thread after the commit (None: durable), then ``after_batch`` once. A copy
    the pack does not take (too large, not SHA-256, a key collision) goes to ``fallback`` (the
    file tier). ``healthy`` is asked before each batch: an unhealthy replica's batch fails."""

    def __init__(self, pack: Pack, fallback: Fallback, *, healthy: Callable[[], bool] = lambda: True,
                 remove_file: Callable[[Digest], bool] = lambda digest: False,
                 after_batch: Callable[[], None] | None = None) -> None:
        self.pack = pack
        self.fallback = fallback
        self.healthy = healthy
        self.remove_file = remove_file
        self.after_batch = after_batch
        self._queue: queue.SimpleQueue[tuple[bytes | None, Digest, Done]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._deleted = 0

    def submit(self, data: bytes, digest: Digest, done: Done) -> None:
        if not packable(digest, len(data)):
            self.fallback(data, digest, done)
            return
        self._queue.put((data, digest, done))
        self._start()

    def submit_delete(self, digest: Digest, done: Done) -> None:
        """Remove the blob's row and its file (a blob too large for the pack, a key collision, a
        copy written before the pack): ``done`` gets None, FileNotFoundError when the replica held
        neither, or the error of a batch that failed."""
        self._queue.put((None, digest, done))
        self._start()

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=f"pack-writer-{self.pack.root.name}",
                                                    daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            size = len(batch[0][0] or b"")
            while size < BATCH_BYTES and len(batch) < BATCH_COPIES:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                size += len(item[0] or b"")
            try:
                self._write(batch)
            except Exception:  # (_write answers every copy itself): the thread must not die
                log.exception("the pack writer of %s failed a batch", self.pack.root)

    def commit(self, batch: list[tuple[bytes | None, Digest, Done]]) -> None:
        """Write a batch (``data`` None: a removal) as one transaction on the caller's thread and
        report each outcome (what the writer's thread does with what it takes from its queue)."""
        self._write(batch)

    def _write(self, batch: list[tuple[bytes | None, Digest, Done]]) -> None:
        writes = [(data, digest) for data, digest, _ in batch if data is not None]
        deletes = [digest for data, digest, _ in batch if data is None]
        failure: OSError | None = None  # (an unavailable replica: its deletions say so too)
        try:
            if not self.healthy():
                raise OSError(errno.EIO, f"the replica {self.pack.root} is unavailable")
            outcomes, removed = self.pack.put_many(writes, deletes)
        except Exception as exc:  # every copy of the batch gets an answer, whatever went wrong
            if not isinstance(exc, OSError):
                log.exception("the pack writer of %s failed a batch", self.pack.root)
            failure = exc if isinstance(exc, OSError) else OSError(errno.EIO, str(exc))
            outcomes, removed = [failure] * len(writes), [False] * len(deletes)
        written, gone = iter(outcomes), iter(removed)
        for data, digest, done in batch:
            result: OSError | None
            if data is not None:
                result = next(written)
                if isinstance(result, Collision):
                    self.fallback(data, digest, done)
                    continue
            else:  # the row and a file both go (a file: too large, a key collision, from before the pack)
                in_file = self._remove_file(digest)
                found = next(gone) or in_file
                result = None if found else (failure or FileNotFoundError(errno.ENOENT, str(digest)))
            try:
                done(result)
            except Exception:
                log.exception("a packed write's completion failed")
        if self.after_batch is not None:
            try:
                self.after_batch()
            except Exception:
                log.exception("a pack batch's completion failed")
        self._deleted += len(deletes)
        if self._deleted >= RECLAIM_AFTER_DELETES:
            self._deleted = 0
            try:
                self.pack.reclaim(RECLAIM_STEP, RECLAIM_FREE_PAGES, RECLAIM_FREE_SHARE)
            except Exception as exc:
                log.warning("reclaiming space in %s failed: %s", self.pack.path, exc)

    def _remove_file(self, digest: Digest) -> bool:
        try:
            return self.remove_file(digest)
        except OSError:
            return False
