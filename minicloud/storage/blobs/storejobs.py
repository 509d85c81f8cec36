"""A small blob's copies and the metadata write that follows them, done by the writer in one round.

S3 used to get each copy's acknowledgement from the small-blob writer (``writerproc``) and then
commit the object's row itself: its event loop ran the row's statements, a thread ran the COMMIT,
and the loop took the result back. That is two durable stages in turn, each waiting on the busy
event loop and on the GIL between them (session 16's timings: ~2-4 ms for the copy, ~3-4 ms for
the row, at 16 connections). A *store* request instead carries the blob, the replica roots, the
quorum and the row's write (``PortableWrite.dumps``: a pickled function and its arguments); the
writer adds the copies to its rounds' batches, and once a quorum of them has committed it runs
the writes of every such request in one transaction of its own (``Database.run_here``, on the
writer's thread, in a process whose GIL the event loop does not hold), and answers each request
with the write's pickled result.

    server: submit_store ==(one message: roots, quorum, write, blob)==> writer: copies into each
            root's batch; after the round's pack commits, the writes whose quorum is durable, one
            transaction; then the answers
    server: answered(error, ran, payload) <==(number, _RESULT, pickled result)== writer

A write that raises (a failed precondition) was rolled back in its savepoint: the answer is
``_NOT_RUN`` and the server runs it itself, which raises the same error there (no exception has
to travel). So is the answer of a writer that cannot run writes (one with no metadata store). A
quorum that failed is an errno, as for a copy. The writer dies: the server's requests in flight
fail with EIO, and their rows may or may not have committed (the caller checks before releasing
the blob, as it does after any failed write).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import pickle
import queue
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("minicloud.blobs.storejobs")

STORE = 2  # the operation (beside writerproc's copy and removal)
REQUEST = struct.Struct("<BIQI")  # operation, data length, request number, description length
# Acknowledgement codes (errnos are positive): committed, with its pickled result after it; not
# run; a piece of a long result (every piece but the last, in order, each in a message of its own
# or with others: a message never exceeds MESSAGE_BYTES, which a socket's smallest buffer takes).
RESULT, NOT_RUN, MORE = -2, -3, -4
LENGTH = struct.Struct("<I")  # the length of a RESULT's (or MORE's) bytes, after the acknowledgement
ACK = struct.Struct("<Qi")  # request number, code
PIECE_BYTES = 32 * 1024  # the most result bytes in one acknowledgement
MESSAGE_BYTES = 64 * 1024  # the most bytes in one message of acknowledgements



class HostedWrite(Protocol):
    """A write run by ``RunWrites`` (what ``storage.metadata.loopcommit.PendingWrite`` is)."""

    @property
    def fn(self) -> Callable[[Any], Any]: ...
    result: Any
    error: BaseException | None


RunWrites = Callable[[Sequence[HostedWrite]], None]
Answered = Callable[[OSError | None, bool, bytes | None], None]  # (error, ran, pickled result)


def encode(number: int, roots: Sequence[str], need: int, digest: str, write: bytes, data: bytes) -> bytes:
    """A store request: what ``decode`` reads."""
    description = pickle.dumps((tuple(roots), need, digest, write), pickle.HIGHEST_PROTOCOL)
    return b"".join((REQUEST.pack(STORE, len(data), number, len(description)), description, data))


def entries(number: int, code: int, payload: bytes = b"") -> list[bytes]:
    """The acknowledgement entries of one answer: a long RESULT in pieces (MORE, ..., RESULT)."""
    if code not in (RESULT, MORE):
        return [ACK.pack(number, code)]
    pieces = [payload[i:i + PIECE_BYTES] for i in range(0, len(payload), PIECE_BYTES)] or [b""]
    return [ACK.pack(number, MORE if i < len(pieces) - 1 else RESULT) + LENGTH.pack(len(piece)) + piece
            for i, piece in enumerate(pieces)]


def messages(waiting: list[bytes]) -> list[bytes]:
    """Entries joined into messages of at most ``MESSAGE_BYTES`` (an entry is never split)."""
    out: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for entry in waiting:
        if current and size + len(entry) > MESSAGE_BYTES:
            out.append(b"".join(current))
            current, size = [], 0
        current.append(entry)
        size += len(entry)
    if current:
        out.append(b"".join(current))
    return out


def read_answers(data: bytes) -> list[tuple[int, int, bytes | None]]:
    """(number, code, bytes or None) of each entry of a message (ValueError: malformed or cut)."""
    answers: list[tuple[int, int, bytes | None]] = []
    offset, end = 0, len(data)
    try:
        while offset < end:
            number, code = ACK.unpack_from(data, offset)
            offset += ACK.size
            payload: bytes | None = None
            if code in (RESULT, MORE):
                (length,) = LENGTH.unpack_from(data, offset)
                offset += LENGTH.size
                if offset + length > end:
                    raise ValueError("an answer's result is cut short")
                payload, offset = data[offset:offset + length], offset + length
            answers.append((number, code, payload))
    except struct.error as exc:
        raise ValueError(f"a malformed message of answers: {exc}") from None
    return answers


def number_of(message: bytes | memoryview | Any) -> int:
    """A store request's number (its header read alone: the rest may be malformed)."""
    return int(REQUEST.unpack_from(message)[2])


