"""The small-blob pack (``minicloud.storage.blobs.pack``): group commit acknowledges a copy only
after its transaction committed, a writer killed with -9 mid-batch leaves every acknowledged copy
and nothing half-written, corrupt rows are found and repaired from another replica, rows are
listed, removed and their space reclaimed, and blobs written as files before the pack still read.
Real SQLite files, real processes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from minicloud.services.s3.data import ObjectData
from minicloud.storage.blobs import BlobNotFound, Digest, Replica
from minicloud.storage.blobs.pack import (
    PACK_LIMIT,
    PACK_NAME,
    RECLAIM_FREE_PAGES,
    RECLAIM_FREE_SHARE,
    RECLAIM_STEP,
    Pack,
    PackWriter,
    packable,
    row_key,
)
from minicloud.storage.blobs.repair import Scrubber, copy_is_good
from minicloud.storage.blobs.small import make_writer, prepare_fanout, read_cached, write_small
from minicloud.storage.blobs.writerproc import WriterProcess


def _blob(size: int = 4096) -> tuple[bytes, Digest]:
    data = os.urandom(size)
    return data, Digest("sha256", hashlib.sha256(data).hexdigest())


def _replica(tmp_path: Path, name: str = "zone-a", pack: bool = True) -> Replica:
    replica = Replica(tmp_path / name, name)
    replica.prepare()
    prepare_fanout(replica)
    if pack:
        replica.enable_pack()
    return replica


def _raw(replica: Replica) -> sqlite3.Connection:
    """A connection of the test's own to the replica's pack file."""
    return sqlite3.connect(replica.root / PACK_NAME, isolation_level=None, timeout=30)


def _corrupt(replica: Replica, digest: Digest) -> None:
    with _raw(replica) as conn:
        (data,) = conn.execute("SELECT data FROM blobs WHERE digest=?", (digest.hex,)).fetchone()
        bad = bytearray(data)
        bad[len(bad) // 2] ^= 0x01
        conn.execute("UPDATE blobs SET data=? WHERE digest=?", (bytes(bad), digest.hex))


class _Acks:
    """Outcomes reported by a writer's threads, by name; ``unseen``: acknowledged copies another
    connection could not see at that moment (``check``)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.results: dict[object, OSError | None] = {}
        self.unseen: list[object] = []
        self.lock = threading.Lock()
        self.all = threading.Event()

    def callback(self, name: object, check: tuple[Pack, Digest] | None = None) -> Callable[[OSError | None], None]:
        def done(error: OSError | None) -> None:
            visible = check is None or check[0].get(check[1]) is not None
            with self.lock:
                self.results[name] = error
                if error is None and not visible:
                    self.unseen.append(name)
                if len(self.results) == self.expected:
                    self.all.set()
        return done


