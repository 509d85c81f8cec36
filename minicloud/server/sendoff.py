"""Large response bodies written to the socket by threads, off the event loop.

uvloop writes to a socket with the GIL held, and every piece of a body that passes through the
event loop costs it a few wake-ups: for a large body (a GET of a big object) the loop becomes the
pipeline's narrowest stage. Two ways around it, both writing with ``os.writev`` (the GIL released
during the copy into the kernel) on a duplicate of the connection's descriptor, waiting with
``poll`` while the socket is full:

- ``send_off_loop``: one large piece the application already made, written by a sender thread
  while the application makes the next;
- ``pump``: a body a thread can read (:class:`ThreadReadable`, e.g. a sealed S3 object) read by a
  producer thread into a small ring of reused buffers (no page faults, no zeroing, still in the
  CPU's cache when they are copied out) and written by a sender thread; the event loop waits for
  the end only.

The event loop's transport is never bypassed while it holds data: a thread writes only when the
transport's write buffer is empty, and nothing else writes to the connection meanwhile (its
exchange awaits the thread, and reading is paused so that no error answer can be written). A
client that reads slowly does not hold a thread: what is not sent within ``PATIENCE_S`` goes to
the transport, which sends it as the socket drains, and the rest of the body follows through the
event loop as for any response. Only plain TCP connections qualify: a TLS transport encrypts in
the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Protocol, runtime_checkable

# Body pieces, and bodies a thread can read, this large or larger are sent from threads.
MIN_BYTES = 1 << 20
# A piece still not sent after this long is handed to the transport (a slow reader).
PATIENCE_S = 0.5
# Threads per pool and process (see _Pools): a response finding them all busy is sent through the
# event loop.
THREADS = 8
# Buffers a pump's producer fills ahead of its sender.
RING = 4


@runtime_checkable
class ThreadReadable(Protocol):
    """A body a thread reads piece by piece into buffers it owns, or the event loop iterates (the
    rest of it, after a thread stopped), and closes."""

    buffer_size: int  # the size of buffer ``read_next`` fills best

    def read_next(self, buffer: memoryview) -> memoryview | None:
        """The next piece of the body, in ``buffer`` (the part of it returned); None at the end."""

    def __aiter__(self) -> AsyncIterator[bytes | bytearray]: ...

    async def aclose(self) -> None: ...


@dataclass
class Pumped:
    """What a pump did: body bytes read (sent, or left over), and those left for the transport."""

    read: int = 0
    leftover: list[bytes] = field(default_factory=list)


class ClientGone(Exception):
    """The connection ended under a thread's write (the client went away)."""


class Abandoned(Exception):
    """The response was given up (its task cancelled) while threads pumped it."""


class TooLong(Exception):
    """A pumped body went past the Content-Length its response announced."""


