"""Store requests (``storage.blobs.storejobs``): the small-blob writer makes a blob's copies durable
and then commits the metadata write that came with them, in the same round, on its own thread.
A write is committed only after a quorum of copies is; a write that raises is left to its
server, as is every write of a writer that cannot run them; a failed quorum runs nothing."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import pickle
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from minicloud.storage.blobs import Digest, Replica
from minicloud.storage.blobs.pack import Pack
from minicloud.storage.blobs.storejobs import NOT_RUN, RESULT, Ready, RunWrites, StoreJob, finish
from minicloud.storage.blobs.writerproc import SharedWriter, WriterProcess
from minicloud.storage.metadata.db import Database
from minicloud.storage.metadata.portable import PortableWrite


def _insert(conn: sa.Connection, value: int) -> int:
    conn.execute(sa.text("INSERT INTO rows (value) VALUES (:v)"), {"v": value})
    return value * 2


def _insert_where(conn: sa.Connection, value: int) -> str:
    _insert(conn, value)
    return threading.current_thread().name  # which thread committed it


def _insert_counting(conn: sa.Connection, value: int, roots: list[str], hexdigest: str, data: bytes) -> int:
    """The row, and how many of the blob's copies were durable (committed) when it was written."""
    _insert(conn, value)
    return sum(Pack(Path(root)).get(Digest("sha256", hexdigest)) == data for root in roots)


def _insert_long(conn: sa.Connection, value: int) -> list[str]:
    _insert(conn, value)
    return [f"sha256:{i:064x}" for i in range(5000)]  # ~370 KB pickled: many answer pieces


def _refuse(conn: sa.Connection, value: int) -> int:
    conn.execute(sa.text("INSERT INTO rows (value) VALUES (:v)"), {"v": value})
    raise ValueError("refused")  # after a statement: its savepoint must undo it


def _blob() -> tuple[bytes, Digest]:
    data = os.urandom(4096)
    return data, Digest("sha256", hashlib.sha256(data).hexdigest())


def _replica(tmp_path: Path, name: str) -> Replica:
    replica = Replica(tmp_path / name, name)
    replica.prepare()
    replica.enable_pack()
    return replica


class _Answer:
    def __init__(self) -> None:
        self.got = threading.Event()
        self.value: tuple[OSError | None, bool, bytes | None] | None = None

    def __call__(self, error: OSError | None, ran: bool, payload: bytes | None) -> None:
        self.value = (error, ran, payload)
        self.got.set()

    def wait(self) -> tuple[OSError | None, bool, bytes | None]:
        assert self.got.wait(30), "no answer"
        assert self.value is not None
        return self.value


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    database.write_sync(lambda conn: conn.execute(sa.text("CREATE TABLE rows (value INTEGER)")))
    yield database
    database.close()


def _rows(db: Database) -> list[int]:
    return db.read_sync(lambda conn: [row[0] for row in conn.execute(sa.text("SELECT value FROM rows ORDER BY 1"))])


class _Hosted:
    """A shared writer hosted on a thread of this process, as an S3 worker hosts it."""

    def __init__(self, run_writes: RunWrites | None) -> None:
        self.shared = SharedWriter(1)
        self.thread = self.shared.host(run_writes=run_writes)
        self.writer = WriterProcess(self.shared.clients[0], runs_writes=True)

    def close(self) -> None:
        self.writer.close()
        self.thread.join(10)
        assert not self.thread.is_alive()


def _store(hosted: _Hosted, replicas: list[Replica], need: int, fn: Any, value: int) -> tuple[_Answer, Digest, bytes]:
    data, digest = _blob()
    answer = _Answer()
    payload = PortableWrite(fn, (value,)).dumps()
    assert payload is not None
    assert hosted.writer.submit_store(replicas, data, digest, need, payload, answer)
    return answer, digest, data