def test_group_commit_acknowledges_only_after_the_batch_committed(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    assert replica.pack is not None
    batches: list[int] = []
    writer = PackWriter(replica.pack, lambda *a: pytest.fail("nothing here goes to files"),
                        after_batch=lambda: batches.append(1))
    observer = Pack(replica.root)  # another connection: sees only committed rows
    blobs = [_blob() for _ in range(40)]
    acks = _Acks(len(blobs))
    blocker = _raw(replica)
    blocker.execute("BEGIN IMMEDIATE")  # the writer cannot commit while this holds the write lock
    try:
        for data, digest in blobs:
            writer.submit(data, digest, acks.callback(digest, (observer, digest)))
        time.sleep(0.5)
        assert acks.results == {}, "a copy was acknowledged before its transaction could commit"
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert acks.all.wait(30)
    assert all(error is None for error in acks.results.values()), acks.results
    assert acks.unseen == []  # each was visible to another connection when it was acknowledged
    assert len(batches) < len(blobs) / 4, f"{len(batches)} commits for {len(blobs)} copies: no group commit"
    for data, digest in blobs:
        assert observer.get(digest) == data
        assert not replica.path(digest).exists()  # packed, not a file
    big, big_digest = _blob(PACK_LIMIT + 1)
    assert not packable(big_digest, len(big))


_KILLED_WRITER = textwrap.dedent("""
    import hashlib, os, sys, threading
    from pathlib import Path
    from minicloud.storage.blobs import Digest, Replica
    from minicloud.storage.blobs.small import make_writer
    replica = Replica(Path(sys.argv[1]), "victim")
    replica.enable_pack(create=False)
    writer = make_writer(replica)
    lock = threading.Lock()
    def acked(digest):
        def done(error):
            if error is None:
                with lock:
                    os.write(1, f"{digest.hex}\\n".encode())
        return done
    while True:
        data = os.urandom(1000 + int.from_bytes(os.urandom(2), "big") % 60000)
        digest = Digest("sha256", hashlib.sha256(data).hexdigest())
        writer.submit(data, digest, acked(digest))
        if writer._queue.qsize() > 200:
            threading.Event().wait(0.001)
""")


def test_kill_9_mid_batch_keeps_every_acknowledged_copy_and_nothing_half_written(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(replica.root)], stdout=subprocess.PIPE,
                             cwd=Path(__file__).resolve().parents[3])
    assert child.stdout is not None
    acked: list[str] = []
    deadline = time.monotonic() + 60
    while len(acked) < 300 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acked.append(line.decode().strip())
    child.send_signal(signal.SIGKILL)  # batches are being written all the time: one is cut short
    child.wait()
    acked += [line.decode().strip() for line in child.stdout.read().splitlines()]
    assert len(acked) >= 300, "the writer did not get going"
    pack = Pack(replica.root)
    for hex_digest in acked:
        data = pack.get(Digest("sha256", hex_digest))
        assert data is not None, f"the acknowledged copy {hex_digest} was lost"
        assert hashlib.sha256(data).hexdigest() == hex_digest
    rows = 0
    with _raw(replica) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        for hex_digest, size, data in conn.execute("SELECT digest, size, data FROM blobs"):
            rows += 1
            assert size == len(data) and hashlib.sha256(data).hexdigest() == hex_digest  # nothing half-visible
    assert rows >= len(set(acked))


def test_a_corrupt_packed_copy_is_found_served_from_another_replica_and_repaired(tmp_path: Path) -> None:
    data_store = ObjectData(tmp_path / "s3", ["a", "b"])
    a, b = data_store.replicas
    try:
        body, digest = _blob(10_000)
        for replica in (a, b):
            assert replica.pack is not None
            replica.pack.put(body, digest)
        _corrupt(a, digest)
        assert copy_is_good(a, digest) is False
        got = asyncio.run(_read_all(data_store, digest, len(body)))
        assert got == body  # served from b; a's row repaired on the way
        assert copy_is_good(a, digest) is True
        _corrupt(b, digest)  # now the scrubber finds and repairs it
        report = Scrubber(data_store.replicas).scrub_blob(digest, everywhere=True)
        assert report.corrupt_repaired == 1 and copy_is_good(b, digest) is True
        assert b.packed(digest) == body
    finally:
        data_store.close()


async def _read_all(data_store: ObjectData, digest: Digest, size: int) -> bytes:
    return b"".join([chunk async for chunk in data_store.read([(str(digest), size)], 0, size)])


def test_walk_delete_and_reclaim(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    pack = replica.pack
    assert pack is not None
    blobs = [_blob(64 * 1024) for _ in range(100)]
    outcomes, _ = pack.put_many(blobs)
    assert outcomes == [None] * len(blobs)
    assert {info.digest for info in replica.walk()} == {digest for _, digest in blobs}
    assert {info.size for info in replica.walk()} == {64 * 1024}
    size_full = (replica.root / PACK_NAME).stat().st_size
    acks = _Acks(len(blobs) + 1)
    writer = make_writer(replica)
    for _, digest in blobs:
        writer.submit_delete(digest, acks.callback(digest))
    _, missing = _blob()
    writer.submit_delete(missing, acks.callback(missing))
    assert acks.all.wait(30)
    assert all(acks.results[digest] is None for _, digest in blobs)
    assert isinstance(acks.results[missing], FileNotFoundError)  # there was nothing to remove
    assert list(replica.walk()) == []
    with pytest.raises(BlobNotFound):
        replica.stat(blobs[0][1])
    with _raw(replica) as conn:
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] > 1000  # the rows' pages are free
    assert Scrubber([replica]).reclaim() > 1000  # (the scrubber's pass ends with this)
    with _raw(replica) as conn:  # a checkpoint moves the WAL's pages into the database file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert conn.execute("PRAGMA freelist_count").fetchone() == (0,)
    assert (replica.root / PACK_NAME).stat().st_size < size_full / 4  # the space went back