class _Pools:
    """This process's threads (a forked worker makes its own): senders of single pieces, and
    pumps' senders and producers, each pool with its own count of jobs so that a response never
    queues behind long pumps (it takes the event loop's path instead)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.pieces = ThreadPoolExecutor(THREADS, thread_name_prefix="http-send")
        self.pumps = ThreadPoolExecutor(THREADS, thread_name_prefix="http-pump")
        self.producers = ThreadPoolExecutor(THREADS, thread_name_prefix="http-read")
        self.sending = 0
        self.pumping = 0


_pools: _Pools | None = None
_pools_lock = threading.Lock()


def _current_pools() -> _Pools:
    global _pools
    with _pools_lock:
        if _pools is None or _pools.pid != os.getpid():
            _pools = _Pools()
        return _pools


def piece_thread_free() -> bool:
    """Whether a sender thread can take a piece now (the event loop's thread only)."""
    return _current_pools().sending < THREADS


def pump_threads_free() -> bool:
    """Whether a response may be pumped now (the event loop's thread only)."""
    return _current_pools().pumping < THREADS


def socket_fd(transport: asyncio.Transport) -> int | None:
    """The descriptor a thread may write the connection's bytes to: None for TLS (or a transport
    without a socket)."""
    if transport.get_extra_info("ssl_object") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    try:
        return int(sock.fileno())
    except (OSError, ValueError):
        return None


class SenderSocket:
    """A duplicate of a connection's (non-blocking) descriptor, made on the event loop's thread
    while the transport holds the original, and owned by the thread job it is given to (which
    closes it): the transport may close its own meanwhile, and that number could be reused."""

    def __init__(self, fd: int) -> None:
        self.fd = os.dup(fd)
        try:
            self.poller = select.poll()
            self.poller.register(self.fd, select.POLLOUT)
        except BaseException:
            os.close(self.fd)
            raise

    @classmethod
    def of(cls, fd: int) -> SenderSocket | None:
        """A duplicate of ``fd``, or None when none can be made (out of descriptors)."""
        try:
            return cls(fd)
        except OSError:
            return None

    def write(self, pieces: list[memoryview], patience_s: float) -> list[memoryview]:
        """Write ``pieces`` until all are sent or ``patience_s`` has passed; what is left unsent.
        Raises ClientGone when the connection ended (the peer went away)."""
        pieces = [piece for piece in pieces if len(piece)]
        deadline = time.monotonic() + patience_s
        while pieces:
            try:
                count = os.writev(self.fd, pieces)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.poller.poll(left * 1000)
                continue
            except OSError as exc:
                raise ClientGone(str(exc)) from exc
            while pieces and count >= len(pieces[0]):
                count -= len(pieces[0])
                pieces.pop(0)
            if pieces and count:
                pieces[0] = pieces[0][count:]
        return pieces

    def close(self) -> None:
        os.close(self.fd)


def send_pieces(sock: SenderSocket, pieces: list[memoryview], patience_s: float = PATIENCE_S) -> list[memoryview]:
    """``SenderSocket.write``, then the socket is closed."""
    try:
        return sock.write(pieces, patience_s)
    finally:
        sock.close()


async def send_off_loop(sock: SenderSocket, pieces: list[memoryview]) -> list[memoryview]:
    """``send_pieces`` on a sender thread (``piece_thread_free`` said one is free)."""
    pools = _current_pools()
    pools.sending += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(pools.pieces, send_pieces, sock, pieces)
    finally:
        pools.sending -= 1


async def pump_off_loop(sock: SenderSocket, head: bytes, body: ThreadReadable, limit: int) -> Pumped:
    """``pump`` on a pump thread, its producer on another (``pump_threads_free`` said they are
    free). The ring's buffers are made here, on the event loop's thread: made on the pool's
    threads, each thread's malloc arena would keep some."""
    pools = _current_pools()
    abandon = threading.Event()
    pools.pumping += 1
    try:
        ring = [memoryview(bytearray(body.buffer_size)) for _ in range(RING)]
        job = asyncio.get_running_loop().run_in_executor(pools.pumps, pump, sock, head, body, ring, pools.producers,
                                                         limit, PATIENCE_S, abandon)
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            # The threads stop soon (within PATIENCE_S): the caller closes the body only after that.
            abandon.set()
            while not job.done():
                with contextlib.suppress(BaseException):
                    await asyncio.shield(job)
            raise
    finally:
        pools.pumping -= 1


_Filled = tuple[memoryview, memoryview] | BaseException | None  # (buffer, piece), a failure, the end


def pump(sock: SenderSocket, head: bytes, body: ThreadReadable, ring: list[memoryview], producers: ThreadPoolExecutor,
         limit: int, patience_s: float = PATIENCE_S, abandon: threading.Event | None = None) -> Pumped:
    """Write ``head`` then ``body`` (at most ``limit`` bytes of it) to ``sock``, which is closed
    after: a producer thread reads the body into the buffers of ``ring``, this thread writes them.
    When a piece cannot be sent within ``patience_s`` the producer stops and what was read but not
    sent is returned (the body's cursor is past it). Raises the producer's error, ClientGone,
    TooLong, or Abandoned once ``abandon`` is set; the producer has stopped whenever this returns."""
    free: SimpleQueue[memoryview | None] = SimpleQueue()
    filled: SimpleQueue[_Filled] = SimpleQueue()
    stop = threading.Event()
    for buffer in ring:
        free.put(buffer)
    result = Pumped()
    try:
        producer = producers.submit(_produce, body, free, filled, stop)
    except BaseException:
        sock.close()
        raise
    try:
        unsent = [memoryview(head)]
        while True:
            item = filled.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            if abandon is not None and abandon.is_set():
                raise Abandoned()
            buffer, piece = item
            result.read += len(piece)
            if result.read > limit:
                raise TooLong(f"the body goes past its {limit} bytes")
            unsent = sock.write([*unsent, piece], patience_s)
            if unsent:  # a slow reader: the rest goes through the transport
                result.leftover = [bytes(view) for view in unsent]
                _stop(producer, free, stop)
                _drain(filled, result, limit)
                return result
            free.put(buffer)
        if unsent:
            result.leftover = [bytes(view) for view in unsent]
        return result
    except BaseException:
        _stop(producer, free, stop)
        raise
    finally:
        sock.close()


def _produce(body: ThreadReadable, free: SimpleQueue[memoryview | None], filled: SimpleQueue[_Filled],
             stop: threading.Event) -> None:
    try:
        while True:
            buffer = free.get()
            if buffer is None or stop.is_set():
                return
            piece = body.read_next(buffer)
            filled.put(None if piece is None else (buffer, piece))
            if piece is None:
                return
    except BaseException as exc:
        filled.put(exc)


def _stop(producer: Future[None], free: SimpleQueue[memoryview | None], stop: threading.Event) -> None:
    """Stop the producer and wait until it has (the body is not read by two threads at once)."""
    stop.set()
    free.put(None)
    producer.exception()  # waits; its failure, if any, is in the queue


def _drain(filled: SimpleQueue[_Filled], result: Pumped, limit: int) -> None:
    """Pieces the stopped producer had read: left over, in order. Raises its failure."""
    while not filled.empty():
        item = filled.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        result.read += len(item[1])
        if result.read > limit:
            raise TooLong(f"the body goes past its {limit} bytes")
        result.leftover.append(bytes(item[1]))