def decode(message: memoryview) -> tuple[int, tuple[str, ...], int, str, bytes, bytes]:
    """(number, roots, need, digest, write, data) of a store request (ValueError when malformed)."""
    _, size, number, length = REQUEST.unpack_from(message)
    start = REQUEST.size
    if start + length + size != len(message):
        raise ValueError(f"a store request of {len(message)} bytes says it has {start + length + size}")
    roots, need, digest, write = pickle.loads(message[start:start + length])
    if not (isinstance(roots, tuple) and roots and isinstance(need, int) and 1 <= need <= len(roots)):
        raise ValueError("a store request names no replica or an impossible quorum")
    return number, roots, need, digest, write, bytes(message[start + length:])


class Quorum:
    """Counts the copies of one blob as their writers finish (on the writers' threads)."""

    def __init__(self, need: int, total: int) -> None:
        self.need, self.total = need, total
        self.ok = self.failed = 0
        self.lock = threading.Lock()

    def add(self, ok: bool) -> str | None:
        """"commit" for the copy that completes the quorum, "fail" for the one that makes it
        impossible, else None."""
        with self.lock:
            if ok:
                self.ok += 1
                return "commit" if self.ok == self.need else None
            self.failed += 1
            return "fail" if self.failed == self.total - self.need + 1 else None


class StoreJob:
    """One store request in the writer: its copies counted as they complete (on the writer's
    thread, or a file writer's), put in ``ready`` once a quorum is durable or no longer can be."""

    __slots__ = ("abandoned", "answer", "durable", "number", "quorum", "ready", "write")

    def __init__(self, number: int, need: int, total: int, write: bytes, answer: Callable[[int, int, bytes], None],
                 ready: Ready) -> None:
        self.number, self.write = number, write
        self.quorum = Quorum(need, total)
        self.answer = answer  # (number, code, payload)
        self.ready = ready
        self.durable: bool | None = None  # decided: a quorum is durable (True) or cannot be (False)
        self.abandoned = False  # answered already (a request that failed half-way): never run, never answered

    def copied(self, error: OSError | None) -> None:
        if error is not None:
            log.warning("a copy of store request %d failed: %s", self.number, error)
        outcome = self.quorum.add(error is None)
        if outcome is not None:  # (once: the copies beyond the quorum decide nothing)
            self.durable = outcome == "commit"
            self.ready.put(self)


class Ready:
    """The jobs whose quorum is decided, and an eventfd that wakes the writer's poll for those
    decided on another thread (a copy that went to a file writer)."""

    def __init__(self) -> None:
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._jobs: queue.SimpleQueue[StoreJob] = queue.SimpleQueue()
        self._owner = threading.get_ident()
        self._lock = threading.Lock()
        self._closed = False

    def put(self, job: StoreJob) -> None:
        self._jobs.put(job)
        if threading.get_ident() != self._owner:
            with self._lock:  # (a late copy after the writer stopped: its number may be another file's)
                if not self._closed:
                    os.eventfd_write(self.fd, 1)

    def take(self) -> list[StoreJob]:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self.fd)
        jobs: list[StoreJob] = []
        while True:
            try:
                jobs.append(self._jobs.get_nowait())
            except queue.Empty:
                return jobs

    def close(self) -> None:
        with self._lock:
            self._closed = True
            os.close(self.fd)


@dataclass(slots=True)
class _HostedWrite:
    fn: Callable[[Any], Any]
    job: StoreJob
    result: Any = None
    error: BaseException | None = None


def finish(jobs: Sequence[StoreJob], run_writes: RunWrites | None) -> None:
    """Answer each decided job: a failed quorum with EIO; a durable one with its write committed
    (one transaction for all of them, ``run_writes``), or NOT_RUN for its server to run it."""
    writes: list[_HostedWrite] = []
    for job in jobs:
        if job.abandoned:
            continue
        if not job.durable:
            job.answer(job.number, errno.EIO, b"")
            continue
        if run_writes is None:
            job.answer(job.number, NOT_RUN, b"")
            continue
        try:
            fn, args = pickle.loads(job.write)  # (``PortableWrite.dumps``: a function and its arguments)
            if not callable(fn) or not isinstance(args, tuple):
                raise TypeError(f"not a write: {type(fn).__name__}")
            writes.append(_HostedWrite(functools.partial(fn_with_args, fn, args), job))
        except Exception as exc:
            log.error("store request %d: its write could not be read (%s): the server runs it", job.number, exc)
            job.answer(job.number, NOT_RUN, b"")
    if not writes or run_writes is None:
        return
    try:
        run_writes(writes)
    except BaseException as exc:  # (run_here answers each write itself; this is a bug's safety net)
        log.exception("running %d writes failed", len(writes))
        for write in writes:
            write.error = write.error or exc
    for write in writes:
        if write.error is not None:  # rolled back: the server runs it again, and gets its error there
            write.job.answer(write.job.number, NOT_RUN, b"")
            continue
        try:
            payload = pickle.dumps(write.result, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # committed, but its result cannot travel
            log.error("store request %d committed, but its result could not be sent: %s", write.job.number, exc)
            write.job.answer(write.job.number, errno.EIO, b"")
            continue
        write.job.answer(write.job.number, RESULT, payload)


def fn_with_args(fn: Callable[..., Any], args: tuple[Any, ...], conn: Any) -> Any:
    """A received write run on ``conn``: ``fn(conn, *args)``."""
    return fn(conn, *args)


class StoreWaiter:
    """The server's side of one store request: ``answered`` gets the outcome. Called as a copy's
    ``Done`` (the connection to the writer ended, or a copy's errno), it reports that error."""

    __slots__ = ("answered",)

    def __init__(self, answered: Answered) -> None:
        self.answered = answered

    def __call__(self, error: OSError | None) -> None:
        self.answered(error or OSError(errno.EIO, "the small-blob writer answered a store without its result"),
                      False, None)