def test_file_tier_blobs_written_before_the_pack_still_read_copy_and_delete(tmp_path: Path) -> None:
    old = _replica(tmp_path, "old", pack=False)
    data, digest = _blob(5000)
    write_small(old, data, digest)  # written as a file, as before the pack existed
    old.enable_pack()
    assert old.stat(digest).size == 5000 and old.read_bytes(digest) == data and old.has(digest)
    with old.open(digest) as f:
        assert f.read() == data
    assert [info.digest for info in old.walk()] == [digest]
    # copies in either direction between a packed replica and a file-only one
    packed = _replica(tmp_path, "packed")
    packed.copy_from(old, digest)
    assert packed.packed(digest) == data and not packed.path(digest).exists()
    assert read_cached(packed, digest, 5000) == data  # the event loop's read: from the pack
    files_only = _replica(tmp_path, "files", pack=False)
    files_only.copy_from(packed, digest)
    assert files_only.path(digest).read_bytes() == data
    with packed.open(digest) as f:  # a packed copy opens as a real file (positional reads work)
        assert os.pread(f.fileno(), 10, 100) == data[100:110]
    # a removal takes the old file too
    assert old.delete(digest) and not old.has(digest)
    data_store = ObjectData(tmp_path / "s3", ["a"])
    try:
        write_small(data_store.replicas[0], data, digest)  # a file in a root that now has a pack
        assert asyncio.run(_read_all(data_store, digest, len(data))) == data
    finally:
        data_store.close()


def test_an_unavailable_root_fails_its_batch_and_is_caught_up_when_it_returns(tmp_path: Path) -> None:
    replicas = [_replica(tmp_path, name) for name in ("a", "b", "c")]
    writer = WriterProcess()  # the writer process, as S3 uses it
    away = tmp_path / "c-away"
    try:
        replicas[2].root.rename(away)  # zone c's disk is gone
        data, digest = _blob()
        acks = _Acks(3)
        for replica in replicas:
            writer.submit(replica, data, digest, acks.callback(replica.name))
        assert acks.all.wait(30)
        assert acks.results["a"] is None and acks.results["b"] is None  # a quorum
        assert acks.results["c"] is not None  # nothing acknowledged for the zone that is gone
        assert replicas[0].packed(digest) == data and replicas[1].packed(digest) == data
        away.rename(replicas[2].root)  # it comes back
        assert not replicas[2].has(digest)
        report = Scrubber(replicas).scrub_blob(digest, everywhere=True)
        assert report.missing_repaired == 1 and replicas[2].packed(digest) == data
        more, more_digest = _blob()
        again = _Acks(1)
        writer.submit(replicas[2], more, more_digest, again.callback(more_digest))  # packed again
        assert again.all.wait(30) and again.results[more_digest] is None
        assert replicas[2].packed(more_digest) == more
    finally:
        writer.close()


