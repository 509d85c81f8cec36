"""Reading sealed (encrypted) blobs: the plaintext of a byte range of an object, frame by frame.

A :class:`SealedBody` is the plaintext [start, end) of an object's segments (its parts, each a
sealed blob). It is read in one of two ways, from the same cursor:

- by the event loop (``async for``): batches of ``BATCH`` frames, each read and decrypted by a job
  on the store's threads, ``DEPTH`` of them ahead of the one being sent, across the boundaries of
  segments, so that file reads, decryption and the socket overlap;
- by a thread (``read_next``): the next frames decrypted into a buffer the caller owns and reuses;
  the HTTP server's sender pump (``minicloud.server.sendoff``) reads a large GET this way, with the
  event loop out of the data path.

Each frame is authenticated by its tag as it is decrypted. A copy that fails (a bad tag, a short or
missing file, an I/O error) is set aside, repaired from a copy that verifies, and the read goes on
from another replica; with no good copy left the read fails (``BlobNotFound``) and the response is
cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from minicloud.services.s3 import crypto
from minicloud.storage.blobs import Digest
from minicloud.storage.blobs.core import BlobNotFound
from minicloud.storage.blobs.replica import Replica

log = logging.getLogger("minicloud.s3.data")

BATCH = 64  # frames read and decrypted at a time by the event loop's jobs (4 MiB)
DEPTH = 2  # batches read and decrypted (each by a job on the store's threads) ahead of the one being sent
STEP = 4  # frames read into a scratch buffer (which stays in the CPU's cache) then decrypted at a time

Run = Callable[..., Awaitable[Any]]  # runs a blocking function on the store's threads
Repair = Callable[[Replica, Digest], None]  # sets a bad copy aside and copies a good one back (blocking)


class CorruptBlob(Exception):
    """A copy of a blob that is not what its name says (a short or altered file)."""


class ReadClosed(Exception):
    """A span read after its read was closed."""


class Span:
    """The plaintext [lo, hi) of one sealed blob. Its frames are read from the first healthy replica
    that has a copy (opened at the first read, its data key unwrapped once); reads of a span may
    run at the same time on several threads (positioned reads)."""

    def __init__(self, sources: Callable[[Digest], list[Replica]], repair: Repair, name: str, size: int,
                 lo: int, hi: int, kek: bytes) -> None:
        self.name = name
        self.digest = Digest.parse(name)
        self.size, self.lo, self.hi = size, lo, hi
        self.first_frame, count, _ = crypto.frame_span(size, lo, hi)
        self.end_frame = self.first_frame + count
        self._find, self._repair, self._kek = sources, repair, kek
        self._sources: list[Replica] | None = None
        self._reader: _Reader | None = None
        self._retired: list[_Reader] = []  # readers that failed, closed with the span (other jobs may use them)
        self._closed = False
        self._lock = threading.Lock()

    def plain_bytes(self, frame: int, count: int) -> int:
        """The plaintext in frames [frame, frame + count)."""
        return min(count * crypto.FRAME, self.size - frame * crypto.FRAME)

    def bounds(self, frame: int, length: int) -> tuple[int, int]:
        """Of ``length`` plaintext bytes from ``frame`` on: the [cut, stop) within [lo, hi)."""
        base = frame * crypto.FRAME
        return max(self.lo - base, 0), min(self.hi - base, length)

    def decrypt(self, frame: int, count: int, out: memoryview) -> None:
        """Frames [frame, frame + count) decrypted into ``out``, from another copy (the failed one
        repaired) if need be; BlobNotFound when no copy can give them."""
        while True:
            with self._lock:
                if self._closed:  # (a job left running by a read that was given up)
                    raise ReadClosed(self.name)
                reader = self._reader
                if reader is None:
                    if self._sources is None:
                        self._sources = self._find(self.digest)
                    if not self._sources:
                        raise BlobNotFound(self.name)
                    reader = self._reader = _Reader(self._sources[0], self.digest, self._kek, self.size)
            try:
                reader.frames_into(frame, count, out)
                return
            except (crypto.InvalidTag, OSError, CorruptBlob, BlobNotFound) as exc:  # (a copy moved aside meanwhile)
                with self._lock:
                    first = self._reader is reader  # (jobs failing together set the copy aside once)
                    if first:
                        self._reader = None
                        self._retired.append(reader)
                        if self._sources:
                            self._sources.pop(0)
                if first:
                    log.warning("replica %s cannot give frames of %s: %s", reader.replica.name, self.name, exc)
                    self._repair(reader.replica, self.digest)

    def close(self) -> None:
        """Close the span's files (each once no thread reads it any more); it reads no more."""
        with self._lock:
            readers = [*self._retired, *([self._reader] if self._reader is not None else [])]
            self._reader, self._retired, self._closed = None, [], True
        for reader in readers:
            reader.close()