def test_the_write_commits_after_a_quorum_of_copies_and_its_result_comes_back(tmp_path: Path, db: Database) -> None:
    replicas = [_replica(tmp_path, name) for name in "abc"]
    hosted = _Hosted(db.run_here)
    try:
        answers = []
        for value in range(1, 6):
            data, digest = _blob()
            answer = _Answer()
            write = PortableWrite(_insert_counting, (value, [str(r.root) for r in replicas], digest.hex, data))
            payload = write.dumps()
            assert payload is not None
            assert hosted.writer.submit_store(replicas, data, digest, 2, payload, answer)
            answers.append(answer)
        for answer in answers:
            error, ran, result = answer.wait()
            assert error is None and ran
            assert pickle.loads(result or b"") >= 2  # copies durable when the row was written
        assert _rows(db) == [1, 2, 3, 4, 5]
    finally:
        hosted.close()


def test_a_write_that_raises_is_rolled_back_and_left_to_its_server(tmp_path: Path, db: Database) -> None:
    replica = _replica(tmp_path, "a")
    hosted = _Hosted(db.run_here)
    try:
        refused, digest, data = _store(hosted, [replica], 1, _refuse, 7)
        kept, _, _ = _store(hosted, [replica], 1, _insert, 8)
        assert refused.wait() == (None, False, None)  # the data is durable; the write is the server's
        assert Pack(replica.root).get(digest) == data
        assert kept.wait()[:2] == (None, True)
        assert _rows(db) == [8]
    finally:
        hosted.close()


def test_a_writer_without_a_metadata_store_leaves_every_write_to_its_server(tmp_path: Path, db: Database) -> None:
    replica = _replica(tmp_path, "a")
    hosted = _Hosted(None)
    try:
        answer, digest, data = _store(hosted, [replica], 1, _insert, 1)
        assert answer.wait() == (None, False, None)
        assert Pack(replica.root).get(digest) == data
        assert _rows(db) == []
    finally:
        hosted.close()


def test_a_failed_quorum_runs_no_write(tmp_path: Path, db: Database) -> None:
    replicas = [_replica(tmp_path, name) for name in "abc"]
    for gone in replicas[1:]:
        for path in gone.root.glob("small-pack.sqlite*"):
            path.unlink()
    hosted = _Hosted(db.run_here)
    try:
        answer, _, _ = _store(hosted, replicas, 2, _insert, 1)
        error, ran, _ = answer.wait()
        assert isinstance(error, OSError) and error.errno == errno.EIO and not ran
        assert _rows(db) == []
    finally:
        hosted.close()


def test_a_writer_that_goes_away_fails_the_stores_it_held(tmp_path: Path, db: Database) -> None:
    replica = _replica(tmp_path, "a")
    entered, release = threading.Event(), threading.Event()

    def slow(batch: Any) -> None:
        entered.set()
        release.wait(30)
        for write in batch:
            write.error = RuntimeError("never ran")

    hosted = _Hosted(slow)
    try:
        answer, _, _ = _store(hosted, [replica], 1, _insert, 1)
        assert entered.wait(30)
        hosted.shared.serving[0].shutdown(socket.SHUT_RDWR)  # the host is gone, as when its process dies
        error, ran, _ = answer.wait()
        assert isinstance(error, OSError) and error.errno == errno.EIO and not ran
    finally:
        release.set()
        hosted.close()


def test_a_writer_of_the_process_own_does_not_take_stores(tmp_path: Path) -> None:
    writer = WriterProcess()  # (a writer process of its own: no metadata store there)
    try:
        data, digest = _blob()
        assert not writer.submit_store([_replica(tmp_path, "a")], data, digest, 1, b"", _Answer())
    finally:
        writer.close()


def test_a_write_that_cannot_travel_is_not_sent() -> None:
    assert PortableWrite(_insert, (lambda: None,)).dumps() is None  # (the caller then runs it itself)