def test_a_blob_whose_pack_key_another_digest_holds_is_written_as_a_file(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    data, digest = _blob()
    squatter = Digest("sha256", digest.hex[:16] + ("e" if digest.hex[16] == "f" else "f") * 48)
    with _raw(replica) as conn:  # a row of another digest with the same first 64 bits (its key)
        conn.execute("INSERT INTO blobs (id, digest, size, created, data) VALUES (?, ?, 3, 0, x'616263')",
                     (row_key(digest), squatter.hex))
    acks = _Acks(1)
    make_writer(replica).submit(data, digest, acks.callback(digest))
    assert acks.all.wait(30) and acks.results[digest] is None
    assert replica.packed(digest) is None and replica.path(digest).read_bytes() == data  # a file instead
    assert replica.read_bytes(digest) == data and replica.packed(squatter) == b"abc"
    other = _replica(tmp_path, "other")
    assert other.copy_from(replica, digest).size == len(data) and other.packed(digest) == data
    assert replica.copy_from(other, digest).size == len(data)  # it has it (as a file): nothing to copy


def test_the_writer_leaves_free_pages_to_new_rows_until_they_are_a_share_of_the_file(tmp_path: Path) -> None:
    """Overwrites free as many pages as they fill: giving them back after each few hundred deletions
    only to grow the file again moved live pages for nothing (the writer reclaims from a quarter)."""
    pack = _replica(tmp_path).pack
    assert pack is not None
    blobs = [_blob(16 * 1024) for _ in range(1000)]
    pack.put_many(blobs)
    pack.put_many([], [digest for _, digest in blobs[:100]])  # ~10% of the file's pages freed

    def free() -> int:
        with _raw(_replica(tmp_path)) as conn:
            return int(conn.execute("PRAGMA freelist_count").fetchone()[0])

    freed = free()
    assert freed > RECLAIM_FREE_PAGES
    assert pack.reclaim(RECLAIM_STEP, RECLAIM_FREE_PAGES, RECLAIM_FREE_SHARE) == 0
    assert free() == freed
    pack.put_many([], [digest for _, digest in blobs[100:500]])  # half of them
    assert pack.reclaim(RECLAIM_STEP, RECLAIM_FREE_PAGES, RECLAIM_FREE_SHARE) > freed
    assert pack.reclaim(RECLAIM_STEP, RECLAIM_FREE_PAGES) == 0  # nothing left to give back


def test_only_a_transaction_of_deletions_commits_without_the_fsync(tmp_path: Path) -> None:
    """Writes are acknowledged durable, so their transactions commit with ``synchronous=FULL`` (the
    WAL fsynced), deletions alongside them included; a transaction of deletions alone commits with
    ``NORMAL`` (made durable by the next write's fsync; lost only to a power loss, leaving orphans)
    and the connection is back to FULL after it."""
    replica = _replica(tmp_path)
    pack = replica.pack
    assert pack is not None
    blobs = [_blob() for _ in range(4)]
    conn = pack._handle().conn
    traced: list[str] = []
    conn.set_trace_callback(lambda sql: traced.append(sql) if sql == "COMMIT" or "synchronous" in sql else None)
    assert pack.put_many(blobs[:3]) == ([None] * 3, [])
    assert pack.put_many([blobs[3]], [blobs[0][1]]) == ([None], [True])
    assert traced == ["COMMIT", "COMMIT"]  # the writes' commits: FULL, as the connection was opened
    traced.clear()
    assert pack.put_many([], [blobs[1][1], blobs[2][1]]) == ([], [True, True])
    assert traced == ["PRAGMA synchronous=NORMAL", "COMMIT", "PRAGMA synchronous=FULL"]
    conn.set_trace_callback(None)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL again for the next write
    with _raw(replica) as other:  # the deletions are committed for every reader
        assert [row[0] for row in other.execute("SELECT digest FROM blobs")] == [blobs[3][1].hex]


class _Refusing:
    """A connection whose ``refused`` statement fails (as SQLITE_BUSY or an I/O error would)."""

    def __init__(self, conn: sqlite3.Connection, refused: str) -> None:
        self.conn, self.refused = conn, refused

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == self.refused:
            raise sqlite3.OperationalError("database is locked")
        return self.conn.execute(sql, *args)

    def close(self) -> None:
        self.conn.close()


def test_a_failed_deletion_leaves_no_connection_that_commits_unsynced(tmp_path: Path) -> None:
    """A deletions-only transaction that cannot begin sets its connection back to FULL; one whose
    connection cannot be set back is closed, so that the next write opens a synchronous one."""
    replica = _replica(tmp_path)
    pack = replica.pack
    assert pack is not None
    blobs = [_blob() for _ in range(3)]
    assert pack.put_many(blobs)[0] == [None] * 3
    handle = pack._handle()
    real = handle.conn
    handle.conn = _Refusing(real, "BEGIN IMMEDIATE")  # type: ignore[assignment]
    _, removed = pack.put_many([], [blobs[0][1]])
    handle.conn = real
    assert removed == [False]
    assert real.execute("PRAGMA synchronous").fetchone() == (2,)
    handle.conn = _Refusing(real, "PRAGMA synchronous=FULL")  # type: ignore[assignment]
    assert pack.put_many([], [blobs[1][1]]) == ([], [True])
    assert pack._handle() is not handle  # closed: the next transaction has a new connection...
    assert pack._handle().conn.execute("PRAGMA synchronous").fetchone() == (2,)  # ...synchronous=FULL
    assert pack.put_many([blobs[1]])[0] == [None]
    assert pack.get(blobs[0][1]) == blobs[0][0] and pack.get(blobs[1][1]) == blobs[1][0]
