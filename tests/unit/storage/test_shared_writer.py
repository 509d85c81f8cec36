"""One small-blob writer shared by several server processes, in a process of its own
(``writerproc.start_shared``) or hosted on a thread by one of them (``SharedWriter``, as ``minicloud
up`` has its first S3 worker host it): each process's copies are acknowledged on its own socket
after their commit, the copies waiting from every socket are committed together (one transaction
per pack), the writer lives until its last socket closes, and a process whose shared writer died
fails what it held and starts a writer of its own."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from minicloud.storage.blobs import Digest, Replica
from minicloud.storage.blobs.pack import LOCK_NAME, PACK_NAME, Pack
from minicloud.storage.blobs.small import prepare_fanout
from minicloud.storage.blobs.writerproc import SharedWriter, WriterProcess, start_shared


def _replica(tmp_path: Path, name: str = "zone-a") -> Replica:
    replica = Replica(tmp_path / name, name)
    replica.prepare()
    prepare_fanout(replica)
    replica.enable_pack()
    return replica


def _blob(size: int = 4096) -> tuple[bytes, Digest]:
    data = os.urandom(size)
    return data, Digest("sha256", hashlib.sha256(data).hexdigest())


class _Acks:
    """Completions, each checked on arrival: the copy must be readable from the pack then."""

    def __init__(self, replica: Replica, expected: int) -> None:
        assert replica.pack is not None
        self.observer = Pack(replica.root)
        self.expected = expected
        self.results: dict[Digest, list[OSError | None]] = {}
        self.unseen: list[Digest] = []
        self.lock = threading.Lock()
        self.all = threading.Event()

    def callback(self, digest: Digest) -> Callable[[OSError | None], None]:
        def done(error: OSError | None) -> None:
            visible = error is None and self.observer.get(digest) is not None
            with self.lock:
                self.results.setdefault(digest, []).append(error)
                if error is None and not visible:
                    self.unseen.append(digest)
                if sum(map(len, self.results.values())) >= self.expected:
                    self.all.set()
        return done


@contextlib.contextmanager
def _pack_locked(replica: Replica) -> Iterator[None]:
    """Hold the pack's writer lock (``pack.LOCK_NAME``): no writer commits meanwhile."""
    fd = os.open(replica.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _commits(replica: Replica) -> int:
    """Transactions committed to the pack's WAL so far (its commit frames; no checkpoint yet)."""
    wal = (replica.root / (PACK_NAME + "-wal")).read_bytes()
    if len(wal) < 32:
        return 0
    page_size = struct.unpack_from(">I", wal, 8)[0]
    salts = wal[16:24]
    count, offset = 0, 32
    while offset + 24 + page_size <= len(wal):
        committed_size = struct.unpack_from(">I", wal, offset + 4)[0]
        if wal[offset + 8:offset + 16] != salts:
            break
        count += committed_size != 0
        offset += 24 + page_size
    return count


@pytest.fixture()
def shared() -> Iterator[tuple[subprocess.Popen[bytes], list[WriterProcess]]]:
    started = start_shared(2)
    assert started is not None
    process, channels = started
    writers = [WriterProcess(channels[0], process), WriterProcess(channels[1])]
    yield process, writers
    for writer in writers:
        writer.close()
    try:
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_copies_from_every_socket_are_committed_together_and_acknowledged_on_their_own(
        tmp_path: Path, shared: tuple[subprocess.Popen[bytes], list[WriterProcess]]) -> None:
    process, writers = shared
    replica = _replica(tmp_path)
    first, first_digest = _blob()
    started = _Acks(replica, 1)
    writers[0].submit(replica, first, first_digest, started.callback(first_digest))
    assert started.all.wait(30) and started.results[first_digest] == [None]
    before = _commits(replica)
    blobs = [[_blob() for _ in range(20)] for _ in writers]
    acks = _Acks(replica, 40)
    with _pack_locked(replica):  # the writer cannot commit while this is held
        for writer, mine in zip(writers, blobs, strict=True):
            for data, digest in mine:
                writer.submit(replica, data, digest, acks.callback(digest))
        time.sleep(0.5)
        assert acks.results == {}, "a copy was acknowledged before its transaction could commit"
    assert acks.all.wait(30)
    # Every copy answered once, on its own socket (request numbers of both processes overlap:
    # an answer sent on the wrong socket would complete the other process's copy instead).
    assert sorted(acks.results) == sorted(digest for mine in blobs for _, digest in mine)
    assert all(errors == [None] for errors in acks.results.values()), acks.results
    assert acks.unseen == []
    # One transaction (two if the first copy arrived alone) for both processes' 40 copies; a
    # writer per socket would have needed one per socket at least, plus the lone first copy's.
    assert _commits(replica) - before <= 2
    assert process.poll() is None
    for mine in blobs:
        for data, digest in mine:
            assert acks.observer.get(digest) == data


def test_the_writer_ends_when_its_last_socket_closes(
        tmp_path: Path, shared: tuple[subprocess.Popen[bytes], list[WriterProcess]]) -> None:
    process, writers = shared
    replica = _replica(tmp_path)
    writers[0].submit(replica, *_blob(), lambda error: None)  # the first socket is in use...
    writers[0].close()  # ...and closed: the other process is still served
    time.sleep(0.3)
    assert process.poll() is None
    data, digest = _blob()
    acks = _Acks(replica, 1)
    writers[1].submit(replica, data, digest, acks.callback(digest))
    assert acks.all.wait(30) and acks.results[digest] == [None]
    assert writers[1]._connection is not None and writers[1]._connection.process is None  # the shared one
    writers[1].close()
    assert process.wait(timeout=10) == 0


def test_a_dead_shared_writer_fails_what_it_held_and_each_process_starts_its_own(
        tmp_path: Path, shared: tuple[subprocess.Popen[bytes], list[WriterProcess]]) -> None:
    process, writers = shared
    replica = _replica(tmp_path)
    held = _Acks(replica, 20)
    with _pack_locked(replica):  # copies wait in the writer, uncommitted...
        for index in range(20):
            data, digest = _blob()
            writers[index % 2].submit(replica, data, digest, held.callback(digest))
        time.sleep(0.3)
        process.kill()  # ...when it dies
        process.wait()
        assert held.all.wait(30)
    errors = [error for outcomes in held.results.values() for error in outcomes]
    assert len(errors) == 20 and all(isinstance(e, OSError) and e.errno == errno.EIO for e in errors), errors
    for writer in writers:  # the next copy starts a writer process of this process's own
        data, digest = _blob()
        acks = _Acks(replica, 1)
        writer.submit(replica, data, digest, acks.callback(digest))
        assert acks.all.wait(30) and acks.results[digest] == [None] and acks.unseen == []
        connection = writer._connection
        assert connection is not None and connection.owned and connection.process is not None
        assert connection.process.pid != process.pid and connection.process.poll() is None


# -- the writer hosted by one of the server's processes (``SharedWriter``, as ``minicloud up`` has its
# first S3 worker host it) ---------------------------------------------------------------------------
def test_a_hosted_writer_serves_every_process_and_ends_when_they_close(tmp_path: Path) -> None:
    shared = SharedWriter(2)
    host = shared.host()
    writers = [WriterProcess(client) for client in shared.clients]
    replica = _replica(tmp_path)
    blobs = [[_blob() for _ in range(10)] for _ in writers]
    acks = _Acks(replica, 20)
    for writer, mine in zip(writers, blobs, strict=True):
        for data, digest in mine:
            writer.submit(replica, data, digest, acks.callback(digest))
    assert acks.all.wait(30)
    assert all(errors == [None] for errors in acks.results.values()) and acks.unseen == []
    assert sorted(acks.results) == sorted(digest for mine in blobs for _, digest in mine)
    for writer in writers:
        assert writer._connection is not None and writer._connection.process is None  # nothing spawned
    writers[0].close()
    time.sleep(0.3)
    assert host.is_alive()  # the other process is still served
    writers[1].close()
    host.join(10)
    assert not host.is_alive()


def test_a_process_closes_every_socket_it_does_not_use() -> None:
    shared = SharedWriter(3)
    shared.close_all_but(1)
    assert [client.fileno() == -1 for client in shared.clients] == [True, False, True]
    assert all(served.fileno() == -1 for served in shared.serving)
    shared.clients[1].close()
    hosting = SharedWriter(2)
    hosting.close_all_but(0, hosting=True)
    assert [client.fileno() == -1 for client in hosting.clients] == [False, True]
    assert all(served.fileno() != -1 for served in hosting.serving)
    for sock in (hosting.clients[0], *hosting.serving):
        sock.close()
