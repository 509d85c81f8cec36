"""Batched small-blob writes: ``write_batch``, the per-replica ``SmallBlobWriter`` threads and the
writer process (``writerproc``): a copy is reported durable only once it is in place, failures
are reported per copy, and a writer process that dies fails what it held and is replaced."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from minicloud.storage.blobs import Digest, Replica
from minicloud.storage.blobs.small import SmallBlobWriter, prepare_fanout, write_batch
from minicloud.storage.blobs.writerproc import WriterProcess


def _replica(tmp_path: Path, name: str = "zone-a") -> Replica:
    replica = Replica(tmp_path / name, name)
    replica.prepare()
    prepare_fanout(replica)
    return replica


def _blob(size: int = 4096) -> tuple[bytes, Digest]:
    data = os.urandom(size)
    return data, Digest("sha256", hashlib.sha256(data).hexdigest())


class _Outcomes:
    """Completions gathered from other threads (or processes' acknowledgements)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.results: list[tuple[Digest, OSError | None, bool]] = []
        self.done = threading.Event()
        self.lock = threading.Lock()

    def callback(self, replica: Replica, digest: Digest) -> Callable[[OSError | None], None]:
        def done(error: OSError | None) -> None:
            in_place = replica.path(digest).is_file()
            with self.lock:
                self.results.append((digest, error, in_place))
                if len(self.results) == self.expected:
                    self.done.set()
        return done


def test_write_batch_installs_every_blob_read_only_and_reports_each_failure(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    blobs = [_blob() for _ in range(5)] + [_blob(0)]
    blobs.append(blobs[0])  # the same content twice in one batch
    assert write_batch(replica, blobs) == [None] * len(blobs)
    for data, digest in blobs:
        assert replica.path(digest).read_bytes() == data
        assert stat.S_IMODE(replica.path(digest).stat().st_mode) == 0o444
    assert [p for p in replica.ingest_root.iterdir()] == []  # no temporary file left
    shutil.rmtree(replica.ingest_root)  # temporary files cannot be created: every copy fails, alone
    errors = write_batch(replica, [_blob(), _blob()])
    assert all(isinstance(e, FileNotFoundError) for e in errors)


def test_small_blob_writer_reports_each_copy_after_it_is_in_place(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    batches: list[int] = []
    writer = SmallBlobWriter(replica, threads=2, after_batch=lambda: batches.append(1))
    blobs = [_blob() for _ in range(40)]
    outcomes = _Outcomes(len(blobs))
    for data, digest in blobs:
        writer.submit(data, digest, outcomes.callback(replica, digest))
    assert outcomes.done.wait(30)
    assert all(error is None and in_place for _, error, in_place in outcomes.results)
    assert 1 <= len(batches) <= len(blobs)


def test_writer_process_writes_durably_and_reports_failures_per_copy(tmp_path: Path) -> None:
    good, broken = _replica(tmp_path, "a"), _replica(tmp_path, "b")
    shutil.rmtree(broken.ingest_root)
    writer = WriterProcess()
    try:
        blobs = [_blob() for _ in range(20)]
        outcomes = _Outcomes(2 * len(blobs))
        for data, digest in blobs:
            writer.submit(good, data, digest, outcomes.callback(good, digest))
            writer.submit(broken, data, digest, outcomes.callback(broken, digest))
        assert outcomes.done.wait(30)
        for digest, error, in_place in outcomes.results:
            if in_place:
                assert error is None and good.path(digest).read_bytes() == next(d for d, g in blobs if g == digest)
            else:
                assert isinstance(error, OSError) and error.errno is not None
        assert sum(1 for _, error, _ in outcomes.results if error is None) == len(blobs)
        assert not any(broken.path(digest).exists() for _, digest in blobs)
    finally:
        writer.close()


def test_a_dead_writer_process_fails_what_it_held_and_is_replaced(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    writer = WriterProcess()
    try:
        data, digest = _blob()
        first = _Outcomes(1)
        writer.submit(replica, data, digest, first.callback(replica, digest))
        assert first.done.wait(30) and first.results[0][1] is None
        connection = writer._connection
        assert connection is not None
        connection.process.kill()  # acknowledgements it owed are failed, none is invented
        connection.process.wait()
        deadline = time.monotonic() + 10
        while connection.alive and time.monotonic() < deadline:  # its socket's end is seen
            time.sleep(0.01)
        assert not connection.alive
        data, digest = _blob()
        second = _Outcomes(1)
        writer.submit(replica, data, digest, second.callback(replica, digest))  # a new process
        assert second.done.wait(30)
        assert second.results[0][1] is None and second.results[0][2]
        assert writer._connection is not connection
    finally:
        writer.close()


def test_writer_process_removes_copies_and_says_when_there_was_none(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    data, digest = _blob()
    assert write_batch(replica, [(data, digest)]) == [None]
    writer = WriterProcess()
    try:
        outcomes = _Outcomes(1)
        writer.submit_delete(replica, [digest], outcomes.callback(replica, digest))
        assert outcomes.done.wait(30)
        second = _Outcomes(1)
        writer.submit_delete(replica, [digest], second.callback(replica, digest))
        assert second.done.wait(30)
        assert outcomes.results[0][1] is None and not outcomes.results[0][2]  # removed
        assert isinstance(second.results[0][1], FileNotFoundError)  # nothing left to remove
    finally:
        writer.close()


def test_writer_process_removes_a_list_of_blobs_with_one_answer(tmp_path: Path) -> None:
    """Packed and file copies alike, in one request: one completion, after the last removal; it
    says FileNotFoundError when one of them had no copy."""
    packed = _replica(tmp_path, "packed")
    packed.enable_pack()
    files = _replica(tmp_path, "files")
    blobs = [_blob() for _ in range(300)]
    big = _blob(300 * 1024)  # beyond the pack's limit: a file even in the packed replica
    assert write_batch(files, blobs) == [None] * len(blobs)
    writer = WriterProcess()
    try:
        written = _Outcomes(len(blobs) + 1)
        for data, digest in [*blobs, big]:
            writer.submit(packed, data, digest, written.callback(packed, digest))
        assert written.done.wait(30) and all(error is None for _, error, _ in written.results)
        assert packed.path(big[1]).is_file()
        digests = [digest for _, digest in blobs]
        for replica, listed in ((packed, [*digests, big[1]]), (files, digests)):
            removed = _Outcomes(1)
            writer.submit_delete(replica, listed, removed.callback(replica, listed[0]))
            assert removed.done.wait(30)
            assert len(removed.results) == 1 and removed.results[0][1] is None
            assert not any(replica.has(digest) for digest in listed)
        _, missing = _blob()
        again = _Outcomes(1)
        writer.submit_delete(packed, [digests[0], missing], again.callback(packed, missing))
        assert again.done.wait(30)
        assert isinstance(again.results[0][1], FileNotFoundError)
        nothing = _Outcomes(1)
        writer.submit_delete(packed, [], nothing.callback(packed, missing))
        assert nothing.done.wait(30) and nothing.results[0][1] is None
    finally:
        writer.close()


def test_a_blob_too_large_for_one_message_is_written_in_process(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    writer = WriterProcess()
    try:
        data, digest = _blob(3 << 20)
        outcomes = _Outcomes(1)
        writer.submit(replica, data, digest, outcomes.callback(replica, digest))
        assert outcomes.done.wait(30)
        assert outcomes.results[0][1] is None and replica.path(digest).read_bytes() == data
    finally:
        writer.close()


def test_the_writer_process_loads_only_what_it_uses() -> None:
    """The writer process adds its whole RSS to the server's: it must not load asyncio, OpenSSL (hashlib)
    or ctypes, which it never uses (together ~8 MiB)."""
    import subprocess
    import sys

    probe = ("import sys, minicloud.storage.blobs.writerproc as w; "
             "print(sorted(m for m in ('asyncio', 'hashlib', 'ctypes', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_acknowledgements_are_read_by_the_submitting_loop_then_by_a_thread_once_it_closes(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    writer = WriterProcess()

    async def submit_on_a_loop() -> tuple[OSError | None, bool]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[OSError | None, int]] = loop.create_future()
        data, digest = _blob()

        def done(error: OSError | None) -> None:
            loop.call_soon_threadsafe(future.set_result, (error, threading.get_ident()))
        writer.submit(replica, data, digest, done)
        error, thread = await asyncio.wait_for(future, 30)
        return error, thread == threading.get_ident()

    try:
        error, on_the_loop = asyncio.run(submit_on_a_loop())
        assert error is None
        assert on_the_loop, "the acknowledgement was handled by another thread than the loop's"
        # that loop has closed: a copy submitted from a thread without one is acknowledged all the same
        data, digest = _blob()
        outcomes = _Outcomes(1)
        writer.submit(replica, data, digest, outcomes.callback(replica, digest))
        assert outcomes.done.wait(30) and outcomes.results[0][1] is None and outcomes.results[0][2]
    finally:
        writer.close()


def test_a_writer_that_dies_while_a_loop_reads_its_acknowledgements_fails_what_it_held(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    writer = WriterProcess()

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        first: asyncio.Future[OSError | None] = loop.create_future()
        data, digest = _blob()

        def done(error: OSError | None) -> None:
            loop.call_soon_threadsafe(first.set_result, error)
        writer.submit(replica, data, digest, done)
        assert await asyncio.wait_for(first, 30) is None
        connection = writer._connection
        assert connection is not None and connection.process is not None
        connection.process.kill()
        connection.process.wait()
        for _ in range(1000):  # the loop sees the socket's end
            if not connection.alive:
                break
            await asyncio.sleep(0.01)
        return connection.alive

    try:
        assert asyncio.run(scenario()) is False
        data, digest = _blob()
        outcomes = _Outcomes(1)
        writer.submit(replica, data, digest, outcomes.callback(replica, digest))  # a new process
        assert outcomes.done.wait(30) and outcomes.results[0][1] is None
    finally:
        writer.close()


def test_a_long_list_of_removals_goes_in_several_requests_with_one_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from minicloud.storage.blobs import writerproc

    monkeypatch.setattr(writerproc, "_DELETE_CHUNK", 3)
    replica = _replica(tmp_path)
    blobs = [_blob() for _ in range(7)]
    assert write_batch(replica, blobs) == [None] * len(blobs)
    writer = WriterProcess()
    sent: list[int] = []
    send = writer._send

    def counting(operation: int, *args: Any) -> bool:
        sent.append(operation)
        return send(operation, *args)
    monkeypatch.setattr(writer, "_send", counting)
    try:
        removed = _Outcomes(1)
        writer.submit_delete(replica, [digest for _, digest in blobs], removed.callback(replica, blobs[0][1]))
        assert removed.done.wait(30)
        time.sleep(0.2)  # (a second answer would have arrived by now)
        assert len(removed.results) == 1 and removed.results[0][1] is None
        assert not any(replica.has(digest) for _, digest in blobs)
        assert len(sent) == 3  # 3 + 3 + 1 digests
    finally:
        writer.close()


def test_removals_answer_once_with_the_error_that_matters() -> None:
    """``delete_all``: None when every removal found a copy, FileNotFoundError when some found
    none, and the first other error over both."""
    from minicloud.storage.blobs.small import delete_all

    def outcome_of(errors: list[OSError | None]) -> list[OSError | None]:
        answers: list[OSError | None] = []
        delete_all(lambda error, done: done(error), errors, answers.append)
        assert len(answers) == 1
        return answers

    missing, broken, denied = FileNotFoundError(2, "none"), OSError(5, "eio"), PermissionError(13, "acces")
    assert outcome_of([None, None]) == [None]
    assert outcome_of([None, missing]) == [missing]
    assert outcome_of([missing, broken, denied, missing]) == [broken]
    assert outcome_of([]) == [None]