def spans(sources: Callable[[Digest], list[Replica]], repair: Repair, segments: Sequence[tuple[str, int]],
          start: int, end: int, kek: bytes) -> list[Span]:
    """The spans of the segments ((digest, size) pairs, end to end) that [start, end) overlaps."""
    return [Span(sources, repair, digest, size, lo, hi, kek)
            for digest, size, lo, hi in overlapped(segments, start, end)]


def overlapped(segments: Sequence[tuple[str, int]], start: int, end: int) -> Iterator[tuple[str, int, int, int]]:
    """The segments ((digest, size) pairs, end to end) that [start, end) overlaps, each with the
    range [lo, hi) of its own bytes that falls inside."""
    offset = 0
    for digest, size in segments:
        seg_start, seg_end = offset, offset + size
        offset = seg_end
        if seg_end > start and seg_start < end:
            yield digest, size, max(start, seg_start) - seg_start, min(end, seg_end) - seg_start


class SealedBody:
    """The plaintext of ``spans``, in order: ``async for`` on the event loop, or ``read_next`` on
    one thread at a time (never both at once). ``release`` runs once, on the event loop, when the
    body is closed (``aclose``) or its iteration ends, or else when it is dropped unread (an error
    response made after the body, say)."""

    # The buffer ``read_next`` fills best: 16 frames, small enough to stay in the CPU's cache
    # between the decryption and the copy into the socket.
    buffer_size = 16 * crypto.FRAME

    def __init__(self, spans: list[Span], run: Run, release: Callable[[], None]) -> None:
        self._spans = spans
        self._run = run
        self._release = weakref.finalize(self, release)
        self._release.atexit = False
        self._index = 0  # the span being read
        self._frame = spans[0].first_frame if spans else 0  # its next frame
        self._pieces: AsyncIterator[bytes | bytearray] | None = None

    def _next_batch(self, frames: int) -> tuple[Span, int, int] | None:
        """The next (span, first frame, count) of at most ``frames`` frames, the cursor moved past it."""
        while self._index < len(self._spans):
            span = self._spans[self._index]
            if self._frame < span.end_frame:
                count = min(frames, span.end_frame - self._frame)
                frame = self._frame
                self._frame += count
                return span, frame, count
            self._index += 1
            if self._index < len(self._spans):
                self._frame = self._spans[self._index].first_frame
        return None

    # -- by a thread

    def read_next(self, buffer: memoryview) -> memoryview | None:
        """The next piece of plaintext, decrypted into ``buffer`` (as many whole frames of one
        segment as fit; at least one frame's room); None at the end. Blocking."""
        batch = self._next_batch(len(buffer) // crypto.FRAME)
        if batch is None:
            return None
        span, frame, count = batch
        length = span.plain_bytes(frame, count)
        span.decrypt(frame, count, buffer[:length])
        if frame + count >= span.end_frame:
            span.close()
        cut, stop = span.bounds(frame, length)
        return buffer[cut:stop]

    # -- by the event loop

    def __aiter__(self) -> SealedBody:
        return self

    async def __anext__(self) -> bytes | bytearray:
        if self._pieces is None:
            self._pieces = self._stream()
        return await anext(self._pieces)

    async def _stream(self) -> AsyncIterator[bytes | bytearray]:
        pending: deque[tuple[Span, int, int, asyncio.Future[None], bytearray]] = deque()

        def start_jobs() -> None:
            while len(pending) < DEPTH:
                batch = self._next_batch(BATCH)
                if batch is None:
                    return
                span, frame, count = batch
                # Large buffers are allocated here, on the event loop's thread: made on the pool's
                # threads, each thread's malloc arena would keep some.
                out = bytearray(span.plain_bytes(frame, count))
                job = asyncio.ensure_future(self._run(span.decrypt, frame, count, memoryview(out)))
                pending.append((span, frame, count, job, out))
        try:
            start_jobs()
            while pending:
                span, frame, count, job, out = pending[0]
                await job
                pending.popleft()
                start_jobs()  # DEPTH jobs at work while this batch is sent
                if frame + count >= span.end_frame:  # its file is done with
                    await self._run(span.close)
                cut, stop = span.bounds(frame, len(out))
                piece = out if cut == 0 and stop == len(out) else bytes(memoryview(out)[cut:stop])
                if piece:
                    yield piece  # a bytearray is never reused: the transport may keep it
        finally:
            for _, _, _, job, _ in pending:  # settle every job before its buffers or readers go
                with contextlib.suppress(BaseException):
                    await job
            await self._finish()

    async def aclose(self) -> None:
        """Close the files still open and end the read (idempotent)."""
        pieces, self._pieces = self._pieces, None
        if pieces is not None:
            await pieces.aclose()  # type: ignore[attr-defined]
        await self._finish()

    async def _finish(self) -> None:
        if self._release.alive:
            try:
                await self._run(_close_all, self._spans)
            finally:
                self._release()


def _close_all(spans: Sequence[Span]) -> None:
    for span in spans:
        span.close()


class _Scratch:
    """Read buffers of sealed frames, reused: a fresh buffer per read would cost its page faults
    every time. At most ``KEPT`` wait between uses (the rest are freed)."""

    KEPT = 8

    def __init__(self) -> None:
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def buffer(self, size: int) -> Iterator[memoryview]:
        with self._lock:
            buffer = self._free.pop() if self._free else bytearray(size)
        if len(buffer) < size:
            buffer = bytearray(size)
        try:
            yield memoryview(buffer)[:size]
        finally:
            with self._lock:
                if len(self._free) < self.KEPT:
                    self._free.append(buffer)


_scratch = _Scratch()


class _Reader:
    """One replica's copy of a sealed blob, opened at its first read, its data key unwrapped once.
    Frames are read (``preadv``) ``STEP`` at a time into the thread's scratch buffer and decrypted
    from there. Not mapped: an I/O error on a mapped page is a SIGBUS that would end the server,
    where a read's ``EIO`` only sets this copy aside."""

    def __init__(self, replica: Replica, digest: Digest, kek: bytes, plain_size: int) -> None:
        self.name = f"{digest} on {replica.name}"
        self.replica = replica
        self.plain_size = plain_size
        self.sealed_size = crypto.sealed_size(plain_size)
        self._digest, self._kek = digest, kek
        self._file: BinaryIO | None = None
        self._key: AESGCM | None = None
        self._users = 0  # threads reading the file now
        self._closing = False  # closed as soon as they are done (its descriptor must not be reused under them)
        self._lock = threading.Lock()

    def _open(self) -> tuple[int, AESGCM]:
        """The open file and key, for one more reader (``_done`` after)."""
        with self._lock:
            if self._closing:
                raise ReadClosed(self.name)
            if self._file is None:
                f = self.replica.open(self._digest)
                try:
                    # A copy of the wrong size is corrupt.
                    if os.fstat(f.fileno()).st_size != self.sealed_size:
                        raise CorruptBlob(f"{self.name} is not {self.sealed_size} bytes long")
                    self._key = AESGCM(crypto.unwrap(self._kek, f.read(crypto.HEADER)))
                except BaseException:
                    f.close()
                    raise
                self._file = f
            assert self._key is not None
            self._users += 1
            return self._file.fileno(), self._key

    def _done(self) -> None:
        with self._lock:
            self._users -= 1
            if self._closing and not self._users:
                self._close_file()

    def frames_into(self, first: int, count: int, out: memoryview) -> None:
        """Frames [first, first + count) decrypted into ``out`` (InvalidTag if any was altered)."""
        fd, key = self._open()
        try:
            self._frames_into(fd, key, first, count, out)
        finally:
            self._done()

    def _frames_into(self, fd: int, key: AESGCM, first: int, count: int, out: memoryview) -> None:
        sealed = crypto.FRAME + crypto.TAG
        start = crypto.HEADER + first * sealed
        wanted = min(count * sealed, self.sealed_size - start)
        with _scratch.buffer(min(STEP * sealed, wanted)) as scratch:
            done = 0
            while done < wanted:
                size = min(len(scratch), wanted - done)
                view, got = scratch[:size], 0
                while got < size:
                    more = os.preadv(fd, [view[got:]], start + done + got)
                    if more <= 0:
                        raise CorruptBlob(f"{self.name} ends before its frames {first}-{first + count}")
                    got += more
                written = crypto.open_frames_into(key, view, first + done // sealed, self.plain_size, out)
                out = out[written:]
                done += size

    def close(self) -> None:
        with self._lock:
            self._closing = True
            if not self._users:
                self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