@pytest.mark.parametrize("writer_runs_rows", [True, False])
def test_commit_small_answers_with_the_write_wherever_it_ran(tmp_path: Path, db: Database,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             writer_runs_rows: bool) -> None:
    """S3's side (``services.s3.small.commit_small``): the row's result comes back whether the
    writer committed it or left it to this process; a write that raises raises here."""
    from minicloud.services.s3.small import commit_small
    from minicloud.storage.blobs import writerproc

    replica = _replica(tmp_path, "a")
    hosted = _Hosted(db.run_here if writer_runs_rows else None)
    monkeypatch.setattr(writerproc, "_shared", hosted.writer)

    async def main() -> None:
        data, digest = _blob()
        where = await commit_small(db, [replica], data, digest, PortableWrite(_insert_where, (21,)))
        assert (where == "small-writer") is writer_runs_rows  # else this process's group commit
        assert Pack(replica.root).get(digest) == data
        data, digest = _blob()
        with pytest.raises(ValueError, match="refused"):
            await commit_small(db, [replica], data, digest, PortableWrite(_refuse, (5,)))

    try:
        asyncio.run(main())
        assert _rows(db) == [21]
    finally:
        hosted.close()


def test_a_long_result_comes_back_whole_in_pieces(tmp_path: Path, db: Database) -> None:
    """An overwrite of a many-part object releases thousands of digests: the answer travels in
    pieces, each message within any socket's buffer, and the stores after it are answered too."""
    replica = _replica(tmp_path, "a")
    hosted = _Hosted(db.run_here)
    # A stock Debian allows sockets ~416 KiB of buffer (net.core.wmem_max 212992, doubled): so here.
    hosted.shared.serving[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 100_000)
    try:
        long, _, _ = _store(hosted, [replica], 1, _insert_long, 1)
        after, _, _ = _store(hosted, [replica], 1, _insert, 2)
        error, ran, payload = long.wait()
        assert error is None and ran and pickle.loads(payload or b"") == [f"sha256:{i:064x}" for i in range(5000)]
        assert after.wait()[:2] == (None, True)
        assert _rows(db) == [1, 2]
    finally:
        hosted.close()


def test_rows_are_left_to_their_servers_while_another_connection_holds_the_write_lock(
        tmp_path: Path, db: Database) -> None:
    """The writer must not stall every PUT behind another process's transaction: it waits
    ``HERE_WAIT_MS`` at most, then answers NOT_RUN (the data is durable; the row is the server's)."""
    replica = _replica(tmp_path, "a")
    hosted = _Hosted(db.run_here)
    holder = sqlite3.connect(str(tmp_path / "meta.sqlite"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        answer, digest, data = _store(hosted, [replica], 1, _insert, 1)
        assert answer.wait() == (None, False, None)
        assert time.monotonic() - started < 5
        assert Pack(replica.root).get(digest) == data
        holder.execute("ROLLBACK")
        again, _, _ = _store(hosted, [replica], 1, _insert, 2)  # the lock is free again: the writer commits
        assert again.wait()[:2] == (None, True)
        assert _rows(db) == [2]
    finally:
        holder.close()
        hosted.close()


def test_finish_commits_a_batch_whose_failed_writes_are_left_to_their_servers(db: Database) -> None:
    """Several stores in one transaction: the one that raises is undone alone (its savepoint)."""
    answered: dict[int, tuple[int, bytes]] = {}
    ready = Ready()
    try:
        jobs = []
        for number, (fn, value) in enumerate([(_insert, 1), (_refuse, 2), (_insert, 3)], 1):
            payload = PortableWrite(fn, (value,)).dumps()
            assert payload is not None
            job = StoreJob(number, 1, 1, payload,
                           lambda n, code, result: answered.__setitem__(n, (code, result)), ready)
            job.copied(None)
            jobs.append(job)
        finish(ready.take(), db.run_here)
    finally:
        ready.close()
    assert answered[1] == (RESULT, pickle.dumps(2, pickle.HIGHEST_PROTOCOL))
    assert answered[2] == (NOT_RUN, b"")
    assert answered[3] == (RESULT, pickle.dumps(6, pickle.HIGHEST_PROTOCOL))
    assert _rows(db) == [1, 3]
